-- Unlogged rollbacks (rollback_to_snapshot_unlogged, rollback_to_time_unlogged):
-- exact like the logged ones, nothing of their own in the change log, and
-- every later target they make unknowable refused, for the tables they
-- changed only.  Exactness is compared with copies taken in the snapshot's
-- REPEATABLE READ transaction, by text output.
\set VERBOSITY terse
CREATE SCHEMA ul;
SET client_min_messages = warning;
CREATE FUNCTION ul.rows_text(rel regclass, tenant text)
RETURNS SETOF text LANGUAGE plpgsql AS $$
BEGIN
    RETURN QUERY EXECUTE format('SELECT t::text FROM %s t WHERE t.tenant = $1 ORDER BY 1', rel) USING tenant;
END $$;
CREATE TABLE ul.copies (snapshot_id bigint, rel text, row_text text);
CREATE FUNCTION ul.diff(s bigint, rel regclass, tenant text)
RETURNS bigint LANGUAGE sql AS $$
    SELECT count(*) FROM (
        (SELECT row_text FROM ul.copies c WHERE c.snapshot_id = $1 AND c.rel = $2::text
         EXCEPT ALL SELECT * FROM ul.rows_text($2, $3))
        UNION ALL
        (SELECT * FROM ul.rows_text($2, $3)
         EXCEPT ALL SELECT row_text FROM ul.copies c WHERE c.snapshot_id = $1 AND c.rel = $2::text)) d
$$;
CREATE FUNCTION ul.log_rows() RETURNS bigint LANGUAGE sql AS $$
    SELECT count(*) FROM bkperf.backup_transaction_logs WHERE tenant_id = 'u1'
$$;

CREATE TABLE ul.acct (tenant text, id int PRIMARY KEY, v text);
CREATE TABLE ul.other (tenant text, id int PRIMARY KEY, v text);
-- A snapshot of tenant u1 with copies of both tables.
CREATE FUNCTION ul.copy(s bigint) RETURNS void LANGUAGE sql AS $$
    INSERT INTO ul.copies SELECT s, 'ul.acct', r FROM ul.rows_text('ul.acct', 'u1') r;
    INSERT INTO ul.copies SELECT s, 'ul.other', r FROM ul.rows_text('ul.other', 'u1') r;
$$;
SELECT bkperf.track_table('ul.acct', 'tenant'), bkperf.track_table('ul.other', 'tenant');
INSERT INTO ul.acct SELECT 'u' || (i % 2), i, 'a' || i FROM generate_series(1, 10) i;
INSERT INTO ul.other SELECT 'u' || (i % 2), i, 'o' || i FROM generate_series(1, 10) i;

BEGIN ISOLATION LEVEL REPEATABLE READ;
SELECT bkperf.create_snapshot('u1', 's0') AS s0 \gset
SELECT ul.copy(:s0);
COMMIT;
UPDATE ul.acct SET v = v || '+c1' WHERE id IN (1, 3);
DELETE FROM ul.acct WHERE id = 5;
BEGIN ISOLATION LEVEL REPEATABLE READ;
SELECT bkperf.create_snapshot('u1', 's1') AS s1 \gset
SELECT ul.copy(:s1);
COMMIT;
UPDATE ul.acct SET v = v || '+c2' WHERE id IN (3, 7);
INSERT INTO ul.acct VALUES ('u1', 11, 'new'), ('u0', 12, 'other tenant');
UPDATE ul.other SET v = v || '+c2' WHERE id IN (1, 9);
BEGIN ISOLATION LEVEL REPEATABLE READ;
SELECT bkperf.create_snapshot('u1', 's2') AS s2 \gset
SELECT ul.copy(:s2);
COMMIT;
SELECT pg_catalog.clock_timestamp() AS t_between \gset
UPDATE ul.acct SET v = v || '+c3' WHERE id IN (1, 9);
UPDATE ul.other SET v = v || '+c3' WHERE id = 1;

-- Arguments.
SELECT status FROM bkperf.rollback_to_snapshot_unlogged(NULL, :s1);
SELECT status FROM bkperf.rollback_to_snapshot_unlogged('u1', NULL);
SELECT status FROM bkperf.rollback_to_snapshot_unlogged('u1', :s1, NULL);
SELECT status FROM bkperf.rollback_to_snapshot_unlogged('u1', :s1, false, '{}');
SELECT status FROM bkperf.rollback_to_time_unlogged('u1', NULL);
-- Not executable by PUBLIC.
SELECT has_function_privilege('public', 'bkperf.rollback_to_snapshot_unlogged(text,bigint,boolean,regclass[])', 'EXECUTE') AS public_snapshot,
       has_function_privilege('public', 'bkperf.rollback_to_time_unlogged(text,timestamptz,boolean,regclass[])', 'EXECUTE') AS public_time;

-- A dry run reports the counts, changes nothing and records no window.
SELECT md5(string_agg(r, ',')) AS acct_before FROM ul.rows_text('ul.acct', 'u1') r \gset
SELECT status, rows_deleted, rows_updated, rows_inserted
  FROM bkperf.rollback_to_snapshot_unlogged('u1', :s1, true, '{ul.acct}');
SELECT md5(string_agg(r, ',')) = :'acct_before' AS acct_unchanged_after_dry_run FROM ul.rows_text('ul.acct', 'u1') r;
SELECT count(*) AS windows FROM bkperf.backup_pitr_rollback_history WHERE tenant_id = 'u1' AND unlogged IS NOT NULL;

-- The unlogged rollback of ul.acct to s1: exact, nothing logged.
SELECT ul.log_rows() AS log_before \gset
SELECT status, tables, rows_deleted, rows_updated, rows_inserted, skipped_tables
  FROM bkperf.rollback_to_snapshot_unlogged('u1', :s1, false, '{ul.acct}');
SELECT ul.diff(:s1, 'ul.acct', 'u1') AS acct_differs_from_s1;
SELECT ul.log_rows() - :log_before AS rows_logged_by_unlogged_rollback;
SELECT count(*) AS other_tenant_rows FROM ul.acct WHERE tenant = 'u0';
SELECT unlogged ? 'txid' AS has_txid, unlogged -> 'table_ids' =
       jsonb_build_array((SELECT table_id FROM bkperf.tracked_tables WHERE relid = 'ul.acct'::regclass)) AS tables_recorded
  FROM bkperf.backup_pitr_rollback_history WHERE tenant_id = 'u1' AND unlogged IS NOT NULL;

-- s2 (after s1, before the unlogged rollback) is refused for ul.acct, also
-- as a dry run and by time; ul.other, which it did not change, still
-- rolls back to s2 exactly.
SELECT status FROM bkperf.rollback_to_snapshot('u1', :s2);
SELECT status FROM bkperf.rollback_to_snapshot('u1', :s2, true);
SELECT status FROM bkperf.rollback_to_time('u1', :'t_between');
SELECT status FROM bkperf.rollback_to_snapshot_unlogged('u1', :s2);
SELECT status, rows_updated FROM bkperf.rollback_to_snapshot('u1', :s2, false, '{ul.other}');
SELECT ul.diff(:s2, 'ul.other', 'u1') AS other_differs_from_s2;

-- s1 itself and s0 before it stay usable, and exact.
SELECT status, rows_updated FROM bkperf.rollback_to_snapshot('u1', :s1, true, '{ul.acct}');
SELECT status, rows_deleted, rows_updated, rows_inserted FROM bkperf.rollback_to_snapshot('u1', :s0);
SELECT ul.diff(:s0, 'ul.acct', 'u1') AS acct_differs_from_s0, ul.diff(:s0, 'ul.other', 'u1') AS other_differs_from_s0;
-- That rollback was logged: back to s1 again, exactly.
SELECT status FROM bkperf.rollback_to_snapshot('u1', :s1, false, '{ul.acct}');
SELECT ul.diff(:s1, 'ul.acct', 'u1') AS acct_differs_from_s1_again;

-- A snapshot taken after the unlogged rollback is usable, and exact.
BEGIN ISOLATION LEVEL REPEATABLE READ;
SELECT bkperf.create_snapshot('u1', 's3') AS s3 \gset
SELECT ul.copy(:s3);
COMMIT;
UPDATE ul.acct SET v = v || '+c4' WHERE tenant = 'u1';
DELETE FROM ul.other WHERE id = 3;
SELECT status FROM bkperf.rollback_to_snapshot('u1', :s3);
SELECT ul.diff(:s3, 'ul.acct', 'u1') AS acct_differs_from_s3, ul.diff(:s3, 'ul.other', 'u1') AS other_differs_from_s3;

-- By time: an unlogged rollback to a time; then a time between is
-- refused, the target time itself and a snapshot before it are not.
SELECT pg_catalog.clock_timestamp() AS t4 \gset
UPDATE ul.other SET v = v || '+c5' WHERE id = 1;
SELECT pg_catalog.clock_timestamp() AS t5 \gset
UPDATE ul.other SET v = v || '+c6' WHERE id IN (1, 7);
SELECT status, rows_updated FROM bkperf.rollback_to_time_unlogged('u1', :'t4', false, '{ul.other}');
SELECT status FROM bkperf.rollback_to_time('u1', :'t5', false, '{ul.other}');
SELECT status FROM bkperf.rollback_to_time('u1', :'t4', false, '{ul.other}');
SELECT status, rows_updated FROM bkperf.rollback_to_snapshot('u1', :s3, false, '{ul.other}');
SELECT ul.diff(:s3, 'ul.other', 'u1') AS other_differs_from_s3_again;
-- A snapshot that saw a change the unlogged rollback undid is refused; one
-- taken after the target time but before any such change is not.
SELECT pg_catalog.clock_timestamp() AS t7 \gset
BEGIN ISOLATION LEVEL REPEATABLE READ;
SELECT bkperf.create_snapshot('u1', 's4') AS s4 \gset
SELECT ul.copy(:s4);
COMMIT;
UPDATE ul.other SET v = v || '+c7' WHERE id = 9;
BEGIN ISOLATION LEVEL REPEATABLE READ;
SELECT bkperf.create_snapshot('u1', 's5') AS s5 \gset
SELECT ul.copy(:s5);
COMMIT;
UPDATE ul.other SET v = v || '+c8' WHERE id IN (7, 9);
SELECT status, rows_updated FROM bkperf.rollback_to_time_unlogged('u1', :'t7', false, '{ul.other}');
SELECT ul.diff(:s4, 'ul.other', 'u1') AS other_differs_from_s4;
UPDATE ul.other SET v = v || '+c9' WHERE id IN (1, 9);
SELECT status FROM bkperf.rollback_to_snapshot('u1', :s5, true, '{ul.other}');
SELECT status, rows_updated FROM bkperf.rollback_to_snapshot('u1', :s4, false, '{ul.other}');
SELECT ul.diff(:s4, 'ul.other', 'u1') AS other_differs_from_s4_after;

-- Capture is on again after the rollback, in the same transaction, and
-- after a failed one; an aborted unlogged rollback leaves no window.
BEGIN;
SELECT bkperf.create_snapshot('u1', 's8') AS s8 \gset
UPDATE ul.acct SET v = 'x' WHERE id = 1;
SELECT ul.log_rows() AS log_mid \gset
SELECT status FROM bkperf.rollback_to_snapshot_unlogged('u1', :s3, false, '{ul.acct}');
UPDATE ul.acct SET v = 'y' WHERE id = 1;
SELECT ul.log_rows() - :log_mid AS logged_after_rollback_same_xact;
ROLLBACK;
SELECT count(*) AS windows FROM bkperf.backup_pitr_rollback_history WHERE tenant_id = 'u1' AND unlogged IS NOT NULL;
BEGIN ISOLATION LEVEL REPEATABLE READ;
SELECT bkperf.create_snapshot('u1', 's6') AS s6 \gset
SELECT ul.copy(:s6);
COMMIT;
UPDATE ul.acct SET v = 'bad' WHERE id = 1;
ALTER TABLE ul.acct ADD CONSTRAINT acct_v_check CHECK (v <> 'a1+c1') NOT VALID;
SELECT status, error FROM bkperf.rollback_to_snapshot_unlogged('u1', :s6, false, '{ul.acct}');
SELECT ul.log_rows() AS log_after_fail \gset
UPDATE ul.acct SET v = 'worse' WHERE id = 1;
SELECT ul.log_rows() - :log_after_fail AS logged_after_failed_rollback;
ALTER TABLE ul.acct DROP CONSTRAINT acct_v_check;
SELECT status FROM bkperf.rollback_to_snapshot('u1', :s6, false, '{ul.acct}');
SELECT ul.diff(:s6, 'ul.acct', 'u1') AS acct_differs_from_s6;

-- Tables with ENABLE ALWAYS triggers are refused: what the trigger writes
-- could not be seen with capture off.
CREATE TABLE ul.stamped (tenant text, id int PRIMARY KEY, v text, n int DEFAULT 0);
SELECT bkperf.track_table('ul.stamped', 'tenant');
INSERT INTO ul.stamped VALUES ('u1', 1, 'a');
SELECT bkperf.create_snapshot('u1', 's7') AS s7 \gset
UPDATE ul.stamped SET v = 'b';
CREATE FUNCTION ul.bump() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN NEW.n := NEW.n + 1; RETURN NEW; END $$;
CREATE TRIGGER bump BEFORE UPDATE ON ul.stamped FOR EACH ROW EXECUTE FUNCTION ul.bump();
ALTER TABLE ul.stamped ENABLE ALWAYS TRIGGER bump;
SELECT status, error FROM bkperf.rollback_to_snapshot_unlogged('u1', :s7, false, '{ul.stamped}');
SELECT v FROM ul.stamped;

RESET client_min_messages;
DROP SCHEMA ul CASCADE;
