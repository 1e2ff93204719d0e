-- The change_log component of the health score: how much of the time since
-- the last restorable backup's start the change log covers.  Not applicable
-- while nothing is tracked; measured from change_log_floor() once a table is.
CREATE TABLE hc_orders (id bigint PRIMARY KEY, tenant text NOT NULL, qty int);

-- hc_covered backed up after tracking starts; hc_gap's last backup started
-- 6 hours before it (1 - 6/24 = 0.75).
INSERT INTO bkperf.backup_jobs (tenant_id, job_type, job_status, created_at, started_at, finished_at)
VALUES ('hc_gap', 'full', 'completed', now() - interval '6 hours', now() - interval '6 hours',
        now() - interval '5 hours');

SELECT bkperf.change_log_floor() IS NULL AS nothing_tracked,
       (bkperf.calculate_health_score('hc_gap')).components -> 'change_log' ->> 'value' AS change_log;

SELECT bkperf.track_table('hc_orders', 'tenant');
SELECT bkperf.change_log_floor() = (SELECT tracked_at FROM bkperf.tracked_tables
                                     WHERE relid = 'hc_orders'::regclass) AS floor_is_tracking_start;

INSERT INTO bkperf.backup_jobs (tenant_id, job_type, job_status, started_at, finished_at)
VALUES ('hc_covered', 'full', 'completed', clock_timestamp(), clock_timestamp() + interval '1 minute');

SELECT t AS tenant,
       round(((bkperf.calculate_health_score(t)).components -> 'change_log' ->> 'value')::numeric, 2)
           AS change_log
  FROM unnest(ARRAY['hc_covered', 'hc_gap']) t ORDER BY t;

-- Pruning raises the floor; a backup older than the floor by a whole
-- rpo_target scores 0.
UPDATE bkperf.log_retention_state SET pruned_before = now() + interval '1 day';
SELECT (bkperf.calculate_health_score('hc_covered')).components -> 'change_log' ->> 'value' AS change_log;
UPDATE bkperf.log_retention_state SET pruned_before = NULL;

SELECT bkperf.untrack_table('hc_orders');
SELECT bkperf.change_log_floor() IS NULL AS nothing_tracked_again;
DROP TABLE hc_orders;
DELETE FROM bkperf.backup_jobs WHERE tenant_id LIKE 'hc\_%';
