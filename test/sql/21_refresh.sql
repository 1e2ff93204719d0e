-- Health views: plain, concurrent and unpopulated refresh; the report reads
-- the views and agrees with the live score; every refresh is recorded.
-- (Uses the h_* tenants of 20_health.)
TRUNCATE bkperf.refresh_log;

SELECT view_name, refreshed, note, duration_ms >= 0 AS timed
  FROM bkperf.refresh_backup_summaries();
SELECT view_name, refreshed, note FROM bkperf.refresh_backup_summaries(false);

-- The report has every tenant with jobs, and agrees with calculate_health_score.
SELECT count(*) AS tenants,
       count(*) FILTER (WHERE (r.score, r.band) IS NOT DISTINCT FROM
                              (SELECT (s.score, s.band) FROM bkperf.calculate_health_score(r.tenant_id) s))
           AS agree_with_live_score
  FROM bkperf.health_report() r;
SELECT tenant_id, score, band, total_jobs, successful_jobs, failed_jobs,
       completed_size_bytes, backups_last_7_days, now() - as_of < interval '1 minute' AS recent_as_of
  FROM bkperf.health_report()
 WHERE tenant_id LIKE 'h\_%'
 ORDER BY tenant_id;
SELECT tenant_id, completed_jobs, total_size_bytes, total_stored_bytes, backups_last_7_days
  FROM bkperf.mv_tenant_backup_summary WHERE tenant_id IN ('h_healthy', 'h_stats') ORDER BY 1;

-- New jobs appear after the next refresh, not before.
INSERT INTO bkperf.backup_jobs (tenant_id, job_type, job_status, started_at, finished_at)
VALUES ('h_new', 'full', 'completed', now() - interval '1 hour', now());
SELECT count(*) AS before_refresh FROM bkperf.health_report() WHERE tenant_id = 'h_new';
SELECT view_name, refreshed FROM bkperf.refresh_backup_summaries();
SELECT tenant_id, total_jobs, band FROM bkperf.health_report() WHERE tenant_id = 'h_new';

-- An unpopulated view: the report says how to fix it; a concurrent refresh
-- falls back to a plain one.
REFRESH MATERIALIZED VIEW bkperf.mv_backup_health_summary WITH NO DATA;
SELECT count(*) FROM bkperf.health_report();
SELECT view_name, refreshed, note FROM bkperf.refresh_backup_summaries(true);
SELECT count(*) > 0 AS report_back FROM bkperf.health_report();

-- Twice in one transaction: the lock is our own, so both refresh.
BEGIN;
SELECT view_name, refreshed, note FROM bkperf.refresh_backup_summaries();
SELECT view_name, refreshed, note FROM bkperf.refresh_backup_summaries();
COMMIT;

SELECT view_name, mode, note, count(*)
  FROM bkperf.refresh_log GROUP BY 1, 2, 3 ORDER BY 1, 2, 3;

SELECT * FROM bkperf.refresh_backup_summaries(NULL);
