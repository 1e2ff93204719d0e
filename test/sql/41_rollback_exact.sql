-- Exact and safe rollback in ordinary operations: renames, schema moves,
-- column renames, added columns, tenants compared by their text, partitions,
-- hostile operators and triggers, scope and per-table floors.  Every case
-- compares with a copy taken in the same REPEATABLE READ transaction as the
-- snapshot, by text output.
\set VERBOSITY terse
CREATE SCHEMA ex;
SET client_min_messages = warning;

-- Rows of a table for one tenant column value, as text, in a stable order.
CREATE FUNCTION ex.rows_text(rel regclass, tenant_col name, tenant text)
RETURNS SETOF text LANGUAGE plpgsql AS $$
BEGIN
    RETURN QUERY EXECUTE format('SELECT t::text FROM %s t WHERE bkperf.tenant_text(t.%I) = $1 ORDER BY 1',
                                rel, tenant_col) USING tenant;
END $$;
-- Take a snapshot of tenant and keep a copy of its rows of rel taken in the
-- same REPEATABLE READ transaction (in ex.copies).
CREATE TABLE ex.copies (snapshot_id bigint, rel text, row_text text);
-- Differences between rel's rows of tenant now and the copy taken with snapshot s.
CREATE FUNCTION ex.diff(s bigint, rel regclass, tenant_col name, tenant text)
RETURNS bigint LANGUAGE sql AS $$
    SELECT count(*) FROM (
        (SELECT row_text FROM ex.copies c WHERE c.snapshot_id = $1 AND c.rel = $2::text
         EXCEPT ALL SELECT * FROM ex.rows_text($2, $3, $4))
        UNION ALL
        (SELECT * FROM ex.rows_text($2, $3, $4)
         EXCEPT ALL SELECT row_text FROM ex.copies c WHERE c.snapshot_id = $1 AND c.rel = $2::text)) d
$$;

-- 1. Table rename and schema move after tracking.
CREATE TABLE ex.acct (tenant text, id int PRIMARY KEY, payload text);
SELECT bkperf.track_table('ex.acct', 'tenant');
INSERT INTO ex.acct SELECT 't' || (i % 2), i, 'v' || i FROM generate_series(1, 6) i;
BEGIN ISOLATION LEVEL REPEATABLE READ;
SELECT bkperf.create_snapshot('t1') AS s1 \gset
INSERT INTO ex.copies SELECT :s1, 'ex.acct2', r FROM ex.rows_text('ex.acct', 'tenant', 't1') r;
COMMIT;
ALTER TABLE ex.acct RENAME TO acct2;
CREATE SCHEMA ex2;
UPDATE ex.acct2 SET payload = 'changed' WHERE tenant = 't1';
INSERT INTO ex.acct2 VALUES ('t1', 100, 'new');
ALTER TABLE ex.acct2 SET SCHEMA ex2;
DELETE FROM ex2.acct2 WHERE id = 1;
-- tracked_tables follows the name; the log keeps the name of each change's time.
SELECT table_name FROM bkperf.tracked_tables WHERE relid = 'ex2.acct2'::regclass;
SELECT DISTINCT table_name FROM bkperf.backup_transaction_logs
 WHERE table_id = (SELECT table_id FROM bkperf.tracked_tables WHERE relid = 'ex2.acct2'::regclass)
 ORDER BY 1;
SELECT status, rows_deleted, rows_updated, rows_inserted FROM bkperf.rollback_to_snapshot('t1', :s1);
UPDATE ex.copies SET rel = 'ex2.acct2' WHERE snapshot_id = :s1;
SELECT ex.diff(:s1, 'ex2.acct2', 'tenant', 't1') AS differences;
SELECT count(*) AS tenant_t0_rows FROM ex2.acct2 WHERE tenant = 't0';

-- Another owner renames its own tracked table to the old name: its log rows
-- are never applied to ours.
CREATE ROLE ex_other LOGIN;
GRANT CREATE, USAGE ON SCHEMA ex TO ex_other;
GRANT USAGE ON SCHEMA bkperf TO ex_other;
GRANT EXECUTE ON FUNCTION bkperf.track_table(regclass, name, text) TO ex_other;
SET ROLE ex_other;
CREATE TABLE ex.imposter (tenant text, id int PRIMARY KEY, payload text);
SELECT bkperf.track_table('ex.imposter', 'tenant');
RESET ROLE;
BEGIN ISOLATION LEVEL REPEATABLE READ;
SELECT bkperf.create_snapshot('t1') AS s2 \gset
INSERT INTO ex.copies SELECT :s2, 'ex2.acct2', r FROM ex.rows_text('ex2.acct2', 'tenant', 't1') r;
COMMIT;
SET ROLE ex_other;
ALTER TABLE ex.imposter RENAME TO acct;
INSERT INTO ex.acct VALUES ('t1', 3, 'forged');   -- id 3 is also a genuine row of ex2.acct2
DELETE FROM ex.acct;
RESET ROLE;
SELECT status, tables, rows_deleted, rows_updated, rows_inserted FROM bkperf.rollback_to_snapshot('t1', :s2);
SELECT ex.diff(:s2, 'ex2.acct2', 'tenant', 't1') AS differences;

-- 2. Column rename after the snapshot; 3. ADD COLUMN ... NOT NULL DEFAULT.
CREATE TABLE ex.doc (tenant text, id int PRIMARY KEY, payload text, n int);
SELECT bkperf.track_table('ex.doc', 'tenant');
INSERT INTO ex.doc SELECT 'd1', i, 'p' || i, i FROM generate_series(1, 4) i;
BEGIN ISOLATION LEVEL REPEATABLE READ;
SELECT bkperf.create_snapshot('d1') AS s3 \gset
COMMIT;
ALTER TABLE ex.doc RENAME COLUMN payload TO body;
ALTER TABLE ex.doc ADD COLUMN flag text NOT NULL DEFAULT 'fresh';
ALTER TABLE ex.doc RENAME COLUMN id TO doc_id;          -- a key column
UPDATE ex.doc SET body = 'edited', flag = 'x' WHERE doc_id IN (1, 2);
DELETE FROM ex.doc WHERE doc_id = 3;
INSERT INTO ex.doc VALUES ('d1', 9, 'late', 9, 'y');
SELECT change, old_name, new_name, added_value, added_value_known FROM bkperf.tracked_column_changes
 WHERE table_id = (SELECT table_id FROM bkperf.tracked_tables WHERE relid = 'ex.doc'::regclass)
 ORDER BY log_mark, new_name;
SELECT key_columns FROM bkperf.tracked_tables WHERE relid = 'ex.doc'::regclass;
SELECT status, rows_deleted, rows_updated, rows_inserted FROM bkperf.rollback_to_snapshot('d1', :s3);
-- Restored rows have the columns' values under today's names, and the value
-- ADD COLUMN gave the rows that existed.
SELECT * FROM ex.doc ORDER BY doc_id;

-- A column added with a volatile default: its value for older rows is
-- unknown, and the rollback refuses instead of guessing.
BEGIN ISOLATION LEVEL REPEATABLE READ;
SELECT bkperf.create_snapshot('d1') AS s4 \gset
COMMIT;
DELETE FROM ex.doc WHERE doc_id = 4;
ALTER TABLE ex.doc ADD COLUMN r float8 DEFAULT random();
SELECT status, error FROM bkperf.rollback_to_snapshot('d1', :s4);
-- A type change the old images cannot take fails cleanly, naming the column.
ALTER TABLE ex.doc DROP COLUMN r;
ALTER TABLE ex.doc ALTER COLUMN body TYPE int USING length(body);
SELECT status, regexp_replace(error, 'entry \d+', 'entry N') AS error
  FROM bkperf.rollback_to_snapshot('d1', :s4);

-- 4. Tenants compare by their logged text: numeric 1 and 1.0, float 0 and -0.
CREATE TABLE ex.num (tenant numeric, id int PRIMARY KEY, v text);
SELECT bkperf.track_table('ex.num', 'tenant');
INSERT INTO ex.num VALUES (1, 1, 'one'), (1.0, 2, 'one point zero');
BEGIN ISOLATION LEVEL REPEATABLE READ;
SELECT bkperf.create_snapshot('1') AS s5 \gset
COMMIT;
INSERT INTO ex.num VALUES (1, 3, 'later'), (1.0, 4, 'later too');
SELECT status, rows_deleted FROM bkperf.rollback_to_snapshot('1', :s5);
SELECT tenant::text, id, v FROM ex.num ORDER BY id;
CREATE TABLE ex.flt (tenant float8, id int PRIMARY KEY);
SELECT bkperf.track_table('ex.flt', 'tenant');
BEGIN ISOLATION LEVEL REPEATABLE READ;
SELECT bkperf.create_snapshot('0') AS s6 \gset
COMMIT;
INSERT INTO ex.flt VALUES (0, 1), ('-0', 2);
SELECT status, rows_deleted FROM bkperf.rollback_to_snapshot('0', :s6);
SELECT tenant::text, id FROM ex.flt ORDER BY id;

-- A date/time tenant is one tenant whatever the writers' DateStyle and
-- TimeZone: its logged text does not depend on them.
CREATE TABLE ex.dated (tenant timestamptz, id int PRIMARY KEY, v int);
SELECT bkperf.track_table('ex.dated', 'tenant');
INSERT INTO ex.dated VALUES ('2026-01-02 03:04:05+00', 1, 1);
SELECT bkperf.tenant_text('2026-01-02 03:04:05+00'::timestamptz) AS dated_tenant \gset
BEGIN ISOLATION LEVEL REPEATABLE READ;
SELECT bkperf.create_snapshot(:'dated_tenant') AS s10 \gset
INSERT INTO ex.copies SELECT :s10, 'ex.dated', r FROM ex.rows_text('ex.dated', 'tenant', :'dated_tenant') r;
COMMIT;
SET DateStyle = 'SQL, DMY';
SET TimeZone = 'Asia/Kathmandu';
UPDATE ex.dated SET v = 2 WHERE id = 1;
INSERT INTO ex.dated VALUES ('2026-01-02 03:04:05+00', 2, 2);
RESET DateStyle;
RESET TimeZone;
SELECT count(DISTINCT tenant_id) AS dated_tenant_ids FROM bkperf.backup_transaction_logs
 WHERE table_id = (SELECT table_id FROM bkperf.tracked_tables WHERE relid = 'ex.dated'::regclass);
SELECT status, rows_deleted, rows_updated FROM bkperf.rollback_to_snapshot(:'dated_tenant', :s10);
SELECT ex.diff(:s10, 'ex.dated', 'tenant', :'dated_tenant') AS differences;

-- 6. Values come back with the same text output, whatever the writing
-- session's settings: json as written, array bounds, float digits, -0.
CREATE TABLE ex.vals (tenant text, id int PRIMARY KEY, j json, a int[], f8 float8, f4 float4,
                      fa float8[], iv interval, m money, b bytea, ts timestamptz);
SELECT bkperf.track_table('ex.vals', 'tenant');
SET extra_float_digits = 0;
SET IntervalStyle = 'sql_standard';
SET bytea_output = 'escape';
SET DateStyle = 'German';
SET TimeZone = 'America/St_Johns';
INSERT INTO ex.vals VALUES
    ('v1', 1, '{"b": 1,  "a": [1, 2], "a": "dup"}', '[0:2]={1,2,3}', 0.30000000000000004, 0.1::float4 * 3,
     '{0.30000000000000004,-0,1e-320}', '1 year 2 mons -3 days 04:05:06.789', 12.34, '\x00ff41',
     '2026-05-06 07:08:09.123456+02'),
    ('v1', 2, '[ ]', '{{1,2},{3,4}}', '-0', 'NaN', '{}', '-1 day', -0.01, '', '-infinity');
RESET ALL;
SET client_min_messages = warning;
BEGIN ISOLATION LEVEL REPEATABLE READ;
SELECT bkperf.create_snapshot('v1') AS s11 \gset
INSERT INTO ex.copies SELECT :s11, 'ex.vals', r FROM ex.rows_text('ex.vals', 'tenant', 'v1') r;
COMMIT;
SET extra_float_digits = -3;
SET DateStyle = 'Postgres, YMD';
UPDATE ex.vals SET j = '{}', a = '{9}', f8 = 1, f4 = 1, fa = '{1}', iv = '0', m = 0, b = 'x', ts = now();
DELETE FROM ex.vals WHERE id = 2;
RESET ALL;
SET client_min_messages = warning;
SELECT status, rows_updated, rows_inserted FROM bkperf.rollback_to_snapshot('v1', :s11);
SELECT ex.diff(:s11, 'ex.vals', 'tenant', 'v1') AS differences;
SELECT id, j, a, f8, fa FROM ex.vals ORDER BY id;
-- jsonb: SQL NULL, the JSON null and strings (logged as their text: a bare
-- null or string would read as SQL NULL or text).
CREATE TABLE ex.jb (tenant text, id int PRIMARY KEY, v jsonb);
SELECT bkperf.track_table('ex.jb', 'tenant');
INSERT INTO ex.jb VALUES ('j1', 1, NULL), ('j1', 2, 'null'), ('j1', 3, '"null"'),
    ('j1', 4, '{"$bkperf": "jsonb null"}'), ('j1', 5, '{"$bkperf": 1}'), ('j1', 6, '[null]');
SELECT record_id->'id' AS id, new_data->'v' AS logged FROM bkperf.backup_transaction_logs
 WHERE table_id = (SELECT table_id FROM bkperf.tracked_tables WHERE relid = 'ex.jb'::regclass)
 ORDER BY log_id;
BEGIN ISOLATION LEVEL REPEATABLE READ;
SELECT bkperf.create_snapshot('j1') AS s12 \gset
INSERT INTO ex.copies SELECT :s12, 'ex.jb', r FROM ex.rows_text('ex.jb', 'tenant', 'j1') r;
COMMIT;
UPDATE ex.jb SET v = '1';
SELECT status, rows_updated FROM bkperf.rollback_to_snapshot('j1', :s12);
SELECT ex.diff(:s12, 'ex.jb', 'tenant', 'j1') AS differences;
SELECT id, v, v IS NULL AS is_sql_null FROM ex.jb ORDER BY id;
-- reg* values name schema objects: logged schema-qualified whatever the
-- writer's search_path, so that they read back under the rollback's.
CREATE SCHEMA exreg;
CREATE TABLE exreg.thing (x int);
CREATE TYPE exreg.mood AS ENUM ('calm');
CREATE FUNCTION exreg.twice(int) RETURNS int LANGUAGE sql AS 'SELECT 2 * $1';
CREATE TABLE ex.regs (tenant text, id int PRIMARY KEY, c regclass, t regtype, p regprocedure, ca regclass[]);
SELECT bkperf.track_table('ex.regs', 'tenant');
SET search_path = exreg, public;
INSERT INTO ex.regs VALUES ('r1', 1, 'thing', 'mood', 'twice(int)', '{thing,pg_class}'),
                           ('r1', 2, 'pg_class', 'int4', 'now()', '{}');
RESET search_path;
SELECT new_data->>'c' AS c, new_data->>'t' AS t, new_data->>'p' AS p, new_data->'ca' AS ca
  FROM bkperf.backup_transaction_logs
 WHERE table_id = (SELECT table_id FROM bkperf.tracked_tables WHERE relid = 'ex.regs'::regclass)
 ORDER BY log_id;
BEGIN ISOLATION LEVEL REPEATABLE READ;
SELECT bkperf.create_snapshot('r1') AS s17 \gset
INSERT INTO ex.copies SELECT :s17, 'ex.regs', r FROM ex.rows_text('ex.regs', 'tenant', 'r1') r;
COMMIT;
SET search_path = exreg, public;
UPDATE ex.regs SET c = 'pg_type', t = 'text', p = 'abs(int)', ca = '{pg_type}';
DELETE FROM ex.regs WHERE id = 2;
RESET search_path;
SELECT status, rows_updated, rows_inserted FROM bkperf.rollback_to_snapshot('r1', :s17);
SELECT ex.diff(:s17, 'ex.regs', 'tenant', 'r1') AS differences;

-- 5. Partitions: only roots are tracked.
CREATE TABLE ex.part (tenant text, id int, PRIMARY KEY (tenant, id)) PARTITION BY LIST (tenant);
CREATE TABLE ex.part_a PARTITION OF ex.part FOR VALUES IN ('pa');
SELECT bkperf.track_table('ex.part_a', 'tenant');
-- A tracked table cannot become a partition of an untracked one.
CREATE TABLE ex.part_b (tenant text, id int, PRIMARY KEY (tenant, id));
SELECT bkperf.track_table('ex.part_b', 'tenant');
ALTER TABLE ex.part ATTACH PARTITION ex.part_b FOR VALUES IN ('pb');
-- Once the root is tracked, part_b is captured as part of it; untracking the
-- partition is refused (it is not tracked on its own) and its capture
-- triggers stay.
SELECT bkperf.untrack_table('ex.part_b');
SELECT bkperf.track_table('ex.part', 'tenant');
ALTER TABLE ex.part ATTACH PARTITION ex.part_b FOR VALUES IN ('pb');
SELECT bkperf.untrack_table('ex.part_b');
SELECT count(*) AS part_b_capture_triggers FROM pg_trigger
 WHERE tgrelid = 'ex.part_b'::regclass AND tgname LIKE 'bkperf_capture_%';
-- A table tracked on its own cannot become a partition of a tracked one
-- either: it would keep its own triggers and identity, and neither log
-- would hold all its changes.
CREATE TABLE ex.part_c (tenant text, id int, PRIMARY KEY (tenant, id));
SELECT bkperf.track_table('ex.part_c', 'tenant');
ALTER TABLE ex.part ATTACH PARTITION ex.part_c FOR VALUES IN ('pc');
SELECT bkperf.untrack_table('ex.part_c');
ALTER TABLE ex.part ATTACH PARTITION ex.part_c FOR VALUES IN ('pc');
SELECT count(*) AS part_c_root_triggers FROM pg_trigger g, bkperf.tracked_tables t
 WHERE g.tgrelid = 'ex.part_c'::regclass AND g.tgname = 'bkperf_capture_insert'
   AND t.relid = 'ex.part'::regclass
   AND split_part(encode(g.tgargs, 'escape'), '\000', 1) = '#' || t.table_id;
-- A partitioned table comes back exactly: rows re-inserted, updated, deleted.
INSERT INTO ex.part VALUES ('pa', 1), ('pa', 2), ('pb', 3);
BEGIN ISOLATION LEVEL REPEATABLE READ;
SELECT bkperf.create_snapshot('pa') AS s16 \gset
INSERT INTO ex.copies SELECT :s16, 'ex.part', r FROM ex.rows_text('ex.part', 'tenant', 'pa') r;
COMMIT;
DELETE FROM ex.part WHERE id = 1;
UPDATE ex.part SET id = 20 WHERE id = 2;
INSERT INTO ex.part VALUES ('pa', 5);
SELECT status, rows_deleted, rows_updated, rows_inserted FROM bkperf.rollback_to_snapshot('pa', :s16);
SELECT ex.diff(:s16, 'ex.part', 'tenant', 'pa') AS differences;
-- Rows that join or leave a tracked table without its capture triggers: a
-- partition attached with rows, detached with rows, dropped with rows.  The
-- table's log starts again (a WARNING), so a rollback to an earlier target
-- leaves it out instead of completing without them; empty partitions
-- change nothing.
CREATE TABLE ex.parts2 (tenant text, id int, v text, PRIMARY KEY (tenant, id)) PARTITION BY LIST (id);
CREATE TABLE ex.parts2_1 PARTITION OF ex.parts2 FOR VALUES IN (1);
SELECT bkperf.track_table('ex.parts2', 'tenant');
INSERT INTO ex.parts2 VALUES ('p2', 1, 'a');
BEGIN ISOLATION LEVEL REPEATABLE READ;
SELECT bkperf.create_snapshot('p2') AS s25 \gset
INSERT INTO ex.copies SELECT :s25, 'ex.parts2', r FROM ex.rows_text('ex.parts2', 'tenant', 'p2') r;
COMMIT;
SELECT tracked_at AS p2_at FROM bkperf.tracked_tables WHERE relid = 'ex.parts2'::regclass \gset
CREATE TABLE ex.parts2_4 PARTITION OF ex.parts2 FOR VALUES IN (4);
DROP TABLE ex.parts2_4;
CREATE TABLE ex.parts2_5 (tenant text, id int, v text, PRIMARY KEY (tenant, id));
ALTER TABLE ex.parts2 ATTACH PARTITION ex.parts2_5 FOR VALUES IN (5);
ALTER TABLE ex.parts2 DETACH PARTITION ex.parts2_5;
SELECT tracked_at = :'p2_at' AS floor_kept FROM bkperf.tracked_tables WHERE relid = 'ex.parts2'::regclass;
UPDATE ex.parts2 SET v = 'changed';
SELECT status FROM bkperf.rollback_to_snapshot('p2', :s25, false, '{ex.parts2}');
SELECT ex.diff(:s25, 'ex.parts2', 'tenant', 'p2') AS differences;
CREATE TABLE ex.parts2_2 (tenant text, id int, v text, PRIMARY KEY (tenant, id));
INSERT INTO ex.parts2_2 VALUES ('p2', 2, 'attached');
ALTER TABLE ex.parts2 ATTACH PARTITION ex.parts2_2 FOR VALUES IN (2);
SELECT status FROM bkperf.rollback_to_snapshot('p2', :s25, false, '{ex.parts2}');
SELECT bkperf.create_snapshot('p2') AS s26 \gset
ALTER TABLE ex.parts2 DETACH PARTITION ex.parts2_2;
SELECT status FROM bkperf.rollback_to_snapshot('p2', :s26, false, '{ex.parts2}');
ALTER TABLE ex.parts2 ATTACH PARTITION ex.parts2_2 FOR VALUES IN (2);
SELECT bkperf.create_snapshot('p2') AS s27 \gset
DROP TABLE ex.parts2_2;   -- with the rows the snapshot saw there
SELECT status FROM bkperf.rollback_to_snapshot('p2', :s27, false, '{ex.parts2}');
SELECT * FROM ex.parts2 ORDER BY id;

-- Table inheritance (not partitioning) is refused: statements on a parent
-- change rows that live in its children, which its key does not cover.
CREATE TABLE ex.inh (tenant text, id int PRIMARY KEY);
CREATE TABLE ex.inh_child () INHERITS (ex.inh);
SELECT bkperf.track_table('ex.inh', 'tenant');
SELECT bkperf.track_table('ex.inh_child', 'tenant');
DROP TABLE ex.inh_child;
SELECT bkperf.track_table('ex.inh', 'tenant');
CREATE TABLE ex.inh_child () INHERITS (ex.inh);
CREATE TABLE ex.inh_other (tenant text, id int PRIMARY KEY);
ALTER TABLE ex.inh_other INHERIT ex.inh;
-- Inheritance set up behind bkperf's back (here: with its DDL trigger off):
-- the rollback refuses the table instead of deleting a child's row.
ALTER EVENT TRIGGER bkperf_capture_sync_partitions DISABLE;
CREATE TABLE ex.inh_child () INHERITS (ex.inh);
ALTER EVENT TRIGGER bkperf_capture_sync_partitions ENABLE;
INSERT INTO ex.inh VALUES ('ih', 1);
SELECT bkperf.create_snapshot('ih') AS s24 \gset
INSERT INTO ex.inh_child VALUES ('ih', 2);
INSERT INTO ex.inh VALUES ('ih', 2);
SELECT status FROM bkperf.rollback_to_snapshot('ih', :s24, false, '{ex.inh}');
SELECT tableoid::regclass, * FROM ex.inh ORDER BY id, 1;
DROP TABLE ex.inh_child;
SELECT status FROM bkperf.rollback_to_snapshot('ih', :s24, false, '{ex.inh}');
SELECT * FROM ex.inh ORDER BY id;

-- A capture trigger made by 1.0 (the table's OID as first argument) would
-- log changes without the table's identity: refused, never silently lost.
CREATE TABLE ex.old_style (tenant text, id int PRIMARY KEY);
CREATE TRIGGER bkperf_capture_insert AFTER INSERT ON ex.old_style REFERENCING NEW TABLE AS bkperf_new
    FOR EACH STATEMENT EXECUTE FUNCTION bkperf.capture('16384', 'tenant', 'full', 'id');
INSERT INTO ex.old_style VALUES ('o1', 1);
DROP TABLE ex.old_style;

-- 7. A hostile operator in public for an enum tenant and key is never used.
CREATE TYPE ex.mood AS ENUM ('calm', 'angry');
CREATE TABLE ex.moods (tenant ex.mood, id ex.mood, v int, PRIMARY KEY (id));
SELECT bkperf.track_table('ex.moods', 'tenant');
INSERT INTO ex.moods VALUES ('calm', 'calm', 1);
CREATE TABLE ex.hijacked (who text);
GRANT INSERT ON ex.hijacked TO PUBLIC;
CREATE FUNCTION public.evil_eq(ex.mood, ex.mood) RETURNS boolean LANGUAGE sql AS
    $$ INSERT INTO ex.hijacked VALUES (current_user) RETURNING true $$;
CREATE OPERATOR public.= (LEFTARG = ex.mood, RIGHTARG = ex.mood, FUNCTION = public.evil_eq);
BEGIN ISOLATION LEVEL REPEATABLE READ;
SELECT bkperf.create_snapshot('calm') AS s7 \gset
COMMIT;
UPDATE ex.moods SET v = 2;
INSERT INTO ex.moods VALUES ('calm', 'angry', 3);
SET search_path = public, pg_catalog;
SELECT status, rows_deleted, rows_updated FROM bkperf.rollback_to_snapshot('calm', :s7);
RESET search_path;
SELECT count(*) AS hijacked FROM ex.hijacked;
SELECT * FROM ex.moods;
DROP OPERATOR public.= (ex.mood, ex.mood);
DROP FUNCTION public.evil_eq(ex.mood, ex.mood);

-- 8 and 9. Another owner's tracked table with forged rows of our tenant and
-- a trigger that would act with the rights of whoever writes it.
SET ROLE ex_other;
CREATE TABLE ex.trap (tenant text, id int PRIMARY KEY);
SELECT bkperf.track_table('ex.trap', 'tenant');
CREATE FUNCTION ex.trap_fn() RETURNS trigger LANGUAGE plpgsql AS
    $$ BEGIN INSERT INTO ex.hijacked VALUES (current_user); RETURN NULL; END $$;
CREATE TRIGGER trap AFTER INSERT OR UPDATE OR DELETE ON ex.trap FOR EACH ROW EXECUTE FUNCTION ex.trap_fn();
-- A rollback fires only triggers that are ENABLE ALWAYS (it applies in
-- replica mode): the attacker makes its trigger fire there too.
ALTER TABLE ex.trap ENABLE ALWAYS TRIGGER trap;
RESET ROLE;
CREATE ROLE ex_owner LOGIN;
GRANT USAGE, CREATE ON SCHEMA ex TO ex_owner;
GRANT USAGE ON SCHEMA bkperf TO ex_owner;
GRANT EXECUTE ON FUNCTION bkperf.track_table(regclass, name, text), bkperf.create_snapshot(text, text, text),
    bkperf.rollback_to_snapshot(text, bigint, boolean), bkperf.rollback_to_snapshot(text, bigint, boolean, regclass[]),
    bkperf.snapshot_origin() TO ex_owner;
GRANT SELECT ON bkperf.tracked_tables, bkperf.backup_transaction_logs, bkperf.tracked_column_changes,
    bkperf.log_retention_state, bkperf.backup_pitr_snapshots, bkperf.cluster_lineage,
    bkperf.cluster_history TO ex_owner;
GRANT SELECT, INSERT, UPDATE ON bkperf.backup_pitr_snapshots, bkperf.backup_pitr_rollback_history,
    bkperf.backup_fk_constraints_cache TO ex_owner;
GRANT USAGE ON ALL SEQUENCES IN SCHEMA bkperf TO ex_owner;
SET ROLE ex_owner;
CREATE TABLE ex.mine (tenant text, id int PRIMARY KEY, v int);
SELECT bkperf.track_table('ex.mine', 'tenant');
INSERT INTO ex.mine VALUES ('victim', 1, 1);
SELECT bkperf.create_snapshot('victim') AS s8 \gset
UPDATE ex.mine SET v = 2;
RESET ROLE;
SET ROLE ex_other;
INSERT INTO ex.trap VALUES ('victim', 1);    -- forged rows of tenant "victim"
RESET ROLE;
DELETE FROM ex.hijacked;
-- The owner's rollback restores its own table and reports the other one.
SET ROLE ex_owner;
SELECT status, tables, rows_updated, error FROM bkperf.rollback_to_snapshot('victim', :s8);
SELECT * FROM ex.mine;
SELECT status, skipped_tables FROM bkperf.rollback_to_snapshot('victim', :s8, false, '{ex.mine}');
-- Explicit lists: only tracked tables the caller owns.
SELECT status FROM bkperf.rollback_to_snapshot('victim', :s8, false, '{ex.trap}');
SELECT status FROM bkperf.rollback_to_snapshot('victim', :s8, false, '{ex.hijacked}');
SELECT status FROM bkperf.rollback_to_snapshot('victim', :s8, false, NULL);
SELECT status FROM bkperf.rollback_to_snapshot('victim', :s8, false, '{NULL}');
RESET ROLE;
SELECT skipped_tables FROM bkperf.backup_pitr_rollback_history
 WHERE tenant_id = 'victim' ORDER BY rollback_id LIMIT 1;
-- A superuser's rollback writes the other owner's table as that owner.
SELECT status, tables, rows_deleted FROM bkperf.rollback_to_snapshot('victim', :s8);
SELECT DISTINCT who FROM ex.hijacked;
SELECT count(*) AS trap_rows FROM ex.trap;
-- A deferrable trigger of another owner would fire at commit as the caller: refused.
SET ROLE ex_other;
INSERT INTO ex.trap VALUES ('victim', 2);
CREATE CONSTRAINT TRIGGER trap_late AFTER INSERT OR DELETE ON ex.trap DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION ex.trap_fn();
ALTER TABLE ex.trap ENABLE ALWAYS TRIGGER trap_late;
RESET ROLE;
SELECT status, error FROM bkperf.rollback_to_snapshot('victim', :s8);
SET ROLE ex_other;
DROP TRIGGER trap_late ON ex.trap;
RESET ROLE;

-- Foreign keys.  The apply fires no per-row foreign-key trigger; keys that
-- the restored state keeps by construction (both tables in scope, tenant
-- mapped to tenant, identity equality) are not checked, every other key is
-- checked set-based, and a dangling reference is refused.
CREATE TABLE ex.par (tenant text, id int, u int UNIQUE, PRIMARY KEY (tenant, id));
CREATE TABLE ex.kid (tenant text, id int, par_id int, PRIMARY KEY (tenant, id),
                     FOREIGN KEY (tenant, par_id) REFERENCES ex.par);
CREATE TABLE ex.loose (tenant text, id int PRIMARY KEY, par_u int REFERENCES ex.par (u));
CREATE TABLE ex.outside (tenant text, id int, PRIMARY KEY (tenant, id));
CREATE TABLE ex.to_out (tenant text, id int PRIMARY KEY, out_id int,
                        FOREIGN KEY (tenant, out_id) REFERENCES ex.outside);
SELECT bkperf.track_table('ex.par', 'tenant'), bkperf.track_table('ex.kid', 'tenant'),
       bkperf.track_table('ex.loose', 'tenant'), bkperf.track_table('ex.to_out', 'tenant');
INSERT INTO ex.par VALUES ('f1', 1, 10), ('f1', 2, 20);
INSERT INTO ex.kid VALUES ('f1', 1, 1);
INSERT INTO ex.outside VALUES ('f1', 1);
INSERT INTO ex.to_out VALUES ('f1', 1, 1);
BEGIN ISOLATION LEVEL REPEATABLE READ;
SELECT bkperf.create_snapshot('f1') AS s13 \gset
INSERT INTO ex.copies SELECT :s13, 'ex.par', r FROM ex.rows_text('ex.par', 'tenant', 'f1') r;
INSERT INTO ex.copies SELECT :s13, 'ex.kid', r FROM ex.rows_text('ex.kid', 'tenant', 'f1') r;
COMMIT;
-- Covered: a parent and its child, both changed, come back together.
INSERT INTO ex.par VALUES ('f1', 3, 30);
UPDATE ex.kid SET par_id = 3;
DELETE FROM ex.par WHERE id = 1;
SELECT status, rows_deleted, rows_updated, rows_inserted
  FROM bkperf.rollback_to_snapshot('f1', :s13, false, '{ex.par,ex.kid}');
SELECT ex.diff(:s13, 'ex.par', 'tenant', 'f1') + ex.diff(:s13, 'ex.kid', 'tenant', 'f1') AS differences;
-- A key without the tenant (another tenant's row references a parent the
-- rollback would delete): checked and refused.
INSERT INTO ex.par VALUES ('f1', 4, 40);
INSERT INTO ex.loose VALUES ('f2', 1, 40);
SELECT status, regexp_replace(error, 'entry \d+', 'entry N') AS error
  FROM bkperf.rollback_to_snapshot('f1', :s13, false, '{ex.par}');
DELETE FROM ex.loose;
DELETE FROM ex.par WHERE id = 4;
-- A key to an untracked table: the restored row's parent is gone.
DELETE FROM ex.to_out;
DELETE FROM ex.outside;
SELECT status, error FROM bkperf.rollback_to_snapshot('f1', :s13, false, '{ex.to_out}');
INSERT INTO ex.outside VALUES ('f1', 1);
SELECT status, rows_inserted FROM bkperf.rollback_to_snapshot('f1', :s13, false, '{ex.to_out}');
-- Tenants that are equal but not identical (numeric 1 and 1.0): not covered.
CREATE TABLE ex.npar (tenant numeric, id int, PRIMARY KEY (tenant, id));
CREATE TABLE ex.nkid (tenant numeric, id int PRIMARY KEY, par_id int,
                      FOREIGN KEY (tenant, par_id) REFERENCES ex.npar);
SELECT bkperf.track_table('ex.npar', 'tenant'), bkperf.track_table('ex.nkid', 'tenant');
BEGIN ISOLATION LEVEL REPEATABLE READ;
SELECT bkperf.create_snapshot('41') AS s14 \gset
COMMIT;
INSERT INTO ex.npar VALUES (41, 1);
INSERT INTO ex.nkid VALUES (41.0, 1, 1);    -- tenant "41.0" references tenant "41"'s row
SELECT status, error FROM bkperf.rollback_to_snapshot('41', :s14, false, '{ex.npar,ex.nkid}');
-- The table's own triggers do not fire during the apply (replica mode): a
-- trigger stamping the time would make the restored row differ.
CREATE TABLE ex.stamped (tenant text, id int PRIMARY KEY, v int, touched timestamptz);
CREATE FUNCTION ex.stamp() RETURNS trigger LANGUAGE plpgsql AS
    $$ BEGIN NEW.touched := clock_timestamp(); RETURN NEW; END $$;
CREATE TRIGGER stamp BEFORE INSERT OR UPDATE ON ex.stamped FOR EACH ROW EXECUTE FUNCTION ex.stamp();
SELECT bkperf.track_table('ex.stamped', 'tenant');
INSERT INTO ex.stamped VALUES ('st', 1, 1);
BEGIN ISOLATION LEVEL REPEATABLE READ;
SELECT bkperf.create_snapshot('st') AS s15 \gset
INSERT INTO ex.copies SELECT :s15, 'ex.stamped', r FROM ex.rows_text('ex.stamped', 'tenant', 'st') r;
COMMIT;
UPDATE ex.stamped SET v = 2;
DELETE FROM ex.stamped;
SELECT status FROM bkperf.rollback_to_snapshot('st', :s15);
SELECT ex.diff(:s15, 'ex.stamped', 'tenant', 'st') AS differences;

-- A capture trigger disabled by hand would lose the table's changes and the
-- rollback's own: capture is off (WARNING; the table's log covers no target
-- while it is off) and the rollback refuses the table until it is back on.
SELECT tracked_at AS stamped_at FROM bkperf.tracked_tables WHERE relid = 'ex.stamped'::regclass \gset
ALTER TABLE ex.stamped DISABLE TRIGGER bkperf_capture_update;
SELECT tracked_at FROM bkperf.tracked_tables WHERE relid = 'ex.stamped'::regclass;
UPDATE ex.stamped SET v = 3;
ALTER TABLE ex.stamped ENABLE TRIGGER bkperf_capture_update;   -- enabled, but not ALWAYS
UPDATE ex.stamped SET v = 4;
SELECT status FROM bkperf.rollback_to_snapshot('st', :s15);
SELECT skipped_tables->'ex.stamped' AS why FROM bkperf.backup_pitr_rollback_history
 ORDER BY rollback_id DESC LIMIT 1;
-- Tracking it again says that its log starts again (the change to 3 was
-- never logged), so the earlier snapshot no longer covers it.
SELECT bkperf.track_table('ex.stamped', 'tenant');
SELECT tracked_at > :'stamped_at' AND tracked_at < 'infinity' AS log_starts_again
  FROM bkperf.tracked_tables WHERE relid = 'ex.stamped'::regclass;
SELECT status FROM bkperf.rollback_to_snapshot('st', :s15, false, '{ex.stamped}');
-- Switched off and on again by hand (ENABLE ALWAYS): the log starts again
-- when capture is back, so a snapshot taken while it was off is refused.
SELECT bkperf.create_snapshot('st') AS s15b \gset
ALTER TABLE ex.stamped DISABLE TRIGGER bkperf_capture_update;
UPDATE ex.stamped SET v = 40;
SELECT bkperf.create_snapshot('st') AS s15c \gset
UPDATE ex.stamped SET v = 41;
ALTER TABLE ex.stamped ENABLE ALWAYS TRIGGER bkperf_capture_update;
SELECT status FROM bkperf.rollback_to_snapshot('st', :s15b, false, '{ex.stamped}');
SELECT status FROM bkperf.rollback_to_snapshot('st', :s15c, false, '{ex.stamped}');
-- A snapshot after it is exact again; re-tracking without a gap keeps the floor.
BEGIN ISOLATION LEVEL REPEATABLE READ;
SELECT bkperf.create_snapshot('st') AS s16 \gset
INSERT INTO ex.copies SELECT :s16, 'ex.stamped', r FROM ex.rows_text('ex.stamped', 'tenant', 'st') r;
COMMIT;
SELECT tracked_at AS stamped_at FROM bkperf.tracked_tables WHERE relid = 'ex.stamped'::regclass \gset
SELECT bkperf.track_table('ex.stamped', 'tenant', 'undo');
SELECT tracked_at = :'stamped_at' AS floor_kept FROM bkperf.tracked_tables WHERE relid = 'ex.stamped'::regclass;
UPDATE ex.stamped SET v = 5;
INSERT INTO ex.stamped VALUES ('st', 2, 2);
SELECT status FROM bkperf.rollback_to_snapshot('st', :s16);
SELECT ex.diff(:s16, 'ex.stamped', 'tenant', 'st') AS differences;

-- A session with row_security = off (a DBA's, or the rollback's apply) is
-- not a restore: DDL tracking goes on.  Only with check_function_bodies off
-- too, as pg_dump's scripts and pg_restore set both, is it one.
SET row_security = off;
SELECT bkperf.restoring() AS restoring_rls_off;
ALTER TABLE ex.stamped RENAME COLUMN v TO w;
SELECT old_name, new_name FROM bkperf.tracked_column_changes
 WHERE table_id = (SELECT table_id FROM bkperf.tracked_tables WHERE relid = 'ex.stamped'::regclass);
CREATE TABLE ex.parted (tenant text, id int, v int, PRIMARY KEY (tenant, id)) PARTITION BY LIST (tenant);
CREATE TABLE ex.parted_a PARTITION OF ex.parted FOR VALUES IN ('pa');
SELECT bkperf.track_table('ex.parted', 'tenant');
CREATE TABLE ex.parted_b PARTITION OF ex.parted FOR VALUES IN ('pb');
SELECT count(*) AS capture_triggers_of_new_partition FROM pg_trigger
 WHERE tgrelid = 'ex.parted_b'::regclass AND tgname LIKE 'bkperf\_capture\_%' AND tgenabled = 'A';
SET check_function_bodies = off;
SELECT bkperf.restoring() AS restoring_as_pg_restore;
RESET check_function_bodies;
RESET row_security;

-- A trigger enabled ALWAYS fires during the apply: one that leaves rows
-- alone is fine; one that changes, skips or keeps a row the rollback
-- writes fails the rollback (27000) instead of completing inexactly.
CREATE TABLE ex.stampy (tenant text, id int PRIMARY KEY, v int, stamp int DEFAULT 0);
CREATE FUNCTION ex.stampy_check() RETURNS trigger LANGUAGE plpgsql AS
    $$BEGIN IF NEW.v < 0 THEN RAISE 'negative'; END IF; RETURN NEW; END$$;
CREATE TRIGGER stampy_check BEFORE INSERT OR UPDATE ON ex.stampy FOR EACH ROW EXECUTE FUNCTION ex.stampy_check();
ALTER TABLE ex.stampy ENABLE ALWAYS TRIGGER stampy_check;
SELECT bkperf.track_table('ex.stampy', 'tenant');
INSERT INTO ex.stampy VALUES ('sy', 1, 1);
BEGIN ISOLATION LEVEL REPEATABLE READ;
SELECT bkperf.create_snapshot('sy') AS s23 \gset
INSERT INTO ex.copies SELECT :s23, 'ex.stampy', r FROM ex.rows_text('ex.stampy', 'tenant', 'sy') r;
COMMIT;
UPDATE ex.stampy SET v = 2;
INSERT INTO ex.stampy VALUES ('sy', 2, 5);
SELECT status FROM bkperf.rollback_to_snapshot('sy', :s23);
SELECT ex.diff(:s23, 'ex.stampy', 'tenant', 'sy') AS differences;
CREATE FUNCTION ex.stampy_bump() RETURNS trigger LANGUAGE plpgsql AS
    $$BEGIN NEW.stamp := NEW.stamp + 1; RETURN NEW; END$$;
CREATE TRIGGER stampy_bump BEFORE UPDATE ON ex.stampy FOR EACH ROW EXECUTE FUNCTION ex.stampy_bump();
ALTER TABLE ex.stampy ENABLE ALWAYS TRIGGER stampy_bump;
UPDATE ex.stampy SET v = 3;
SELECT status FROM bkperf.rollback_to_snapshot('sy', :s23);
SELECT error_sqlstate FROM bkperf.backup_pitr_rollback_history ORDER BY rollback_id DESC LIMIT 1;
ALTER TABLE ex.stampy ENABLE TRIGGER stampy_bump;   -- not in replica mode: the rollback is exact
CREATE FUNCTION ex.stampy_keep() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN RETURN NULL; END$$;
CREATE TRIGGER stampy_keep BEFORE DELETE ON ex.stampy FOR EACH ROW EXECUTE FUNCTION ex.stampy_keep();
ALTER TABLE ex.stampy ENABLE ALWAYS TRIGGER stampy_keep;
INSERT INTO ex.stampy VALUES ('sy', 3, 7);
SELECT status FROM bkperf.rollback_to_snapshot('sy', :s23);
SELECT error_sqlstate FROM bkperf.backup_pitr_rollback_history ORDER BY rollback_id DESC LIMIT 1;
ALTER TABLE ex.stampy DISABLE TRIGGER stampy_keep;
-- One that writes another tracked table (here: a tenant's counter) would
-- leave that table unlike the target: refused too.
CREATE TABLE ex.stampy_count (tenant text PRIMARY KEY, n int);
SELECT bkperf.track_table('ex.stampy_count', 'tenant');
INSERT INTO ex.stampy_count VALUES ('sy', 0);
CREATE FUNCTION ex.stampy_counter() RETURNS trigger LANGUAGE plpgsql AS
    $$BEGIN UPDATE ex.stampy_count SET n = n + 1 WHERE tenant = NEW.tenant; RETURN NULL; END$$;
CREATE TRIGGER stampy_counter AFTER INSERT OR UPDATE ON ex.stampy FOR EACH ROW EXECUTE FUNCTION ex.stampy_counter();
ALTER TABLE ex.stampy ENABLE ALWAYS TRIGGER stampy_counter;
SELECT status FROM bkperf.rollback_to_snapshot('sy', :s23, false, '{ex.stampy}');
SELECT error_sqlstate, error_message FROM bkperf.backup_pitr_rollback_history ORDER BY rollback_id DESC LIMIT 1;
ALTER TABLE ex.stampy DISABLE TRIGGER stampy_counter;
SELECT status FROM bkperf.rollback_to_snapshot('sy', :s23, false, '{ex.stampy}');
SELECT ex.diff(:s23, 'ex.stampy', 'tenant', 'sy') AS differences;
-- A deferred ENABLE ALWAYS constraint trigger would fire at commit, after
-- those checks: the rollback fires it before them.  One that writes a
-- tracked table is refused (it used to complete, and stamp the rows at
-- commit); one that only validates lets the rollback complete exactly.
CREATE FUNCTION ex.stampy_late_stamp() RETURNS trigger LANGUAGE plpgsql AS
    $$BEGIN UPDATE ex.stampy SET stamp = stamp + 10 WHERE id = NEW.id; RETURN NULL; END$$;
CREATE CONSTRAINT TRIGGER stampy_late_stamp AFTER UPDATE OF v ON ex.stampy
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION ex.stampy_late_stamp();
ALTER TABLE ex.stampy ENABLE ALWAYS TRIGGER stampy_late_stamp;
UPDATE ex.stampy SET v = 4 WHERE id = 1;
SELECT status FROM bkperf.rollback_to_snapshot('sy', :s23, false, '{ex.stampy}');
SELECT error_sqlstate FROM bkperf.backup_pitr_rollback_history ORDER BY rollback_id DESC LIMIT 1;
SELECT id, v, stamp FROM ex.stampy ORDER BY id;
DROP TRIGGER stampy_late_stamp ON ex.stampy;
CREATE FUNCTION ex.stampy_late_check() RETURNS trigger LANGUAGE plpgsql AS
    $$BEGIN IF NEW.v > 100 THEN RAISE 'too big'; END IF; RETURN NULL; END$$;
CREATE CONSTRAINT TRIGGER stampy_late_check AFTER UPDATE ON ex.stampy
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION ex.stampy_late_check();
ALTER TABLE ex.stampy ENABLE ALWAYS TRIGGER stampy_late_check;
SELECT status FROM bkperf.rollback_to_snapshot('sy', :s23, false, '{ex.stampy}');
SELECT ex.diff(:s23, 'ex.stampy', 'tenant', 'sy') AS differences;
DROP TRIGGER stampy_late_check ON ex.stampy;

-- Unique and exclusion constraints.  The apply deletes before it upserts,
-- so a value that a row written after the target took is free again for
-- the row that held it at the target.
CREATE TABLE ex.mail (tenant text, id int PRIMARY KEY, email text UNIQUE);
SELECT bkperf.track_table('ex.mail', 'tenant');
INSERT INTO ex.mail VALUES ('m1', 1, 'x');
BEGIN ISOLATION LEVEL REPEATABLE READ;
SELECT bkperf.create_snapshot('m1') AS s18 \gset
INSERT INTO ex.copies SELECT :s18, 'ex.mail', r FROM ex.rows_text('ex.mail', 'tenant', 'm1') r;
COMMIT;
UPDATE ex.mail SET email = 'y' WHERE id = 1;
INSERT INTO ex.mail VALUES ('m1', 2, 'x');
SELECT status, rows_deleted, rows_updated FROM bkperf.rollback_to_snapshot('m1', :s18);
SELECT ex.diff(:s18, 'ex.mail', 'tenant', 'm1') AS differences;
-- A DEFERRABLE constraint is enforced by a trigger, which the apply's
-- replica mode does not fire: the rollback checks it itself.  Restoring a
-- value another tenant took since fails (nothing changed); NULLs conflict
-- only under NULLS NOT DISTINCT.
CREATE TABLE ex.dmail (tenant text, id int PRIMARY KEY, email text, alias text,
                       CONSTRAINT dmail_email UNIQUE (email) DEFERRABLE,
                       CONSTRAINT dmail_alias UNIQUE NULLS NOT DISTINCT (alias) DEFERRABLE INITIALLY DEFERRED);
SELECT bkperf.track_table('ex.dmail', 'tenant');
INSERT INTO ex.dmail VALUES ('m2', 1, 'x', 'a'), ('m2', 2, NULL, 'b');
BEGIN ISOLATION LEVEL REPEATABLE READ;
SELECT bkperf.create_snapshot('m2') AS s19 \gset
INSERT INTO ex.copies SELECT :s19, 'ex.dmail', r FROM ex.rows_text('ex.dmail', 'tenant', 'm2') r;
COMMIT;
UPDATE ex.dmail SET email = 'y' WHERE id = 1;
UPDATE ex.dmail SET email = 'z' WHERE id = 2;
INSERT INTO ex.dmail VALUES ('m3', 3, 'x', 'c'), ('m3', 4, NULL, 'd');
SELECT status FROM bkperf.rollback_to_snapshot('m2', :s19);
SELECT error_sqlstate FROM bkperf.backup_pitr_rollback_history ORDER BY rollback_id DESC LIMIT 1;
SELECT * FROM ex.dmail ORDER BY id;
DELETE FROM ex.dmail WHERE id = 3;
SELECT status FROM bkperf.rollback_to_snapshot('m2', :s19);
SELECT ex.diff(:s19, 'ex.dmail', 'tenant', 'm2') AS differences;
UPDATE ex.dmail SET alias = NULL WHERE id = 1;
SELECT bkperf.create_snapshot('m2') AS s20 \gset
UPDATE ex.dmail SET alias = 'e' WHERE id = 1;
INSERT INTO ex.dmail VALUES ('m3', 5, NULL, NULL);
SELECT status FROM bkperf.rollback_to_snapshot('m2', :s20);
SELECT error_sqlstate FROM bkperf.backup_pitr_rollback_history ORDER BY rollback_id DESC LIMIT 1;
SELECT count(*) AS null_aliases FROM ex.dmail WHERE alias IS NULL;
CREATE TABLE ex.room (tenant text, id int PRIMARY KEY, room int,
                      CONSTRAINT room_once EXCLUDE USING btree (room WITH =) DEFERRABLE);
SELECT bkperf.track_table('ex.room', 'tenant');
INSERT INTO ex.room VALUES ('r2', 1, 10);
SELECT bkperf.create_snapshot('r2') AS s21 \gset
UPDATE ex.room SET room = 11;
INSERT INTO ex.room VALUES ('r3', 2, 10);
SELECT status FROM bkperf.rollback_to_snapshot('r2', :s21);
SELECT error_sqlstate FROM bkperf.backup_pitr_rollback_history ORDER BY rollback_id DESC LIMIT 1;
SELECT * FROM ex.room ORDER BY id;
-- One over an expression cannot be checked column by column: refused.
CREATE TABLE ex.room2 (tenant text, id int PRIMARY KEY, room int,
                       CONSTRAINT room2_once EXCLUDE USING btree ((room + 0) WITH =) DEFERRABLE);
SELECT bkperf.track_table('ex.room2', 'tenant');
INSERT INTO ex.room2 VALUES ('r4', 1, 10);
SELECT bkperf.create_snapshot('r4') AS s22 \gset
UPDATE ex.room2 SET room = 11;
SELECT status FROM bkperf.rollback_to_snapshot('r4', :s22, false, '{ex.room2}');
SELECT error_sqlstate FROM bkperf.backup_pitr_rollback_history ORDER BY rollback_id DESC LIMIT 1;

-- Per-table floor: tracking a table after a snapshot does not make the
-- snapshot unusable for the others; the new table is reported.
BEGIN ISOLATION LEVEL REPEATABLE READ;
SELECT bkperf.create_snapshot('d1') AS s9 \gset
COMMIT;
CREATE TABLE ex.late (tenant text, id int PRIMARY KEY);
INSERT INTO ex.late VALUES ('d1', 1);
SELECT bkperf.track_table('ex.late', 'tenant');
UPDATE ex.doc SET n = n + 100 WHERE tenant = 'd1';
SELECT status, rows_updated, skipped_tables FROM bkperf.rollback_to_snapshot('d1', :s9, false, '{ex.doc,ex.late}');
SELECT status, rows_updated FROM bkperf.rollback_to_snapshot('d1', :s9, false, '{ex.late}');

RESET client_min_messages;
DROP SCHEMA ex CASCADE;
DROP SCHEMA ex2 CASCADE;
DROP SCHEMA exreg CASCADE;
DROP OWNED BY ex_other, ex_owner;
DROP ROLE ex_other;
DROP ROLE ex_owner;
