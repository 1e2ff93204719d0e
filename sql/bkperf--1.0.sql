/*
 * bkperf install script, concatenated by the Makefile from the files in sql/parts
 * (one object family per file).  Edit the parts, never the built script.
 */
\echo Use "CREATE EXTENSION bkperf" to load this file. \quit

-- Nothing here is for PUBLIC unless granted on purpose below.
REVOKE ALL ON SCHEMA @extschema@ FROM PUBLIC;
GRANT USAGE ON SCHEMA @extschema@ TO PUBLIC;
/*
 * Backup job catalog: one row per backup run, with what pgBackRest and Barman
 * record per backup.  Per-tenant: every key includes tenant_id (Citus-ready).
 */
CREATE SEQUENCE @extschema@.backup_jobs_job_id_seq AS bigint;

CREATE TABLE @extschema@.backup_jobs (
    tenant_id           text COLLATE "C" NOT NULL,
    job_id              bigint NOT NULL DEFAULT nextval('@extschema@.backup_jobs_job_id_seq'),
    job_type            text NOT NULL,
    job_status          text NOT NULL DEFAULT 'queued',
    label               text,
    created_at          timestamptz NOT NULL DEFAULT pg_catalog.now(),
    started_at          timestamptz,
    finished_at         timestamptz,
    backup_size_bytes   bigint,
    stored_size_bytes   bigint,
    wal_start_lsn       pg_lsn,
    wal_stop_lsn        pg_lsn,
    error_message       text,
    verify_status       text NOT NULL DEFAULT 'unverified',
    verified_at         timestamptz,
    pinned              boolean NOT NULL DEFAULT false,
    parent_job_id       bigint,
    metadata            jsonb NOT NULL DEFAULT '{}',
    CONSTRAINT backup_jobs_pkey PRIMARY KEY (tenant_id, job_id),
    CONSTRAINT backup_jobs_parent_fkey FOREIGN KEY (tenant_id, parent_job_id)
        REFERENCES @extschema@.backup_jobs (tenant_id, job_id),
    CONSTRAINT backup_jobs_job_type_check CHECK
        (job_type IN ('full', 'incremental', 'differential', 'logical', 'snapshot')),
    CONSTRAINT backup_jobs_job_status_check CHECK
        (job_status IN ('queued', 'running', 'completed', 'failed', 'cancelled', 'expired')),
    CONSTRAINT backup_jobs_verify_status_check CHECK
        (verify_status IN ('unverified', 'verified', 'failed')),
    CONSTRAINT backup_jobs_tenant_id_check CHECK (tenant_id <> ''),
    CONSTRAINT backup_jobs_size_check CHECK (backup_size_bytes >= 0),
    CONSTRAINT backup_jobs_stored_size_check CHECK (stored_size_bytes >= 0),
    CONSTRAINT backup_jobs_finished_after_started CHECK (finished_at >= started_at),
    CONSTRAINT backup_jobs_wal_range_check CHECK (wal_stop_lsn >= wal_start_lsn),
    CONSTRAINT backup_jobs_parent_check CHECK
        (parent_job_id IS NULL OR job_type IN ('incremental', 'differential')),
    CONSTRAINT backup_jobs_completed_check CHECK
        (job_status <> 'completed' OR (finished_at IS NOT NULL AND started_at IS NOT NULL)),
    CONSTRAINT backup_jobs_verified_at_check CHECK
        (verify_status = 'unverified' OR verified_at IS NOT NULL)
);
ALTER SEQUENCE @extschema@.backup_jobs_job_id_seq OWNED BY @extschema@.backup_jobs.job_id;

-- Per-tenant history in time order: health score, statistics, views.
CREATE INDEX idx_backup_jobs_tenant_created
    ON @extschema@.backup_jobs (tenant_id, created_at DESC);
-- Jobs in a given state across tenants (stuck queued/running jobs).
CREATE INDEX idx_backup_jobs_status
    ON @extschema@.backup_jobs (job_status, tenant_id);
-- A tenant's jobs of one type, newest first (last full, redundancy, retention).
CREATE INDEX idx_backup_jobs_type_tenant
    ON @extschema@.backup_jobs (job_type, tenant_id, created_at DESC);

SELECT pg_catalog.pg_extension_config_dump('@extschema@.backup_jobs', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.backup_jobs_job_id_seq', '');

COMMENT ON TABLE @extschema@.backup_jobs IS
    'One row per backup run of a tenant: type, status, times, sizes, WAL range, verification, retention pin.';
/*
 * Point-in-time recovery catalog: restore points (snapshots), the history of
 * every rollback and dry run, and the FK restore order each rollback used.
 */
CREATE SEQUENCE @extschema@.backup_pitr_snapshots_snapshot_id_seq AS bigint;

CREATE TABLE @extschema@.backup_pitr_snapshots (
    tenant_id       text COLLATE "C" NOT NULL,
    snapshot_id     bigint NOT NULL DEFAULT nextval('@extschema@.backup_pitr_snapshots_snapshot_id_seq'),
    snapshot_type   text NOT NULL DEFAULT 'manual',
    label           text,
    created_at      timestamptz NOT NULL DEFAULT pg_catalog.now(),
    snapshot        pg_snapshot NOT NULL,
    txid            xid8,
    wal_lsn         pg_lsn NOT NULL,
    -- Start of the oldest transaction running when the snapshot was taken:
    -- the change-log scan of a rollback to it starts there (changed_at is a
    -- transaction's start time, and such a transaction may commit later).
    -- create_snapshot() sets it; NULL (a row inserted otherwise) makes a
    -- rollback scan the tenant's log from change_log_floor().
    log_scan_from   timestamptz,
    created_by      text NOT NULL DEFAULT CURRENT_USER,
    metadata        jsonb NOT NULL DEFAULT '{}',
    CONSTRAINT backup_pitr_snapshots_pkey PRIMARY KEY (tenant_id, snapshot_id),
    CONSTRAINT backup_pitr_snapshots_type_check CHECK
        (snapshot_type IN ('manual', 'scheduled', 'pre_rollback', 'pre_migration', 'automatic')),
    CONSTRAINT backup_pitr_snapshots_tenant_id_check CHECK (tenant_id <> '')
);
ALTER SEQUENCE @extschema@.backup_pitr_snapshots_snapshot_id_seq
    OWNED BY @extschema@.backup_pitr_snapshots.snapshot_id;
CREATE INDEX idx_pitr_snapshots_tenant_created
    ON @extschema@.backup_pitr_snapshots (tenant_id, created_at DESC);
CREATE INDEX idx_pitr_snapshots_type
    ON @extschema@.backup_pitr_snapshots (snapshot_type, tenant_id);

CREATE SEQUENCE @extschema@.backup_pitr_rollback_history_rollback_id_seq AS bigint;

CREATE TABLE @extschema@.backup_pitr_rollback_history (
    tenant_id       text COLLATE "C" NOT NULL,
    rollback_id     bigint NOT NULL DEFAULT nextval('@extschema@.backup_pitr_rollback_history_rollback_id_seq'),
    snapshot_id     bigint,
    target_time     timestamptz,
    target_snapshot pg_snapshot,
    dry_run         boolean NOT NULL DEFAULT false,
    rollback_status text NOT NULL DEFAULT 'running',
    started_at      timestamptz NOT NULL DEFAULT pg_catalog.clock_timestamp(),
    planned_at      timestamptz,
    applied_at      timestamptz,
    finished_at     timestamptz,
    tables          integer,
    rows_deleted    bigint,
    rows_updated    bigint,
    rows_inserted   bigint,
    table_counts    jsonb,
    error_message   text,
    error_sqlstate  text,
    requested_by    text NOT NULL DEFAULT CURRENT_USER,
    CONSTRAINT backup_pitr_rollback_history_pkey PRIMARY KEY (tenant_id, rollback_id),
    CONSTRAINT backup_pitr_rollback_history_status_check CHECK
        (rollback_status IN ('running', 'completed', 'failed', 'dry_run')),
    CONSTRAINT backup_pitr_rollback_history_target_check CHECK
        (snapshot_id IS NOT NULL OR target_time IS NOT NULL),
    CONSTRAINT backup_pitr_rollback_history_counts_check CHECK
        (rows_deleted >= 0 AND rows_updated >= 0 AND rows_inserted >= 0),
    CONSTRAINT backup_pitr_rollback_history_finished_check CHECK (finished_at >= started_at)
);
ALTER SEQUENCE @extschema@.backup_pitr_rollback_history_rollback_id_seq
    OWNED BY @extschema@.backup_pitr_rollback_history.rollback_id;
CREATE INDEX idx_rollback_history_snapshot
    ON @extschema@.backup_pitr_rollback_history (snapshot_id, rollback_status);
CREATE INDEX idx_rollback_history_tenant_time
    ON @extschema@.backup_pitr_rollback_history (tenant_id, started_at DESC);

CREATE TABLE @extschema@.backup_fk_constraints_cache (
    tenant_id       text COLLATE "C" NOT NULL,
    rollback_id     bigint NOT NULL,
    table_name      text COLLATE "C" NOT NULL,
    restore_level   integer NOT NULL,
    cycle_group     integer,
    deferred_constraints text[],
    -- The lookup index is the primary key: a table appears once per rollback.
    CONSTRAINT idx_fk_constraints_cache_lookup PRIMARY KEY (tenant_id, rollback_id, table_name),
    CONSTRAINT backup_fk_constraints_cache_rollback_fkey FOREIGN KEY (tenant_id, rollback_id)
        REFERENCES @extschema@.backup_pitr_rollback_history (tenant_id, rollback_id) ON DELETE CASCADE,
    CONSTRAINT backup_fk_constraints_cache_level_check CHECK (restore_level >= 0)
);

SELECT pg_catalog.pg_extension_config_dump('@extschema@.backup_pitr_snapshots', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.backup_pitr_snapshots_snapshot_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.backup_pitr_rollback_history', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.backup_pitr_rollback_history_rollback_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.backup_fk_constraints_cache', '');

COMMENT ON TABLE @extschema@.backup_pitr_snapshots IS
    'Named restore points per tenant: time, MVCC snapshot (pg_current_snapshot()) and WAL LSN at creation.';
COMMENT ON TABLE @extschema@.backup_pitr_rollback_history IS
    'Every tenant rollback and dry run: target, status, phase times, rows changed per table, error.';
COMMENT ON TABLE @extschema@.backup_fk_constraints_cache IS
    'The foreign-key restore order (level, cycle group) that one rollback used for each table.';
/*
 * Change capture catalog: which tables are tracked, and the per-tenant
 * transaction log that rollback reads.  The log is range-partitioned on
 * changed_at so retention drops whole partitions; the default partition
 * guarantees an insert never fails for want of a partition.
 *
 * Log row contract (capture writes it, rollback reads it):
 *  - log_id orders the changes of one transaction and of one row; it is not
 *    commit order across transactions (rollback uses txid visibility).
 *  - txid is the top-level transaction id; changed_at is the transaction's
 *    start time (now()), so all rows of a statement share one partition.
 *  - record_id is the jsonb object of the key columns of the row after an
 *    INSERT or UPDATE and before a DELETE.  An UPDATE that changes the key
 *    (or the row's tenant) is logged as a DELETE of the old row followed by
 *    an INSERT of the new one, and within one statement every DELETE half
 *    precedes every INSERT half.  So every log row has one tenant, and an
 *    UPDATE row's key and tenant are the same before and after.
 *  - old_data / new_data are to_jsonb-compatible row images.  Capture 'full'
 *    stores both; 'undo' stores the key only for INSERT and the old row for
 *    UPDATE and DELETE (what rollback needs).
 *  - tenant_id is the text output of the row's tenant column; NULL when the
 *    row's tenant value is NULL (such rows belong to no tenant).
 */
CREATE TABLE @extschema@.tracked_tables (
    relid           regclass NOT NULL,
    table_name      text COLLATE "C" NOT NULL,
    tenant_column   name NOT NULL,
    key_columns     name[] NOT NULL,
    capture_mode    text NOT NULL DEFAULT 'full',
    tracked_at      timestamptz NOT NULL DEFAULT pg_catalog.now(),
    tracked_by      text NOT NULL DEFAULT CURRENT_USER,
    CONSTRAINT tracked_tables_pkey PRIMARY KEY (relid),
    CONSTRAINT tracked_tables_table_name_key UNIQUE (table_name),
    CONSTRAINT tracked_tables_capture_mode_check CHECK (capture_mode IN ('full', 'undo')),
    CONSTRAINT tracked_tables_key_columns_check CHECK (pg_catalog.cardinality(key_columns) > 0)
);

CREATE SEQUENCE @extschema@.backup_transaction_logs_log_id_seq AS bigint;

CREATE TABLE @extschema@.backup_transaction_logs (
    log_id          bigint NOT NULL DEFAULT nextval('@extschema@.backup_transaction_logs_log_id_seq'),
    tenant_id       text COLLATE "C",
    table_name      text COLLATE "C" NOT NULL,
    operation       text NOT NULL,
    record_id       jsonb NOT NULL,
    old_data        jsonb,
    new_data        jsonb,
    changed_at      timestamptz NOT NULL DEFAULT pg_catalog.now(),
    txid            xid8 NOT NULL DEFAULT pg_catalog.pg_current_xact_id(),
    changed_by      text NOT NULL DEFAULT CURRENT_USER,
    CONSTRAINT backup_transaction_logs_operation_check CHECK
        (operation IN ('INSERT', 'UPDATE', 'DELETE'))
) PARTITION BY RANGE (changed_at);
ALTER SEQUENCE @extschema@.backup_transaction_logs_log_id_seq
    OWNED BY @extschema@.backup_transaction_logs.log_id;

CREATE TABLE @extschema@.backup_transaction_logs_default
    PARTITION OF @extschema@.backup_transaction_logs DEFAULT;

CREATE INDEX idx_transaction_logs_tenant_time
    ON @extschema@.backup_transaction_logs (tenant_id, changed_at DESC);
CREATE INDEX idx_transaction_logs_table
    ON @extschema@.backup_transaction_logs (table_name, operation);

/*
 * Lower bound of what the log can be trusted for: a point in time after which
 * every change of every tracked table is in the log.  Pruning raises it.
 */
CREATE TABLE @extschema@.log_retention_state (
    singleton       boolean NOT NULL DEFAULT true,
    pruned_before   timestamptz,
    CONSTRAINT log_retention_state_pkey PRIMARY KEY (singleton),
    CONSTRAINT log_retention_state_singleton_check CHECK (singleton)
);
INSERT INTO @extschema@.log_retention_state DEFAULT VALUES;

SELECT pg_catalog.pg_extension_config_dump('@extschema@.tracked_tables', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.backup_transaction_logs_default', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.backup_transaction_logs_log_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.log_retention_state', '');

/*
 * The earliest time from which the change log is complete for every tracked
 * table: the latest tracking start, raised by pruning.  NULL when nothing is
 * tracked.  Health scoring, PITR statistics and rollback_to_time use it.
 */
CREATE FUNCTION @extschema@.change_log_floor()
RETURNS timestamptz
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT GREATEST(t.latest,
                               (SELECT pruned_before FROM @extschema@.log_retention_state))
      FROM (SELECT pg_catalog.max(tracked_at) AS latest FROM @extschema@.tracked_tables) t
     WHERE t.latest IS NOT NULL
$$;

/*
 * How many changes of each kind the log holds, per table (or for one table,
 * tracked now or before): which tables make the log grow.  For one table it
 * reads idx_transaction_logs_table.
 */
CREATE FUNCTION @extschema@.table_change_summary(rel regclass DEFAULT NULL)
RETURNS TABLE (table_name text, operation text, changes bigint)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT l.table_name, l.operation, pg_catalog.count(*)
      FROM @extschema@.backup_transaction_logs l
     WHERE rel IS NULL
        OR l.table_name = (SELECT pg_catalog.format('%I.%I', n.nspname, c.relname)
                             FROM pg_catalog.pg_class c
                             JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
                            WHERE c.oid = rel)
     GROUP BY l.table_name, l.operation
     ORDER BY l.table_name, l.operation
$$;

COMMENT ON TABLE @extschema@.tracked_tables IS
    'Application tables whose changes are captured, with tenant column, key columns and capture mode.';
COMMENT ON TABLE @extschema@.backup_transaction_logs IS
    'Per-tenant change log written by the capture triggers in the changing transaction; partitioned by changed_at.';
COMMENT ON TABLE @extschema@.log_retention_state IS
    'Single row: the time before which change-log partitions were pruned.';
COMMENT ON FUNCTION @extschema@.table_change_summary(regclass) IS
    'Changes in the log per table and operation, for every tracked table or one.';
COMMENT ON FUNCTION @extschema@.change_log_floor() IS
    'Earliest time from which the change log is complete for every tracked table; NULL when nothing is tracked.';
/*
 * Performance metrics reported by applications, and alerts (slow queries,
 * slow endpoints, backup health) recorded inside the database.
 */
CREATE SEQUENCE @extschema@.performance_metrics_metric_id_seq AS bigint;

CREATE TABLE @extschema@.performance_metrics (
    tenant_id           text COLLATE "C" NOT NULL,
    metric_id           bigint NOT NULL DEFAULT nextval('@extschema@.performance_metrics_metric_id_seq'),
    endpoint            text NOT NULL,
    response_time_ms    double precision NOT NULL,
    status_code         integer,
    cache_hit           boolean,
    recorded_at         timestamptz NOT NULL DEFAULT pg_catalog.now(),
    metadata            jsonb NOT NULL DEFAULT '{}',
    CONSTRAINT performance_metrics_pkey PRIMARY KEY (tenant_id, metric_id),
    CONSTRAINT performance_metrics_response_time_check CHECK (response_time_ms >= 0),
    CONSTRAINT performance_metrics_status_code_check CHECK (status_code BETWEEN 100 AND 599)
);
ALTER SEQUENCE @extschema@.performance_metrics_metric_id_seq
    OWNED BY @extschema@.performance_metrics.metric_id;

CREATE SEQUENCE @extschema@.system_alerts_alert_id_seq AS bigint;

-- Not a per-tenant table: a slow query may carry no tenant tag.
CREATE TABLE @extschema@.system_alerts (
    alert_id            bigint NOT NULL DEFAULT nextval('@extschema@.system_alerts_alert_id_seq'),
    severity            text NOT NULL,
    source              text NOT NULL,
    tenant_id           text COLLATE "C",
    message             text NOT NULL,
    metadata            jsonb NOT NULL DEFAULT '{}',
    fingerprint         text,
    occurrences         bigint NOT NULL DEFAULT 1,
    first_seen          timestamptz NOT NULL DEFAULT pg_catalog.now(),
    last_seen           timestamptz NOT NULL DEFAULT pg_catalog.now(),
    acknowledged        boolean NOT NULL DEFAULT false,
    acknowledged_at     timestamptz,
    acknowledged_by     text,
    CONSTRAINT system_alerts_pkey PRIMARY KEY (alert_id),
    CONSTRAINT system_alerts_severity_check CHECK (severity IN ('info', 'warning', 'critical')),
    CONSTRAINT system_alerts_source_check CHECK
        (source IN ('slow_query', 'endpoint', 'backup', 'maintenance')),
    CONSTRAINT system_alerts_occurrences_check CHECK (occurrences >= 1),
    CONSTRAINT system_alerts_seen_check CHECK (last_seen >= first_seen)
);
ALTER SEQUENCE @extschema@.system_alerts_alert_id_seq
    OWNED BY @extschema@.system_alerts.alert_id;

-- performance_summary() and prune_alerts() select metrics by time.
CREATE INDEX idx_performance_metrics_recorded ON @extschema@.performance_metrics (recorded_at);
-- record_alert() finds the open alert of a fingerprint to fold into.
CREATE INDEX idx_system_alerts_fingerprint ON @extschema@.system_alerts (fingerprint, first_seen DESC)
    WHERE NOT acknowledged;

SELECT pg_catalog.pg_extension_config_dump('@extschema@.performance_metrics', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.performance_metrics_metric_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.system_alerts', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.system_alerts_alert_id_seq', '');

COMMENT ON TABLE @extschema@.performance_metrics IS
    'Endpoint timings reported by applications: tenant, endpoint, response time, status, cache hit.';
COMMENT ON TABLE @extschema@.system_alerts IS
    'Alerts recorded inside the database; repeats of one fingerprint are folded into one row with a count.';
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
 * report share one definition.
 */
CREATE VIEW @extschema@.backup_health_inputs AS
SELECT j.tenant_id,
       pg_catalog.count(*) AS total_jobs,
       pg_catalog.count(*) FILTER (WHERE j.job_status = 'completed') AS successful_jobs,
       pg_catalog.count(*) FILTER (WHERE j.job_status = 'failed') AS failed_jobs,
       pg_catalog.max(j.created_at) AS last_backup_at,
       pg_catalog.max(j.finished_at) FILTER (WHERE j.job_status = 'completed') AS last_success_at,
       pg_catalog.max(j.finished_at) FILTER (WHERE r.restorable) AS last_restorable_at,
       pg_catalog.max(j.started_at) FILTER (WHERE r.restorable) AS last_restorable_started_at,
       pg_catalog.max(j.finished_at) FILTER (WHERE r.restorable AND j.job_type = 'full') AS last_full_at,
       pg_catalog.min(j.finished_at) FILTER (WHERE r.restorable) AS oldest_restorable_at,
       pg_catalog.count(*) FILTER (WHERE r.restorable AND j.job_type = 'full') AS valid_fulls,
       pg_catalog.count(*) FILTER (WHERE r.recent AND j.job_status = 'completed') AS completed_30d,
       pg_catalog.count(*) FILTER (WHERE r.recent AND j.job_status = 'failed') AS failed_30d,
       pg_catalog.count(*) FILTER (WHERE r.recent AND j.job_status = 'completed'
                                   AND j.verify_status = 'verified') AS verified_30d,
       (pg_catalog.array_agg(j.job_status ORDER BY r.finish_order DESC, j.job_id DESC)
            FILTER (WHERE j.job_status IN ('completed', 'failed')))[1] AS latest_finished_status,
       (pg_catalog.array_agg(r.duration_s ORDER BY j.finished_at DESC, j.job_id DESC)
            FILTER (WHERE j.job_status = 'completed'))[1] AS last_duration_s,
       pg_catalog.percentile_cont(0.5) WITHIN GROUP (ORDER BY r.duration_s)
            FILTER (WHERE r.recent AND j.job_status = 'completed') AS median_duration_30d_s,
       pg_catalog.now() AS computed_at
  FROM @extschema@.backup_jobs j,
       LATERAL (SELECT j.job_status = 'completed' AND j.verify_status <> 'failed' AS restorable,
                       j.created_at >= pg_catalog.now() - interval '30 days' AS recent,
                       COALESCE(j.finished_at, j.started_at, j.created_at) AS finish_order,
                       pg_catalog.date_part('epoch', j.finished_at - j.started_at) AS duration_s) r
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

-- Every refresh and every skipped overlapping call.
CREATE TABLE @extschema@.refresh_log (
    refresh_id      bigint GENERATED ALWAYS AS IDENTITY,
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

/*
 * A tenant is known to bkperf when it has a backup job, a snapshot or a
 * change-log row; the statistics functions refuse unknown tenants.
 */
CREATE FUNCTION @extschema@.tenant_known(tenant text)
RETURNS boolean
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT EXISTS (SELECT 1 FROM @extschema@.backup_jobs j WHERE j.tenant_id = tenant)
        OR EXISTS (SELECT 1 FROM @extschema@.backup_pitr_snapshots s WHERE s.tenant_id = tenant)
        OR EXISTS (SELECT 1 FROM @extschema@.backup_transaction_logs l WHERE l.tenant_id = tenant)
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

CREATE FUNCTION @extschema@.stale_backup_jobs(older_than interval DEFAULT '1 day')
RETURNS SETOF @extschema@.backup_jobs
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT j.* FROM @extschema@.backup_jobs j
     WHERE j.job_status IN ('queued', 'running')
       AND j.created_at < pg_catalog.now() OPERATOR(pg_catalog.-) older_than
     ORDER BY j.created_at
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
/*
 * Change capture: track_table / untrack_table, the C capture triggers and the
 * event trigger that forgets dropped tables.  The trigger functions are in
 * src/capture.c; the log row contract is in 12_transaction_log.sql.
 */
CREATE FUNCTION @extschema@.capture()
RETURNS trigger
LANGUAGE C
AS 'MODULE_PATHNAME', 'bkperf_capture';

CREATE FUNCTION @extschema@.capture_truncate()
RETURNS trigger
LANGUAGE C
AS 'MODULE_PATHNAME', 'bkperf_capture_truncate';

/*
 * Create the capture triggers of one table (rel itself or one of its
 * partitions), logging changes as changes of rel.
 */
CREATE FUNCTION @extschema@.capture_triggers_create(part regclass, rel regclass,
                                                    tenant_column name, capture text,
                                                    keys name[])
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_args text;
BEGIN
    v_args := pg_catalog.format('%L, %L, %L', rel::oid, tenant_column, capture)
           || (SELECT pg_catalog.string_agg(pg_catalog.format(', %L', k), '' ORDER BY o)
                 FROM pg_catalog.unnest(keys) WITH ORDINALITY u(k, o));
    EXECUTE pg_catalog.format(
        'CREATE TRIGGER bkperf_capture_insert AFTER INSERT ON %s REFERENCING NEW TABLE AS bkperf_new '
        'FOR EACH STATEMENT EXECUTE FUNCTION @extschema@.capture(%s)', part, v_args);
    EXECUTE pg_catalog.format(
        'CREATE TRIGGER bkperf_capture_update AFTER UPDATE ON %s REFERENCING OLD TABLE AS bkperf_old '
        'NEW TABLE AS bkperf_new FOR EACH STATEMENT EXECUTE FUNCTION @extschema@.capture(%s)', part, v_args);
    EXECUTE pg_catalog.format(
        'CREATE TRIGGER bkperf_capture_delete AFTER DELETE ON %s REFERENCING OLD TABLE AS bkperf_old '
        'FOR EACH STATEMENT EXECUTE FUNCTION @extschema@.capture(%s)', part, v_args);
    EXECUTE pg_catalog.format(
        'CREATE TRIGGER bkperf_capture_truncate BEFORE TRUNCATE ON %s '
        'FOR EACH STATEMENT EXECUTE FUNCTION @extschema@.capture_truncate()', part);
END
$$;

/*
 * The work of track_table, run as the extension owner by the C entry point
 * once it has checked that the caller owns the table.  Not for PUBLIC.
 */
CREATE FUNCTION @extschema@.track_table_apply(rel regclass, tenant_column name,
                                              capture text, caller text)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_nsp   name;
    v_name  name;
    v_kind  "char";
    v_keys  name[];
    v_part  regclass;
BEGIN
    SELECT n.nspname, c.relname, c.relkind INTO v_nsp, v_name, v_kind
      FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
     WHERE c.oid = rel;
    IF v_nsp = '@extschema@' THEN
        RAISE EXCEPTION 'cannot track table % of the bkperf extension', rel
              USING ERRCODE = 'feature_not_supported',
                    DETAIL = 'The extension''s own tables are not application tables.';
    END IF;
    IF v_kind NOT IN ('r', 'p') THEN
        RAISE EXCEPTION '% is not a table', rel
              USING ERRCODE = 'wrong_object_type',
                    DETAIL = 'Only ordinary and partitioned tables can be tracked.';
    END IF;
    IF capture NOT IN ('full', 'undo') THEN
        RAISE EXCEPTION 'invalid capture mode "%"', capture
              USING ERRCODE = 'invalid_parameter_value',
                    HINT = 'Use ''full'' (old and new rows) or ''undo'' (what rollback needs).';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_attribute a
                    WHERE a.attrelid = rel AND a.attname = tenant_column
                      AND a.attnum > 0 AND NOT a.attisdropped) THEN
        RAISE EXCEPTION 'column "%" of table % does not exist', tenant_column, rel
              USING ERRCODE = 'undefined_column',
                    HINT = 'Name the column that holds the tenant of each row.';
    END IF;
    -- The key: the primary key, else the replica identity index.
    SELECT pg_catalog.array_agg(a.attname ORDER BY k.ord) INTO v_keys
      FROM pg_catalog.pg_index i
     CROSS JOIN LATERAL pg_catalog.unnest(i.indkey) WITH ORDINALITY k(attnum, ord)
      JOIN pg_catalog.pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
     WHERE i.indexrelid = (SELECT i2.indexrelid FROM pg_catalog.pg_index i2
                            WHERE i2.indrelid = rel AND (i2.indisprimary OR i2.indisreplident)
                            ORDER BY i2.indisprimary DESC LIMIT 1);
    IF v_keys IS NULL THEN
        RAISE EXCEPTION 'table % has no primary key', rel
              USING ERRCODE = 'object_not_in_prerequisite_state',
                    DETAIL = 'The change log identifies rows by their key.',
                    HINT = 'Add a primary key, or set REPLICA IDENTITY USING INDEX on a unique index of NOT NULL columns.';
    END IF;

    -- The table and every partition below it: statement triggers of a parent
    -- do not fire for DML aimed at a partition.
    FOR v_part IN SELECT c.oid::pg_catalog.regclass FROM pg_catalog.pg_class c
                   WHERE c.relkind IN ('r', 'p')
                     AND (c.oid = rel OR c.oid IN (SELECT t.relid FROM pg_catalog.pg_partition_tree(rel) t))
    LOOP
        PERFORM @extschema@.capture_triggers_drop(v_part);
        PERFORM @extschema@.capture_triggers_create(v_part, rel, tenant_column, capture, v_keys);
    END LOOP;

    -- Re-tracking keeps tracked_at: change_log_floor() relies on it.
    INSERT INTO @extschema@.tracked_tables AS t
           (relid, table_name, tenant_column, key_columns, capture_mode, tracked_by)
    VALUES (rel, pg_catalog.format('%I.%I', v_nsp, v_name), tenant_column, v_keys, capture, caller)
    ON CONFLICT (relid) DO UPDATE
       SET table_name = excluded.table_name, tenant_column = excluded.tenant_column,
           key_columns = excluded.key_columns, capture_mode = excluded.capture_mode;

    -- Today's change-log partition (and the following days') exists before
    -- the first change is captured, so rows do not land in the default one.
    -- Only now: its DDL fires capture_sync_partitions(), which drops the
    -- capture triggers of tables not (yet) in tracked_tables.
    PERFORM @extschema@.ensure_log_partitions();
END
$$;

/*
 * Drop the capture triggers of one table (no error when absent).
 */
CREATE FUNCTION @extschema@.capture_triggers_drop(rel regclass)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_trigger name;
BEGIN
    FOR v_trigger IN SELECT t.tgname FROM pg_catalog.pg_trigger t
                      WHERE t.tgrelid = rel AND NOT t.tgisinternal
                        AND t.tgname IN ('bkperf_capture_insert', 'bkperf_capture_update',
                                         'bkperf_capture_delete', 'bkperf_capture_truncate')
    LOOP
        EXECUTE pg_catalog.format('DROP TRIGGER %I ON %s', v_trigger, rel);
    END LOOP;
END
$$;

/*
 * The work of untrack_table, run as the extension owner once the C entry
 * point has checked that the caller owns the table.  Not for PUBLIC.
 */
CREATE FUNCTION @extschema@.untrack_table_apply(rel regclass, caller text)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_part regclass;
BEGIN
    DELETE FROM @extschema@.tracked_tables WHERE relid = rel;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'table % is not tracked', rel
              USING ERRCODE = 'undefined_object',
                    HINT = 'bkperf.tracked_tables lists the tracked tables.';
    END IF;
    FOR v_part IN SELECT c.oid::pg_catalog.regclass FROM pg_catalog.pg_class c
                   WHERE c.relkind IN ('r', 'p')
                     AND (c.oid = rel OR c.oid IN (SELECT t.relid FROM pg_catalog.pg_partition_tree(rel) t))
    LOOP
        PERFORM @extschema@.capture_triggers_drop(v_part);
    END LOOP;
END
$$;

CREATE FUNCTION @extschema@.track_table(rel regclass, tenant_column name,
                                        capture text DEFAULT 'full')
RETURNS void
LANGUAGE C
AS 'MODULE_PATHNAME', 'bkperf_track_table';

CREATE FUNCTION @extschema@.untrack_table(rel regclass)
RETURNS void
LANGUAGE C
AS 'MODULE_PATHNAME', 'bkperf_untrack_table';

/*
 * sql_drop event trigger: a dropped tracked table leaves tracked_tables.
 */
CREATE FUNCTION @extschema@.forget_dropped_tables()
RETURNS event_trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF pg_catalog.to_regclass('@extschema@.tracked_tables') IS NULL THEN
        RETURN;                 -- the extension itself is being dropped
    END IF;
    DELETE FROM @extschema@.tracked_tables t
     USING pg_catalog.pg_event_trigger_dropped_objects() d
     WHERE d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass
       AND d.objsubid = 0 AND d.objid = t.relid::pg_catalog.oid;
END
$$;

CREATE EVENT TRIGGER bkperf_forget_dropped_tables ON sql_drop
    EXECUTE FUNCTION @extschema@.forget_dropped_tables();


/*
 * ddl_command_end event trigger for CREATE TABLE and ALTER TABLE: partitions
 * created in or attached to a tracked table get the capture triggers, and a
 * table detached from a tracked table loses them (unless tracked itself).
 */
CREATE FUNCTION @extschema@.capture_sync_partitions()
RETURNS event_trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_rel       regclass;
    v_root      regclass;
    v_tenant    name;
    v_mode      text;
    v_keys      name[];
BEGIN
    IF pg_catalog.to_regclass('@extschema@.tracked_tables') IS NULL THEN
        RETURN;
    END IF;
    -- Partitions of tracked tables without capture triggers.
    FOR v_rel, v_root, v_tenant, v_mode, v_keys IN
        SELECT DISTINCT c.oid::pg_catalog.regclass, t.relid, t.tenant_column, t.capture_mode,
               t.key_columns
          FROM pg_catalog.pg_event_trigger_ddl_commands() d
         CROSS JOIN LATERAL (SELECT d.objid AS relid
                             UNION SELECT x.relid FROM pg_catalog.pg_partition_ancestors(d.objid) x) a
          JOIN @extschema@.tracked_tables t ON t.relid::pg_catalog.oid = a.relid
          JOIN pg_catalog.pg_partition_tree(t.relid) p ON true
          JOIN pg_catalog.pg_class c ON c.oid = p.relid
         WHERE d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass AND d.objsubid = 0
           AND c.relkind IN ('r', 'p')
           AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_trigger g
                            WHERE g.tgrelid = c.oid AND g.tgname = 'bkperf_capture_insert')
    LOOP
        PERFORM @extschema@.capture_triggers_create(v_rel, v_root, v_tenant, v_mode, v_keys);
    END LOOP;
    -- Tables with capture triggers that are no longer in a tracked tree.
    FOR v_rel IN
        SELECT g.tgrelid::pg_catalog.regclass FROM pg_catalog.pg_trigger g
         WHERE g.tgname = 'bkperf_capture_insert'
           AND g.tgfoid = '@extschema@.capture()'::pg_catalog.regprocedure
           AND NOT EXISTS (SELECT 1 FROM @extschema@.tracked_tables t
                            WHERE t.relid::pg_catalog.oid = g.tgrelid
                               OR t.relid IN (SELECT x.relid
                                                FROM pg_catalog.pg_partition_ancestors(g.tgrelid) x))
    LOOP
        PERFORM @extschema@.capture_triggers_drop(v_rel);
    END LOOP;
END
$$;

CREATE EVENT TRIGGER bkperf_capture_sync_partitions ON ddl_command_end
    WHEN TAG IN ('CREATE TABLE', 'ALTER TABLE')
    EXECUTE FUNCTION @extschema@.capture_sync_partitions();

REVOKE ALL ON FUNCTION @extschema@.capture() FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@.capture_truncate() FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@.track_table_apply(regclass, name, text, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@.untrack_table_apply(regclass, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@.capture_triggers_drop(regclass) FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@.capture_triggers_create(regclass, regclass, name, text, name[]) FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@.capture_sync_partitions() FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@.forget_dropped_tables() FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@.track_table(regclass, name, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@.untrack_table(regclass) FROM PUBLIC;

COMMENT ON FUNCTION @extschema@.capture() IS
    'Capture trigger (AFTER ... FOR EACH STATEMENT with transition tables): writes the statement''s change log rows in bulk.';
COMMENT ON FUNCTION @extschema@.capture_truncate() IS
    'BEFORE TRUNCATE trigger of tracked tables: refuses TRUNCATE, which the change log cannot undo.';
COMMENT ON FUNCTION @extschema@.track_table_apply(regclass, name, text, text) IS
    'Internal: the work of track_table, run as the extension owner after the ownership check.';
COMMENT ON FUNCTION @extschema@.untrack_table_apply(regclass, text) IS
    'Internal: the work of untrack_table, run as the extension owner after the ownership check.';
COMMENT ON FUNCTION @extschema@.capture_triggers_drop(regclass) IS
    'Internal: drops the capture triggers of one table.';
COMMENT ON FUNCTION @extschema@.capture_triggers_create(regclass, regclass, name, text, name[]) IS
    'Internal: creates the capture triggers of one table or partition of a tracked table.';
COMMENT ON FUNCTION @extschema@.capture_sync_partitions() IS
    'ddl_command_end event trigger: gives new partitions of tracked tables the capture triggers, takes them from detached ones.';
COMMENT ON FUNCTION @extschema@.forget_dropped_tables() IS
    'sql_drop event trigger: removes dropped tables from bkperf.tracked_tables.';
COMMENT ON FUNCTION @extschema@.track_table(regclass, name, text) IS
    'Starts (or changes) change capture of a table owned by the caller: tenant column, capture mode full or undo.';
COMMENT ON FUNCTION @extschema@.untrack_table(regclass) IS
    'Stops change capture of a table owned by the caller and removes it from bkperf.tracked_tables.';
/*
 * Snapshots and exact per-tenant point-in-time rollback (src/rollback.c),
 * foreign-key restore order (src/fkorder.c), and the read-only functions
 * over snapshots and rollback history.
 *
 * Privileges: creating snapshots and rolling back change data, so EXECUTE is
 * revoked from PUBLIC.  The functions run as the caller (not SECURITY
 * DEFINER): a rollback writes the tenant's tables with the caller's own
 * privileges, so it cannot be used to change rows the caller could not
 * change directly.  A role granted EXECUTE also needs SELECT on the change
 * log and tracked_tables, INSERT/UPDATE on the snapshot, history and FK
 * cache tables, and INSERT/UPDATE/DELETE on the tracked tables.
 */
CREATE FUNCTION @extschema@.table_restore_order(tables regclass[] DEFAULT NULL)
RETURNS TABLE (table_name regclass, level integer, cycle_group integer,
               cycle_constraints text[], cycle_deferrable boolean)
AS 'MODULE_PATHNAME', 'bkperf_table_restore_order'
LANGUAGE C STABLE CALLED ON NULL INPUT;

CREATE FUNCTION @extschema@.create_snapshot(tenant text, label text DEFAULT NULL,
                                            snapshot_type text DEFAULT 'manual')
RETURNS bigint
AS 'MODULE_PATHNAME', 'bkperf_create_snapshot'
LANGUAGE C VOLATILE CALLED ON NULL INPUT;

CREATE FUNCTION @extschema@.rollback_to_snapshot(tenant text, snapshot_id bigint,
                                                 dry_run boolean DEFAULT false,
                                                 OUT rollback_id bigint, OUT status text,
                                                 OUT tables integer, OUT rows_deleted bigint,
                                                 OUT rows_updated bigint, OUT rows_inserted bigint,
                                                 OUT duration_ms double precision, OUT error text)
RETURNS record
AS 'MODULE_PATHNAME', 'bkperf_rollback_to_snapshot'
LANGUAGE C VOLATILE CALLED ON NULL INPUT;

CREATE FUNCTION @extschema@.rollback_to_time(tenant text, target timestamptz,
                                             dry_run boolean DEFAULT false,
                                             OUT rollback_id bigint, OUT status text,
                                             OUT tables integer, OUT rows_deleted bigint,
                                             OUT rows_updated bigint, OUT rows_inserted bigint,
                                             OUT duration_ms double precision, OUT error text)
RETURNS record
AS 'MODULE_PATHNAME', 'bkperf_rollback_to_time'
LANGUAGE C VOLATILE CALLED ON NULL INPUT;

/*
 * A tenant's snapshots, newest first (optionally of one type), with how many
 * completed rollbacks went back to each.
 */
CREATE FUNCTION @extschema@.list_snapshots(tenant text, snapshot_type text DEFAULT NULL)
RETURNS TABLE (snapshot_id bigint, snapshot_type text, label text, created_at timestamptz,
               wal_lsn pg_lsn, rollbacks bigint)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT s.snapshot_id, s.snapshot_type, s.label, s.created_at, s.wal_lsn,
           (SELECT count(*) FROM @extschema@.backup_pitr_rollback_history h
             WHERE h.snapshot_id = s.snapshot_id AND h.rollback_status = 'completed')
      FROM @extschema@.backup_pitr_snapshots s
     WHERE s.tenant_id = $1 AND $2 IS NULL
    UNION ALL
    SELECT s.snapshot_id, s.snapshot_type, s.label, s.created_at, s.wal_lsn,
           (SELECT count(*) FROM @extschema@.backup_pitr_rollback_history h
             WHERE h.snapshot_id = s.snapshot_id AND h.rollback_status = 'completed')
      FROM @extschema@.backup_pitr_snapshots s
     WHERE s.snapshot_type = $2 AND s.tenant_id = $1
     ORDER BY 4 DESC, 1 DESC
$$;

/*
 * A tenant's rollbacks and dry runs, newest first.
 */
CREATE FUNCTION @extschema@.rollback_history(tenant text, max_rows integer DEFAULT 20)
RETURNS TABLE (rollback_id bigint, snapshot_id bigint, target_time timestamptz, dry_run boolean,
               rollback_status text, started_at timestamptz, finished_at timestamptz,
               rows_deleted bigint, rows_updated bigint, rows_inserted bigint,
               table_counts jsonb, error_message text)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT h.rollback_id, h.snapshot_id, h.target_time, h.dry_run, h.rollback_status,
           h.started_at, h.finished_at, h.rows_deleted, h.rows_updated, h.rows_inserted,
           h.table_counts, h.error_message
      FROM @extschema@.backup_pitr_rollback_history h
     WHERE h.tenant_id = $1
     ORDER BY h.started_at DESC
     LIMIT $2
$$;

REVOKE ALL ON FUNCTION @extschema@.create_snapshot(text, text, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@.rollback_to_snapshot(text, bigint, boolean) FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@.rollback_to_time(text, timestamptz, boolean) FROM PUBLIC;

COMMENT ON FUNCTION @extschema@.table_restore_order(regclass[]) IS
    'Foreign-key restore order of the given tables (NULL: every tracked table): level (parents first = ascending), cycle group, the keys inside the cycle and whether all are deferrable.';
COMMENT ON FUNCTION @extschema@.create_snapshot(text, text, text) IS
    'Record a restore point for a tenant: time, pg_current_snapshot(), WAL LSN and where a rollback''s log scan must start; returns its id.';
COMMENT ON FUNCTION @extschema@.rollback_to_snapshot(text, bigint, boolean) IS
    'Restore the tenant''s rows in every tracked table to exactly what the snapshot saw, in one transaction; dry_run reports the same counts and changes nothing.';
COMMENT ON FUNCTION @extschema@.rollback_to_time(text, timestamptz, boolean) IS
    'Restore the tenant''s rows in every tracked table to their state at a time: by commit time with track_commit_timestamp, else by transaction start time.';
COMMENT ON FUNCTION @extschema@.list_snapshots(text, text) IS
    'A tenant''s snapshots, newest first, optionally of one type, with the number of completed rollbacks to each.';
COMMENT ON FUNCTION @extschema@.rollback_history(text, integer) IS
    'A tenant''s rollbacks and dry runs, newest first.';

/*
 * The plan of the rollback running in this session (src/rollback_plan.c):
 * per changed key of one table its earliest change after the target, of the
 * keys present at the target (old_data is their image) or absent at it.
 * The rollback's own statements read it; anywhere else it is an error.
 * Left executable by PUBLIC: it only answers inside the caller's own
 * rollback, with images of rows that rollback is writing.
 */
CREATE FUNCTION @extschema@.rollback_plan_rows(table_name text, present boolean,
                                               OUT record_id jsonb, OUT old_data jsonb)
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'bkperf_rollback_plan_rows'
LANGUAGE C VOLATILE CALLED ON NULL INPUT ROWS 10000;

COMMENT ON FUNCTION @extschema@.rollback_plan_rows(text, boolean) IS
    'Internal: the running rollback''s earliest change per key of one table (present or absent at the target); only answers inside a rollback.';
/*
 * Alerts: slow statements captured by the executor hooks (ring in shared
 * memory, read by slow_queries(), moved into system_alerts by flush_alerts()),
 * and slow endpoints reported into performance_metrics (trigger).
 * Both fold repeats of one fingerprint through record_alert().
 */

-- Fold one alert into system_alerts (used by flush_alerts() and the metrics
-- trigger, which call it directly, without an EXECUTE privilege check).
CREATE FUNCTION @extschema@.record_alert(
    p_source text, p_severity text, p_tenant text, p_key text, p_message text,
    p_occurrences bigint, p_first_seen timestamptz, p_last_seen timestamptz,
    p_fold_window interval, p_details jsonb)
RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_fingerprint text;
    v_id bigint;
    v_occurrences bigint;
    v_meta jsonb;
    v_total double precision;
BEGIN
    IF p_source IS NULL OR p_severity IS NULL OR p_key IS NULL OR p_message IS NULL
       OR p_occurrences IS NULL OR p_first_seen IS NULL OR p_last_seen IS NULL
       OR p_fold_window IS NULL OR p_details IS NULL THEN
        RAISE EXCEPTION 'only the tenant of an alert may be NULL'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    v_fingerprint := pg_catalog.md5(pg_catalog.concat_ws('|', p_source, p_severity,
                                    COALESCE(p_tenant, ''), p_key));
    -- One folder per fingerprint at a time, so repeats never make two alerts.
    PERFORM pg_catalog.pg_advisory_xact_lock(1651208289, pg_catalog.hashtext(v_fingerprint));

    SELECT a.alert_id, a.occurrences, a.metadata INTO v_id, v_occurrences, v_meta
      FROM @extschema@.system_alerts a
     WHERE a.fingerprint = v_fingerprint AND NOT a.acknowledged
       AND a.first_seen > p_first_seen - p_fold_window
     ORDER BY a.first_seen DESC
     LIMIT 1;

    IF v_id IS NOT NULL THEN
        v_total := COALESCE((v_meta->>'total_ms')::float8, 0)
                   + COALESCE((p_details->>'total_ms')::float8, 0);
        UPDATE @extschema@.system_alerts a
           SET occurrences = a.occurrences + p_occurrences,
               first_seen = LEAST(a.first_seen, p_first_seen),
               last_seen = GREATEST(a.last_seen, p_last_seen),
               metadata = a.metadata || p_details || pg_catalog.jsonb_build_object(
                   'max_ms', GREATEST((v_meta->>'max_ms')::float8, (p_details->>'max_ms')::float8),
                   'total_ms', v_total,
                   'mean_ms', pg_catalog.round((v_total / (v_occurrences + p_occurrences))::numeric, 3),
                   'errors', COALESCE((v_meta->>'errors')::bigint, 0)
                             + COALESCE((p_details->>'errors')::bigint, 0))
         WHERE a.alert_id = v_id;
        RETURN v_id;
    END IF;

    INSERT INTO @extschema@.system_alerts AS a
           (severity, source, tenant_id, message, metadata, fingerprint,
            occurrences, first_seen, last_seen)
    VALUES (p_severity, p_source, NULLIF(p_tenant, ''), p_message,
            p_details || pg_catalog.jsonb_build_object('mean_ms',
                pg_catalog.round((COALESCE((p_details->>'total_ms')::float8, 0)
                                  / p_occurrences)::numeric, 3)),
            v_fingerprint, p_occurrences, p_first_seen, p_last_seen)
    RETURNING a.alert_id INTO v_id;

    IF p_severity = 'critical' THEN
        PERFORM pg_catalog.pg_notify('bkperf_alerts', pg_catalog.json_build_object(
            'alert_id', v_id, 'severity', p_severity, 'source', p_source,
            'tenant_id', NULLIF(p_tenant, ''), 'message', pg_catalog.left(p_message, 1000),
            'first_seen', p_first_seen)::text);
    END IF;
    RETURN v_id;
END
$$;
REVOKE ALL ON FUNCTION @extschema@.record_alert(text, text, text, text, text, bigint,
    timestamptz, timestamptz, interval, jsonb) FROM PUBLIC;
COMMENT ON FUNCTION @extschema@.record_alert(text, text, text, text, text, bigint,
    timestamptz, timestamptz, interval, jsonb) IS
    'Fold occurrences of one alert into system_alerts: repeats of a fingerprint (source, severity, tenant, key) within the fold window after the alert''s first occurrence, while unacknowledged, add to it; a new critical alert is sent to pg_notify channel bkperf_alerts.';

CREATE FUNCTION @extschema@.slow_queries(
    OUT seq bigint, OUT logged_at timestamptz, OUT dbid oid, OUT userid oid,
    OUT pid integer, OUT application_name text, OUT tenant_id text,
    OUT queryid bigint, OUT duration_ms double precision, OUT rows bigint,
    OUT severity text, OUT sqlstate text, OUT query text)
RETURNS SETOF record
LANGUAGE c VOLATILE STRICT PARALLEL SAFE
AS 'MODULE_PATHNAME', 'bkperf_slow_queries';
COMMENT ON FUNCTION @extschema@.slow_queries() IS
    'Slow statements in the shared-memory ring (all databases), oldest first; query text of other roles only for superusers and pg_read_all_stats members.  Needs shared_preload_libraries.';

CREATE FUNCTION @extschema@.slow_queries_info(
    OUT capacity integer, OUT entries integer, OUT dropped bigint,
    OUT next_seq bigint, OUT ring_started timestamptz)
RETURNS record
LANGUAGE c VOLATILE STRICT PARALLEL SAFE
AS 'MODULE_PATHNAME', 'bkperf_slow_queries_info';
COMMENT ON FUNCTION @extschema@.slow_queries_info() IS
    'State of the slow-query ring: capacity, entries held, entries dropped by overflow since server start, next sequence number, when the ring was created.';

CREATE FUNCTION @extschema@.flush_alerts()
RETURNS bigint
LANGUAGE c VOLATILE STRICT PARALLEL UNSAFE
AS 'MODULE_PATHNAME', 'bkperf_flush_alerts';
REVOKE ALL ON FUNCTION @extschema@.flush_alerts() FROM PUBLIC;
COMMENT ON FUNCTION @extschema@.flush_alerts() IS
    'Move this database''s slow queries from the ring into system_alerts in the caller''s transaction (each exactly once; kept in the ring if the transaction aborts), folding repeats; returns the number of entries moved.  Does nothing on a standby.';

CREATE FUNCTION @extschema@.check_performance_alerts()
RETURNS trigger
LANGUAGE c
AS 'MODULE_PATHNAME', 'bkperf_check_performance_alerts';
REVOKE ALL ON FUNCTION @extschema@.check_performance_alerts() FROM PUBLIC;
COMMENT ON FUNCTION @extschema@.check_performance_alerts() IS
    'Statement-level trigger on performance_metrics: folded warning alerts at bkperf.endpoint_alert_ms, critical at bkperf.endpoint_critical_ms, per tenant and endpoint.';

CREATE TRIGGER check_performance_alerts
    AFTER INSERT ON @extschema@.performance_metrics
    REFERENCING NEW TABLE AS new_metrics
    FOR EACH STATEMENT EXECUTE FUNCTION @extschema@.check_performance_alerts();

CREATE FUNCTION @extschema@.performance_summary(since interval DEFAULT '1 hour')
RETURNS TABLE (endpoint text, requests bigint, mean_ms double precision,
               p50_ms double precision, p95_ms double precision, p99_ms double precision,
               max_ms double precision, error_ratio double precision,
               cache_hit_ratio double precision)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
BEGIN
    IF since IS NULL THEN
        RAISE EXCEPTION 'since must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF since < interval '0' THEN
        RAISE EXCEPTION 'since must be a non-negative interval'
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = pg_catalog.format('The value given was %s.', since);
    END IF;
    RETURN QUERY
    SELECT s.endpoint, s.requests, s.mean_ms, s.p[1], s.p[2], s.p[3], s.max_ms,
           s.error_ratio, s.cache_hit_ratio
      FROM (SELECT m.endpoint,
                   pg_catalog.count(*) AS requests,
                   pg_catalog.avg(m.response_time_ms) AS mean_ms,
                   pg_catalog.percentile_cont(ARRAY[0.5, 0.95, 0.99]::float8[])
                       WITHIN GROUP (ORDER BY m.response_time_ms) AS p,
                   pg_catalog.max(m.response_time_ms) AS max_ms,
                   pg_catalog.count(*) FILTER (WHERE m.status_code >= 500)::float8
                       / pg_catalog.count(*) AS error_ratio,
                   pg_catalog.count(*) FILTER (WHERE m.cache_hit)::float8
                       / NULLIF(pg_catalog.count(m.cache_hit), 0) AS cache_hit_ratio
              FROM @extschema@.performance_metrics m
             WHERE m.recorded_at >= pg_catalog.now() - since
             GROUP BY m.endpoint) s
     ORDER BY s.endpoint;
END
$$;
COMMENT ON FUNCTION @extschema@.performance_summary(interval) IS
    'Per endpoint over the last "since": requests, mean, p50/p95/p99 (interpolated), max, share of 5xx statuses, cache-hit share among rows that report it.';

CREATE FUNCTION @extschema@.acknowledge_alert(alert_id bigint)
RETURNS boolean
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF acknowledge_alert.alert_id IS NULL THEN
        RAISE EXCEPTION 'alert_id must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    UPDATE @extschema@.system_alerts a
       SET acknowledged = true, acknowledged_at = pg_catalog.now(),
           acknowledged_by = CURRENT_USER
     WHERE a.alert_id = acknowledge_alert.alert_id AND NOT a.acknowledged;
    IF FOUND THEN
        RETURN true;
    END IF;
    PERFORM FROM @extschema@.system_alerts a WHERE a.alert_id = acknowledge_alert.alert_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'alert % does not exist', acknowledge_alert.alert_id
            USING ERRCODE = 'undefined_object';
    END IF;
    RETURN false;
END
$$;
REVOKE ALL ON FUNCTION @extschema@.acknowledge_alert(bigint) FROM PUBLIC;
COMMENT ON FUNCTION @extschema@.acknowledge_alert(bigint) IS
    'Mark an alert acknowledged (true), or report that it already was (false); later repeats of its fingerprint open a new alert.';

CREATE FUNCTION @extschema@.prune_alerts(alerts_older_than interval DEFAULT '30 days',
                                         metrics_older_than interval DEFAULT '7 days')
RETURNS TABLE (alerts_deleted bigint, metrics_deleted bigint)
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_alerts bigint;
    v_metrics bigint;
BEGIN
    IF alerts_older_than IS NULL OR metrics_older_than IS NULL THEN
        RAISE EXCEPTION 'retention intervals must not be NULL'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF alerts_older_than < interval '0' OR metrics_older_than < interval '0' THEN
        RAISE EXCEPTION 'retention intervals must be non-negative'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    DELETE FROM @extschema@.system_alerts a
     WHERE a.last_seen < pg_catalog.now() - alerts_older_than;
    GET DIAGNOSTICS v_alerts = ROW_COUNT;
    DELETE FROM @extschema@.performance_metrics m
     WHERE m.recorded_at < pg_catalog.now() - metrics_older_than;
    GET DIAGNOSTICS v_metrics = ROW_COUNT;
    RETURN QUERY SELECT v_alerts, v_metrics;
END
$$;
REVOKE ALL ON FUNCTION @extschema@.prune_alerts(interval, interval) FROM PUBLIC;
COMMENT ON FUNCTION @extschema@.prune_alerts(interval, interval) IS
    'Delete alerts last seen, and metrics recorded, before the given ages; returns how many rows went.  Called by maintenance.';
/*
 * Backup retention: grandfather-father-son (daily/weekly/monthly/yearly),
 * minimum redundancy, recovery window, pinned backups, dependency closure.
 * apply_retention() decides per job; expiring only sets job_status =
 * 'expired' (nothing is deleted).  Per-tenant policies are applied by
 * run_maintenance().
 */
CREATE TABLE @extschema@.retention_policy (
    tenant_id       text COLLATE "C" NOT NULL,
    keep_daily      integer NOT NULL DEFAULT 7,
    keep_weekly     integer NOT NULL DEFAULT 4,
    keep_monthly    integer NOT NULL DEFAULT 6,
    keep_yearly     integer NOT NULL DEFAULT 0,
    min_redundancy  integer NOT NULL DEFAULT 2,
    recovery_window interval NOT NULL DEFAULT '7 days',
    enabled         boolean NOT NULL DEFAULT true,
    CONSTRAINT retention_policy_pkey PRIMARY KEY (tenant_id),
    CONSTRAINT retention_policy_keep_check CHECK
        (keep_daily >= 0 AND keep_weekly >= 0 AND keep_monthly >= 0 AND keep_yearly >= 0),
    CONSTRAINT retention_policy_min_redundancy_check CHECK (min_redundancy >= 0),
    CONSTRAINT retention_policy_recovery_window_check CHECK (recovery_window >= '0')
);
SELECT pg_catalog.pg_extension_config_dump('@extschema@.retention_policy', '');

CREATE FUNCTION @extschema@.apply_retention(
    tenant text DEFAULT NULL,
    keep_daily integer DEFAULT 7,
    keep_weekly integer DEFAULT 4,
    keep_monthly integer DEFAULT 6,
    keep_yearly integer DEFAULT 0,
    min_redundancy integer DEFAULT 2,
    recovery_window interval DEFAULT '7 days',
    dry_run boolean DEFAULT true)
RETURNS TABLE (tenant_id text, job_id bigint, action text, reason text)
LANGUAGE c VOLATILE
AS 'MODULE_PATHNAME', 'bkperf_apply_retention';
REVOKE ALL ON FUNCTION @extschema@.apply_retention(text, integer, integer, integer, integer,
                                                   integer, interval, boolean) FROM PUBLIC;

COMMENT ON TABLE @extschema@.retention_policy IS
    'Per-tenant backup retention policy applied by run_maintenance(); tenants without a row are never expired by maintenance.';
COMMENT ON FUNCTION @extschema@.apply_retention(text, integer, integer, integer, integer, integer, interval, boolean) IS
    'Grandfather-father-son retention of completed backups: one row per job with keep/expire and the reason; dry run by default.';
/*
 * Operations: change-log partitions, pruning, the maintenance entry point
 * that pg_cron jobs call, and the pg_cron schedule itself.  pg_cron is
 * optional: nothing here refers to cron.* outside dynamic SQL.
 */
CREATE TABLE @extschema@.maintenance_settings (
    singleton               boolean NOT NULL DEFAULT true,
    log_partition_days_ahead integer NOT NULL DEFAULT 7,
    log_retention           interval,           -- NULL: keep the change log forever
    alert_retention         interval NOT NULL DEFAULT '90 days',
    metric_retention        interval NOT NULL DEFAULT '30 days',
    refresh_log_retention   interval NOT NULL DEFAULT '30 days',
    CONSTRAINT maintenance_settings_pkey PRIMARY KEY (singleton),
    CONSTRAINT maintenance_settings_singleton_check CHECK (singleton),
    CONSTRAINT maintenance_settings_ahead_check CHECK (log_partition_days_ahead BETWEEN 1 AND 366),
    CONSTRAINT maintenance_settings_retention_check CHECK
        (log_retention > '0' AND alert_retention > '0' AND metric_retention > '0'
         AND refresh_log_retention > '0')
);
INSERT INTO @extschema@.maintenance_settings DEFAULT VALUES;
SELECT pg_catalog.pg_extension_config_dump('@extschema@.maintenance_settings', '');

-- Non-waiting per-task lock of run_maintenance (bkperf's own lock space).
CREATE FUNCTION @extschema@.try_maintenance_lock(task text)
RETURNS boolean
LANGUAGE c VOLATILE STRICT
AS 'MODULE_PATHNAME', 'bkperf_try_maintenance_lock';
REVOKE ALL ON FUNCTION @extschema@.try_maintenance_lock(text) FROM PUBLIC;

/*
 * Daily partitions of the change log (UTC days), from today to days_ahead
 * days ahead.  Rows that landed in the default partition for a day get moved
 * into that day's new partition, so creation never fails.
 */
CREATE FUNCTION @extschema@.ensure_log_partitions(days_ahead integer DEFAULT NULL)
RETURNS TABLE (partition_name text, range_from timestamptz, range_to timestamptz, rows_moved bigint)
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    ahead integer := COALESCE(days_ahead,
        (SELECT s.log_partition_days_ahead FROM @extschema@.maintenance_settings s));
    day date;
    part text;
BEGIN
    IF ahead IS NULL OR ahead < 0 OR ahead > 366 THEN
        RAISE EXCEPTION 'days_ahead must be between 0 and 366'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    FOR day IN SELECT d::date FROM generate_series((now() AT TIME ZONE 'UTC')::date,
                                                   (now() AT TIME ZONE 'UTC')::date + ahead,
                                                   interval '1 day') d
    LOOP
        part := 'backup_transaction_logs_p' || to_char(day, 'YYYYMMDD');
        CONTINUE WHEN to_regclass('@extschema@.' || quote_ident(part)) IS NOT NULL;
        partition_name := '@extschema@.' || part;
        range_from := (day::timestamp AT TIME ZONE 'UTC');
        range_to := ((day + 1)::timestamp AT TIME ZONE 'UTC');
        -- Rows of that day in the default partition must move first.  ATTACH
        -- needs ACCESS EXCLUSIVE on the default partition anyway: take it now
        -- (no lock upgrade), so capture cannot add rows while we move them.
        LOCK TABLE @extschema@.backup_transaction_logs_default IN ACCESS EXCLUSIVE MODE;
        EXECUTE format('CREATE TABLE @extschema@.%I (LIKE @extschema@.backup_transaction_logs'
                       ' INCLUDING DEFAULTS INCLUDING CONSTRAINTS)', part);
        EXECUTE format('WITH moved AS (DELETE FROM @extschema@.backup_transaction_logs_default'
                       ' WHERE changed_at >= $1 AND changed_at < $2 RETURNING *)'
                       ' INSERT INTO @extschema@.%I SELECT * FROM moved', part)
            USING range_from, range_to;
        GET DIAGNOSTICS rows_moved = ROW_COUNT;
        EXECUTE format('ALTER TABLE @extschema@.backup_transaction_logs ATTACH PARTITION @extschema@.%I'
                       ' FOR VALUES FROM (%L) TO (%L)', part, range_from, range_to);
        RETURN NEXT;
    END LOOP;
END
$$;
REVOKE ALL ON FUNCTION @extschema@.ensure_log_partitions(integer) FROM PUBLIC;

/*
 * The oldest change-log time that something kept still needs: the oldest
 * snapshot's log_scan_from (the start of the oldest transaction running when
 * it was taken: its changes are logged at that time; one day before
 * created_at for a snapshot recorded without it) and the longest recovery
 * window of any enabled retention policy.  Pruning never goes past it.
 */
CREATE FUNCTION @extschema@.log_prune_horizon()
RETURNS timestamptz
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT LEAST(
        (SELECT pg_catalog.min(COALESCE(s.log_scan_from, s.created_at - interval '1 day'))
           FROM @extschema@.backup_pitr_snapshots s),
        pg_catalog.now() - (SELECT pg_catalog.max(p.recovery_window)
                              FROM @extschema@.retention_policy p WHERE p.enabled))
$$;

/*
 * Drop the daily change-log partitions that end before now() - older_than,
 * never past log_prune_horizon(); rows older than the cutoff in the default
 * partition are deleted.  Raises log_retention_state.pruned_before, so
 * change_log_floor() tells rollback and health what the log still covers.
 */
CREATE FUNCTION @extschema@.prune_transaction_logs(older_than interval)
RETURNS TABLE (partition_name text, range_from timestamptz, range_to timestamptz,
               action text, rows_removed bigint)
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    wanted timestamptz;
    horizon timestamptz := @extschema@.log_prune_horizon();
    cutoff timestamptz;
    p record;
BEGIN
    IF older_than IS NULL OR older_than < interval '0' THEN
        RAISE EXCEPTION 'older_than must be a non-negative interval'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    wanted := now() - older_than;
    cutoff := LEAST(wanted, horizon);
    FOR p IN
        SELECT c.oid::regclass AS rel, c.relname,
               (regexp_match(pg_get_expr(c.relpartbound, c.oid), 'FROM \(''([^'']+)''\)'))[1]::timestamptz AS lo,
               (regexp_match(pg_get_expr(c.relpartbound, c.oid), 'TO \(''([^'']+)''\)'))[1]::timestamptz AS hi
          FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
         WHERE i.inhparent = '@extschema@.backup_transaction_logs'::regclass
           AND c.relname <> 'backup_transaction_logs_default'
         ORDER BY 3
    LOOP
        CONTINUE WHEN p.hi > wanted;
        partition_name := '@extschema@.' || p.relname;
        range_from := p.lo;
        range_to := p.hi;
        IF p.hi > cutoff THEN
            action := 'kept: needed by a snapshot or recovery window';
            rows_removed := 0;
        ELSE
            EXECUTE format('SELECT count(*) FROM %s', p.rel) INTO rows_removed;
            EXECUTE format('DROP TABLE %s', p.rel);
            action := 'dropped';
            UPDATE @extschema@.log_retention_state
               SET pruned_before = GREATEST(pruned_before, p.hi);
        END IF;
        RETURN NEXT;
    END LOOP;
    DELETE FROM @extschema@.backup_transaction_logs_default WHERE changed_at < cutoff;
    GET DIAGNOSTICS rows_removed = ROW_COUNT;
    IF rows_removed > 0 THEN
        partition_name := '@extschema@.backup_transaction_logs_default';
        range_from := NULL;
        range_to := cutoff;
        action := 'rows deleted';
        UPDATE @extschema@.log_retention_state SET pruned_before = GREATEST(pruned_before, cutoff);
        RETURN NEXT;
    END IF;
END
$$;
REVOKE ALL ON FUNCTION @extschema@.prune_transaction_logs(interval) FROM PUBLIC;

/*
 * The one entry point of the pg_cron jobs.  Tasks: partitions, flush,
 * refresh, retention, prune (all when NULL).  A task already running in
 * another session is skipped, never queued.  On a standby nothing is done.
 */
CREATE FUNCTION @extschema@.run_maintenance(tasks text[] DEFAULT NULL)
RETURNS TABLE (task text, status text, detail text)
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    all_tasks constant text[] := ARRAY['partitions', 'flush', 'refresh', 'retention', 'prune'];
    s @extschema@.maintenance_settings;
    n bigint;
    m bigint;
BEGIN
    IF pg_is_in_recovery() THEN
        RETURN QUERY SELECT 'all'::text, 'skipped'::text, 'standby: nothing to do'::text;
        RETURN;
    END IF;
    IF tasks IS NOT NULL AND NOT tasks <@ all_tasks THEN
        RAISE EXCEPTION 'unknown maintenance task in %', tasks
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Tasks are partitions, flush, refresh, retention and prune.';
    END IF;
    SELECT * INTO s FROM @extschema@.maintenance_settings;
    FOREACH task IN ARRAY all_tasks LOOP
        CONTINUE WHEN tasks IS NOT NULL AND NOT task = ANY (tasks);
        IF NOT @extschema@.try_maintenance_lock(task) THEN
            status := 'skipped'; detail := 'already running';
            RETURN NEXT;
            CONTINUE;
        END IF;
        status := 'done';
        CASE task
        WHEN 'partitions' THEN
            SELECT count(*), COALESCE(sum(e.rows_moved), 0) INTO n, m
              FROM @extschema@.ensure_log_partitions(s.log_partition_days_ahead) e;
            detail := format('%s partitions created, %s rows moved from the default partition', n, m);
        WHEN 'flush' THEN
            BEGIN
                n := @extschema@.flush_alerts();
                detail := format('%s slow queries moved into system_alerts', n);
            EXCEPTION WHEN object_not_in_prerequisite_state THEN
                -- bkperf is not in shared_preload_libraries: no ring to flush.
                status := 'skipped'; detail := SQLERRM;
            END;
        WHEN 'refresh' THEN
            SELECT string_agg(r.view_name || ': ' || COALESCE(r.note, 'refreshed'), ', ')
              INTO detail FROM @extschema@.refresh_backup_summaries(true) r;
        WHEN 'retention' THEN
            SELECT count(*) FILTER (WHERE r.action = 'expire'), count(DISTINCT p.tenant_id)
              INTO n, m
              FROM @extschema@.retention_policy p,
                   @extschema@.apply_retention(p.tenant_id, p.keep_daily, p.keep_weekly,
                       p.keep_monthly, p.keep_yearly, p.min_redundancy, p.recovery_window,
                       false) r
             WHERE p.enabled;
            detail := format('%s backups expired for %s tenants with a policy', n, m);
        WHEN 'prune' THEN
            n := 0;
            IF s.log_retention IS NOT NULL THEN
                SELECT count(*) FILTER (WHERE l.action = 'dropped') INTO n
                  FROM @extschema@.prune_transaction_logs(s.log_retention) l;
            END IF;
            DELETE FROM @extschema@.refresh_log WHERE started_at < now() - s.refresh_log_retention;
            GET DIAGNOSTICS m = ROW_COUNT;
            SELECT format('%s log partitions dropped, %s alerts, %s metrics and %s refresh records deleted',
                          n, a.alerts_deleted, a.metrics_deleted, m)
              INTO detail
              FROM @extschema@.prune_alerts(s.alert_retention, s.metric_retention) a;
        END CASE;
        RETURN NEXT;
    END LOOP;
END
$$;
REVOKE ALL ON FUNCTION @extschema@.run_maintenance(text[]) FROM PUBLIC;

/*
 * The pg_cron jobs of this database, by name.  Named with the database so
 * that several databases of one cluster can each have their own.
 */
CREATE FUNCTION @extschema@.maintenance_jobs(refresh_schedule text, flush_schedule text,
                                             maintenance_schedule text)
RETURNS TABLE (job_name text, schedule text, command text)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT 'bkperf-' || v.kind || '@' || pg_catalog.current_database(), v.schedule,
           'SELECT * FROM @extschema@.run_maintenance(' || v.tasks || ')'
      FROM (VALUES ('refresh', refresh_schedule, '''{refresh}'''),
                   ('flush', flush_schedule, '''{flush}'''),
                   ('maintenance', maintenance_schedule, '''{partitions,retention,prune}''')) v(kind, schedule, tasks)
$$;

/* Fail unless pg_cron is installed here; the hint gives the calls to run instead. */
CREATE FUNCTION @extschema@.require_pg_cron(calls text)
RETURNS void
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'pg_cron') THEN
        RAISE EXCEPTION 'pg_cron is not installed in database "%"', current_database()
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  DETAIL = format('pg_cron can only be installed in the database named by cron.database_name (%s).',
                                  COALESCE(current_setting('cron.database_name', true), 'not set: pg_cron is not preloaded')),
                  HINT = 'Run these in that database instead: ' || calls;
    END IF;
END
$$;

CREATE FUNCTION @extschema@.schedule_maintenance(
    refresh_schedule text DEFAULT '0 * * * *',
    flush_schedule text DEFAULT '* * * * *',
    maintenance_schedule text DEFAULT '30 3 * * *')
RETURNS TABLE (job_name text, schedule text, command text, jobid bigint)
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    j record;
BEGIN
    IF refresh_schedule IS NULL OR flush_schedule IS NULL OR maintenance_schedule IS NULL THEN
        RAISE EXCEPTION 'schedules must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    PERFORM @extschema@.require_pg_cron(
        (SELECT string_agg(format('SELECT cron.schedule_in_database(%L, %L, %L, %L);',
                                  m.job_name, m.schedule, m.command, current_database()), ' ')
           FROM @extschema@.maintenance_jobs(refresh_schedule, flush_schedule, maintenance_schedule) m));
    FOR j IN SELECT * FROM @extschema@.maintenance_jobs(refresh_schedule, flush_schedule,
                                                         maintenance_schedule)
    LOOP
        job_name := j.job_name; schedule := j.schedule; command := j.command;
        -- cron.schedule replaces the user's job of the same name: calling twice leaves one set.
        EXECUTE 'SELECT cron.schedule($1, $2, $3)' INTO jobid USING j.job_name, j.schedule, j.command;
        RETURN NEXT;
    END LOOP;
END
$$;
REVOKE ALL ON FUNCTION @extschema@.schedule_maintenance(text, text, text) FROM PUBLIC;

CREATE FUNCTION @extschema@.unschedule_maintenance()
RETURNS TABLE (job_name text, jobid bigint)
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM @extschema@.require_pg_cron(
        (SELECT string_agg(format('SELECT cron.unschedule(%L);', m.job_name), ' ')
           FROM @extschema@.maintenance_jobs('', '', '') m));
    -- Only this database's bkperf jobs, selected first, then removed one by one.
    FOR job_name, jobid IN EXECUTE
        'SELECT j.jobname::text, j.jobid FROM cron.job j WHERE j.jobname = ANY ($1) ORDER BY j.jobid'
        USING (SELECT array_agg(m.job_name) FROM @extschema@.maintenance_jobs('', '', '') m)
    LOOP
        EXECUTE 'SELECT cron.unschedule($1)' USING jobid;
        RETURN NEXT;
    END LOOP;
END
$$;
REVOKE ALL ON FUNCTION @extschema@.unschedule_maintenance() FROM PUBLIC;

COMMENT ON TABLE @extschema@.maintenance_settings IS
    'Settings of run_maintenance(): partitions created ahead, change-log, alert, metric and refresh-record retention.';
COMMENT ON FUNCTION @extschema@.try_maintenance_lock(text) IS
    'Take the transaction-level lock of one maintenance task without waiting; false if another session holds it.';
COMMENT ON FUNCTION @extschema@.ensure_log_partitions(integer) IS
    'Create the daily change-log partitions from today to days_ahead days ahead, moving rows out of the default partition.';
COMMENT ON FUNCTION @extschema@.log_prune_horizon() IS
    'Oldest change-log time still needed by a snapshot or a retention policy''s recovery window.';
COMMENT ON FUNCTION @extschema@.prune_transaction_logs(interval) IS
    'Drop whole change-log partitions older than the interval, never past log_prune_horizon(); reports what it did.';
COMMENT ON FUNCTION @extschema@.run_maintenance(text[]) IS
    'The one maintenance entry point of the pg_cron jobs: partitions, flush, refresh, retention, prune.';
COMMENT ON FUNCTION @extschema@.maintenance_jobs(text, text, text) IS
    'Names, schedules and commands of the pg_cron jobs of this database.';
COMMENT ON FUNCTION @extschema@.require_pg_cron(text) IS
    'Raise an error, with the given calls as hint, unless pg_cron is installed in this database.';
COMMENT ON FUNCTION @extschema@.schedule_maintenance(text, text, text) IS
    'Register (or replace) the refresh, flush and maintenance jobs of this database with pg_cron.';
COMMENT ON FUNCTION @extschema@.unschedule_maintenance() IS
    'Remove the pg_cron jobs registered by schedule_maintenance().';
