-- Snapshots, FK restore order and exact per-tenant rollback.
\set VERBOSITY terse
CREATE SCHEMA rb;

-- A three-table FK chain with composite keys and ON DELETE CASCADE.
CREATE TABLE rb.customers (tenant text, id int, name text, PRIMARY KEY (tenant, id));
CREATE TABLE rb.orders (tenant text, id int, customer_id int, total numeric,
    PRIMARY KEY (tenant, id),
    FOREIGN KEY (tenant, customer_id) REFERENCES rb.customers ON DELETE CASCADE);
CREATE TABLE rb.items (tenant text, order_id int, line int, sku text, qty int,
    PRIMARY KEY (tenant, order_id, line),
    FOREIGN KEY (tenant, order_id) REFERENCES rb.orders ON DELETE CASCADE);
-- A self-referencing table and a cycle of deferrable keys.
CREATE TABLE rb.nodes (tenant text, id int, parent_id int, label text, PRIMARY KEY (tenant, id),
    FOREIGN KEY (tenant, parent_id) REFERENCES rb.nodes);
CREATE TABLE rb.dept (tenant text, id int, head_id int, PRIMARY KEY (tenant, id));
CREATE TABLE rb.emp (tenant text, id int, dept_id int, PRIMARY KEY (tenant, id),
    CONSTRAINT emp_dept_fk FOREIGN KEY (tenant, dept_id) REFERENCES rb.dept
        DEFERRABLE INITIALLY IMMEDIATE);
ALTER TABLE rb.dept ADD CONSTRAINT dept_head_fk FOREIGN KEY (tenant, head_id) REFERENCES rb.emp
    DEFERRABLE INITIALLY IMMEDIATE;
-- A cycle of keys that are not deferrable (never tracked: rolled back only in a transaction).
CREATE TABLE rb.ra (tenant text, id int, b_id int, PRIMARY KEY (tenant, id));
CREATE TABLE rb.rbb (tenant text, id int, a_id int, PRIMARY KEY (tenant, id),
    CONSTRAINT rbb_a_fk FOREIGN KEY (tenant, a_id) REFERENCES rb.ra);
ALTER TABLE rb.ra ADD CONSTRAINT ra_b_fk FOREIGN KEY (tenant, b_id) REFERENCES rb.rbb;

-- table_restore_order: levels parents first, cycle groups, deferrability.
SELECT table_name, level, cycle_group, cycle_constraints, cycle_deferrable
  FROM bkperf.table_restore_order(ARRAY['rb.items', 'rb.orders', 'rb.customers', 'rb.nodes',
                                        'rb.dept', 'rb.emp', 'rb.ra', 'rb.rbb']::regclass[])
 ORDER BY level, table_name::text;
-- Only edges inside the set count: items alone is level 0.
SELECT table_name, level, cycle_group FROM bkperf.table_restore_order(ARRAY['rb.items'::regclass]);
-- Duplicates and NULLs are ignored; an empty set gives no rows.
SELECT count(*) FROM bkperf.table_restore_order(ARRAY['rb.items', 'rb.items', NULL]::regclass[]);
SELECT count(*) FROM bkperf.table_restore_order('{}');
-- A longer cycle (a -> b -> c -> a) with a tail is one group, tail one level up.
CREATE TABLE rb.c1 (id int PRIMARY KEY, nxt int);
CREATE TABLE rb.c2 (id int PRIMARY KEY, nxt int REFERENCES rb.c1 DEFERRABLE);
CREATE TABLE rb.c3 (id int PRIMARY KEY, nxt int REFERENCES rb.c2 DEFERRABLE);
ALTER TABLE rb.c1 ADD FOREIGN KEY (nxt) REFERENCES rb.c3 DEFERRABLE;
CREATE TABLE rb.c4 (id int PRIMARY KEY, c1 int REFERENCES rb.c1);
SELECT table_name, level, cycle_group, cycle_deferrable
  FROM bkperf.table_restore_order(ARRAY['rb.c4', 'rb.c3', 'rb.c2', 'rb.c1']::regclass[])
 ORDER BY level, table_name::text;

-- Nothing tracked: snapshots and rollbacks are refused.
BEGIN;
DELETE FROM bkperf.tracked_tables;
SELECT bkperf.create_snapshot('rb_a');
ROLLBACK;

SELECT bkperf.track_table('rb.customers', 'tenant'), bkperf.track_table('rb.orders', 'tenant'),
       bkperf.track_table('rb.items', 'tenant'), bkperf.track_table('rb.nodes', 'tenant'),
       bkperf.track_table('rb.dept', 'tenant'), bkperf.track_table('rb.emp', 'tenant');
-- NULL means every tracked table.
SELECT table_name, level, cycle_group FROM bkperf.table_restore_order()
 WHERE table_name::text LIKE 'rb.%' ORDER BY level, table_name::text;

-- Two tenants' data.
INSERT INTO rb.customers SELECT t, i, t || '-cust-' || i FROM unnest('{rb_a,rb_b}'::text[]) t, generate_series(1, 5) i;
INSERT INTO rb.orders SELECT tenant, id * 10, id, id * 100 FROM rb.customers WHERE tenant LIKE 'rb_%';
INSERT INTO rb.items SELECT tenant, id, l, 'sku' || l, l FROM rb.orders, generate_series(1, 3) l WHERE tenant LIKE 'rb_%';
INSERT INTO rb.nodes VALUES ('rb_a', 1, NULL, 'root'), ('rb_a', 2, 1, 'child'), ('rb_b', 1, NULL, 'root');
INSERT INTO rb.dept VALUES ('rb_a', 1, NULL);
INSERT INTO rb.emp VALUES ('rb_a', 1, 1);
UPDATE rb.dept SET head_id = 1 WHERE tenant = 'rb_a';

-- create_snapshot: argument errors.
SELECT bkperf.create_snapshot(NULL);
SELECT bkperf.create_snapshot('');
SELECT bkperf.create_snapshot('rb_a', 'x', NULL);
SELECT bkperf.create_snapshot('rb_a', 'x', 'weekly');

-- The state at the snapshot, kept for comparison.
CREATE FUNCTION rb.state(tenant text) RETURNS TABLE (tbl text, row_image jsonb) LANGUAGE sql AS $$
    SELECT 'customers', to_jsonb(c) FROM rb.customers c WHERE c.tenant = $1
    UNION ALL SELECT 'orders', to_jsonb(o) FROM rb.orders o WHERE o.tenant = $1
    UNION ALL SELECT 'items', to_jsonb(i) FROM rb.items i WHERE i.tenant = $1
    UNION ALL SELECT 'nodes', to_jsonb(n) FROM rb.nodes n WHERE n.tenant = $1
    UNION ALL SELECT 'dept', to_jsonb(d) FROM rb.dept d WHERE d.tenant = $1
    UNION ALL SELECT 'emp', to_jsonb(e) FROM rb.emp e WHERE e.tenant = $1
$$;
CREATE TABLE rb.at_snap AS SELECT * FROM rb.state('rb_a');
CREATE TABLE rb.b_before AS SELECT * FROM rb.state('rb_b');
SELECT bkperf.create_snapshot('rb_a', 'before changes') AS snap \gset
SELECT bkperf.create_snapshot('rb_b', 'b point', 'scheduled') AS snap_b \gset
SELECT snapshot_type, label, created_at <= now() AS past, log_scan_from <= created_at AS scan_ok,
       pg_snapshot_xmax(snapshot) IS NOT NULL AS has_snapshot, wal_lsn > '0/0' AS has_lsn
  FROM bkperf.backup_pitr_snapshots WHERE snapshot_id = :snap;

-- Changes after the snapshot, for both tenants.
UPDATE rb.customers SET name = name || ' (renamed)' WHERE tenant = 'rb_a' AND id IN (1, 2);
INSERT INTO rb.customers VALUES ('rb_a', 6, 'new'), ('rb_b', 6, 'new b');
INSERT INTO rb.orders VALUES ('rb_a', 60, 6, 1), ('rb_a', 61, 1, 2);
INSERT INTO rb.items VALUES ('rb_a', 60, 1, 'n', 1), ('rb_a', 61, 1, 'n', 1);
-- Re-pointing to a new parent, and a delete that cascades down the chain.
UPDATE rb.orders SET customer_id = 6 WHERE tenant = 'rb_a' AND id = 30;
DELETE FROM rb.customers WHERE tenant = 'rb_a' AND id = 2;
-- A key change (logged as DELETE + INSERT) and a delete-then-reinsert of one key.
UPDATE rb.items SET line = 9 WHERE tenant = 'rb_a' AND order_id = 10 AND line = 3;
DELETE FROM rb.items WHERE tenant = 'rb_a' AND order_id = 40 AND line = 1;
INSERT INTO rb.items VALUES ('rb_a', 40, 1, 'reinserted', 99);
UPDATE rb.items SET order_id = 60 WHERE tenant = 'rb_a' AND order_id = 50 AND line = 2;
-- Self-reference: a new subtree, an old node re-parented.
INSERT INTO rb.nodes VALUES ('rb_a', 3, 2, 'grandchild'), ('rb_a', 4, 3, 'ggc');
UPDATE rb.nodes SET parent_id = 4, label = 'moved' WHERE tenant = 'rb_a' AND id = 2;
-- Deferrable cycle: a new department headed by a new employee.
BEGIN;
SET CONSTRAINTS ALL DEFERRED;
INSERT INTO rb.dept VALUES ('rb_a', 2, 2);
INSERT INTO rb.emp VALUES ('rb_a', 2, 2);
UPDATE rb.emp SET dept_id = 2 WHERE tenant = 'rb_a' AND id = 1;
COMMIT;
UPDATE rb.customers SET name = 'b changed' WHERE tenant = 'rb_b' AND id = 1;

-- Dry run: counts, no change.
CREATE TABLE rb.before_dry AS SELECT * FROM rb.state('rb_a');
SELECT status, tables, rows_deleted, rows_updated, rows_inserted, error
  FROM bkperf.rollback_to_snapshot('rb_a', :snap, dry_run => true);
SELECT count(*) AS changed_by_dry_run FROM (
    (SELECT * FROM rb.state('rb_a') EXCEPT ALL SELECT * FROM rb.before_dry)
    UNION ALL (SELECT * FROM rb.before_dry EXCEPT ALL SELECT * FROM rb.state('rb_a'))) d;

-- The rollback itself: same counts as the dry run, and exactly the snapshot's rows.
SELECT bkperf.create_snapshot('rb_a', 'pre rollback', 'pre_rollback') AS pre \gset
SELECT status, tables, rows_deleted, rows_updated, rows_inserted, error
  FROM bkperf.rollback_to_snapshot('rb_a', :snap);
SELECT tbl, row_image FROM (
    (SELECT 'missing' AS what, * FROM rb.at_snap EXCEPT ALL SELECT 'missing', * FROM rb.state('rb_a'))
    UNION ALL (SELECT 'extra', * FROM rb.state('rb_a') EXCEPT ALL SELECT 'extra', * FROM rb.at_snap)) d
 ORDER BY 1, 2::text;
-- The other tenant's changes are still there.
SELECT tbl, row_image->>'name' AS name FROM (
    SELECT * FROM rb.state('rb_b') EXCEPT ALL SELECT * FROM rb.b_before) d ORDER BY 1, 2;

-- History: the dry run and the rollback, with phase times and per-table counts.
SELECT dry_run, rollback_status, tables, rows_deleted, rows_updated, rows_inserted,
       started_at <= planned_at AND planned_at <= applied_at AND applied_at <= finished_at AS phases_ordered,
       table_counts -> 'rb.items' AS items_counts, error_message
  FROM bkperf.backup_pitr_rollback_history WHERE snapshot_id = :snap ORDER BY rollback_id;
-- The FK order used by the last rollback.
SELECT c.table_name, c.restore_level, c.cycle_group, c.deferred_constraints
  FROM bkperf.backup_fk_constraints_cache c
 WHERE c.rollback_id = (SELECT max(rollback_id) FROM bkperf.backup_pitr_rollback_history)
 ORDER BY c.restore_level, c.table_name;

-- A rollback is logged too, so it can be rolled back: back to the state before it.
SELECT status, tables, rows_deleted, rows_updated, rows_inserted
  FROM bkperf.rollback_to_snapshot('rb_a', :pre);
SELECT count(*) AS differences_from_before_rollback FROM (
    (SELECT * FROM rb.state('rb_a') EXCEPT ALL SELECT * FROM rb.before_dry)
    UNION ALL (SELECT * FROM rb.before_dry EXCEPT ALL SELECT * FROM rb.state('rb_a'))) d;
SELECT status FROM bkperf.rollback_to_snapshot('rb_a', :snap);
-- Rolling back to the same snapshot again changes nothing.
SELECT status, tables, rows_deleted, rows_updated, rows_inserted
  FROM bkperf.rollback_to_snapshot('rb_a', :snap);

-- rollback_to_time: undo changes made after a time (here: changed_at, no commit timestamps).
SELECT current_setting('track_commit_timestamp') AS commit_ts;
CREATE TABLE rb.before_t AS SELECT * FROM rb.state('rb_a');
SELECT pg_sleep(0.01);
SELECT clock_timestamp() AS t1 \gset
SELECT pg_sleep(0.01);
UPDATE rb.items SET qty = -1 WHERE tenant = 'rb_a';
DELETE FROM rb.customers WHERE tenant = 'rb_a' AND id = 5;
SELECT status, rows_deleted, rows_updated, rows_inserted FROM bkperf.rollback_to_time('rb_a', :'t1');
SELECT count(*) AS differences FROM (
    (SELECT * FROM rb.state('rb_a') EXCEPT ALL SELECT * FROM rb.before_t)
    UNION ALL (SELECT * FROM rb.before_t EXCEPT ALL SELECT * FROM rb.state('rb_a'))) d;

-- A failed rollback changes nothing, says why, and is kept in the history:
-- an untracked table still references a row the rollback must delete.
CREATE TABLE rb.untracked_ref (tenant text, customer_id int,
    FOREIGN KEY (tenant, customer_id) REFERENCES rb.customers);
SELECT bkperf.create_snapshot('rb_a', 'before 7') AS snap7 \gset
INSERT INTO rb.customers VALUES ('rb_a', 7, 'seven');
INSERT INTO rb.untracked_ref VALUES ('rb_a', 7);
UPDATE rb.customers SET name = 'changed' WHERE tenant = 'rb_a' AND id = 1;
SELECT status, rows_deleted, rows_updated, rows_inserted, error
  FROM bkperf.rollback_to_snapshot('rb_a', :snap7);
SELECT name FROM rb.customers WHERE tenant = 'rb_a' AND id IN (1, 7) ORDER BY id;
SELECT rollback_status, error_message, error_sqlstate, rows_updated
  FROM bkperf.backup_pitr_rollback_history WHERE snapshot_id = :snap7;
DELETE FROM rb.untracked_ref;
-- An untracked table whose key would cascade the rollback's deletes into it: refused.
BEGIN;
CREATE TABLE rb.untracked_cascade (tenant text, customer_id int,
    CONSTRAINT untracked_cascade_fk FOREIGN KEY (tenant, customer_id) REFERENCES rb.customers ON DELETE CASCADE);
SELECT * FROM bkperf.rollback_to_snapshot('rb_a', :snap7);
ROLLBACK;
SELECT status, rows_deleted, rows_updated FROM bkperf.rollback_to_snapshot('rb_a', :snap7);

-- Refusals.
SELECT * FROM bkperf.rollback_to_snapshot(NULL, :snap);
SELECT * FROM bkperf.rollback_to_snapshot('rb_a', NULL);
SELECT * FROM bkperf.rollback_to_snapshot('rb_a', :snap, NULL);
SELECT * FROM bkperf.rollback_to_snapshot('rb_a', -1);
SELECT * FROM bkperf.rollback_to_snapshot('rb_a', :snap_b);
SELECT * FROM bkperf.rollback_to_time('rb_a', NULL);
SELECT * FROM bkperf.rollback_to_time('rb_a', now() + interval '1 day');
SELECT * FROM bkperf.rollback_to_time('rb_a', now() - interval '1 day');
BEGIN;
UPDATE bkperf.log_retention_state SET pruned_before = now();
SELECT * FROM bkperf.rollback_to_snapshot('rb_a', :snap);
ROLLBACK;
BEGIN ISOLATION LEVEL REPEATABLE READ;
SELECT * FROM bkperf.rollback_to_snapshot('rb_a', :snap);
ROLLBACK;

-- Privileges: not for PUBLIC.
CREATE ROLE rb_app;
SET ROLE rb_app;
SELECT bkperf.create_snapshot('rb_a');
SELECT * FROM bkperf.rollback_to_snapshot('rb_a', :snap);
SELECT * FROM bkperf.rollback_to_time('rb_a', now());
RESET ROLE;
DROP ROLE rb_app;
SELECT p.oid::regprocedure AS function, has_function_privilege('public', p.oid, 'EXECUTE') AS public_exec
  FROM pg_proc p WHERE p.pronamespace = 'bkperf'::regnamespace
   AND p.proname IN ('create_snapshot', 'rollback_to_snapshot', 'rollback_to_time')
 ORDER BY 1::text;

-- A cycle of keys that are not deferrable: the apply fires no per-row
-- foreign-key trigger (replica mode) and both keys map tenant to tenant
-- between tables in scope, so the rows go back in any order.
SELECT bkperf.track_table('rb.ra', 'tenant'), bkperf.track_table('rb.rbb', 'tenant');
INSERT INTO rb.ra VALUES ('rb_c', 5, NULL);
SELECT bkperf.create_snapshot('rb_c') AS snapc \gset
INSERT INTO rb.ra VALUES ('rb_c', 1, NULL);
INSERT INTO rb.rbb VALUES ('rb_c', 1, 1);
UPDATE rb.ra SET b_id = 1;
SELECT status, tables, rows_deleted, rows_updated, rows_inserted
  FROM bkperf.rollback_to_snapshot('rb_c', :snapc);
SELECT 'ra' AS tbl, ra::text FROM rb.ra UNION ALL SELECT 'rbb', rbb::text FROM rb.rbb ORDER BY 1, 2;

-- The plan treats keys equal as jsonb as one key: a numeric key logged as
-- 1.0 and then as 1.00 is one row, inserted after the snapshot, so the
-- rollback deletes it and updates nothing.
CREATE TABLE rb.nk (tenant text, id numeric PRIMARY KEY, v int);
SELECT bkperf.track_table('rb.nk', 'tenant');
SELECT bkperf.create_snapshot('rb_n') AS snapn \gset
INSERT INTO rb.nk VALUES ('rb_n', 1.0, 1), ('rb_n', 2, 2);
UPDATE rb.nk SET id = 1.00, v = 10 WHERE id = 1;
SELECT operation, record_id FROM bkperf.backup_transaction_logs
 WHERE tenant_id = 'rb_n' ORDER BY log_id;
SELECT status, rows_deleted, rows_updated, rows_inserted
  FROM bkperf.rollback_to_snapshot('rb_n', :snapn);
SELECT count(*) AS rows_left FROM rb.nk;

-- A row moved to another tenant after the snapshot (logged as a DELETE under
-- the old tenant and an INSERT under the new one): the old tenant's rollback
-- would have to take the row from the new tenant, so it fails and changes
-- nothing; the new tenant's rollback deletes its copy.
CREATE TABLE rb.mv (tenant text, id int PRIMARY KEY, v int);
SELECT bkperf.track_table('rb.mv', 'tenant');
INSERT INTO rb.mv VALUES ('rb_m1', 1, 1), ('rb_m1', 2, 2);
SELECT bkperf.create_snapshot('rb_m1') AS snapm1 \gset
SELECT bkperf.create_snapshot('rb_m2') AS snapm2 \gset
UPDATE rb.mv SET tenant = 'rb_m2', v = 10 WHERE id = 1;
UPDATE rb.mv SET v = 20 WHERE id = 2;
SELECT tenant_id, operation, record_id FROM bkperf.backup_transaction_logs
 WHERE table_name = 'rb.mv' AND log_id > (SELECT max(log_id) - 3 FROM bkperf.backup_transaction_logs)
 ORDER BY log_id;
SELECT status, rows_deleted, rows_updated, rows_inserted, error
  FROM bkperf.rollback_to_snapshot('rb_m1', :snapm1);
SELECT * FROM rb.mv ORDER BY id;
SELECT status, rows_deleted, rows_updated, rows_inserted
  FROM bkperf.rollback_to_snapshot('rb_m2', :snapm2);
SELECT status, rows_deleted, rows_updated, rows_inserted
  FROM bkperf.rollback_to_snapshot('rb_m1', :snapm1);
SELECT * FROM rb.mv ORDER BY id;

-- With work_mem at its minimum the plan's row images (and the apply
-- statements' intermediate results) spill to temporary files; the result is
-- the same, rows changed twice included.
CREATE TABLE rb.big (tenant text, id int PRIMARY KEY, payload text);
SELECT bkperf.track_table('rb.big', 'tenant');
INSERT INTO rb.big SELECT 'rb_s', g, md5(g::text) FROM generate_series(1, 3000) g;
CREATE TABLE rb.big_copy AS SELECT * FROM rb.big;
SELECT bkperf.create_snapshot('rb_s') AS snaps \gset
UPDATE rb.big SET payload = 'changed ' || id WHERE id % 3 = 0;
UPDATE rb.big SET payload = 'again' WHERE id % 6 = 0;
DELETE FROM rb.big WHERE id % 5 = 0;
INSERT INTO rb.big SELECT 'rb_s', g, 'new' FROM generate_series(3001, 4000) g;
SELECT temp_files AS temp_files_before FROM pg_stat_database
 WHERE datname = current_database() \gset
SET work_mem = '64kB';
SELECT status, rows_deleted, rows_updated, rows_inserted
  FROM bkperf.rollback_to_snapshot('rb_s', :snaps);
RESET work_mem;
SELECT pg_stat_force_next_flush();
SELECT pg_stat_clear_snapshot();
SELECT temp_files > :temp_files_before AS spilled FROM pg_stat_database
 WHERE datname = current_database();
SELECT count(*) AS differing
  FROM ((TABLE rb.big EXCEPT TABLE rb.big_copy) UNION ALL (TABLE rb.big_copy EXCEPT TABLE rb.big)) d;

-- The plan is only readable by the rollback's own statements.
SELECT * FROM bkperf.rollback_plan_rows('1', true, NULL::rb.nk);
SELECT * FROM bkperf.rollback_plan_rows(NULL, true, NULL::rb.nk);

-- Reading functions.
SELECT snapshot_type, label, rollbacks FROM bkperf.list_snapshots('rb_a') ORDER BY created_at, snapshot_id;
SELECT label FROM bkperf.list_snapshots('rb_b', 'scheduled');
SELECT rollback_status, dry_run FROM bkperf.rollback_history('rb_a', 3);

-- Every index of the PITR catalog is used by a bkperf query.
SET enable_seqscan = off;
SET enable_bitmapscan = off;
EXPLAIN (COSTS OFF) SELECT s.snapshot_id FROM bkperf.backup_pitr_snapshots s
 WHERE s.tenant_id = 'rb_a' ORDER BY s.created_at DESC;
EXPLAIN (COSTS OFF) SELECT s.snapshot_id FROM bkperf.backup_pitr_snapshots s
 WHERE s.snapshot_type = 'scheduled' AND s.tenant_id = 'rb_b';
EXPLAIN (COSTS OFF) SELECT count(*) FROM bkperf.backup_pitr_rollback_history h
 WHERE h.snapshot_id = 1 AND h.rollback_status = 'completed';
EXPLAIN (COSTS OFF) SELECT h.rollback_id FROM bkperf.backup_pitr_rollback_history h
 WHERE h.tenant_id = 'rb_a' ORDER BY h.started_at DESC LIMIT 20;
EXPLAIN (COSTS OFF) SELECT table_name FROM bkperf.backup_fk_constraints_cache
 WHERE tenant_id = 'rb_a' AND rollback_id = 1 ORDER BY restore_level, table_name;
EXPLAIN (COSTS OFF) SELECT log_scan_from FROM bkperf.backup_pitr_snapshots
 WHERE tenant_id = 'rb_a' AND created_at <= now() ORDER BY created_at DESC LIMIT 1;
RESET enable_seqscan;
RESET enable_bitmapscan;

-- Clean up: dropping the tables untracks them.
DROP SCHEMA rb CASCADE;
SELECT count(*) AS still_tracked FROM bkperf.tracked_tables WHERE table_name LIKE 'rb.%';
