-- Body of test/bench/health: load a synthetic history, time the health
-- functions (server-side clock), print one JSON object.
SET client_min_messages = warning;
CREATE EXTENSION IF NOT EXISTS bkperf;

-- Daily jobs per tenant for :jobs days: a full every 7th day, incrementals
-- otherwise; 3% failed, 80% of the completed ones verified.
INSERT INTO bkperf.backup_jobs (tenant_id, job_type, job_status, created_at, started_at,
                                finished_at, backup_size_bytes, stored_size_bytes,
                                verify_status, verified_at)
SELECT 't' || t, CASE WHEN d % 7 = 0 THEN 'full' ELSE 'incremental' END,
       CASE WHEN (t * 31 + d) % 33 = 0 THEN 'failed' ELSE 'completed' END,
       now() - d * interval '1 day', now() - d * interval '1 day',
       now() - d * interval '1 day' + (30 + (t + d) % 60) * interval '1 minute',
       1000000 + (t * d) % 5000000, 400000 + (t * d) % 2000000,
       CASE WHEN (t + d) % 5 = 0 THEN 'unverified' ELSE 'verified' END,
       CASE WHEN (t + d) % 5 = 0 THEN NULL ELSE now() - d * interval '1 day' + interval '2 hours' END
  FROM generate_series(1, :tenants) t, generate_series(1, :jobs) d;
VACUUM ANALYZE bkperf.backup_jobs;
SELECT count(*) FROM bkperf.refresh_backup_summaries(false) \g /dev/null

CREATE TEMP TABLE runs (measure text, run int, ms float8);

-- Run `sql` and return its elapsed milliseconds.
CREATE FUNCTION pg_temp.time_ms(sql text) RETURNS float8 LANGUAGE plpgsql AS $$
DECLARE t0 timestamptz := clock_timestamp();
BEGIN
    EXECUTE sql;
    RETURN 1000 * extract(epoch FROM clock_timestamp() - t0);
END $$;

-- 1% new jobs, so a concurrent refresh has a real difference to apply.
CREATE FUNCTION pg_temp.churn() RETURNS void LANGUAGE sql AS $$
    INSERT INTO bkperf.backup_jobs (tenant_id, job_type, job_status, started_at, finished_at,
                                    backup_size_bytes)
    SELECT 't' || (random() * (SELECT count(*) FROM bkperf.mv_backup_health_summary))::int + 1,
           'incremental', 'completed', now() - interval '1 hour', now(), 1000
      FROM generate_series(1, (SELECT count(*) / 100 FROM bkperf.mv_backup_health_summary));
$$;

-- Warm the caches and the saved plans.
SELECT count(*) FROM (SELECT bkperf.calculate_health_score('t' || g) FROM generate_series(1, 200) g) x \g /dev/null

DO $$
DECLARE n int := least(2000, (SELECT count(*) FROM bkperf.mv_backup_health_summary));
BEGIN
    FOR r IN 1..3 LOOP
        INSERT INTO runs SELECT 'score', r, pg_temp.time_ms(format(
            'SELECT count(s.score) FROM generate_series(1, %s) g, '
            'bkperf.calculate_health_score(''t'' || (g * 7919 %% %s + 1)) s', n, n)) / n;
        INSERT INTO runs SELECT 'report', r,
            pg_temp.time_ms('SELECT count(score) FROM bkperf.health_report()');
    END LOOP;
END $$;

-- Refreshes: each run follows 1% churn; run outside a DO block so each
-- refresh is its own transaction, as under pg_cron.
SELECT pg_temp.churn() \g /dev/null
INSERT INTO runs SELECT 'refresh_plain', 1, pg_temp.time_ms('SELECT bkperf.refresh_backup_summaries(false)');
SELECT pg_temp.churn() \g /dev/null
INSERT INTO runs SELECT 'refresh_concurrent', 1, pg_temp.time_ms('SELECT bkperf.refresh_backup_summaries(true)');
SELECT pg_temp.churn() \g /dev/null
INSERT INTO runs SELECT 'refresh_plain', 2, pg_temp.time_ms('SELECT bkperf.refresh_backup_summaries(false)');
SELECT pg_temp.churn() \g /dev/null
INSERT INTO runs SELECT 'refresh_concurrent', 2, pg_temp.time_ms('SELECT bkperf.refresh_backup_summaries(true)');
SELECT pg_temp.churn() \g /dev/null
INSERT INTO runs SELECT 'refresh_plain', 3, pg_temp.time_ms('SELECT bkperf.refresh_backup_summaries(false)');
SELECT pg_temp.churn() \g /dev/null
INSERT INTO runs SELECT 'refresh_concurrent', 3, pg_temp.time_ms('SELECT bkperf.refresh_backup_summaries(true)');

SELECT json_build_object(
    'tenants', :tenants, 'jobs_per_tenant', :jobs,
    'rows', (SELECT count(*) FROM bkperf.backup_jobs),
    'score_ms_per_tenant', (SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY ms) FROM runs WHERE measure = 'score'),
    'report_ms', (SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY ms) FROM runs WHERE measure = 'report'),
    'refresh_plain_ms', (SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY ms) FROM runs WHERE measure = 'refresh_plain'),
    'refresh_concurrent_ms', (SELECT percentile_cont(0.5) WITHIN GROUP (ORDER BY ms) FROM runs WHERE measure = 'refresh_concurrent'),
    'runs', (SELECT json_agg(runs ORDER BY measure, run) FROM runs));
