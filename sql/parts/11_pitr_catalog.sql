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
    -- System identifier of the cluster the snapshot was taken in: its
    -- pg_snapshot only orders transactions of that cluster's lineage
    -- (05_dump_restore.sql).  NULL: unknown, refused by rollback.
    cluster_origin  bigint DEFAULT @extschema@.snapshot_origin(),
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
    skipped_tables  jsonb,
    -- A completed rollback that did not log its own changes: {"txid",
    -- "xact_start", "by_commit_ts", "origin", "table_ids"}; NULL otherwise.
    unlogged        jsonb,
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
