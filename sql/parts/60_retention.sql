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
