-- One timed run, chosen by :which (rollback or bare); the transaction is rolled back.
\if :{?which}
\else
\quit
\endif
-- The log too: every timed transaction is rolled back, and the dead log rows
-- of earlier rounds would otherwise slow down only the rollback's log scan.
VACUUM bench.parent, bench.child, bench.grandchild, bkperf.backup_transaction_logs;
-- Each run writes ~100 MB of WAL: start every run from a checkpoint, so that
-- one run's checkpoint does not land in the next run's timing.
CHECKPOINT;
BEGIN;
SELECT clock_timestamp() AS t0 \gset
SELECT :'which' = 'rollback' AS is_rb \gset
\if :is_rb
SELECT status FROM bkperf.rollback_to_snapshot('1',
    (SELECT max(snapshot_id) FROM bkperf.backup_pitr_snapshots WHERE tenant_id = '1')) \g /dev/null
\else
SELECT :'which' = 'bare_nocapture' AS no_capture \gset
\if :no_capture
-- Context only: the same DML with the capture triggers off (FK triggers stay).
ALTER TABLE bench.parent DISABLE TRIGGER USER;
ALTER TABLE bench.child DISABLE TRIGGER USER;
ALTER TABLE bench.grandchild DISABLE TRIGGER USER;
SELECT clock_timestamp() AS t0 \gset
\endif
INSERT INTO bench.parent AS t SELECT s.* FROM bench.s_parent s JOIN bench.k_upsert k ON k.tbl = 'parent' AND k.id = s.id
    ON CONFLICT (tenant, id) DO UPDATE SET name = EXCLUDED.name, qty = EXCLUDED.qty;
INSERT INTO bench.child AS t SELECT s.* FROM bench.s_child s JOIN bench.k_upsert k ON k.tbl = 'child' AND k.id = s.id
    ON CONFLICT (tenant, id) DO UPDATE SET parent_id = EXCLUDED.parent_id, payload = EXCLUDED.payload, qty = EXCLUDED.qty;
INSERT INTO bench.grandchild AS t SELECT s.* FROM bench.s_grandchild s JOIN bench.k_upsert k ON k.tbl = 'grandchild' AND k.id = s.id
    ON CONFLICT (tenant, id) DO UPDATE SET child_id = EXCLUDED.child_id, payload = EXCLUDED.payload, qty = EXCLUDED.qty;
DELETE FROM bench.grandchild t USING bench.k_delete k WHERE k.tbl = 'grandchild' AND t.tenant = 1 AND t.id = k.id;
DELETE FROM bench.child t USING bench.k_delete k WHERE k.tbl = 'child' AND t.tenant = 1 AND t.id = k.id;
DELETE FROM bench.parent t USING bench.k_delete k WHERE k.tbl = 'parent' AND t.tenant = 1 AND t.id = k.id;
\endif
SELECT :'which' || '_ms|' || 1000 * extract(epoch FROM clock_timestamp() - :'t0'::timestamptz);
-- Both must leave tenant 1 exactly as at the snapshot.
SELECT :'which' || '_diff|' || (SELECT count(*) FROM (
    (SELECT to_jsonb(t) FROM bench.parent t WHERE tenant = 1 EXCEPT ALL SELECT to_jsonb(s) FROM bench.s_parent s)
    UNION ALL (SELECT to_jsonb(s) FROM bench.s_parent s EXCEPT ALL SELECT to_jsonb(t) FROM bench.parent t WHERE tenant = 1)
    UNION ALL (SELECT to_jsonb(t) FROM bench.child t WHERE tenant = 1 EXCEPT ALL SELECT to_jsonb(s) FROM bench.s_child s)
    UNION ALL (SELECT to_jsonb(s) FROM bench.s_child s EXCEPT ALL SELECT to_jsonb(t) FROM bench.child t WHERE tenant = 1)
    UNION ALL (SELECT to_jsonb(t) FROM bench.grandchild t WHERE tenant = 1 EXCEPT ALL SELECT to_jsonb(s) FROM bench.s_grandchild s)
    UNION ALL (SELECT to_jsonb(s) FROM bench.s_grandchild s EXCEPT ALL SELECT to_jsonb(t) FROM bench.grandchild t WHERE tenant = 1)) d);
ROLLBACK;
