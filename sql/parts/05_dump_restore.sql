/*
 * Dump and restore (README "Backup, restore and upgrade").  What a session
 * loading a pg_dump looks like, how the settings singletons take the dumped
 * row, and which cluster's transaction ids the snapshots and the change log
 * hold.
 */

/*
 * Whether this session is loading a dump.  pg_dump's scripts and pg_restore
 * always set both row_security = off (so that a policy raises an error
 * instead of hiding rows) and check_function_bodies = off; applications keep
 * the defaults, on.  Either alone is not enough: a DBA may turn
 * row_security off for other reasons (so does the rollback's apply), and in
 * a restoring session the DDL event trigger leaves partitions and renamed
 * columns alone.  bkperf's triggers use it to leave restored rows as they
 * were dumped.
 */
CREATE FUNCTION @extschema@.restoring()
RETURNS boolean
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT pg_catalog.current_setting('row_security') OPERATOR(pg_catalog.=) 'off'
       AND pg_catalog.current_setting('check_function_bodies') OPERATOR(pg_catalog.=) 'off'
$$;

/*
 * BEFORE INSERT trigger of the settings singletons (health_policy,
 * maintenance_settings, log_retention_state) in a restoring session: the
 * dumped row replaces the one CREATE EXTENSION inserted, instead of failing
 * on the primary key (which lost customised settings and the pruning state).
 */
CREATE FUNCTION @extschema@.singleton_take_restored()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    EXECUTE pg_catalog.format('DELETE FROM %I.%I WHERE singleton', TG_TABLE_SCHEMA, TG_TABLE_NAME);
    RETURN NEW;
END
$$;

/*
 * The database cluster's identity: its system identifier.  Transaction ids
 * only order changes inside one cluster's xid space.
 */
CREATE FUNCTION @extschema@.cluster_identity()
RETURNS bigint
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT s.system_identifier FROM pg_catalog.pg_control_system() s
$$;

/*
 * Clusters whose transaction ids continue in this database's files: the one
 * CREATE EXTENSION ran in, and those pg_upgrade made from it (pg_upgrade
 * carries the files and the xid counter, but initdb gives a new system
 * identifier).  Deliberately NOT dumped: a database restored from a dump
 * starts a new lineage in the cluster it is restored into.
 */
CREATE TABLE @extschema@.cluster_lineage (
    system_identifier   bigint NOT NULL,
    noted_at            timestamptz NOT NULL DEFAULT pg_catalog.now(),
    CONSTRAINT cluster_lineage_pkey PRIMARY KEY (system_identifier)
);
INSERT INTO @extschema@.cluster_lineage (system_identifier)
    VALUES (@extschema@.cluster_identity());

/*
 * Which cluster wrote the change log when: from `since` on, log rows (and
 * their transaction ids and commit timestamps) come from the cluster with
 * this system identifier or one pg_upgrade made from it.  Dumped: a restore
 * adds a row for the restoring cluster at its CREATE EXTENSION, and the
 * dumped rows say where the restored log was written.  The key includes
 * `since`, so the install row never collides with dumped rows.
 */
CREATE TABLE @extschema@.cluster_history (
    since               timestamptz NOT NULL,
    system_identifier   bigint NOT NULL,
    CONSTRAINT cluster_history_pkey PRIMARY KEY (since, system_identifier)
);
INSERT INTO @extschema@.cluster_history (since, system_identifier)
    VALUES (pg_catalog.now(), @extschema@.cluster_identity());
SELECT pg_catalog.pg_extension_config_dump('@extschema@.cluster_history', '');

/*
 * The cluster a new snapshot belongs to (default of
 * backup_pitr_snapshots.cluster_origin).  Notes the current cluster in
 * cluster_lineage first, so that snapshots taken between two pg_upgrades
 * stay usable after the second.
 */
CREATE FUNCTION @extschema@.snapshot_origin()
RETURNS bigint
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_id bigint := @extschema@.cluster_identity();
BEGIN
    IF NOT EXISTS (SELECT 1 FROM @extschema@.cluster_lineage l
                    WHERE l.system_identifier OPERATOR(pg_catalog.=) v_id) THEN
        INSERT INTO @extschema@.cluster_lineage (system_identifier) VALUES (v_id)
            ON CONFLICT DO NOTHING;
    END IF;
    RETURN v_id;
END
$$;

/*
 * Whether transaction ids recorded in cluster `sysid` order this cluster's
 * transactions: the same cluster, or one of this database's lineage.
 */
CREATE FUNCTION @extschema@.xids_comparable(sysid bigint)
RETURNS boolean
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT sysid OPERATOR(pg_catalog.=) @extschema@.cluster_identity()
        OR EXISTS (SELECT 1 FROM @extschema@.cluster_lineage l
                    WHERE l.system_identifier OPERATOR(pg_catalog.=) sysid)
$$;

/*
 * The end of the latest stretch of the change log written in another
 * cluster that reaches past `scan_from` (the time this database was restored
 * from it), or NULL when every log row from scan_from on has transaction ids
 * of this cluster's lineage.
 */
CREATE FUNCTION @extschema@.foreign_log_until(scan_from timestamptz)
RETURNS timestamptz
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT pg_catalog.max(COALESCE(h.until, 'infinity'))
      FROM (SELECT c.system_identifier,
                   pg_catalog.lead(c.since) OVER (ORDER BY c.since) AS until
              FROM @extschema@.cluster_history c) h
     WHERE NOT @extschema@.xids_comparable(h.system_identifier)
       AND (h.until IS NULL OR h.until OPERATOR(pg_catalog.>) scan_from)
$$;

REVOKE ALL ON FUNCTION @extschema@.singleton_take_restored() FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@.snapshot_origin() FROM PUBLIC;

COMMENT ON FUNCTION @extschema@.restoring() IS
    'Whether this session loads a dump (row_security and check_function_bodies off, as pg_dump scripts and pg_restore set them).';
COMMENT ON FUNCTION @extschema@.singleton_take_restored() IS
    'Internal: in a restoring session, a settings singleton''s dumped row replaces the installed default row.';
COMMENT ON FUNCTION @extschema@.cluster_identity() IS
    'The system identifier of this database cluster.';
COMMENT ON TABLE @extschema@.cluster_lineage IS
    'Clusters whose transaction ids continue in this database''s files (its own, and those pg_upgrade made from it); not dumped.';
COMMENT ON TABLE @extschema@.cluster_history IS
    'From which time on the change log was written in which cluster; a restore from a dump adds the restoring cluster.';
COMMENT ON FUNCTION @extschema@.snapshot_origin() IS
    'Internal: the cluster a new snapshot belongs to (noted in cluster_lineage).';
COMMENT ON FUNCTION @extschema@.xids_comparable(bigint) IS
    'Whether transaction ids recorded in the given cluster order this cluster''s transactions.';
COMMENT ON FUNCTION @extschema@.foreign_log_until(timestamptz) IS
    'End of the latest stretch of the change log after the given time that was written in another cluster (NULL: none).';
