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
