-- bkperf 1.0 -> 1.1.  Every catalog change made after 1.0 shipped goes here,
-- mirrored in sql/parts/ (which build the fresh 1.1 install script).
\echo Use "ALTER EXTENSION bkperf UPDATE TO '1.1'" to load this file. \quit

-- dump and restore (issue 11): restores exit 0 and keep every row; snapshots
-- and the change log know their cluster.  Mirrors sql/parts/05_dump_restore.sql,
-- 70_dump_restore.sql and the restore-related edits of 11, 12, 20, 30, 50, 61.

/*
 * Whether this session is loading a dump.  pg_dump's scripts and pg_restore
 * always run with row_security = off (so that a policy raises an error
 * instead of hiding rows); applications keep the default, on.  bkperf's
 * triggers use it to leave restored rows as they were dumped.
 */
CREATE FUNCTION @extschema@.restoring()
RETURNS boolean
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT pg_catalog.current_setting('row_security') OPERATOR(pg_catalog.=) 'off'
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
-- The 1.0 change log was written in the cluster the update runs in (assumed:
-- 1.0 recorded nothing about it).
INSERT INTO @extschema@.cluster_history (since, system_identifier)
    VALUES ('-infinity', @extschema@.cluster_identity());
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
    'Whether this session loads a dump (row_security = off, as pg_dump scripts and pg_restore set it).';
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

-- Settings singletons take the dumped row in a restoring session.
CREATE TRIGGER singleton_take_restored BEFORE INSERT ON @extschema@.log_retention_state
    FOR EACH ROW WHEN (@extschema@.restoring())
    EXECUTE FUNCTION @extschema@.singleton_take_restored();
CREATE TRIGGER singleton_take_restored BEFORE INSERT ON @extschema@.health_policy
    FOR EACH ROW WHEN (@extschema@.restoring())
    EXECUTE FUNCTION @extschema@.singleton_take_restored();
CREATE TRIGGER singleton_take_restored BEFORE INSERT ON @extschema@.maintenance_settings
    FOR EACH ROW WHEN (@extschema@.restoring())
    EXECUTE FUNCTION @extschema@.singleton_take_restored();

-- The cluster of each snapshot; 1.0 snapshots get the cluster the update runs in.
ALTER TABLE @extschema@.backup_pitr_snapshots
    ADD COLUMN cluster_origin bigint DEFAULT @extschema@.snapshot_origin();

-- The metrics alert trigger leaves restored metrics alone.
DROP TRIGGER check_performance_alerts ON @extschema@.performance_metrics;
CREATE TRIGGER check_performance_alerts
    AFTER INSERT ON @extschema@.performance_metrics
    REFERENCING NEW TABLE AS new_metrics
    FOR EACH STATEMENT
    -- Metrics a restore loads were alerted on when first reported; the
    -- dumped system_alerts rows follow.
    WHEN (NOT @extschema@.restoring())
    EXECUTE FUNCTION @extschema@.check_performance_alerts();

-- The partition event trigger leaves a restore's capture triggers to the dump.
CREATE OR REPLACE FUNCTION @extschema@.capture_sync_partitions()
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
    -- A restore creates the capture triggers itself (they are in the dump).
    IF pg_catalog.to_regclass('@extschema@.tracked_tables') IS NULL OR @extschema@.restoring() THEN
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

-- Run-time change-log partitions attach through one function.
/*
 * Attach one daily change-log partition, moving the rows of its range out of
 * the default partition first; returns how many moved.  The partition is
 * marked in log_partitions_pending while it attaches, so that the restore
 * event trigger (log_partitions_restore) leaves this ATTACH alone.
 */
CREATE FUNCTION @extschema@.attach_log_partition(part text, range_from timestamptz,
                                                 range_to timestamptz)
RETURNS bigint
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    moved bigint;
    rel oid := pg_catalog.to_regclass('@extschema@.' || pg_catalog.quote_ident(part));
BEGIN
    -- Marks of partitions dropped since (pruned) go.
    DELETE FROM @extschema@.log_partitions_pending q
     WHERE NOT EXISTS (SELECT 1 FROM pg_catalog.pg_class c WHERE c.oid OPERATOR(pg_catalog.=) q.relid);
    -- ATTACH needs ACCESS EXCLUSIVE on the default partition anyway: take it
    -- now (no lock upgrade), so capture cannot add rows while we move them.
    LOCK TABLE @extschema@.backup_transaction_logs_default IN ACCESS EXCLUSIVE MODE;
    EXECUTE pg_catalog.format('WITH moved AS (DELETE FROM @extschema@.backup_transaction_logs_default'
                   ' WHERE changed_at OPERATOR(pg_catalog.>=) $1 AND changed_at OPERATOR(pg_catalog.<) $2 RETURNING *)'
                   ' INSERT INTO @extschema@.%I SELECT * FROM moved', part)
        USING range_from, range_to;
    GET DIAGNOSTICS moved = ROW_COUNT;
    INSERT INTO @extschema@.log_partitions_pending AS q (relid, range_from, range_to, state)
    VALUES (rel, range_from, range_to, 'attaching')
    ON CONFLICT (relid) DO UPDATE SET state = 'attaching';
    EXECUTE pg_catalog.format('ALTER TABLE @extschema@.backup_transaction_logs ATTACH PARTITION @extschema@.%I'
                   ' FOR VALUES FROM (%L) TO (%L)', part, range_from, range_to);
    UPDATE @extschema@.log_partitions_pending q SET state = 'attached'
     WHERE q.relid OPERATOR(pg_catalog.=) rel;
    RETURN moved;
END
$$;
REVOKE ALL ON FUNCTION @extschema@.attach_log_partition(text, timestamptz, timestamptz) FROM PUBLIC;
COMMENT ON FUNCTION @extschema@.attach_log_partition(text, timestamptz, timestamptz) IS
    'Internal: attach one daily change-log partition, moving its rows out of the default partition.';

CREATE OR REPLACE FUNCTION @extschema@.ensure_log_partitions(days_ahead integer DEFAULT NULL)
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
    -- A partition an interrupted restore left detached goes back first.
    FOR part, range_from, range_to IN
        SELECT c.relname, q.range_from, q.range_to
          FROM @extschema@.log_partitions_pending q JOIN pg_class c ON c.oid = q.relid
         WHERE q.state = 'detached'
    LOOP
        partition_name := '@extschema@.' || part;
        rows_moved := @extschema@.attach_log_partition(part, range_from, range_to);
        RETURN NEXT;
    END LOOP;
    FOR day IN SELECT d::date FROM generate_series((now() AT TIME ZONE 'UTC')::date,
                                                   (now() AT TIME ZONE 'UTC')::date + ahead,
                                                   interval '1 day') d
    LOOP
        part := 'backup_transaction_logs_p' || to_char(day, 'YYYYMMDD');
        CONTINUE WHEN to_regclass('@extschema@.' || quote_ident(part)) IS NOT NULL;
        partition_name := '@extschema@.' || part;
        range_from := (day::timestamp AT TIME ZONE 'UTC');
        range_to := ((day + 1)::timestamp AT TIME ZONE 'UTC');
        EXECUTE format('CREATE TABLE @extschema@.%I (LIKE @extschema@.backup_transaction_logs'
                       ' INCLUDING DEFAULTS INCLUDING CONSTRAINTS)', part);
        rows_moved := @extschema@.attach_log_partition(part, range_from, range_to);
        RETURN NEXT;
    END LOOP;
END
$$;

-- Log partitions between a restore's ATTACH and their indexes, and those
-- bkperf itself attaches.  Holds OIDs: never dumped.
CREATE TABLE @extschema@.log_partitions_pending (
    relid           oid NOT NULL,
    range_from      timestamptz NOT NULL,
    range_to        timestamptz NOT NULL,
    state           text NOT NULL,
    CONSTRAINT log_partitions_pending_pkey PRIMARY KEY (relid),
    CONSTRAINT log_partitions_pending_state_check CHECK
        (state IN ('detaching', 'detached', 'attaching', 'attached'))
);

/*
 * ddl_command_end event trigger (ALTER TABLE, CREATE INDEX), acting only in
 * a restoring session: a log partition attached in this transaction by
 * someone else than attach_log_partition() is detached until it has an index
 * for every index of the log, then attached back (the ATTACH adopts them,
 * and the dump's ALTER INDEX ... ATTACH PARTITION finds nothing to do).
 */
CREATE FUNCTION @extschema@.log_partitions_restore()
RETURNS event_trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    p record;
    idx regclass;
BEGIN
    IF pg_catalog.to_regclass('@extschema@.log_partitions_pending') IS NULL
       OR NOT @extschema@.restoring() THEN
        RETURN;
    END IF;
    FOR p IN
        SELECT c.oid, c.relname,
               (pg_catalog.regexp_match(pg_catalog.pg_get_expr(c.relpartbound, c.oid),
                                        'FROM \(''([^'']+)''\)'))[1]::timestamptz AS lo,
               (pg_catalog.regexp_match(pg_catalog.pg_get_expr(c.relpartbound, c.oid),
                                        'TO \(''([^'']+)''\)'))[1]::timestamptz AS hi
          FROM pg_catalog.pg_inherits i JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) i.inhrelid
         WHERE i.inhparent OPERATOR(pg_catalog.=) '@extschema@.backup_transaction_logs'::pg_catalog.regclass
           AND c.relname OPERATOR(pg_catalog.<>) 'backup_transaction_logs_default'
           AND c.xmin OPERATOR(pg_catalog.=) pg_catalog.pg_current_xact_id()::pg_catalog.xid
           AND NOT EXISTS (SELECT 1 FROM @extschema@.log_partitions_pending q
                            WHERE q.relid OPERATOR(pg_catalog.=) c.oid)
    LOOP
        INSERT INTO @extschema@.log_partitions_pending (relid, range_from, range_to, state)
        VALUES (p.oid, p.lo, p.hi, 'detaching');
        EXECUTE pg_catalog.format('ALTER TABLE @extschema@.backup_transaction_logs DETACH PARTITION @extschema@.%I',
                                  p.relname);
        FOR idx IN SELECT x.indexrelid::pg_catalog.regclass FROM pg_catalog.pg_index x
                    WHERE x.indrelid OPERATOR(pg_catalog.=) p.oid
        LOOP
            EXECUTE pg_catalog.format('DROP INDEX %s', idx);
        END LOOP;
        UPDATE @extschema@.log_partitions_pending q SET state = 'detached'
         WHERE q.relid OPERATOR(pg_catalog.=) p.oid;
    END LOOP;
    -- Detached partitions that have an index like each of the log's go back.
    FOR p IN
        SELECT c.relname, q.range_from, q.range_to
          FROM @extschema@.log_partitions_pending q
          JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) q.relid
         WHERE q.state OPERATOR(pg_catalog.=) 'detached'
           AND NOT EXISTS (
               SELECT 1 FROM pg_catalog.pg_index pi
                WHERE pi.indrelid OPERATOR(pg_catalog.=) '@extschema@.backup_transaction_logs'::pg_catalog.regclass
                  AND NOT EXISTS (
                      SELECT 1 FROM pg_catalog.pg_index ci
                       WHERE ci.indrelid OPERATOR(pg_catalog.=) q.relid
                         AND pg_catalog.substring(pg_catalog.pg_get_indexdef(ci.indexrelid), ' USING .*')
                             OPERATOR(pg_catalog.=)
                             pg_catalog.substring(pg_catalog.pg_get_indexdef(pi.indexrelid), ' USING .*')))
    LOOP
        PERFORM @extschema@.attach_log_partition(p.relname, p.range_from, p.range_to);
    END LOOP;
END
$$;

CREATE EVENT TRIGGER bkperf_log_partitions_restore ON ddl_command_end
    WHEN TAG IN ('ALTER TABLE', 'CREATE INDEX')
    EXECUTE FUNCTION @extschema@.log_partitions_restore();

/*
 * AFTER INSERT statement trigger of backup_jobs in a restoring session: the
 * health views belong to the extension, so pg_dump does not refresh them;
 * they are refreshed (plainly, without a refresh_log row, whose dumped rows
 * follow) as soon as the restore has loaded the jobs.
 */
CREATE FUNCTION @extschema@.health_views_restored()
RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    REFRESH MATERIALIZED VIEW @extschema@.mv_backup_health_summary;
    REFRESH MATERIALIZED VIEW @extschema@.mv_tenant_backup_summary;
    RETURN NULL;
END
$$;

CREATE TRIGGER health_views_restored AFTER INSERT ON @extschema@.backup_jobs
    FOR EACH STATEMENT WHEN (@extschema@.restoring())
    EXECUTE FUNCTION @extschema@.health_views_restored();

REVOKE ALL ON FUNCTION @extschema@.log_partitions_restore() FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@.health_views_restored() FROM PUBLIC;

COMMENT ON TABLE @extschema@.log_partitions_pending IS
    'Internal: change-log partitions a restore has detached until their indexes exist, and those bkperf attached.';
COMMENT ON FUNCTION @extschema@.log_partitions_restore() IS
    'ddl_command_end event trigger: in a restoring session, keeps a restored change-log partition detached until the dump has created its indexes.';
COMMENT ON FUNCTION @extschema@.health_views_restored() IS
    'Internal: in a restoring session, refreshes the health views once backup_jobs is loaded.';

-- refresh_log's ids from a sequence of the extension, dumped with the table
-- (pg_dump does not carry an identity column's sequence for an extension table).
ALTER TABLE @extschema@.refresh_log ALTER COLUMN refresh_id DROP IDENTITY;
CREATE SEQUENCE @extschema@.refresh_log_refresh_id_seq AS bigint;
ALTER TABLE @extschema@.refresh_log
    ALTER COLUMN refresh_id SET DEFAULT nextval('@extschema@.refresh_log_refresh_id_seq');
ALTER SEQUENCE @extschema@.refresh_log_refresh_id_seq OWNED BY @extschema@.refresh_log.refresh_id;
SELECT pg_catalog.setval('@extschema@.refresh_log_refresh_id_seq',
                         COALESCE(pg_catalog.max(refresh_id), 1), pg_catalog.max(refresh_id) IS NOT NULL)
  FROM @extschema@.refresh_log;
SELECT pg_catalog.pg_extension_config_dump('@extschema@.refresh_log_refresh_id_seq', '');
