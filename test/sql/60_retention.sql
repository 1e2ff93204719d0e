-- Grandfather-father-son retention on crafted histories: daily backups for
-- 200 days, gaps, failures, pinned backups, incremental chains, the
-- redundancy guard; dry run changes nothing; bad arguments.
\set VERBOSITY terse
-- generate_series over timestamptz steps in the session time zone: UTC, so
-- that the series does not cross a daylight saving change.
SET timezone = 'UTC';

-- A completed job of tenant t finished at a fixed UTC day and hour (test only),
-- so buckets do not depend on when the test runs: ages are relative to a
-- fixed "today" of 2026-06-30 by passing recovery_window = 0 unless needed.
CREATE FUNCTION pg_temp.job(t text, finished timestamptz, type text DEFAULT 'full',
                            status text DEFAULT 'completed', parent bigint DEFAULT NULL,
                            pinned boolean DEFAULT false, err text DEFAULT NULL)
RETURNS bigint LANGUAGE sql AS $$
    INSERT INTO bkperf.backup_jobs (tenant_id, job_type, job_status, started_at, finished_at,
                                    parent_job_id, pinned, error_message, label)
    VALUES (t, type, status, finished - interval '1 hour', finished, parent, pinned, err,
            to_char(finished AT TIME ZONE 'UTC', 'YYYY-MM-DD'))
    RETURNING job_id
$$;

-- r_daily: one full a day for 200 days up to 2026-06-30, except a gap in May
-- (no backups 2026-05-10 .. 2026-05-24) and a failed run on 2026-06-29.
SELECT count(pg_temp.job('r_daily', d + interval '2 hours'))
  FROM generate_series(timestamptz '2025-12-13 00:00+00', '2026-06-30 00:00+00', '1 day') d
 WHERE d NOT BETWEEN '2026-05-10 00:00+00' AND '2026-05-24 00:00+00';
SELECT pg_temp.job('r_daily', '2026-06-29 05:00+00', status => 'failed') IS NOT NULL AS created;

-- keep 7 daily, 4 weekly, 6 monthly, 1 yearly; no redundancy guard or window.
SELECT r.action, r.reason, j.label
  FROM bkperf.apply_retention('r_daily', 7, 4, 6, 1, 0, '0 days') r
  JOIN bkperf.backup_jobs j ON j.tenant_id = r.tenant_id AND j.job_id = r.job_id
 WHERE r.action = 'keep'
 ORDER BY j.finished_at DESC;
SELECT action, count(*) FROM bkperf.apply_retention('r_daily', 7, 4, 6, 1, 0, '0 days')
 GROUP BY 1 ORDER BY 1;

-- The dry run (the default) changed nothing.
SELECT job_status, count(*) FROM bkperf.backup_jobs WHERE tenant_id = 'r_daily' GROUP BY 1 ORDER BY 1;

-- Applied: the unretained jobs become 'expired', nothing is deleted; a second
-- run finds only what it kept.
SELECT count(*) AS expired_now
  FROM bkperf.apply_retention('r_daily', 7, 4, 6, 1, 0, '0 days', dry_run => false)
 WHERE action = 'expire';
SELECT job_status, count(*) FROM bkperf.backup_jobs WHERE tenant_id = 'r_daily' GROUP BY 1 ORDER BY 1;
SELECT action, count(*) FROM bkperf.apply_retention('r_daily', 7, 4, 6, 1, 0, '0 days', dry_run => false)
 GROUP BY 1 ORDER BY 1;

-- r_chain: a weekly full with daily incrementals; a pinned old full; an
-- errored backup; the redundancy guard keeps two fulls even with keep_* = 0.
SELECT pg_temp.job('r_chain', '2026-01-01 01:00+00', pinned => true) IS NOT NULL AS created;
SELECT pg_temp.job('r_chain', '2026-03-01 01:00+00', err => 'checksum mismatch') IS NOT NULL AS created;
WITH f1 AS (SELECT pg_temp.job('r_chain', '2026-06-01 01:00+00') AS id),
     i1 AS (SELECT pg_temp.job('r_chain', '2026-06-02 01:00+00', 'incremental', parent => id) AS id FROM f1),
     i2 AS (SELECT pg_temp.job('r_chain', '2026-06-03 01:00+00', 'incremental', parent => id) AS id FROM i1)
SELECT count(*) FROM i2;
WITH f2 AS (SELECT pg_temp.job('r_chain', '2026-06-08 01:00+00') AS id),
     i3 AS (SELECT pg_temp.job('r_chain', '2026-06-09 01:00+00', 'incremental', parent => id) AS id FROM f2)
SELECT count(*) FROM i3;
SELECT pg_temp.job('r_chain', '2026-06-10 01:00+00') IS NOT NULL AS created;

-- Only one daily slot: the newest (a full) is kept; the redundancy guard (2)
-- keeps the two newest fulls; the pinned and the errored jobs stay; the
-- rest expires.
SELECT j.label, j.job_type, r.action, r.reason
  FROM bkperf.apply_retention('r_chain', 1, 0, 0, 0, 2, '0 days') r
  JOIN bkperf.backup_jobs j ON j.tenant_id = r.tenant_id AND j.job_id = r.job_id
 ORDER BY j.finished_at;
-- Keep the newest incremental by daily slot: its chain (incremental -> full) is kept.
SELECT j.label, j.job_type, r.action, r.reason
  FROM bkperf.apply_retention('r_chain', 2, 0, 0, 0, 0, '0 days') r
  JOIN bkperf.backup_jobs j ON j.tenant_id = r.tenant_id AND j.job_id = r.job_id
 WHERE j.label BETWEEN '2026-06-01' AND '2026-06-09'
 ORDER BY j.finished_at;
-- The recovery window keeps everything inside it and the newest full before it.
SELECT count(*) FILTER (WHERE reason = 'window') AS window_kept,
       count(*) FILTER (WHERE action = 'expire') AS expired
  FROM bkperf.apply_retention('r_chain', 0, 0, 0, 0, 0, now() - '2026-06-02 12:00+00'::timestamptz);

-- All tenants at once (tenant NULL) covers both.
SELECT tenant_id, count(*) FROM bkperf.apply_retention(NULL, 7, 4, 6, 1, 2, '0 days')
 WHERE tenant_id LIKE 'r\_%' GROUP BY 1 ORDER BY 1;

-- Bad arguments.
SELECT * FROM bkperf.apply_retention('r_chain', -1);
SELECT * FROM bkperf.apply_retention('r_chain', min_redundancy => NULL);
SELECT * FROM bkperf.apply_retention('r_chain', recovery_window => '-1 day');
SELECT * FROM bkperf.apply_retention('r_chain', dry_run => NULL);
-- Unknown tenant: nothing to decide, no rows.
SELECT count(*) FROM bkperf.apply_retention('r_nobody');
\set VERBOSITY default
