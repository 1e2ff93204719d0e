-- Driven by test/bench/rollback_vs_emaj (and rollback_fk_noindex): one timed
-- run of :which in a database built by rollback_vs_emaj.sql, inside a
-- transaction that is rolled back afterwards, so every run starts from the
-- same state and undoes identical work.  :which is one of
--   bkperf        bkperf.rollback_to_snapshot (its own changes logged)
--   bkperf_unlogged  bkperf.rollback_to_snapshot_unlogged (not logged)
--   emaj          emaj.emaj_rollback_group (E-Maj's default: not logged)
--   emaj_logged   emaj.emaj_logged_rollback_group
--   floor         the bare DML undoing the same rows from typed copies
-- Prints "<label>_ms|N", "<label>_rows|N" (rows bkperf reports changed),
-- "<label>_status|..." and "<label>_diff|N" (tables that differ from the
-- snapshot state afterwards: the driver fails unless 0).
SET client_min_messages = warning;
-- Dead rows of the previous (rolled back) run, in the tables and the logs.
VACUUM;
-- Each run writes tens of MB of WAL: start each from a checkpoint, so one
-- run's checkpoint does not land in another's timing.
CHECKPOINT;
SELECT :'which' = 'bkperf' AS is_bk, :'which' = 'bkperf_unlogged' AS is_bku, :'which' = 'emaj' AS is_em,
       :'which' = 'emaj_logged' AS is_eml \gset
BEGIN;
SELECT clock_timestamp() AS t0 \gset
\if :is_bk
SELECT status, rows_deleted + rows_updated + rows_inserted AS rows
  FROM bkperf.rollback_to_snapshot('1',
       (SELECT max(snapshot_id) FROM bkperf.backup_pitr_snapshots WHERE tenant_id = '1')) \gset
\elif :is_bku
SELECT status, rows_deleted + rows_updated + rows_inserted AS rows
  FROM bkperf.rollback_to_snapshot_unlogged('1',
       (SELECT max(snapshot_id) FROM bkperf.backup_pitr_snapshots WHERE tenant_id = '1')) \gset
\elif :is_em
SELECT coalesce(string_agg(rlbk_message, '; '), '') AS status FROM emaj.emaj_rollback_group('bench', 'M0') \gset
SELECT '' AS rows \gset
\elif :is_eml
SELECT coalesce(string_agg(rlbk_message, '; '), '') AS status FROM emaj.emaj_logged_rollback_group('bench', 'M0') \gset
SELECT '' AS rows \gset
\else
INSERT INTO bench.parent AS t SELECT s.* FROM snap.s_parent s JOIN snap.k_upsert k ON k.tbl = 'parent' AND k.id = s.id
    ON CONFLICT (tenant, id) DO UPDATE SET name = EXCLUDED.name, qty = EXCLUDED.qty;
INSERT INTO bench.child AS t SELECT s.* FROM snap.s_child s JOIN snap.k_upsert k ON k.tbl = 'child' AND k.id = s.id
    ON CONFLICT (tenant, id) DO UPDATE SET parent_id = EXCLUDED.parent_id, payload = EXCLUDED.payload, qty = EXCLUDED.qty;
INSERT INTO bench.grandchild AS t SELECT s.* FROM snap.s_grandchild s JOIN snap.k_upsert k ON k.tbl = 'grandchild' AND k.id = s.id
    ON CONFLICT (tenant, id) DO UPDATE SET child_id = EXCLUDED.child_id, payload = EXCLUDED.payload, qty = EXCLUDED.qty;
DELETE FROM bench.grandchild t USING snap.k_delete k WHERE k.tbl = 'grandchild' AND t.tenant = 1 AND t.id = k.id;
DELETE FROM bench.child t USING snap.k_delete k WHERE k.tbl = 'child' AND t.tenant = 1 AND t.id = k.id;
DELETE FROM bench.parent t USING snap.k_delete k WHERE k.tbl = 'parent' AND t.tenant = 1 AND t.id = k.id;
SELECT 'bare DML' AS status, '' AS rows \gset
\endif
SELECT :'label' || '_ms|' || 1000 * extract(epoch FROM clock_timestamp() - :'t0'::timestamptz);
SELECT :'label' || '_rows|' || :'rows';
SELECT :'label' || '_status|' || :'status';
SELECT :'label' || '_diff|' || snap.diff();
ROLLBACK;
