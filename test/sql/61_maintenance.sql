-- Operations: change-log partitions ahead of time, rows moved out of the
-- default partition, pruning that respects snapshots, run_maintenance, and
-- scheduling errors without pg_cron (not installed in this database).
\set VERBOSITY terse

-- track_table (in earlier tests) created today's partition and the next
-- seven days'; a second call creates none, and no day lacks its partition.
SELECT count(*) AS created FROM bkperf.ensure_log_partitions(7);
SELECT count(*) AS days_without_partition
  FROM generate_series(0, 7) d
 WHERE to_regclass('bkperf.backup_transaction_logs_p'
                   || to_char((now() AT TIME ZONE 'UTC')::date + d, 'YYYYMMDD')) IS NULL;
-- Today's changes land in today's partition, not the default.
INSERT INTO bkperf.backup_transaction_logs (tenant_id, table_name, operation, record_id)
VALUES ('m_t', 'public.m', 'INSERT', '{"id": 1}');
SELECT tableoid::regclass::text ~ '^bkperf\.backup_transaction_logs_p\d{8}$' AS in_daily_partition
  FROM bkperf.backup_transaction_logs WHERE tenant_id = 'm_t';

-- A row for a day without a partition goes to the default partition; creating
-- that day's partition moves it there.
INSERT INTO bkperf.backup_transaction_logs (tenant_id, table_name, operation, record_id, changed_at)
VALUES ('m_t', 'public.m', 'INSERT', '{"id": 2}', now() + interval '12 days');
SELECT tableoid::regclass::text AS partition FROM bkperf.backup_transaction_logs
 WHERE tenant_id = 'm_t' AND record_id = '{"id": 2}';
SELECT count(*) > 0 AS created, sum(rows_moved) AS moved FROM bkperf.ensure_log_partitions(12);
SELECT tableoid::regclass::text ~ '_p\d{8}$' AS in_daily_partition FROM bkperf.backup_transaction_logs
 WHERE tenant_id = 'm_t' AND record_id = '{"id": 2}';
SELECT count(*) AS left_in_default FROM bkperf.backup_transaction_logs_default;
SELECT * FROM bkperf.ensure_log_partitions(-1);

-- Pruning: a partition of a day 10 days ago with 2 rows, and an old row in
-- the default partition.
CREATE TABLE bkperf.backup_transaction_logs_old PARTITION OF bkperf.backup_transaction_logs
    FOR VALUES FROM ((date_trunc('day', now() AT TIME ZONE 'UTC') - interval '10 days') AT TIME ZONE 'UTC')
                 TO ((date_trunc('day', now() AT TIME ZONE 'UTC') - interval '9 days') AT TIME ZONE 'UTC');
INSERT INTO bkperf.backup_transaction_logs (tenant_id, table_name, operation, record_id, changed_at)
SELECT 'm_t', 'public.m', 'DELETE', jsonb_build_object('id', g),
       (date_trunc('day', now() AT TIME ZONE 'UTC') - interval '10 days' + interval '6 hours') AT TIME ZONE 'UTC'
  FROM generate_series(3, 4) g;
SELECT tableoid::regclass AS partition, count(*) FROM bkperf.backup_transaction_logs
 WHERE tenant_id = 'm_t' AND record_id IN ('{"id": 3}', '{"id": 4}') GROUP BY 1;
INSERT INTO bkperf.backup_transaction_logs (tenant_id, table_name, operation, record_id, changed_at)
VALUES ('m_t', 'public.m', 'DELETE', '{"id": 5}', now() - interval '30 days');

-- A snapshot 20 days old (recorded by hand, without log_scan_from) needs the
-- log from a day before it: nothing after
-- that is dropped.
INSERT INTO bkperf.backup_pitr_snapshots (tenant_id, created_at, snapshot, wal_lsn)
VALUES ('m_t', now() - interval '20 days', pg_current_snapshot(), pg_current_wal_lsn());
SELECT partition_name, action, rows_removed FROM bkperf.prune_transaction_logs('5 days');
SELECT count(*) AS old_rows_left FROM bkperf.backup_transaction_logs WHERE tenant_id = 'm_t';

-- Without the snapshot the old partition is dropped whole, the old default
-- row deleted, and the log's floor raised to the end of what was dropped.
DELETE FROM bkperf.backup_pitr_snapshots WHERE tenant_id = 'm_t';
SELECT partition_name, action, rows_removed,
       range_to <= now() - interval '5 days' AS before_cutoff
  FROM bkperf.prune_transaction_logs('5 days');
SELECT count(*) AS rows_left FROM bkperf.backup_transaction_logs WHERE tenant_id = 'm_t';
SELECT pruned_before = (date_trunc('day', now() AT TIME ZONE 'UTC') - interval '9 days') AT TIME ZONE 'UTC'
       AS floor_raised_to_partition_end
  FROM bkperf.log_retention_state;
SELECT to_regclass('bkperf.backup_transaction_logs_old') IS NULL AS old_partition_gone;
SELECT * FROM bkperf.prune_transaction_logs(NULL);
SELECT * FROM bkperf.prune_transaction_logs('-1 day');
DELETE FROM bkperf.backup_transaction_logs WHERE tenant_id = 'm_t';
UPDATE bkperf.log_retention_state SET pruned_before = NULL;

-- run_maintenance: every task reports; retention applies the policy table.
INSERT INTO bkperf.retention_policy (tenant_id, keep_daily, keep_weekly, keep_monthly,
                                     min_redundancy, recovery_window)
VALUES ('m_ret', 1, 0, 0, 1, '0 days');
INSERT INTO bkperf.backup_jobs (tenant_id, job_type, job_status, started_at, finished_at)
SELECT 'm_ret', 'full', 'completed', now() - g * interval '1 day' - interval '1 hour',
       now() - g * interval '1 day'
  FROM generate_series(1, 3) g;
SELECT task, status FROM bkperf.run_maintenance();
SELECT job_status, count(*) FROM bkperf.backup_jobs WHERE tenant_id = 'm_ret' GROUP BY 1 ORDER BY 1;
SELECT task, status, detail FROM bkperf.run_maintenance('{retention}');
SELECT * FROM bkperf.run_maintenance('{vacuum}');
DELETE FROM bkperf.retention_policy;

\set SHOW_CONTEXT never
-- Scheduling needs pg_cron in this database: a clear error whose hint has
-- the exact calls to run in the pg_cron database instead.
SELECT * FROM bkperf.maintenance_jobs('0 * * * *', '* * * * *', '30 3 * * *');
\set VERBOSITY default
SELECT * FROM bkperf.schedule_maintenance();
SELECT * FROM bkperf.unschedule_maintenance();
SELECT * FROM bkperf.schedule_maintenance(NULL);

\set SHOW_CONTEXT errors
-- Only a privileged role may run maintenance.
CREATE ROLE bkperf_m_app;
SET ROLE bkperf_m_app;
\set VERBOSITY terse
SELECT * FROM bkperf.run_maintenance();
SELECT * FROM bkperf.schedule_maintenance();
RESET ROLE;
DROP ROLE bkperf_m_app;
\set VERBOSITY default
