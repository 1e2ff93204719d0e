-- Change capture: track_table / untrack_table and the C capture triggers.
-- Tables are named cap_*; log rows are shown from a mark (\gset) so that
-- other features' rows never appear, and log_id / changed_at / txid are
-- shown as relations (same statement, this transaction), never as values.
SET client_min_messages = warning;
CREATE ROLE cap_owner;
CREATE ROLE cap_app;
CREATE ROLE cap_other;
GRANT USAGE, CREATE ON SCHEMA public TO cap_owner;
GRANT EXECUTE ON FUNCTION bkperf.track_table(regclass, name, text) TO cap_owner, cap_other;
GRANT EXECUTE ON FUNCTION bkperf.untrack_table(regclass) TO cap_owner, cap_other;
RESET client_min_messages;

-- The log rows written since the mark, in log order.
CREATE FUNCTION cap_log(mark bigint)
RETURNS TABLE (n bigint, tenant text, tbl text, op text, record_id jsonb,
               old_data jsonb, new_data jsonb)
LANGUAGE sql AS $$
    SELECT row_number() OVER (ORDER BY log_id), tenant_id, table_name, operation,
           record_id, old_data, new_data
      FROM bkperf.backup_transaction_logs WHERE log_id > mark ORDER BY log_id
$$;
CREATE FUNCTION cap_mark() RETURNS bigint LANGUAGE sql AS
$$ SELECT coalesce(max(log_id), 0) FROM bkperf.backup_transaction_logs $$;

SET ROLE cap_owner;
CREATE TABLE cap_items (id bigint PRIMARY KEY, tenant int, payload text, qty int);
GRANT SELECT, INSERT, UPDATE, DELETE ON cap_items TO cap_app;
SELECT bkperf.track_table('cap_items', 'tenant');
RESET ROLE;

SELECT relid, table_name, tenant_column, key_columns, capture_mode, tracked_by
  FROM bkperf.tracked_tables WHERE table_name LIKE 'public.cap%';
SELECT tgname, tgtype, tgoldtable, tgnewtable, tgnargs
  FROM pg_trigger WHERE tgrelid = 'cap_items'::regclass ORDER BY tgname;

-- An application role with DML privileges only writes the log.
SELECT cap_mark() AS mark \gset
SET ROLE cap_app;
BEGIN;
INSERT INTO cap_items VALUES (1, 10, 'one', 1), (2, 10, 'two', 2), (3, 20, NULL, 3);
UPDATE cap_items SET qty = qty * 10 WHERE id IN (1, 3);
UPDATE cap_items SET id = id + 100 WHERE id = 2;       -- key change
UPDATE cap_items SET tenant = 30 WHERE id = 3;         -- tenant change
DELETE FROM cap_items WHERE id = 1;
UPDATE cap_items SET qty = qty WHERE false;            -- no rows: no log rows
COMMIT;
RESET ROLE;
SELECT * FROM cap_log(:mark);
-- Every row of the transaction: one txid (this transaction's), one changed_at,
-- the writing role, and log_id increasing.
SELECT count(DISTINCT txid) AS txids, count(DISTINCT changed_at) AS times,
       min(changed_by) AS by, max(changed_by) = min(changed_by) AS one_role
  FROM bkperf.backup_transaction_logs WHERE log_id > :mark;

-- The application role cannot read or change the log.
SET ROLE cap_app;
SELECT count(*) FROM bkperf.backup_transaction_logs;
DELETE FROM bkperf.backup_transaction_logs;
UPDATE bkperf.backup_transaction_logs SET tenant_id = 'x';
TRUNCATE bkperf.backup_transaction_logs;
RESET ROLE;

-- txid is the top-level transaction, changed_at its start, also inside a
-- savepoint; a rolled back savepoint and an aborted transaction leave nothing.
SELECT cap_mark() AS mark \gset
BEGIN;
INSERT INTO cap_items VALUES (50, 10, 'kept', 1);
SAVEPOINT s1;
INSERT INTO cap_items VALUES (51, 10, 'kept in released savepoint', 1);
RELEASE SAVEPOINT s1;
SAVEPOINT s2;
INSERT INTO cap_items VALUES (52, 10, 'rolled back', 1);
UPDATE cap_items SET qty = -1 WHERE id = 50;
ROLLBACK TO SAVEPOINT s2;
SELECT count(*) AS rows, bool_and(txid = pg_current_xact_id()) AS top_xid,
       bool_and(changed_at = now()) AS xact_start
  FROM bkperf.backup_transaction_logs WHERE log_id > :mark;
COMMIT;
BEGIN;
INSERT INTO cap_items VALUES (60, 10, 'aborted', 1);
DELETE FROM cap_items WHERE id = 50;
ROLLBACK;
SELECT op, record_id FROM cap_log(:mark);

-- The images rebuild the rows: jsonb_populate_record(NULL::t, image) = row.
SELECT count(*) AS images,
       count(*) FILTER (WHERE to_jsonb(jsonb_populate_record(NULL::cap_items, coalesce(new_data, old_data)))
                              = coalesce(new_data, old_data)) AS rebuilt
  FROM bkperf.backup_transaction_logs WHERE table_name = 'public.cap_items';

-- Images decode to the row exactly for every kind of column type (compared
-- as text; 32_capture_values covers every type family and session settings).
CREATE TYPE cap_pair AS (a int, b text);
CREATE DOMAIN cap_pos AS int CHECK (VALUE > 0);
CREATE TABLE cap_types (id int PRIMARY KEY, tenant cap_pos, b bool, i2 int2, i8 int8,
                        f4 float4, f8 float8, n numeric, d date, ts timestamp,
                        tstz timestamptz, t text, vc varchar(5), c char(4), u uuid,
                        by bytea, iv interval, j json, jb jsonb, arr int[], tarr text[],
                        pair cap_pair, pairs cap_pair[], dom cap_pos, nul text);
SELECT bkperf.track_table('cap_types', 'tenant');
INSERT INTO cap_types VALUES
    (1, 1, true, -32768, 9223372036854775807, 1.5, 1e300, 123.4500, '2024-02-29',
     '2024-02-29 23:59:59.123456', '2024-02-29 23:59:59+05:30', E'quote " back \\ tab \t é',
     'abc', 'ab', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '\xdeadbeef', '1 day 02:00',
     '{"k": 1, "k": 2, "n": [1, {"x": null}]}', '{"b": 1, "a": [true, null]}',
     '{{1,2},{3,4}}', '{"x","y z",NULL}', ROW(1, 'one'), ARRAY[ROW(2, 'two')::cap_pair], 7, NULL),
    (2, 2, false, 0, -1, 'NaN', '-Infinity', 'NaN', 'infinity', '-infinity', 'infinity', '',
     '', '', NULL, '\x', '-1 year', '"scalar json"', '42', '{}', '{}', ROW(NULL, NULL), '{}',
     1, NULL),
    (3, 3, NULL, NULL, NULL, '-0', 1e-300, '-0.000', NULL, NULL, NULL, NULL, NULL, NULL, NULL,
     NULL, NULL, 'null', 'null', NULL, NULL, NULL, NULL, NULL, NULL);
UPDATE cap_types SET n = n * 2, j = '[1, "two"]' WHERE id IN (1, 3);
SELECT l.operation, l.record_id,
       bkperf.image_record(l.new_data, NULL::cap_types)::text = r::text AS new_rebuilds,
       l.old_data IS NULL OR l.old_data = (SELECT p.new_data FROM bkperf.backup_transaction_logs p
                                            WHERE p.table_name = l.table_name AND p.record_id = l.record_id
                                              AND p.log_id < l.log_id
                                            ORDER BY p.log_id DESC LIMIT 1) AS old_is_previous_new
  FROM bkperf.backup_transaction_logs l
  LEFT JOIN cap_types r ON r.id = (l.record_id->>'id')::int
 WHERE l.table_name = 'public.cap_types'
   AND (l.operation = 'UPDATE' OR l.record_id->>'id' = '2')
 ORDER BY l.log_id;
SELECT new_data->'f4' AS nan_float, new_data->'n' AS nan_numeric, new_data->'ts' AS inf_ts,
       new_data->'j' AS scalar_json, new_data->'pair' AS null_composite
  FROM bkperf.backup_transaction_logs
 WHERE table_name = 'public.cap_types' AND record_id = '{"id": 2}';

-- COPY.
SELECT cap_mark() AS mark \gset
COPY cap_items (id, tenant, payload, qty) FROM stdin;
200	10	copied	7
201	\N	no tenant	8
\.
SELECT * FROM cap_log(:mark);

-- Statements larger than one write batch (1000 rows), key changes included.
SELECT cap_mark() AS mark \gset
INSERT INTO cap_items SELECT g, g % 7, 'bulk', g FROM generate_series(10001, 12500) g;
UPDATE cap_items SET qty = -qty, id = id + 10000 WHERE id BETWEEN 10001 AND 11500;
DELETE FROM cap_items WHERE id > 10000;
SELECT op, count(*), count(DISTINCT record_id) AS keys, min(n), max(n)
  FROM cap_log(:mark) GROUP BY op ORDER BY min(n);
SELECT bool_and(new_data->>'id' = record_id->>'id') AS insert_images_match_keys
  FROM cap_log(:mark) WHERE op = 'INSERT';

-- INSERT ... ON CONFLICT DO UPDATE: the insert path and the update path.
SELECT cap_mark() AS mark \gset
INSERT INTO cap_items VALUES (200, 10, 'upserted', 70), (202, 10, 'fresh', 9)
    ON CONFLICT (id) DO UPDATE SET payload = excluded.payload, qty = excluded.qty;
INSERT INTO cap_items VALUES (202, 10, 'ignored', 0) ON CONFLICT DO NOTHING;
SELECT n, op, record_id, old_data->>'payload' AS old_payload,
       new_data->>'payload' AS new_payload FROM cap_log(:mark);

-- MERGE with all three actions.
SELECT cap_mark() AS mark \gset
MERGE INTO cap_items t
USING (VALUES (200, 'merged'), (201, NULL), (203, 'merge insert')) s(id, payload)
   ON t.id = s.id
 WHEN MATCHED AND s.payload IS NULL THEN DELETE
 WHEN MATCHED THEN UPDATE SET payload = s.payload
 WHEN NOT MATCHED THEN INSERT VALUES (s.id, 10, s.payload, 0);
SELECT n, op, record_id, old_data->>'payload' AS old_payload,
       new_data->>'payload' AS new_payload FROM cap_log(:mark);

-- Capture mode 'undo': INSERT logs the key only, UPDATE and DELETE the old row.
-- Re-tracking changes the mode and keeps tracked_at.
SELECT tracked_at AS tracked_before FROM bkperf.tracked_tables
 WHERE relid = 'cap_items'::regclass \gset
SET ROLE cap_owner;
SELECT bkperf.track_table('cap_items', 'tenant', 'undo');
RESET ROLE;
SELECT capture_mode, tracked_at = :'tracked_before' AS tracked_at_kept,
       (SELECT count(*) FROM pg_trigger WHERE tgrelid = 'cap_items'::regclass) AS triggers
  FROM bkperf.tracked_tables WHERE relid = 'cap_items'::regclass;
SELECT cap_mark() AS mark \gset
INSERT INTO cap_items VALUES (300, 10, 'undo insert', 1);
UPDATE cap_items SET qty = 2 WHERE id = 300;
UPDATE cap_items SET id = 301 WHERE id = 300;
DELETE FROM cap_items WHERE id = 301;
SELECT * FROM cap_log(:mark);

-- Key changes within one statement: all DELETE halves before all INSERT halves.
SELECT cap_mark() AS mark \gset
SET ROLE cap_owner;
SELECT bkperf.track_table('cap_items', 'tenant', 'full');
RESET ROLE;
UPDATE cap_items SET id = id + 1000 WHERE id IN (50, 51, 200);
SELECT n, op, record_id FROM cap_log(:mark);

-- Composite keys and tenant columns of type bigint, uuid and text; NULL tenants.
CREATE TABLE cap_orders (region text, order_no int, tenant uuid, amount numeric,
                         PRIMARY KEY (region, order_no));
CREATE TABLE cap_notes (tenant text, note_id int, body text, PRIMARY KEY (tenant, note_id));
CREATE TABLE cap_big (tenant bigint, id int PRIMARY KEY, v text);
SELECT bkperf.track_table('cap_orders', 'tenant');
SELECT bkperf.track_table('cap_notes', 'tenant', 'undo');
SELECT bkperf.track_table('cap_big', 'tenant');
SELECT table_name, key_columns, capture_mode FROM bkperf.tracked_tables
 WHERE table_name IN ('public.cap_orders', 'public.cap_notes', 'public.cap_big') ORDER BY 1;
SELECT cap_mark() AS mark \gset
INSERT INTO cap_orders VALUES ('eu', 1, 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', 9.90),
                              ('us', 1, NULL, 1);
UPDATE cap_orders SET amount = amount + 1 WHERE region = 'eu';
UPDATE cap_orders SET order_no = 2 WHERE region = 'us';
INSERT INTO cap_notes VALUES ('acme', 1, 'hello');
UPDATE cap_notes SET body = 'bye';
DELETE FROM cap_notes;
INSERT INTO cap_big VALUES (9007199254740993, 1, 'big');
SELECT * FROM cap_log(:mark);

-- A key that changes only in its bytes (numeric scale) keeps the row's
-- identity: one UPDATE row, not a DELETE and an INSERT.  The tenant is its
-- text output, so numeric tenant 1 becoming 1.0 is a move from tenant '1' to
-- tenant '1.0' (DELETE and INSERT), as for any tenant change.
CREATE TABLE cap_num (tenant numeric, id numeric PRIMARY KEY, v int);
SELECT bkperf.track_table('cap_num', 'tenant');
INSERT INTO cap_num VALUES (1, 1.0, 1);
SELECT cap_mark() AS mark \gset
UPDATE cap_num SET id = 1.00, v = 2;
UPDATE cap_num SET tenant = 1.0, v = 3;
SELECT n, tbl, op, tenant, record_id FROM cap_log(:mark);

-- Rows changed by foreign-key cascades are captured.
CREATE TABLE cap_parent (id int PRIMARY KEY, tenant int);
CREATE TABLE cap_child (id int PRIMARY KEY, tenant int,
                        parent_id int REFERENCES cap_parent ON DELETE CASCADE ON UPDATE CASCADE);
SELECT bkperf.track_table('cap_parent', 'tenant');
SELECT bkperf.track_table('cap_child', 'tenant', 'undo');
INSERT INTO cap_parent VALUES (1, 10), (2, 10);
INSERT INTO cap_child VALUES (1, 10, 1), (2, 10, 1), (3, 10, 2);
SELECT cap_mark() AS mark \gset
UPDATE cap_parent SET id = 20 WHERE id = 2;
DELETE FROM cap_parent WHERE id = 1;
SELECT n, tbl, op, record_id, old_data->>'parent_id' AS old_parent FROM cap_log(:mark);

-- Refusals, each with its own error code.
\set VERBOSITY sqlstate
SELECT bkperf.track_table(NULL, 'tenant');
SELECT bkperf.track_table('cap_items', NULL);
SELECT bkperf.track_table('cap_items', 'tenant', NULL);
SELECT bkperf.untrack_table(NULL);
SELECT bkperf.track_table(0::oid::regclass, 'tenant');
CREATE TABLE cap_nokey (id int, tenant int);
SELECT bkperf.track_table('cap_nokey', 'tenant');
SELECT bkperf.track_table('cap_items', 'no_such_column');
SELECT bkperf.track_table('cap_items', 'tenant', 'everything');
SELECT bkperf.track_table('bkperf.backup_jobs', 'tenant_id');
CREATE VIEW cap_view AS SELECT * FROM cap_items;
SELECT bkperf.track_table('cap_view', 'tenant');
SELECT bkperf.untrack_table('cap_nokey');
SET ROLE cap_other;
SELECT bkperf.track_table('cap_items', 'tenant');
SELECT bkperf.untrack_table('cap_items');
RESET ROLE;
SET ROLE cap_app;
SELECT bkperf.track_table('cap_items', 'tenant');
RESET ROLE;
TRUNCATE cap_items;
\set VERBOSITY default
TRUNCATE cap_items;
SELECT count(*) > 0 AS rows_kept FROM cap_items;

-- A replica identity index serves as the key when there is no primary key.
CREATE TABLE cap_ri (code text NOT NULL, tenant int, v int);
CREATE UNIQUE INDEX cap_ri_code ON cap_ri (code);
ALTER TABLE cap_ri REPLICA IDENTITY USING INDEX cap_ri_code;
SELECT bkperf.track_table('cap_ri', 'tenant');
SELECT key_columns FROM bkperf.tracked_tables WHERE relid = 'cap_ri'::regclass;

-- ADD and DROP COLUMN keep capture working (no stale row descriptions).
SELECT cap_mark() AS mark \gset
INSERT INTO cap_ri VALUES ('a', 1, 1);
ALTER TABLE cap_ri ADD COLUMN extra text DEFAULT 'x';
INSERT INTO cap_ri VALUES ('b', 1, 2, 'y');
ALTER TABLE cap_ri DROP COLUMN v;
UPDATE cap_ri SET extra = 'z' WHERE code = 'a';
SELECT n, op, record_id, old_data, new_data FROM cap_log(:mark);

-- untrack_table stops capture; DROP TABLE of a tracked table forgets it.
SELECT bkperf.untrack_table('cap_ri');
SELECT count(*) AS triggers_left FROM pg_trigger WHERE tgrelid = 'cap_ri'::regclass;
SELECT cap_mark() AS mark \gset
INSERT INTO cap_ri VALUES ('c', 1);
SELECT count(*) AS logged_after_untrack FROM cap_log(:mark);
DROP TABLE cap_big;
SELECT table_name FROM bkperf.tracked_tables WHERE table_name LIKE 'public.cap%' ORDER BY 1;

-- Partitioned tables: DML through the parent and straight into a partition,
-- each logged once, under the parent's name; rows moved between partitions.
CREATE TABLE cap_part (tenant int, id int, v text, PRIMARY KEY (tenant, id))
    PARTITION BY LIST (tenant);
CREATE TABLE cap_part_1 PARTITION OF cap_part FOR VALUES IN (1);
CREATE TABLE cap_part_2 PARTITION OF cap_part FOR VALUES IN (2) PARTITION BY RANGE (id);
CREATE TABLE cap_part_2a PARTITION OF cap_part_2 FOR VALUES FROM (0) TO (100);
SELECT bkperf.track_table('cap_part', 'tenant');
SELECT tgrelid::regclass AS rel, count(*) AS triggers FROM pg_trigger
 WHERE tgrelid IN ('cap_part'::regclass, 'cap_part_1'::regclass, 'cap_part_2'::regclass,
                   'cap_part_2a'::regclass)
 GROUP BY tgrelid ORDER BY tgrelid::regclass::text;
SELECT cap_mark() AS mark \gset
INSERT INTO cap_part VALUES (1, 1, 'via parent'), (2, 1, 'via parent');
INSERT INTO cap_part_1 VALUES (1, 2, 'direct');
INSERT INTO cap_part_2a VALUES (2, 2, 'direct, two levels down');
UPDATE cap_part_1 SET v = 'direct update' WHERE id = 2;
UPDATE cap_part SET tenant = 2, id = 50 WHERE tenant = 1 AND id = 1;   -- moves partition
UPDATE cap_part SET id = 51 WHERE tenant = 2 AND id = 50;                -- stays in cap_part_2a
DELETE FROM cap_part_2 WHERE id = 2;
SELECT * FROM cap_log(:mark);

-- Partitions created or attached later get the triggers; a detached one
-- loses them.
CREATE TABLE cap_part_3 PARTITION OF cap_part FOR VALUES IN (3);
CREATE TABLE cap_part_4 (tenant int, id int, v text, PRIMARY KEY (tenant, id));
ALTER TABLE cap_part ATTACH PARTITION cap_part_4 FOR VALUES IN (4);
SELECT tgrelid::regclass AS rel, count(*) AS triggers FROM pg_trigger
 WHERE tgrelid IN ('cap_part_3'::regclass, 'cap_part_4'::regclass)
 GROUP BY tgrelid ORDER BY tgrelid::regclass::text;
SELECT cap_mark() AS mark \gset
INSERT INTO cap_part_3 VALUES (3, 1, 'new partition');
INSERT INTO cap_part_4 VALUES (4, 1, 'attached partition');
ALTER TABLE cap_part DETACH PARTITION cap_part_4;
SELECT count(*) AS triggers_on_detached FROM pg_trigger WHERE tgrelid = 'cap_part_4'::regclass;
INSERT INTO cap_part_4 VALUES (4, 2, 'detached');
SELECT n, tbl, op, record_id FROM cap_log(:mark);

-- track_table created today's daily log partition (UTC): the log row goes
-- to the partition that holds now(), not to the default one.
BEGIN;
INSERT INTO cap_part_1 VALUES (1, 3, 'routed');
SELECT tableoid::regclass::text = 'bkperf.backup_transaction_logs_p'
           || to_char(now() AT TIME ZONE 'UTC', 'YYYYMMDD') AS in_todays_partition,
       operation
  FROM bkperf.backup_transaction_logs WHERE txid = pg_current_xact_id();
ROLLBACK;

-- Capture triggers name the tracked table by its table_id, which pg_dump
-- keeps (tracked_tables is dumped and the triggers with their arguments), so
-- triggers made anew from their definition log under the table, on a
-- partition under its root.
SELECT pg_get_triggerdef(oid) AS part_def FROM pg_trigger
 WHERE tgrelid = 'cap_part_1'::regclass AND tgname = 'bkperf_capture_insert' \gset
SELECT pg_get_triggerdef(oid) AS items_def FROM pg_trigger
 WHERE tgrelid = 'cap_items'::regclass AND tgname = 'bkperf_capture_insert' \gset
DROP TRIGGER bkperf_capture_insert ON cap_part_1;
DROP TRIGGER bkperf_capture_insert ON cap_items;
:part_def;
:items_def;
SELECT cap_mark() AS mark \gset
INSERT INTO cap_part_1 VALUES (1, 4, 'remade trigger');
INSERT INTO cap_items VALUES (5000, 1, 'remade trigger', 0);
SELECT n, tbl, op, record_id FROM cap_log(:mark);

-- bkperf finds capture triggers by name: renaming one is refused, also on a
-- partition of a tracked table (a second set from tracking again would log
-- every change twice); a trigger of the table's own can still be renamed.
\set VERBOSITY terse
ALTER TRIGGER bkperf_capture_update ON cap_items RENAME TO my_update;
ALTER TRIGGER bkperf_capture_insert ON cap_part_2a RENAME TO my_insert;
CREATE FUNCTION cap_noop() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN RETURN NULL; END$$;
CREATE TRIGGER cap_noop AFTER UPDATE ON cap_items FOR EACH STATEMENT EXECUTE FUNCTION cap_noop();
ALTER TRIGGER cap_noop ON cap_items RENAME TO cap_noop2;
SELECT tgname FROM pg_trigger WHERE tgrelid = 'cap_items'::regclass AND NOT tgisinternal ORDER BY 1;
DROP TRIGGER cap_noop2 ON cap_items;
DROP FUNCTION cap_noop();
\set VERBOSITY default

-- Clean up: dropping the tables forgets them.
DROP TABLE cap_types;
DROP TYPE cap_pair;
DROP DOMAIN cap_pos;
DROP TABLE cap_items, cap_orders, cap_notes, cap_num, cap_child, cap_parent, cap_nokey, cap_ri,
           cap_part, cap_part_4 CASCADE;
SELECT count(*) AS still_tracked FROM bkperf.tracked_tables WHERE table_name LIKE 'public.cap%';
DROP FUNCTION cap_log(bigint);
DROP FUNCTION cap_mark();
REVOKE ALL ON SCHEMA public FROM cap_owner;
REVOKE ALL ON FUNCTION bkperf.track_table(regclass, name, text) FROM cap_owner, cap_other;
REVOKE ALL ON FUNCTION bkperf.untrack_table(regclass) FROM cap_owner, cap_other;
DROP ROLE cap_owner, cap_app, cap_other;
