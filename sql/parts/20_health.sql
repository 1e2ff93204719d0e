/*
 * Backup health: scoring policy, the per-tenant inputs of the health score,
 * the materialized health views, and the C functions that score, report,
 * summarise and refresh.
 */

-- Scoring policy: one default row, plus per-tenant overrides (NULL = default).
CREATE TABLE @extschema@.health_policy (
    singleton           boolean NOT NULL DEFAULT true,
    rpo_target          interval NOT NULL DEFAULT '24 hours',
    rpo_grace           interval NOT NULL DEFAULT '12 hours',
    full_max_age        interval NOT NULL DEFAULT '7 days',
    min_redundancy      integer NOT NULL DEFAULT 2,
    recovery_window     interval NOT NULL DEFAULT '7 days',
    duration_tolerance  double precision NOT NULL DEFAULT 1.5,
    w_recency           double precision NOT NULL DEFAULT 30,
    w_full_recency      double precision NOT NULL DEFAULT 15,
    w_change_log        double precision NOT NULL DEFAULT 10,
    w_success_ratio     double precision NOT NULL DEFAULT 15,
    w_redundancy        double precision NOT NULL DEFAULT 10,
    w_recovery_window   double precision NOT NULL DEFAULT 5,
    w_verification      double precision NOT NULL DEFAULT 10,
    w_duration          double precision NOT NULL DEFAULT 5,
    CONSTRAINT health_policy_pkey PRIMARY KEY (singleton),
    CONSTRAINT health_policy_singleton_check CHECK (singleton),
    CONSTRAINT health_policy_intervals_check CHECK
        (rpo_target > '0' AND rpo_grace >= '0' AND full_max_age > '0' AND recovery_window >= '0'),
    CONSTRAINT health_policy_min_redundancy_check CHECK (min_redundancy >= 0),
    CONSTRAINT health_policy_duration_tolerance_check CHECK (duration_tolerance >= 1),
    CONSTRAINT health_policy_weights_check CHECK
        (w_recency >= 0 AND w_full_recency >= 0 AND w_change_log >= 0 AND w_success_ratio >= 0
         AND w_redundancy >= 0 AND w_recovery_window >= 0 AND w_verification >= 0 AND w_duration >= 0
         AND w_recency + w_full_recency + w_change_log + w_success_ratio + w_redundancy
             + w_recovery_window + w_verification + w_duration > 0)
);
INSERT INTO @extschema@.health_policy DEFAULT VALUES;
CREATE TRIGGER singleton_take_restored BEFORE INSERT ON @extschema@.health_policy
    FOR EACH ROW WHEN (@extschema@.restoring())
    EXECUTE FUNCTION @extschema@.singleton_take_restored();

CREATE TABLE @extschema@.health_policy_tenant (
    tenant_id           text COLLATE "C" NOT NULL,
    rpo_target          interval,
    rpo_grace           interval,
    full_max_age        interval,
    min_redundancy      integer,
    recovery_window     interval,
    duration_tolerance  double precision,
    w_recency           double precision,
    w_full_recency      double precision,
    w_change_log        double precision,
    w_success_ratio     double precision,
    w_redundancy        double precision,
    w_recovery_window   double precision,
    w_verification      double precision,
    w_duration          double precision,
    CONSTRAINT health_policy_tenant_pkey PRIMARY KEY (tenant_id),
    CONSTRAINT health_policy_tenant_intervals_check CHECK
        (rpo_target > '0' AND rpo_grace >= '0' AND full_max_age > '0' AND recovery_window >= '0'),
    CONSTRAINT health_policy_tenant_min_redundancy_check CHECK (min_redundancy >= 0),
    CONSTRAINT health_policy_tenant_duration_tolerance_check CHECK (duration_tolerance >= 1),
    CONSTRAINT health_policy_tenant_weights_check CHECK
        (w_recency >= 0 AND w_full_recency >= 0 AND w_change_log >= 0 AND w_success_ratio >= 0
         AND w_redundancy >= 0 AND w_recovery_window >= 0 AND w_verification >= 0 AND w_duration >= 0)
);

/*
 * Per-tenant inputs of the health score, one row per tenant that has backup
 * jobs.  "Restorable" means completed and not failed verification (expired
 * jobs are no longer 'completed').  Windows are relative to now().  The
 * health view materializes exactly these columns, so the live score and the
 * report share one definition.  No LATERAL subquery: Citus cannot push down
 * one without FROM that calls now().
 */
CREATE VIEW @extschema@.backup_health_inputs AS
SELECT j.tenant_id,
       pg_catalog.count(*) AS total_jobs,
       pg_catalog.count(*) FILTER (WHERE j.job_status = 'completed') AS successful_jobs,
       pg_catalog.count(*) FILTER (WHERE j.job_status = 'failed') AS failed_jobs,
       pg_catalog.max(j.created_at) AS last_backup_at,
       pg_catalog.max(j.finished_at) FILTER (WHERE j.job_status = 'completed') AS last_success_at,
       pg_catalog.max(j.finished_at) FILTER (WHERE (j.job_status = 'completed' AND j.verify_status <> 'failed')) AS last_restorable_at,
       pg_catalog.max(j.started_at) FILTER (WHERE (j.job_status = 'completed' AND j.verify_status <> 'failed')) AS last_restorable_started_at,
       pg_catalog.max(j.finished_at) FILTER (WHERE (j.job_status = 'completed' AND j.verify_status <> 'failed') AND j.job_type = 'full') AS last_full_at,
       pg_catalog.min(j.finished_at) FILTER (WHERE (j.job_status = 'completed' AND j.verify_status <> 'failed')) AS oldest_restorable_at,
       pg_catalog.count(*) FILTER (WHERE (j.job_status = 'completed' AND j.verify_status <> 'failed') AND j.job_type = 'full') AS valid_fulls,
       pg_catalog.count(*) FILTER (WHERE (j.created_at >= pg_catalog.now() - interval '30 days') AND j.job_status = 'completed') AS completed_30d,
       pg_catalog.count(*) FILTER (WHERE (j.created_at >= pg_catalog.now() - interval '30 days') AND j.job_status = 'failed') AS failed_30d,
       pg_catalog.count(*) FILTER (WHERE (j.created_at >= pg_catalog.now() - interval '30 days') AND j.job_status = 'completed'
                                   AND j.verify_status = 'verified') AS verified_30d,
       (pg_catalog.array_agg(j.job_status ORDER BY COALESCE(j.finished_at, j.started_at, j.created_at) DESC, j.job_id DESC)
            FILTER (WHERE j.job_status IN ('completed', 'failed')))[1] AS latest_finished_status,
       (pg_catalog.array_agg(pg_catalog.date_part('epoch', j.finished_at - j.started_at) ORDER BY j.finished_at DESC, j.job_id DESC)
            FILTER (WHERE j.job_status = 'completed'))[1] AS last_duration_s,
       pg_catalog.percentile_cont(0.5) WITHIN GROUP (ORDER BY pg_catalog.date_part('epoch', j.finished_at - j.started_at))
            FILTER (WHERE (j.created_at >= pg_catalog.now() - interval '30 days') AND j.job_status = 'completed') AS median_duration_30d_s,
       pg_catalog.now() AS computed_at
  FROM @extschema@.backup_jobs j
 GROUP BY j.tenant_id;

CREATE MATERIALIZED VIEW @extschema@.mv_backup_health_summary AS
SELECT * FROM @extschema@.backup_health_inputs;
CREATE UNIQUE INDEX mv_backup_health_summary_tenant_id
    ON @extschema@.mv_backup_health_summary (tenant_id);

CREATE MATERIALIZED VIEW @extschema@.mv_tenant_backup_summary AS
SELECT j.tenant_id,
       pg_catalog.count(*) AS completed_jobs,
       pg_catalog.sum(j.backup_size_bytes)::bigint AS total_size_bytes,
       pg_catalog.sum(j.stored_size_bytes)::bigint AS total_stored_bytes,
       pg_catalog.max(j.finished_at) AS last_backup_at,
       pg_catalog.count(*) FILTER (WHERE j.finished_at >= pg_catalog.now() - interval '7 days')
           AS backups_last_7_days,
       pg_catalog.now() AS computed_at
  FROM @extschema@.backup_jobs j
 WHERE j.job_status = 'completed'
 GROUP BY j.tenant_id;
CREATE UNIQUE INDEX mv_tenant_backup_summary_tenant_id
    ON @extschema@.mv_tenant_backup_summary (tenant_id);

-- Every refresh and every skipped overlapping call.  The id comes from a
-- sequence of the extension (not an identity column, whose sequence pg_dump
-- does not carry for an extension table), dumped with the table.
CREATE SEQUENCE @extschema@.refresh_log_refresh_id_seq AS bigint;
CREATE TABLE @extschema@.refresh_log (
    refresh_id      bigint NOT NULL DEFAULT nextval('@extschema@.refresh_log_refresh_id_seq'),
    view_name       text COLLATE "C" NOT NULL,
    started_at      timestamptz NOT NULL,
    duration_ms     double precision NOT NULL,
    mode            text NOT NULL,
    note            text,
    CONSTRAINT refresh_log_pkey PRIMARY KEY (refresh_id),
    CONSTRAINT refresh_log_mode_check CHECK (mode IN ('concurrent', 'plain', 'skipped'))
);

SELECT pg_catalog.pg_extension_config_dump('@extschema@.health_policy', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.health_policy_tenant', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.refresh_log', '');
ALTER SEQUENCE @extschema@.refresh_log_refresh_id_seq OWNED BY @extschema@.refresh_log.refresh_id;
SELECT pg_catalog.pg_extension_config_dump('@extschema@.refresh_log_refresh_id_seq', '');

/*
 * A tenant is known to bkperf when it has a backup job, a snapshot or a
 * change-log row; the statistics functions refuse unknown tenants.
 */
-- PL/pgSQL, not SQL: Citus cannot plan a SQL function's parameters.
CREATE FUNCTION @extschema@.tenant_known(tenant text)
RETURNS boolean
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RETURN EXISTS (SELECT 1 FROM @extschema@.backup_jobs j WHERE j.tenant_id = tenant)
        OR EXISTS (SELECT 1 FROM @extschema@.backup_pitr_snapshots s WHERE s.tenant_id = tenant)
        OR EXISTS (SELECT 1 FROM @extschema@.backup_transaction_logs l WHERE l.tenant_id = tenant);
END
$$;

CREATE FUNCTION @extschema@.calculate_health_score(tenant text,
    OUT score double precision, OUT band text, OUT components jsonb)
RETURNS record
LANGUAGE c STABLE
AS 'MODULE_PATHNAME', 'bkperf_calculate_health_score';

CREATE FUNCTION @extschema@.health_report()
RETURNS TABLE (tenant_id text, score double precision, band text,
               total_jobs bigint, successful_jobs bigint, failed_jobs bigint,
               last_backup_at timestamptz, last_success_at timestamptz,
               completed_size_bytes bigint, backups_last_7_days bigint,
               components jsonb, as_of timestamptz)
LANGUAGE c STABLE
-- One pass over a small view: compiling it with LLVM costs more than it saves.
SET jit = off
AS 'MODULE_PATHNAME', 'bkperf_health_report';

CREATE FUNCTION @extschema@.get_backup_statistics(tenant text,
    since interval DEFAULT '30 days', job_type text DEFAULT NULL,
    OUT successful bigint, OUT failed bigint, OUT running bigint,
    OUT avg_size_bytes double precision, OUT total_size_bytes numeric,
    OUT last_success_at timestamptz, OUT mean_duration_s double precision)
RETURNS record
LANGUAGE c STABLE
AS 'MODULE_PATHNAME', 'bkperf_get_backup_statistics';

CREATE FUNCTION @extschema@.calculate_pitr_stats(tenant text,
    from_ts timestamptz, to_ts timestamptz,
    OUT inserts bigint, OUT updates bigint, OUT deletes bigint,
    OUT tables_touched bigint, OUT first_change_at timestamptz,
    OUT last_change_at timestamptz, OUT earliest_restorable_at timestamptz,
    OUT snapshots bigint)
RETURNS record
LANGUAGE c STABLE
AS 'MODULE_PATHNAME', 'bkperf_calculate_pitr_stats';

-- PL/pgSQL, not SQL: Citus cannot plan a SQL function's parameters.
CREATE FUNCTION @extschema@.stale_backup_jobs(older_than interval DEFAULT '1 day')
RETURNS SETOF @extschema@.backup_jobs
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RETURN QUERY
    SELECT j.* FROM @extschema@.backup_jobs j
     WHERE j.job_status IN ('queued', 'running')
       AND j.created_at < pg_catalog.now() OPERATOR(pg_catalog.-) older_than
     ORDER BY j.created_at;
END
$$;

-- Needs to own the views to refresh them: SECURITY DEFINER, not for PUBLIC.
CREATE FUNCTION @extschema@.refresh_backup_summaries(concurrently boolean DEFAULT true)
RETURNS TABLE (view_name text, refreshed boolean, duration_ms double precision, note text)
LANGUAGE c VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS 'MODULE_PATHNAME', 'bkperf_refresh_backup_summaries';
REVOKE ALL ON FUNCTION @extschema@.refresh_backup_summaries(boolean) FROM PUBLIC;

COMMENT ON TABLE @extschema@.health_policy IS
    'Default health-score policy: targets, thresholds and component weights (one row).';
COMMENT ON TABLE @extschema@.health_policy_tenant IS
    'Per-tenant overrides of the health-score policy; a NULL column uses the default.';
COMMENT ON VIEW @extschema@.backup_health_inputs IS
    'Per-tenant inputs of the backup health score, computed live from backup_jobs.';
COMMENT ON MATERIALIZED VIEW @extschema@.mv_backup_health_summary IS
    'Per tenant: total, successful, failed, last backup, last success, and the health-score inputs.';
COMMENT ON MATERIALIZED VIEW @extschema@.mv_tenant_backup_summary IS
    'Per tenant, completed jobs: count, total size, last backup, backups in the last 7 days.';
COMMENT ON TABLE @extschema@.refresh_log IS
    'One row per refresh of a health view, and per call skipped because another refresh was running.';
COMMENT ON FUNCTION @extschema@.tenant_known(text) IS
    'Whether the tenant has any backup job, snapshot or change-log row.';
COMMENT ON FUNCTION @extschema@.calculate_health_score(text) IS
    'Backup health score (0-100, NULL when the tenant is unknown), band and components of one tenant, from live data.';
COMMENT ON FUNCTION @extschema@.health_report() IS
    'Health score and summary of every tenant, from the materialized views (as of their last refresh).';
COMMENT ON FUNCTION @extschema@.get_backup_statistics(text, interval, text) IS
    'Backup counts, sizes, last success and mean duration of one tenant over a recent period, optionally one job type.';
COMMENT ON FUNCTION @extschema@.calculate_pitr_stats(text, timestamptz, timestamptz) IS
    'Change-log statistics of one tenant between two times, and the earliest point it can be rolled back to.';
COMMENT ON FUNCTION @extschema@.stale_backup_jobs(interval) IS
    'Backup jobs still queued or running that were created longer ago than the given interval.';
COMMENT ON FUNCTION @extschema@.refresh_backup_summaries(boolean) IS
    'Refresh both health views (concurrently by default); a call overlapping another refresh of a view skips it.';
