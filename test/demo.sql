-- The bkperf demo (run by test/demo on a throwaway cluster).
\pset footer off
SET client_min_messages = warning;
CREATE EXTENSION bkperf;

\echo '== Backup health: 300 tenants, 60 days of nightly backups (some tenants in trouble)'
INSERT INTO bkperf.backup_jobs (tenant_id, job_type, job_status, created_at, started_at,
                                finished_at, backup_size_bytes, stored_size_bytes,
                                verify_status, verified_at, error_message)
SELECT 'tenant-' || lpad(t::text, 3, '0'),
       CASE WHEN d % 7 = 0 THEN 'full' ELSE 'incremental' END,
       CASE WHEN (t % 50 = 0 AND d < 4) OR (t * 7 + d) % 41 = 0 THEN 'failed' ELSE 'completed' END,
       now() - d * interval '1 day' - (t % 20) * interval '1 hour',
       now() - d * interval '1 day' - (t % 20) * interval '1 hour',
       now() - d * interval '1 day' - (t % 20) * interval '1 hour' + (20 + t % 40) * interval '1 minute',
       (5 + t % 20) * 1000000000::bigint, (2 + t % 9) * 1000000000::bigint,
       CASE WHEN d % 3 = 0 THEN 'verified' ELSE 'unverified' END,
       CASE WHEN d % 3 = 0 THEN now() - d * interval '1 day' END,
       CASE WHEN (t % 50 = 0 AND d < 4) OR (t * 7 + d) % 41 = 0 THEN 'could not connect to storage' END
  FROM generate_series(1, 300) t, generate_series(
           CASE WHEN t % 37 = 0 THEN 3 ELSE 0 END,   -- every 37th tenant: nothing for 3 days
           CASE WHEN t % 60 = 0 THEN 4 ELSE 60 END) d; -- every 60th: only 5 days of history

\echo
\echo '== Refresh the materialized health views (concurrently; pg_cron runs this hourly)'
SELECT view_name, refreshed, round(duration_ms::numeric, 1) AS ms, note
  FROM bkperf.refresh_backup_summaries();

\echo
\echo '== Health report: tenants per band'
SELECT band, count(*) AS tenants, round(avg(score)::numeric, 1) AS mean_score
  FROM bkperf.health_report() GROUP BY band ORDER BY min(score);

\echo
\echo '== The ten least healthy tenants, with the caps that apply'
SELECT tenant_id, score, band, failed_jobs, components -> 'caps' AS caps,
       round((components -> 'recency' ->> 'value')::numeric, 2) AS recency
  FROM bkperf.health_report() ORDER BY score, tenant_id LIMIT 10;

\echo
\echo '== One tenant in detail: live score components'
SELECT c.key AS component, c.value ->> 'value' AS value, c.value ->> 'weight' AS weight
  FROM jsonb_each((bkperf.calculate_health_score('tenant-050')).components) c
 WHERE c.key <> 'caps' ORDER BY c.key;

\echo
\echo '== Backup statistics of tenant-050, last 30 days (all jobs, then fulls only)'
SELECT successful, failed, running, pg_size_pretty(avg_size_bytes::bigint) AS avg_size,
       pg_size_pretty(total_size_bytes) AS total, round(mean_duration_s::numeric) AS mean_s
  FROM bkperf.get_backup_statistics('tenant-050');
SELECT successful, failed, pg_size_pretty(total_size_bytes) AS total
  FROM bkperf.get_backup_statistics('tenant-050', '30 days', 'full');

\echo
\echo '== A second refresh while the first is still running returns at once'
BEGIN;
SELECT view_name, refreshed, note FROM bkperf.refresh_backup_summaries();
\! psql -X -q -At -c "SELECT view_name || ': ' || coalesce(note, 'refreshed') FROM bkperf.refresh_backup_summaries()"
COMMIT;
