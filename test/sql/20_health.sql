-- Backup health: constraints, crafted histories, score caps, policy overrides,
-- statistics against hand-computed values, bad input.

-- A helper that records one backup job finished `age` ago (test only).
CREATE FUNCTION pg_temp.job(tenant text, age interval, status text DEFAULT 'completed',
                            type text DEFAULT 'full', took interval DEFAULT '1 hour',
                            verify text DEFAULT 'verified', size bigint DEFAULT 1000)
RETURNS void LANGUAGE sql AS $$
    INSERT INTO bkperf.backup_jobs (tenant_id, job_type, job_status, created_at, started_at,
                                    finished_at, backup_size_bytes, stored_size_bytes,
                                    verify_status, verified_at)
    VALUES (tenant, type, status, now() - age - took, now() - age - took, now() - age,
            size, size / 2, verify, CASE WHEN verify <> 'unverified' THEN now() - age END)
$$;

-- Constraints reject bad rows, naming the constraint (terse: the failing row has times).
\set VERBOSITY terse
INSERT INTO bkperf.backup_jobs (tenant_id, job_type) VALUES ('h_bad', 'weekly');
INSERT INTO bkperf.backup_jobs (tenant_id, job_type, job_status) VALUES ('h_bad', 'full', 'done');
INSERT INTO bkperf.backup_jobs (tenant_id, job_type, backup_size_bytes) VALUES ('h_bad', 'full', -1);
INSERT INTO bkperf.backup_jobs (tenant_id, job_type, started_at, finished_at)
VALUES ('h_bad', 'full', now(), now() - interval '1 second');
INSERT INTO bkperf.backup_jobs (tenant_id, job_type, job_status) VALUES ('h_bad', 'full', 'completed');
INSERT INTO bkperf.backup_jobs (tenant_id, job_type, parent_job_id) VALUES ('h_bad', 'full', 1);
INSERT INTO bkperf.backup_jobs (tenant_id, job_type, wal_start_lsn, wal_stop_lsn)
VALUES ('h_bad', 'full', '0/20', '0/10');
INSERT INTO bkperf.backup_jobs (tenant_id, job_type) VALUES (NULL, 'full');
INSERT INTO bkperf.backup_jobs (tenant_id, job_type) VALUES ('', 'full');
INSERT INTO bkperf.backup_jobs (tenant_id, job_type, verify_status) VALUES ('h_bad', 'full', 'verified');
SELECT count(*) AS bad_rows_stored FROM bkperf.backup_jobs WHERE tenant_id = 'h_bad';
\set VERBOSITY default

-- healthy: a verified daily full for 10 days, the last one 2 hours ago.
SELECT pg_temp.job('h_healthy', interval '2 hours' + n * interval '1 day')
  FROM generate_series(0, 9) n;
-- latest failed: the same, then a failed run.
SELECT pg_temp.job('h_latest_failed', interval '3 hours' + n * interval '1 day')
  FROM generate_series(0, 9) n;
SELECT pg_temp.job('h_latest_failed', interval '1 hour', status => 'failed');
-- stale: the same history, but the newest backup is 60 hours old
-- (recency: 36 h allowed, 0 at 72 h -> 1 - 24/36 = 0.333).
SELECT pg_temp.job('h_stale', interval '60 hours' + n * interval '1 day')
  FROM generate_series(0, 9) n;
-- redundancy unmet: one full, then daily incrementals.
SELECT pg_temp.job('h_redundancy', interval '9 days 2 hours');
SELECT pg_temp.job('h_redundancy', interval '2 hours' + n * interval '1 day', type => 'incremental')
  FROM generate_series(0, 8) n;
-- never backed up successfully: only failures and a backup that failed verification.
SELECT pg_temp.job('h_never', n * interval '1 day', status => 'failed') FROM generate_series(1, 3) n;
SELECT pg_temp.job('h_never', interval '5 hours', verify => 'failed');
-- slow: healthy, but the last backup took 4x the median (duration component 0).
SELECT pg_temp.job('h_slow', interval '2 hours' + n * interval '1 day') FROM generate_series(1, 9) n;
SELECT pg_temp.job('h_slow', interval '2 hours', took => '4 hours');

SELECT t AS tenant, s.score, s.band, s.components -> 'caps' AS caps
  FROM unnest(ARRAY['h_healthy', 'h_latest_failed', 'h_stale', 'h_redundancy',
                    'h_never', 'h_slow', 'h_unknown']) t,
       bkperf.calculate_health_score(t) s
 ORDER BY t;

-- Component values of the crafted cases.
SELECT t AS tenant, c.key AS component, c.value -> 'value' AS value
  FROM unnest(ARRAY['h_healthy', 'h_stale', 'h_redundancy', 'h_never', 'h_slow']) t,
       jsonb_each((bkperf.calculate_health_score(t)).components) c
 WHERE c.key <> 'caps'
   AND (t = 'h_healthy' OR c.value -> 'value' IS DISTINCT FROM '1.000'::jsonb)
 ORDER BY t, c.key;

SELECT bkperf.calculate_health_score('h_unknown');

-- Per-tenant policy override: with one full required, h_redundancy is no longer capped.
INSERT INTO bkperf.health_policy_tenant (tenant_id, min_redundancy) VALUES ('h_redundancy', 1);
SELECT score, band, components -> 'caps' AS caps FROM bkperf.calculate_health_score('h_redundancy');
-- A weight of 0 removes a component: h_stale without recency weight.
INSERT INTO bkperf.health_policy_tenant (tenant_id, w_recency) VALUES ('h_stale', 0);
SELECT score, band FROM bkperf.calculate_health_score('h_stale');
-- Bad policies are rejected.
\set VERBOSITY terse
INSERT INTO bkperf.health_policy_tenant (tenant_id, min_redundancy) VALUES ('h_x', -1);
UPDATE bkperf.health_policy SET w_recency = 0, w_full_recency = 0, w_change_log = 0,
       w_success_ratio = 0, w_redundancy = 0, w_recovery_window = 0, w_verification = 0,
       w_duration = 0;
INSERT INTO bkperf.health_policy DEFAULT VALUES;
\set VERBOSITY default
DELETE FROM bkperf.health_policy_tenant;

-- Statistics against hand-computed values: 3 completed fulls of 100, 200, 600
-- bytes taking 1, 2 and 3 hours, one failure, one running, one older than the window.
SELECT pg_temp.job('h_stats', interval '1 day', took => '1 hour', size => 100);
SELECT pg_temp.job('h_stats', interval '2 days', took => '2 hours', size => 200);
SELECT pg_temp.job('h_stats', interval '3 days', took => '3 hours', size => 600, type => 'logical');
SELECT pg_temp.job('h_stats', interval '4 days', status => 'failed');
SELECT pg_temp.job('h_stats', interval '40 days', size => 99999);
INSERT INTO bkperf.backup_jobs (tenant_id, job_type, job_status, started_at)
VALUES ('h_stats', 'full', 'running', now());
SELECT successful, failed, running, avg_size_bytes, total_size_bytes,
       round(extract(epoch FROM now() - last_success_at) / 3600) AS last_success_hours_ago,
       mean_duration_s
  FROM bkperf.get_backup_statistics('h_stats');
SELECT successful, failed, running, avg_size_bytes, total_size_bytes, mean_duration_s
  FROM bkperf.get_backup_statistics('h_stats', '50 days');
SELECT successful, total_size_bytes FROM bkperf.get_backup_statistics('h_stats', '30 days', 'logical');
SELECT * FROM bkperf.get_backup_statistics('h_stats', '0 seconds');

-- PITR statistics work on an empty log: zero changes, no tables, no floor.
SELECT * FROM bkperf.calculate_pitr_stats('h_stats', now() - interval '1 day', now());

-- Bad input: clear errors, never a crash.
SELECT * FROM bkperf.calculate_health_score(NULL);
SELECT * FROM bkperf.get_backup_statistics(NULL);
SELECT * FROM bkperf.get_backup_statistics('h_stats', NULL);
SELECT * FROM bkperf.get_backup_statistics('h_stats', '-1 day');
SELECT * FROM bkperf.get_backup_statistics('h_stats', '30 days', 'weekly');
SELECT * FROM bkperf.get_backup_statistics('h_nobody');
SELECT * FROM bkperf.calculate_pitr_stats(NULL, now(), now());
SELECT * FROM bkperf.calculate_pitr_stats('h_stats', NULL, now());
SELECT * FROM bkperf.calculate_pitr_stats('h_stats', now(), now() - interval '1 day');
SELECT * FROM bkperf.calculate_pitr_stats('h_nobody', now() - interval '1 day', now());

-- Stale jobs: queued or running for longer than the interval.
INSERT INTO bkperf.backup_jobs (tenant_id, job_type, job_status, created_at)
VALUES ('h_stats', 'full', 'queued', now() - interval '3 days');
SELECT tenant_id, job_type, job_status FROM bkperf.stale_backup_jobs('1 day');

-- Privileges: a role without read access gets a permission error, not data.
\set VERBOSITY terse
CREATE ROLE bkperf_h_app;
SET ROLE bkperf_h_app;
SELECT * FROM bkperf.calculate_health_score('h_healthy');
SELECT * FROM bkperf.get_backup_statistics('h_healthy');
SELECT * FROM bkperf.refresh_backup_summaries();
RESET ROLE;
DROP ROLE bkperf_h_app;
\set VERBOSITY default
