-- bkperf 1.0 -> 1.1.  Every catalog change made after 1.0 shipped goes here,
-- mirrored in sql/parts/ (which build the fresh 1.1 install script).
\echo Use "ALTER EXTENSION bkperf UPDATE TO '1.1'" to load this file. \quit

-- dump and restore (issue 11): restores exit 0 and keep every row; snapshots
-- and the change log know their cluster.  Mirrors sql/parts/05_dump_restore.sql,
-- 70_dump_restore.sql and the restore-related edits of 11, 12, 20, 30, 50, 61.

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

-- exact row images (issue 10 items 4 and 6)
CREATE FUNCTION @extschema@.tenant_text(anyelement)
RETURNS text
LANGUAGE C STRICT STABLE PARALLEL SAFE
AS 'MODULE_PATHNAME', 'bkperf_tenant_text';

COMMENT ON FUNCTION @extschema@.tenant_text(anyelement) IS
'The text capture logs as tenant_id for a tenant column value: its text output under fixed settings (ISO dates, UTC, shortest-exact floats), independent of the session''s settings.';

CREATE FUNCTION @extschema@.image_record(image jsonb, proto anyelement)
RETURNS anyelement
LANGUAGE C STABLE PARALLEL SAFE
AS 'MODULE_PATHNAME', 'bkperf_image_record';

COMMENT ON FUNCTION @extschema@.image_record(jsonb, anyelement) IS
'A logged row image (old_data or new_data) decoded into the row type of proto (NULL::table_name) by its current column names, as a rollback restores it; keys missing from the image give NULL.';
-- ---------------------------------------------------------------------
-- Exact and safe rollback (issue 10): table identity, column changes,
-- partitions, rollback scope.
-- ---------------------------------------------------------------------

-- A tracked table's identity in the log: survives renames, schema moves
-- and dump/restore.
CREATE SEQUENCE @extschema@.tracked_tables_table_id_seq AS bigint;
ALTER TABLE @extschema@.tracked_tables
    ADD COLUMN table_id bigint NOT NULL DEFAULT nextval('@extschema@.tracked_tables_table_id_seq'),
    ADD COLUMN column_map jsonb NOT NULL DEFAULT '{}',
    ADD CONSTRAINT tracked_tables_table_id_key UNIQUE (table_id);
ALTER SEQUENCE @extschema@.tracked_tables_table_id_seq
    OWNED BY @extschema@.tracked_tables.table_id;
-- The transaction that started each table's log (unknown for tables
-- tracked by 1.0: their floor stays a time).
ALTER TABLE @extschema@.tracked_tables
    ADD COLUMN tracked_xid xid8,
    ADD COLUMN tracked_origin bigint;
SELECT pg_catalog.pg_extension_config_dump('@extschema@.tracked_tables_table_id_seq', '');

ALTER TABLE @extschema@.backup_transaction_logs ADD COLUMN table_id bigint;
-- Rows logged by 1.0 carry the table's name at the time: match them to the
-- table tracked under that name (1.0 kept tracked_tables.table_name as
-- tracked, so rows logged after a rename stay unmatched, as 1.0 ignored them).
UPDATE @extschema@.backup_transaction_logs l
   SET table_id = t.table_id
  FROM @extschema@.tracked_tables t
 WHERE l.table_name OPERATOR(pg_catalog.=) t.table_name AND l.table_id IS NULL;

CREATE TABLE @extschema@.tracked_column_changes (
    table_id        bigint NOT NULL,
    log_mark        bigint NOT NULL,
    change          text NOT NULL,
    old_name        name,
    new_name        name NOT NULL,
    added_value     text,
    added_value_known boolean NOT NULL DEFAULT true,
    changed_at      timestamptz NOT NULL DEFAULT pg_catalog.now(),
    CONSTRAINT tracked_column_changes_pkey PRIMARY KEY (table_id, log_mark, new_name),
    CONSTRAINT tracked_column_changes_change_check CHECK
        (change IN ('rename', 'add') AND (change = 'add') = (old_name IS NULL))
);
SELECT pg_catalog.pg_extension_config_dump('@extschema@.tracked_column_changes', '');
COMMENT ON TABLE @extschema@.tracked_column_changes IS
    'Columns of tracked tables renamed or added since tracking: how older log images map onto today''s columns.';

ALTER TABLE @extschema@.backup_pitr_rollback_history ADD COLUMN skipped_tables jsonb;
ALTER TABLE @extschema@.backup_pitr_rollback_history ADD COLUMN unlogged jsonb;

/*
 * The names of a table's live columns by attnum, with the table's OID:
 * {"oid": 16384, "cols": {"1": "id", "2": "tenant", ...}}.  A stored map
 * whose OID differs from the table's comes from before a dump and restore
 * (which renumbers columns): it is replaced, not compared.
 */
CREATE FUNCTION @extschema@.column_map(rel regclass)
RETURNS jsonb
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT pg_catalog.jsonb_build_object('oid', rel::pg_catalog.oid,
               'cols', COALESCE(pg_catalog.jsonb_object_agg(a.attnum, a.attname), '{}'))
      FROM pg_catalog.pg_attribute a
     WHERE a.attrelid OPERATOR(pg_catalog.=) rel AND a.attnum OPERATOR(pg_catalog.>) 0
       AND NOT a.attisdropped
$$;

/*
 * Record the columns of tracked table rel renamed or added since its stored
 * column map (tracked_column_changes), keep its tenant and key column names
 * current, and store the new map.  Returns true when the tenant or a key
 * column was renamed (the capture triggers name them in their arguments).
 */
CREATE FUNCTION @extschema@.capture_sync_columns(rel regclass)
RETURNS boolean
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_t     @extschema@.tracked_tables;
    v_cur   jsonb := @extschema@.column_map(rel);
    v_mark  bigint;
    v_moved boolean := false;
    r       record;
BEGIN
    SELECT * INTO STRICT v_t FROM @extschema@.tracked_tables t WHERE t.relid = rel;
    IF v_t.column_map = v_cur THEN
        RETURN false;
    END IF;
    IF v_t.column_map->'oid' = v_cur->'oid' THEN
        -- Taken under the DDL's ACCESS EXCLUSIVE lock: every image logged
        -- before it has a smaller log_id, every later one a larger.
        v_mark := pg_catalog.nextval('@extschema@.backup_transaction_logs_log_id_seq');
        FOR r IN SELECT c.key AS attnum, c.value OPERATOR(pg_catalog.#>>) '{}' AS name,
                        v_t.column_map->'cols' OPERATOR(pg_catalog.->>) c.key AS was,
                        a.atthasmissing, a.atthasdef, a.attgenerated,
                        (a.attmissingval::pg_catalog.text::pg_catalog.text[])[1] AS missing
                   FROM pg_catalog.jsonb_each(v_cur->'cols') c
                   JOIN pg_catalog.pg_attribute a ON a.attrelid OPERATOR(pg_catalog.=) rel
                    AND a.attnum OPERATOR(pg_catalog.=) c.key::pg_catalog.int2
        LOOP
            IF r.was IS NULL AND r.attgenerated OPERATOR(pg_catalog.=) '' THEN
                INSERT INTO @extschema@.tracked_column_changes
                       (table_id, log_mark, change, new_name, added_value, added_value_known)
                VALUES (v_t.table_id, v_mark, 'add', r.name, r.missing,
                        r.atthasmissing OR NOT r.atthasdef);
            ELSIF r.was OPERATOR(pg_catalog.<>) r.name THEN
                -- On Citus each worker draws log ids from its own range, so
                -- no mark drawn here tells which images predate the rename
                -- (swapped names would be read back swapped): refused.
                IF pg_catalog.to_regprocedure('@extschema@.citus_is_citus_table(pg_catalog.regclass)') IS NOT NULL THEN
                    IF @extschema@.citus_is_citus_table(rel) THEN
                        RAISE EXCEPTION 'cannot rename column "%" of tracked Citus table %', r.was, rel
                              USING ERRCODE = 'feature_not_supported',
                                    DETAIL = 'The change log cannot tell which of the workers'' row images predate the rename.',
                                    HINT = 'Untrack the table (bkperf.untrack_table), rename the column, and track it again.';
                    END IF;
                END IF;
                INSERT INTO @extschema@.tracked_column_changes
                       (table_id, log_mark, change, old_name, new_name)
                VALUES (v_t.table_id, v_mark, 'rename', r.was, r.name);
                IF v_t.tenant_column OPERATOR(pg_catalog.=) r.was THEN
                    v_t.tenant_column := r.name;
                    v_moved := true;
                END IF;
                IF r.was OPERATOR(pg_catalog.=) ANY (v_t.key_columns) THEN
                    v_t.key_columns := pg_catalog.array_replace(v_t.key_columns, r.was::name, r.name::name);
                    v_moved := true;
                END IF;
            END IF;
        END LOOP;
    END IF;
    UPDATE @extschema@.tracked_tables t
       SET column_map = v_cur, tenant_column = v_t.tenant_column, key_columns = v_t.key_columns
     WHERE t.relid = rel;
    RETURN v_moved;
END
$$;

/*
 * Give every partition in the tracked tree that contains rel (as the root,
 * a partition or a new partition) the capture triggers it lacks.
 */
CREATE FUNCTION @extschema@.capture_sync_partitions_of(rel regclass)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_rel    regclass;
    v_root   regclass;
    v_tenant name;
    v_mode   text;
    v_keys   name[];
BEGIN
    FOR v_rel, v_root, v_tenant, v_mode, v_keys IN
        SELECT DISTINCT c.oid::pg_catalog.regclass, t.relid, t.tenant_column, t.capture_mode,
               t.key_columns
          FROM (SELECT rel::pg_catalog.oid AS relid
                UNION SELECT x.relid FROM pg_catalog.pg_partition_ancestors(rel) x) a
          JOIN @extschema@.tracked_tables t ON t.relid::pg_catalog.oid OPERATOR(pg_catalog.=) a.relid
         CROSS JOIN LATERAL (SELECT t.relid::pg_catalog.oid AS relid
                             UNION SELECT x.relid FROM pg_catalog.pg_partition_tree(t.relid) x) p
          JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) p.relid
         WHERE c.relkind IN ('r', 'p')
           AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_trigger g
                            WHERE g.tgrelid OPERATOR(pg_catalog.=) c.oid
                              AND g.tgname OPERATOR(pg_catalog.=) 'bkperf_capture_insert')
    LOOP
        PERFORM @extschema@.capture_triggers_create(v_rel, v_root, v_tenant, v_mode, v_keys);
    END LOOP;
END
$$;

/*
 * Create the capture triggers of one table (rel itself or one of its
 * partitions), logging changes as changes of rel (tracked_tables.table_id).
 */
CREATE OR REPLACE FUNCTION @extschema@.capture_triggers_create(part regclass, rel regclass,
                                                    tenant_column name, capture text,
                                                    keys name[])
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_args text;
    v_id   bigint;
BEGIN
    SELECT t.table_id INTO STRICT v_id FROM @extschema@.tracked_tables t WHERE t.relid = rel;
    -- '#' marks the 1.1 argument format (1.0 passed the table's OID).
    v_args := pg_catalog.format('%L, %L, %L', '#' OPERATOR(pg_catalog.||) v_id, tenant_column, capture)
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
    -- Capture fires in every session_replication_role: the rollback applies
    -- in replica mode (no other trigger fires), and logical replication's
    -- apply changes are logged on a subscriber too.
    -- The event trigger leaves this ALTER TABLE of ours alone.
    PERFORM pg_catalog.set_config('bkperf_internal.own_ddl', 'on', true);
    -- One trigger per statement: Citus propagates no other form.
    EXECUTE pg_catalog.format('ALTER TABLE ONLY %s ENABLE ALWAYS TRIGGER bkperf_capture_insert', part);
    EXECUTE pg_catalog.format('ALTER TABLE ONLY %s ENABLE ALWAYS TRIGGER bkperf_capture_update', part);
    EXECUTE pg_catalog.format('ALTER TABLE ONLY %s ENABLE ALWAYS TRIGGER bkperf_capture_delete', part);
    PERFORM pg_catalog.set_config('bkperf_internal.own_ddl', 'off', true);
END
$$;

/*
 * The work of track_table, run as the extension owner by the C entry point
 * once it has checked that the caller owns the table.  Not for PUBLIC.
 */
CREATE OR REPLACE FUNCTION @extschema@.track_table_apply(rel regclass, tenant_column name,
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
    IF (SELECT c.relispartition FROM pg_catalog.pg_class c WHERE c.oid = rel) THEN
        RAISE EXCEPTION 'cannot track partition % on its own', rel
              USING ERRCODE = 'feature_not_supported',
                    DETAIL = 'Changes made through its partitioned parent would not be captured.',
                    HINT = pg_catalog.format('Track the partition root %s: its partitions are captured with it.',
                                             (SELECT x.relid FROM pg_catalog.pg_partition_ancestors(rel) WITH ORDINALITY x(relid, o)
                                               ORDER BY x.o DESC LIMIT 1));
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

    -- Re-tracking keeps tracked_at (the table's log floor) and table_id.
    INSERT INTO @extschema@.tracked_tables AS t
           (relid, table_name, tenant_column, key_columns, capture_mode, tracked_by, column_map)
    VALUES (rel, pg_catalog.format('%I.%I', v_nsp, v_name), tenant_column, v_keys, capture, caller,
            @extschema@.column_map(rel))
    ON CONFLICT (relid) DO UPDATE
       SET table_name = excluded.table_name, tenant_column = excluded.tenant_column,
           key_columns = excluded.key_columns, capture_mode = excluded.capture_mode;
    IF (SELECT t.column_map FROM @extschema@.tracked_tables t WHERE t.relid = rel)
       IS DISTINCT FROM @extschema@.column_map(rel) THEN
        PERFORM @extschema@.capture_sync_columns(rel);
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

    -- Today's change-log partition (and the following days') exists before
    -- the first change is captured, so rows do not land in the default one.
    -- Only now: its DDL fires capture_sync_partitions(), which drops the
    -- capture triggers of tables not (yet) in tracked_tables.
    PERFORM @extschema@.ensure_log_partitions();
END
$$;

/*
 * The work of untrack_table, run as the extension owner once the C entry
 * point has checked that the caller owns the table.  Not for PUBLIC.
 */
CREATE OR REPLACE FUNCTION @extschema@.untrack_table_apply(rel regclass, caller text)
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
    -- A partition (tracked on its own under 1.0) of a tracked table goes on
    -- being captured as part of that table.
    PERFORM @extschema@.capture_sync_partitions_of(rel);
END
$$;

/*
 * ddl_command_end event trigger for CREATE TABLE, ALTER TABLE and ALTER
 * SCHEMA:
 *  - a tracked table attached as a partition of an untracked table is
 *    refused (changes through that parent would not be captured);
 *  - tracked tables' names (table_name) follow renames and schema moves;
 *  - renamed and added columns of tracked tables are recorded
 *    (capture_sync_columns), and capture triggers follow renamed tenant or
 *    key columns;
 *  - partitions created in or attached to a tracked table get the capture
 *    triggers, and a table detached from one loses them.
 */
CREATE OR REPLACE FUNCTION @extschema@.capture_sync_partitions()
RETURNS event_trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_rel       regclass;
    v_root      regclass;
BEGIN
    -- A restore creates the capture triggers itself (they are in the dump),
    -- and the ALTER TABLE of capture_triggers_create is ours.
    IF pg_catalog.to_regclass('@extschema@.tracked_tables') IS NULL OR @extschema@.restoring()
       OR pg_catalog.current_setting('bkperf_internal.own_ddl', true) OPERATOR(pg_catalog.=) 'on' THEN
        RETURN;
    END IF;
    SELECT t.relid, x.relid INTO v_rel, v_root
      FROM @extschema@.tracked_tables t
      JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) t.relid AND c.relispartition
     CROSS JOIN LATERAL (SELECT a.relid FROM pg_catalog.pg_partition_ancestors(t.relid) WITH ORDINALITY a(relid, o)
                          ORDER BY a.o DESC LIMIT 1) x
     WHERE NOT EXISTS (SELECT 1 FROM pg_catalog.pg_partition_ancestors(t.relid) a
                         JOIN @extschema@.tracked_tables p ON p.relid OPERATOR(pg_catalog.=) a.relid
                        WHERE a.relid OPERATOR(pg_catalog.<>) t.relid)
     LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'tracked table % cannot become a partition of untracked table %', v_rel, v_root
              USING ERRCODE = 'feature_not_supported',
                    DETAIL = 'Changes made through the partitioned parent would not be captured.',
                    HINT = pg_catalog.format('Track %s first (bkperf.track_table), or untrack %s.', v_root, v_rel);
    END IF;

    UPDATE @extschema@.tracked_tables t
       SET table_name = pg_catalog.format('%I.%I', n.nspname, c.relname)
      FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace
     WHERE c.oid OPERATOR(pg_catalog.=) t.relid
       AND t.table_name OPERATOR(pg_catalog.<>) pg_catalog.format('%I.%I', n.nspname, c.relname);

    FOR v_rel IN
        SELECT DISTINCT t.relid
          FROM pg_catalog.pg_event_trigger_ddl_commands() d
          JOIN @extschema@.tracked_tables t ON t.relid::pg_catalog.oid OPERATOR(pg_catalog.=) d.objid
         WHERE d.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_class'::pg_catalog.regclass
    LOOP
        IF @extschema@.capture_sync_columns(v_rel) THEN
            -- The triggers name the tenant and key columns: make them anew.
            FOR v_root IN SELECT c.oid FROM pg_catalog.pg_class c
                           WHERE c.relkind IN ('r', 'p')
                             AND (c.oid OPERATOR(pg_catalog.=) v_rel
                                  OR c.oid IN (SELECT p.relid FROM pg_catalog.pg_partition_tree(v_rel) p))
            LOOP
                PERFORM @extschema@.capture_triggers_drop(v_root);
            END LOOP;
            PERFORM @extschema@.capture_sync_partitions_of(v_rel);
        END IF;
    END LOOP;

    -- Partitions of tracked tables without capture triggers.
    FOR v_rel IN
        SELECT DISTINCT d.objid::pg_catalog.regclass
          FROM pg_catalog.pg_event_trigger_ddl_commands() d
         WHERE d.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_class'::pg_catalog.regclass
           AND d.objsubid OPERATOR(pg_catalog.=) 0
           AND EXISTS (SELECT 1 FROM pg_catalog.pg_class c
                        WHERE c.oid OPERATOR(pg_catalog.=) d.objid AND c.relkind IN ('r', 'p'))
    LOOP
        PERFORM @extschema@.capture_sync_partitions_of(v_rel);
    END LOOP;
    -- Tables with capture triggers that are no longer in a tracked tree.
    FOR v_rel IN
        SELECT g.tgrelid::pg_catalog.regclass FROM pg_catalog.pg_trigger g
         WHERE g.tgname OPERATOR(pg_catalog.=) 'bkperf_capture_insert'
           AND g.tgfoid OPERATOR(pg_catalog.=) '@extschema@.capture()'::pg_catalog.regprocedure
           AND NOT EXISTS (SELECT 1 FROM @extschema@.tracked_tables t
                            WHERE t.relid::pg_catalog.oid OPERATOR(pg_catalog.=) g.tgrelid
                               OR t.relid IN (SELECT x.relid
                                                FROM pg_catalog.pg_partition_ancestors(g.tgrelid) x))
    LOOP
        PERFORM @extschema@.capture_triggers_drop(v_rel);
    END LOOP;
END
$$;

DROP EVENT TRIGGER bkperf_capture_sync_partitions;
CREATE EVENT TRIGGER bkperf_capture_sync_partitions ON ddl_command_end
    WHEN TAG IN ('CREATE TABLE', 'ALTER TABLE', 'ALTER SCHEMA')
    EXECUTE FUNCTION @extschema@.capture_sync_partitions();

REVOKE ALL ON FUNCTION @extschema@.capture_sync_partitions_of(regclass) FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@.capture_sync_columns(regclass) FROM PUBLIC;
COMMENT ON FUNCTION @extschema@.capture_sync_partitions_of(regclass) IS
    'Internal: gives the partitions of the tracked tree containing a table the capture triggers they lack.';
COMMENT ON FUNCTION @extschema@.capture_sync_columns(regclass) IS
    'Internal: records renamed and added columns of a tracked table in tracked_column_changes.';
COMMENT ON FUNCTION @extschema@.column_map(regclass) IS
    'The names of a table''s live columns by attnum, with its OID: what capture_sync_columns compares.';
COMMENT ON FUNCTION @extschema@.capture_sync_partitions() IS
    'ddl_command_end event trigger: gives new partitions of tracked tables the capture triggers, takes them from detached ones.';

-- Today's column names of every tracked table, and its capture triggers
-- with the 1.1 arguments (the table_id instead of the OID).
UPDATE @extschema@.tracked_tables t
   SET column_map = @extschema@.column_map(t.relid),
       table_name = pg_catalog.format('%I.%I', n.nspname, c.relname)
  FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace
 WHERE c.oid OPERATOR(pg_catalog.=) t.relid;
SELECT @extschema@.capture_triggers_drop(p.relid::pg_catalog.regclass),
       @extschema@.capture_triggers_create(p.relid::pg_catalog.regclass, t.relid, t.tenant_column,
                                           t.capture_mode, t.key_columns)
  FROM @extschema@.tracked_tables t
 CROSS JOIN LATERAL (SELECT t.relid::pg_catalog.oid AS relid
                     UNION SELECT x.relid FROM pg_catalog.pg_partition_tree(t.relid) x) p
  JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) p.relid AND c.relkind IN ('r', 'p')
 ORDER BY p.relid;

-- The rollback plan is served decoded, as rows of the table restored.
DROP FUNCTION @extschema@.rollback_plan_rows(text, boolean);
/*
 * The plan of the rollback running in this session (src/rollback_plan.c):
 * per changed key of one table its earliest change after the target,
 * decoded into rows of that table (proto's type): the images of the keys
 * present at the target, or the keys (other columns NULL) of those absent
 * at it.  The rollback's own statements read it; anywhere else it is an
 * error, and inside a rollback it answers only for the table being
 * restored, to that table's owner.  Left executable by PUBLIC: the apply
 * runs as each table's owner.
 */
CREATE FUNCTION @extschema@.rollback_plan_rows(table_key text, present boolean, proto anyelement)
RETURNS SETOF anyelement
AS 'MODULE_PATHNAME', 'bkperf_rollback_plan_rows'
LANGUAGE C VOLATILE CALLED ON NULL INPUT ROWS 10000;

COMMENT ON FUNCTION @extschema@.rollback_plan_rows(text, boolean, anyelement) IS
    'Internal: the running rollback''s earliest change per key of the table being restored, as rows of that table; only answers inside a rollback.';

/*
 * The same rollbacks restricted to an explicit list of tables (each tracked
 * and owned by the caller), also returning the tracked tables left outside
 * the scope: {"schema.table": "reason"}.
 */
CREATE FUNCTION @extschema@.rollback_to_snapshot(tenant text, snapshot_id bigint,
                                                 dry_run boolean, tables regclass[],
                                                 OUT rollback_id bigint, OUT status text,
                                                 OUT tables integer, OUT rows_deleted bigint,
                                                 OUT rows_updated bigint, OUT rows_inserted bigint,
                                                 OUT duration_ms double precision, OUT error text,
                                                 OUT skipped_tables jsonb)
RETURNS record
AS 'MODULE_PATHNAME', 'bkperf_rollback_to_snapshot'
LANGUAGE C VOLATILE CALLED ON NULL INPUT;

CREATE FUNCTION @extschema@.rollback_to_time(tenant text, target timestamptz,
                                             dry_run boolean, tables regclass[],
                                             OUT rollback_id bigint, OUT status text,
                                             OUT tables integer, OUT rows_deleted bigint,
                                             OUT rows_updated bigint, OUT rows_inserted bigint,
                                             OUT duration_ms double precision, OUT error text,
                                             OUT skipped_tables jsonb)
RETURNS record
AS 'MODULE_PATHNAME', 'bkperf_rollback_to_time'
LANGUAGE C VOLATILE CALLED ON NULL INPUT;

REVOKE ALL ON FUNCTION @extschema@.rollback_to_snapshot(text, bigint, boolean, regclass[]) FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@.rollback_to_time(text, timestamptz, boolean, regclass[]) FROM PUBLIC;
COMMENT ON FUNCTION @extschema@.rollback_to_snapshot(text, bigint, boolean, regclass[]) IS
    'Restores the tenant''s rows in the listed tables to what the snapshot saw; returns the summary and the tracked tables left outside the scope.';
COMMENT ON FUNCTION @extschema@.rollback_to_time(text, timestamptz, boolean, regclass[]) IS
    'Restores the tenant''s rows in the listed tables to their state at the target time; returns the summary and the tracked tables left outside the scope.';

/*
 * Rollbacks that do not log their own changes, as E-Maj's default
 * emaj_rollback_group does: faster, but the rollback itself cannot be
 * rolled back, and every target it would need (later than its own target,
 * earlier than itself) is refused from then on for the tables it changed
 * (src/rollback_unlogged.c).  tables NULL: every tracked table the caller
 * owns.
 */
CREATE FUNCTION @extschema@.rollback_to_snapshot_unlogged(tenant text, snapshot_id bigint,
                                                          dry_run boolean DEFAULT false,
                                                          tables regclass[] DEFAULT NULL,
                                                          OUT rollback_id bigint, OUT status text,
                                                          OUT tables integer, OUT rows_deleted bigint,
                                                          OUT rows_updated bigint, OUT rows_inserted bigint,
                                                          OUT duration_ms double precision, OUT error text,
                                                          OUT skipped_tables jsonb)
RETURNS record
AS 'MODULE_PATHNAME', 'bkperf_rollback_to_snapshot_unlogged'
LANGUAGE C VOLATILE CALLED ON NULL INPUT;

CREATE FUNCTION @extschema@.rollback_to_time_unlogged(tenant text, target timestamptz,
                                                      dry_run boolean DEFAULT false,
                                                      tables regclass[] DEFAULT NULL,
                                                      OUT rollback_id bigint, OUT status text,
                                                      OUT tables integer, OUT rows_deleted bigint,
                                                      OUT rows_updated bigint, OUT rows_inserted bigint,
                                                      OUT duration_ms double precision, OUT error text,
                                                      OUT skipped_tables jsonb)
RETURNS record
AS 'MODULE_PATHNAME', 'bkperf_rollback_to_time_unlogged'
LANGUAGE C VOLATILE CALLED ON NULL INPUT;

REVOKE ALL ON FUNCTION @extschema@.rollback_to_snapshot_unlogged(text, bigint, boolean, regclass[]) FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@.rollback_to_time_unlogged(text, timestamptz, boolean, regclass[]) FROM PUBLIC;
COMMENT ON FUNCTION @extschema@.rollback_to_snapshot_unlogged(text, bigint, boolean, regclass[]) IS
    'As rollback_to_snapshot, without logging the rollback''s own changes: it cannot itself be rolled back, and targets between its target and itself are refused afterwards for the tables it changed.';
COMMENT ON FUNCTION @extschema@.rollback_to_time_unlogged(text, timestamptz, boolean, regclass[]) IS
    'As rollback_to_time, without logging the rollback''s own changes: it cannot itself be rolled back, and targets between its target and itself are refused afterwards for the tables it changed.';

-- ---------------------------------------------------------------------
-- Citus (issue 14): distribute_by_tenant() and its helpers (70_citus.sql);
-- event triggers that leave Citus's shard DDL alone and a dropped-table
-- trigger without a distributed join; health and statistics functions
-- that Citus can plan (PL/pgSQL, no LATERAL without FROM).
-- ---------------------------------------------------------------------

/*
 * How many changes of each kind the log holds, per table (or for one table,
 * tracked now or before): which tables make the log grow.  For one table it
 * reads idx_transaction_logs_table.
 */
-- PL/pgSQL, not SQL: Citus cannot plan a SQL function's parameters (nor
-- join the distributed log with pg_class); the name is looked up first.
CREATE OR REPLACE FUNCTION @extschema@.table_change_summary(rel regclass DEFAULT NULL)
RETURNS TABLE (table_name text, operation text, changes bigint)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_name text;
BEGIN
    IF rel IS NOT NULL THEN
        SELECT pg_catalog.format('%I.%I', n.nspname, c.relname) INTO v_name
          FROM pg_catalog.pg_class c
          JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
         WHERE c.oid = rel;
    END IF;
    RETURN QUERY
    SELECT l.table_name, l.operation, pg_catalog.count(*)
      FROM @extschema@.backup_transaction_logs l
     WHERE rel IS NULL OR l.table_name = v_name
     GROUP BY l.table_name, l.operation
     ORDER BY l.table_name, l.operation;
END
$$;

/*
 * Per-tenant inputs of the health score, one row per tenant that has backup
 * jobs.  "Restorable" means completed and not failed verification (expired
 * jobs are no longer 'completed').  Windows are relative to now().  The
 * health view materializes exactly these columns, so the live score and the
 * report share one definition.  No LATERAL subquery: Citus cannot push down
 * one without FROM that calls now().
 */
CREATE OR REPLACE VIEW @extschema@.backup_health_inputs AS
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

/*
 * A tenant is known to bkperf when it has a backup job, a snapshot or a
 * change-log row; the statistics functions refuse unknown tenants.
 */
-- PL/pgSQL, not SQL: Citus cannot plan a SQL function's parameters.
CREATE OR REPLACE FUNCTION @extschema@.tenant_known(tenant text)
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

-- PL/pgSQL, not SQL: Citus cannot plan a SQL function's parameters.
CREATE OR REPLACE FUNCTION @extschema@.stale_backup_jobs(older_than interval DEFAULT '1 day')
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

/*
 * The work of track_table, run as the extension owner by the C entry point
 * once it has checked that the caller owns the table.  Not for PUBLIC.
 */
-- Rows that join or leave a tracked table without passing through its
-- capture triggers (attached, detached or dropped partitions) restart its
-- change log (30_capture.sql).

/*
 * Whether capture of tracked table rel is off: a capture trigger of it or
 * of a partition missing, or not ENABLE ALWAYS (session_replication_role =
 * replica would skip it).  The rollback refuses such a table
 * (src/rollback.c): its own changes would not be logged.
 */
CREATE FUNCTION @extschema@.capture_is_off(rel regclass)
RETURNS boolean
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_class c
                    WHERE c.relkind IN ('r', 'p')
                      AND (c.oid OPERATOR(pg_catalog.=) rel
                           OR c.oid IN (SELECT p.relid FROM pg_catalog.pg_partition_tree(rel) p))
                      AND (SELECT pg_catalog.count(*) FROM pg_catalog.pg_trigger g
                            WHERE g.tgrelid OPERATOR(pg_catalog.=) c.oid
                              AND g.tgname OPERATOR(pg_catalog.=) ANY ('{bkperf_capture_insert,bkperf_capture_update,bkperf_capture_delete}'::pg_catalog.name[])
                              AND g.tgenabled OPERATOR(pg_catalog.=) 'A') OPERATOR(pg_catalog.<>) 3)
$$;

/*
 * Whether rel has table inheritance (not partitioning) parents or
 * children: statements on a parent change rows that live in its
 * children, which its key does not cover.  track_table refuses such a
 * table, and so does the rollback (src/rollback.c).
 */
CREATE FUNCTION @extschema@.capture_in_inheritance(rel regclass)
RETURNS boolean
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_inherits i
                     JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) i.inhrelid
                    WHERE (i.inhparent OPERATOR(pg_catalog.=) rel OR i.inhrelid OPERATOR(pg_catalog.=) rel)
                      AND NOT c.relispartition)
$$;

/*
 * The change log of tracked table root no longer holds every change of it
 * since tracked_at (why says what happened): it starts again now, so
 * rollbacks to earlier targets leave the table out instead of completing
 * without those changes.
 */
CREATE FUNCTION @extschema@.capture_log_restarts(root regclass, why text)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_xid   xid8 := pg_catalog.pg_current_xact_id();
    v_origin bigint := @extschema@.cluster_identity();
BEGIN
    UPDATE @extschema@.tracked_tables t
       SET tracked_at = pg_catalog.now(), tracked_xid = v_xid, tracked_origin = v_origin
     WHERE t.relid = root;
    RAISE WARNING 'change log of tracked table % starts again now: %', root, why
          USING HINT = 'Rollbacks to earlier targets leave this table out (reason: tracked after the target).';
END
$$;

/*
 * Rows that joined a tracked table without passing through its capture
 * triggers: a partition attached with rows.  rel is the table the DDL
 * named; the partitions of its tracked tree that have no capture triggers
 * yet are the ones just attached (or created, then empty).  Restarts the
 * root's change log for each that holds rows.
 */
CREATE FUNCTION @extschema@.capture_attached_rows(rel regclass)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_part regclass;
    v_root regclass;
    v_rows boolean;
BEGIN
    FOR v_part, v_root IN
        SELECT DISTINCT c.oid::pg_catalog.regclass, t.relid
          FROM (SELECT rel::pg_catalog.oid AS relid
                UNION SELECT x.relid FROM pg_catalog.pg_partition_ancestors(rel) x) a
          JOIN @extschema@.tracked_tables t ON t.relid::pg_catalog.oid OPERATOR(pg_catalog.=) a.relid
         CROSS JOIN LATERAL (SELECT x.relid FROM pg_catalog.pg_partition_tree(t.relid) x) p
          JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) p.relid
         WHERE c.relkind OPERATOR(pg_catalog.=) 'r'
           AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_trigger g
                            WHERE g.tgrelid OPERATOR(pg_catalog.=) c.oid
                              AND g.tgname OPERATOR(pg_catalog.=) 'bkperf_capture_insert')
    LOOP
        EXECUTE pg_catalog.format('SELECT EXISTS (SELECT 1 FROM ONLY %s)', v_part) INTO v_rows;
        IF v_rows THEN
            PERFORM @extschema@.capture_log_restarts(v_root,
                pg_catalog.format('partition %s joined it with rows that were never logged', v_part));
        END IF;
    END LOOP;
END
$$;

/*
 * Rows that left a tracked table without passing through its capture
 * triggers: tbl, a table that still has capture triggers but is no longer
 * in a tracked tree (detached), holding rows.  Its root is the tracked
 * table whose identity its triggers carry (#table_id); its change log
 * restarts.
 */
CREATE FUNCTION @extschema@.capture_detached_rows(tbl regclass)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_root regclass;
    v_rows boolean;
BEGIN
    SELECT t.relid INTO v_root
      FROM pg_catalog.pg_trigger g
      JOIN @extschema@.tracked_tables t
        ON '#' OPERATOR(pg_catalog.||) t.table_id::pg_catalog.text
           OPERATOR(pg_catalog.=) pg_catalog.split_part(pg_catalog.encode(g.tgargs, 'escape'), '\000', 1)
     WHERE g.tgrelid OPERATOR(pg_catalog.=) tbl
       AND g.tgname OPERATOR(pg_catalog.=) 'bkperf_capture_insert';
    IF v_root IS NULL
       OR (SELECT c.relkind FROM pg_catalog.pg_class c WHERE c.oid OPERATOR(pg_catalog.=) tbl)
          OPERATOR(pg_catalog.<>) 'r' THEN
        RETURN;
    END IF;
    EXECUTE pg_catalog.format('SELECT EXISTS (SELECT 1 FROM ONLY %s)', tbl) INTO v_rows;
    IF v_rows THEN
        PERFORM @extschema@.capture_log_restarts(v_root,
            pg_catalog.format('partition %s left it with its rows', tbl));
    END IF;
END
$$;

/*
 * ddl_command_start event trigger of DROP TABLE, DROP SCHEMA and DROP
 * OWNED: remember which leaf partitions of tracked tables may hold rows
 * (not empty on disk), and their tracked roots, for forget_dropped_tables:
 * once dropped, a partition's parent is unknown.
 */
CREATE FUNCTION @extschema@.capture_partitions_before_drop()
RETURNS event_trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF pg_catalog.to_regclass('@extschema@.tracked_tables') IS NULL OR @extschema@.restoring() THEN
        RETURN;
    END IF;
    IF pg_catalog.to_regprocedure('@extschema@.citus_ddl_is_internal()') IS NOT NULL THEN
        IF @extschema@.citus_ddl_is_internal() THEN
            RETURN;             -- Citus dropping shards (70_citus.sql)
        END IF;
    END IF;
    PERFORM pg_catalog.set_config('bkperf_internal.tracked_partitions',
        COALESCE((SELECT pg_catalog.string_agg(p.relid::pg_catalog.oid::pg_catalog.text
                                               OPERATOR(pg_catalog.||) ':' OPERATOR(pg_catalog.||)
                                               t.relid::pg_catalog.oid::pg_catalog.text, ',')
                    FROM @extschema@.tracked_tables t
                   CROSS JOIN LATERAL pg_catalog.pg_partition_tree(t.relid) p
                   WHERE p.relid OPERATOR(pg_catalog.<>) t.relid::pg_catalog.regclass
                     AND p.isleaf
                     AND pg_catalog.pg_relation_size(p.relid) OPERATOR(pg_catalog.>) 0), ''),
        true);
END
$$;

CREATE EVENT TRIGGER bkperf_partitions_before_drop ON ddl_command_start
    WHEN TAG IN ('DROP TABLE', 'DROP SCHEMA', 'DROP OWNED')
    EXECUTE FUNCTION @extschema@.capture_partitions_before_drop();
REVOKE ALL ON FUNCTION @extschema@.capture_log_restarts(regclass, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@.capture_attached_rows(regclass) FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@.capture_detached_rows(regclass) FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@.capture_partitions_before_drop() FROM PUBLIC;
COMMENT ON FUNCTION @extschema@.forget_dropped_tables() IS
    'sql_drop event trigger: removes dropped tables from bkperf.tracked_tables, and restarts the change log of a tracked table whose partition was dropped with rows.';
COMMENT ON FUNCTION @extschema@.capture_log_restarts(regclass, text) IS
    'Internal: a tracked table''s change log misses changes; it starts again now (tracked_at), with a WARNING.';
COMMENT ON FUNCTION @extschema@.capture_is_off(regclass) IS
    'Internal: whether a capture trigger of a tracked table or of its partitions is missing or not ENABLE ALWAYS.';
COMMENT ON FUNCTION @extschema@.capture_in_inheritance(regclass) IS
    'Internal: whether a table has table inheritance (not partitioning) parents or children.';
COMMENT ON FUNCTION @extschema@.capture_attached_rows(regclass) IS
    'Internal: restarts the change log of a tracked table that a partition joined with rows.';
COMMENT ON FUNCTION @extschema@.capture_detached_rows(regclass) IS
    'Internal: restarts the change log of the tracked table that a detached partition left with rows.';
COMMENT ON FUNCTION @extschema@.capture_partitions_before_drop() IS
    'ddl_command_start event trigger of DROP: notes the tracked tables'' partitions that may hold rows, for forget_dropped_tables.';

CREATE OR REPLACE FUNCTION @extschema@.track_table_apply(rel regclass, tenant_column name,
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
    v_gap   boolean;
    v_xid   xid8 := pg_catalog.pg_current_xact_id();
    v_origin bigint := @extschema@.cluster_identity();
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
    IF (SELECT c.relispartition FROM pg_catalog.pg_class c WHERE c.oid = rel) THEN
        RAISE EXCEPTION 'cannot track partition % on its own', rel
              USING ERRCODE = 'feature_not_supported',
                    DETAIL = 'Changes made through its partitioned parent would not be captured.',
                    HINT = pg_catalog.format('Track the partition root %s: its partitions are captured with it.',
                                             (SELECT x.relid FROM pg_catalog.pg_partition_ancestors(rel) WITH ORDINALITY x(relid, o)
                                               ORDER BY x.o DESC LIMIT 1));
    END IF;
    IF @extschema@.capture_in_inheritance(rel) THEN
        RAISE EXCEPTION 'cannot track table %: it uses table inheritance', rel
              USING ERRCODE = 'feature_not_supported',
                    DETAIL = 'Statements on an inheritance parent change rows that live in its children, which its key does not cover.',
                    HINT = 'Use declarative partitioning (track the partition root), or track tables without inheritance parents or children.';
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

    -- On Citus: co-located with the log, or refused (70_citus.sql).
    PERFORM @extschema@.citus_check_trackable(rel, tenant_column);

    -- Re-tracking keeps tracked_at (the table's log floor) and table_id,
    -- unless capture had a gap: a capture trigger of the table or of a
    -- partition missing, or not ENABLE ALWAYS (so it did not fire in replica
    -- mode), as the rollback's check finds it.  Changes may then have gone
    -- unlogged, and the table's log starts again now.
    v_gap := EXISTS (SELECT 1 FROM @extschema@.tracked_tables t WHERE t.relid = rel)
         AND @extschema@.capture_is_off(rel);
    INSERT INTO @extschema@.tracked_tables AS t
           (relid, table_name, tenant_column, key_columns, capture_mode, tracked_by, column_map,
            tracked_xid, tracked_origin)
    VALUES (rel, pg_catalog.format('%I.%I', v_nsp, v_name), tenant_column, v_keys, capture, caller,
            @extschema@.column_map(rel), v_xid, v_origin)
    ON CONFLICT (relid) DO UPDATE
       SET table_name = excluded.table_name, tenant_column = excluded.tenant_column,
           key_columns = excluded.key_columns, capture_mode = excluded.capture_mode;
    IF v_gap THEN
        PERFORM @extschema@.capture_log_restarts(rel,
            'a capture trigger of it or of a partition was missing or not ENABLE ALWAYS, so changes may not have been logged');
    END IF;
    IF (SELECT t.column_map FROM @extschema@.tracked_tables t WHERE t.relid = rel)
       IS DISTINCT FROM @extschema@.column_map(rel) THEN
        PERFORM @extschema@.capture_sync_columns(rel);
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

    -- Today's change-log partition (and the following days') exists before
    -- the first change is captured, so rows do not land in the default one.
    -- Only now: its DDL fires capture_sync_partitions(), which drops the
    -- capture triggers of tables not (yet) in tracked_tables.
    PERFORM @extschema@.ensure_log_partitions();
END
$$;

/*
 * sql_drop event trigger: a dropped tracked table leaves tracked_tables.
 */
CREATE OR REPLACE FUNCTION @extschema@.forget_dropped_tables()
RETURNS event_trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_gone oid[];
    v_root regclass;
    v_part oid;
BEGIN
    IF pg_catalog.to_regclass('@extschema@.tracked_tables') IS NULL THEN
        RETURN;                 -- the extension itself is being dropped
    END IF;
    IF pg_catalog.to_regprocedure('@extschema@.citus_ddl_is_internal()') IS NOT NULL THEN
        IF @extschema@.citus_ddl_is_internal() THEN
            RETURN;             -- Citus dropping shards or a worker's copy (70_citus.sql)
        END IF;
    END IF;
    -- The dropped tables first: on Citus the DELETE of a reference table
    -- runs on every node, where this function cannot be called.
    SELECT pg_catalog.array_agg(d.objid) INTO v_gone
      FROM pg_catalog.pg_event_trigger_dropped_objects() d
     WHERE d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass AND d.objsubid = 0;
    -- Partitions dropped with their rows, from a tracked table that stays
    -- (capture_partitions_before_drop noted them).
    FOR v_root, v_part IN
        SELECT DISTINCT pg_catalog.split_part(m.x, ':', 2)::pg_catalog.oid::pg_catalog.regclass,
               pg_catalog.split_part(m.x, ':', 1)::pg_catalog.oid
          FROM pg_catalog.unnest(pg_catalog.string_to_array(
                   pg_catalog.current_setting('bkperf_internal.tracked_partitions', true), ',')) m(x)
         WHERE pg_catalog.split_part(m.x, ':', 1)::pg_catalog.oid OPERATOR(pg_catalog.=) ANY (v_gone)
           AND NOT pg_catalog.split_part(m.x, ':', 2)::pg_catalog.oid OPERATOR(pg_catalog.=) ANY (v_gone)
    LOOP
        PERFORM @extschema@.capture_log_restarts(v_root,
            pg_catalog.format('its partition %s was dropped with its rows',
                              (SELECT d.object_identity FROM pg_catalog.pg_event_trigger_dropped_objects() d
                                WHERE d.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_class'::pg_catalog.regclass
                                  AND d.objid OPERATOR(pg_catalog.=) v_part AND d.objsubid OPERATOR(pg_catalog.=) 0
                                LIMIT 1)));
    END LOOP;
    PERFORM pg_catalog.set_config('bkperf_internal.tracked_partitions', '', true);
    IF EXISTS (SELECT 1 FROM @extschema@.tracked_tables t
                WHERE t.relid::pg_catalog.oid = ANY (v_gone)) THEN
        DELETE FROM @extschema@.tracked_tables t WHERE t.relid::pg_catalog.oid = ANY (v_gone);
    END IF;
END
$$;

/*
 * ddl_command_end event trigger for CREATE TABLE, ALTER TABLE and ALTER
 * SCHEMA:
 *  - a tracked table attached as a partition of an untracked table is
 *    refused (changes through that parent would not be captured);
 *  - tracked tables' names (table_name) follow renames and schema moves;
 *  - renamed and added columns of tracked tables are recorded
 *    (capture_sync_columns), and capture triggers follow renamed tenant or
 *    key columns;
 *  - partitions created in or attached to a tracked table get the capture
 *    triggers, and a table detached from one loses them.
 */
CREATE OR REPLACE FUNCTION @extschema@.capture_sync_partitions()
RETURNS event_trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_rel       regclass;
    v_root      regclass;
    v_name      text;
    v_floor     text;
    v_citus     boolean := pg_catalog.to_regprocedure('@extschema@.citus_is_shard(pg_catalog.oid)') IS NOT NULL;
BEGIN
    -- A restore creates the capture triggers itself (they are in the dump),
    -- and the ALTER TABLE of capture_triggers_create is ours.
    IF pg_catalog.to_regclass('@extschema@.tracked_tables') IS NULL OR @extschema@.restoring()
       OR pg_catalog.current_setting('bkperf_internal.own_ddl', true) OPERATOR(pg_catalog.=) 'on' THEN
        RETURN;
    END IF;
    IF pg_catalog.to_regprocedure('@extschema@.citus_ddl_is_internal()') IS NOT NULL THEN
        IF @extschema@.citus_ddl_is_internal() THEN
            RETURN;             -- Citus applying DDL to shards (70_citus.sql)
        END IF;
    END IF;
    -- A tracked table that this command made a partition: of an untracked
    -- table, changes through the parent would not be captured; of a tracked
    -- one, it would keep its own capture triggers and identity, so neither
    -- log would hold all its changes.  Either way: untrack it first.
    SELECT t.relid, x.relid INTO v_rel, v_root
      FROM @extschema@.tracked_tables t
      JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) t.relid AND c.relispartition
     CROSS JOIN LATERAL (SELECT a.relid FROM pg_catalog.pg_partition_ancestors(t.relid) WITH ORDINALITY a(relid, o)
                          ORDER BY a.o DESC LIMIT 1) x
     WHERE EXISTS (SELECT 1 FROM pg_catalog.pg_event_trigger_ddl_commands() d
                    WHERE d.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_class'::pg_catalog.regclass
                      AND d.objid IN (SELECT a.relid FROM pg_catalog.pg_partition_ancestors(t.relid) a))
     LIMIT 1;
    IF FOUND THEN
        IF EXISTS (SELECT 1 FROM pg_catalog.pg_partition_ancestors(v_rel) a
                     JOIN @extschema@.tracked_tables p ON p.relid OPERATOR(pg_catalog.=) a.relid
                    WHERE a.relid OPERATOR(pg_catalog.<>) v_rel) THEN
            RAISE EXCEPTION 'tracked table % cannot become a partition of tracked table %', v_rel, v_root
                  USING ERRCODE = 'feature_not_supported',
                        DETAIL = 'It would keep its own capture triggers and identity, and neither change log would hold all its changes.',
                        HINT = pg_catalog.format('Untrack %s first (bkperf.untrack_table): as a partition of %s it is captured with it.', v_rel, v_root);
        END IF;
        RAISE EXCEPTION 'tracked table % cannot become a partition of untracked table %', v_rel, v_root
              USING ERRCODE = 'feature_not_supported',
                    DETAIL = 'Changes made through the partitioned parent would not be captured.',
                    HINT = pg_catalog.format('Untrack %s first (bkperf.untrack_table), then track %s to capture both.', v_rel, v_root);
    END IF;
    -- Table inheritance (not partitioning) that this command set up around
    -- a tracked table.
    SELECT t.relid INTO v_rel
      FROM @extschema@.tracked_tables t
      JOIN pg_catalog.pg_inherits i
        ON i.inhparent OPERATOR(pg_catalog.=) t.relid OR i.inhrelid OPERATOR(pg_catalog.=) t.relid
      JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) i.inhrelid AND NOT c.relispartition
     WHERE EXISTS (SELECT 1 FROM pg_catalog.pg_event_trigger_ddl_commands() d
                    WHERE d.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_class'::pg_catalog.regclass
                      AND (d.objid OPERATOR(pg_catalog.=) i.inhrelid OR d.objid OPERATOR(pg_catalog.=) i.inhparent))
     LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'tracked table % cannot take part in table inheritance', v_rel
              USING ERRCODE = 'feature_not_supported',
                    DETAIL = 'Statements on an inheritance parent change rows that live in its children, which its key does not cover.',
                    HINT = 'Untrack it first (bkperf.untrack_table), or use declarative partitioning.';
    END IF;

    -- One UPDATE per renamed table (Citus cannot join a reference table
    -- with pg_class in an UPDATE).
    FOR v_rel, v_name IN
        SELECT t.relid, pg_catalog.format('%I.%I', n.nspname, c.relname)
          FROM @extschema@.tracked_tables t
          JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) t.relid
          JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace
         WHERE t.table_name OPERATOR(pg_catalog.<>) pg_catalog.format('%I.%I', n.nspname, c.relname)
    LOOP
        UPDATE @extschema@.tracked_tables t SET table_name = v_name WHERE t.relid = v_rel;
    END LOOP;

    FOR v_rel IN
        SELECT DISTINCT t.relid
          FROM pg_catalog.pg_event_trigger_ddl_commands() d
          JOIN @extschema@.tracked_tables t ON t.relid::pg_catalog.oid OPERATOR(pg_catalog.=) d.objid
         WHERE d.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_class'::pg_catalog.regclass
    LOOP
        IF @extschema@.capture_sync_columns(v_rel) THEN
            -- The triggers name the tenant and key columns: make them anew.
            FOR v_root IN SELECT c.oid FROM pg_catalog.pg_class c
                           WHERE c.relkind IN ('r', 'p')
                             AND (c.oid OPERATOR(pg_catalog.=) v_rel
                                  OR c.oid IN (SELECT p.relid FROM pg_catalog.pg_partition_tree(v_rel) p))
            LOOP
                PERFORM @extschema@.capture_triggers_drop(v_root);
            END LOOP;
            PERFORM @extschema@.capture_sync_partitions_of(v_rel);
        END IF;
    END LOOP;

    -- Partitions of tracked tables without capture triggers.
    FOR v_rel IN
        SELECT DISTINCT d.objid::pg_catalog.regclass
          FROM pg_catalog.pg_event_trigger_ddl_commands() d
         WHERE d.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_class'::pg_catalog.regclass
           AND d.objsubid OPERATOR(pg_catalog.=) 0
           AND EXISTS (SELECT 1 FROM pg_catalog.pg_class c
                        WHERE c.oid OPERATOR(pg_catalog.=) d.objid AND c.relkind IN ('r', 'p'))
    LOOP
        PERFORM @extschema@.capture_attached_rows(v_rel);
        PERFORM @extschema@.capture_sync_partitions_of(v_rel);
    END LOOP;
    -- Tables with capture triggers that are no longer in a tracked tree.
    FOR v_rel IN
        SELECT g.tgrelid::pg_catalog.regclass FROM pg_catalog.pg_trigger g
         WHERE g.tgname OPERATOR(pg_catalog.=) 'bkperf_capture_insert'
           AND g.tgfoid OPERATOR(pg_catalog.=) '@extschema@.capture()'::pg_catalog.regprocedure
           AND NOT EXISTS (SELECT 1 FROM @extschema@.tracked_tables t
                            WHERE t.relid::pg_catalog.oid OPERATOR(pg_catalog.=) g.tgrelid
                               OR t.relid IN (SELECT x.relid
                                                FROM pg_catalog.pg_partition_ancestors(g.tgrelid) x))
    LOOP
        IF v_citus THEN
            IF @extschema@.citus_is_shard(v_rel) THEN
                CONTINUE;       -- a Citus shard of a tracked table (70_citus.sql)
            END IF;
        END IF;
        PERFORM @extschema@.capture_detached_rows(v_rel);
        PERFORM @extschema@.capture_triggers_drop(v_rel);
    END LOOP;
    -- Capture switched off (ALTER TABLE ... DISABLE TRIGGER, or ENABLE
    -- without ALWAYS): no target is covered while it is off (tracked_at
    -- infinity; a rollback refuses the table anyway), and the log starts
    -- again when it is back on: changes made meanwhile were not logged.
    FOR v_rel, v_floor IN
        SELECT DISTINCT t.relid, t.tracked_at::pg_catalog.text
          FROM pg_catalog.pg_event_trigger_ddl_commands() d
          JOIN @extschema@.tracked_tables t
            ON t.relid::pg_catalog.oid OPERATOR(pg_catalog.=) d.objid
            OR t.relid IN (SELECT x.relid FROM pg_catalog.pg_partition_ancestors(d.objid) x)
         WHERE d.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_class'::pg_catalog.regclass
    LOOP
        IF @extschema@.capture_is_off(v_rel) THEN
            IF v_floor OPERATOR(pg_catalog.<>) 'infinity' THEN
                UPDATE @extschema@.tracked_tables t SET tracked_at = 'infinity' WHERE t.relid = v_rel;
                RAISE WARNING 'capture of tracked table % is off: a capture trigger is disabled or not ENABLE ALWAYS', v_rel
                      USING HINT = 'Rollbacks leave the table out until its capture triggers are ENABLE ALWAYS again; its change log then starts again.';
            END IF;
        ELSIF v_floor OPERATOR(pg_catalog.=) 'infinity' THEN
            PERFORM @extschema@.capture_log_restarts(v_rel, 'its capture was off, and changes may not have been logged');
        END IF;
    END LOOP;
END
$$;

/*
 * A tenant's snapshots, newest first (optionally of one type), with how many
 * completed rollbacks went back to each.
 */
-- The query is in PL/pgSQL (Citus cannot plan a SQL function's parameters);
-- the SQL wrapper keeps the contract's parameter and column names, which
-- PL/pgSQL would not accept together (snapshot_type is both).
CREATE FUNCTION @extschema@.list_snapshots_query(p_tenant text, p_type text)
RETURNS TABLE (o_snapshot_id bigint, o_snapshot_type text, o_label text, o_created_at timestamptz,
               o_wal_lsn pg_lsn, o_rollbacks bigint)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RETURN QUERY
    SELECT s.snapshot_id, s.snapshot_type, s.label, s.created_at, s.wal_lsn,
           (SELECT count(*) FROM @extschema@.backup_pitr_rollback_history h
             WHERE h.tenant_id = s.tenant_id AND h.snapshot_id = s.snapshot_id
               AND h.rollback_status = 'completed')
      FROM @extschema@.backup_pitr_snapshots s
     WHERE s.tenant_id = p_tenant AND p_type IS NULL
    UNION ALL
    SELECT s.snapshot_id, s.snapshot_type, s.label, s.created_at, s.wal_lsn,
           (SELECT count(*) FROM @extschema@.backup_pitr_rollback_history h
             WHERE h.tenant_id = s.tenant_id AND h.snapshot_id = s.snapshot_id
               AND h.rollback_status = 'completed')
      FROM @extschema@.backup_pitr_snapshots s
     WHERE s.snapshot_type = p_type AND s.tenant_id = p_tenant
     ORDER BY 4 DESC, 1 DESC;
END
$$;

CREATE OR REPLACE FUNCTION @extschema@.list_snapshots(tenant text, snapshot_type text DEFAULT NULL)
RETURNS TABLE (snapshot_id bigint, snapshot_type text, label text, created_at timestamptz,
               wal_lsn pg_lsn, rollbacks bigint)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT * FROM @extschema@.list_snapshots_query($1, $2)
$$;

COMMENT ON FUNCTION @extschema@.list_snapshots_query(text, text) IS
    'Internal: the query of list_snapshots (PL/pgSQL, which Citus can plan).';

/*
 * Scaling out with Citus: which node this is, the guard bkperf's event
 * triggers use on Citus, and distribute_by_tenant(), which distributes
 * bkperf's per-tenant tables by tenant_id (co-located with the change log)
 * and makes its configuration tables reference tables.  Everything here
 * works, or refuses with a clear error, without Citus.  The C side
 * (capture into the co-located log shard) is src/citus.c.
 */

/*
 * 'none' without the citus extension in this database, else 'coordinator'
 * (Citus group 0) or 'worker'.
 */
CREATE FUNCTION @extschema@.citus_node()
RETURNS text
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF pg_catalog.to_regclass('pg_catalog.pg_dist_local_group') IS NULL THEN
        RETURN 'none';
    END IF;
    RETURN CASE WHEN (SELECT g.groupid FROM pg_catalog.pg_dist_local_group g)
                     OPERATOR(pg_catalog.=) 0
                THEN 'coordinator' ELSE 'worker' END;
END
$$;

/*
 * True when DDL in this session is Citus applying a command to shards or
 * to a node's copy of a table (a worker, or Citus's own connections to the
 * coordinator): bkperf's event triggers act only on the command the user
 * ran on the coordinator, which Citus then propagates, and must neither
 * write the catalog a second time nor drop the shards' capture triggers.
 */
CREATE FUNCTION @extschema@.citus_ddl_is_internal()
RETURNS boolean
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF pg_catalog.to_regclass('pg_catalog.pg_dist_local_group') IS NULL THEN
        RETURN false;
    END IF;
    RETURN @extschema@.citus_node() OPERATOR(pg_catalog.=) 'worker'
        OR pg_catalog.current_setting('application_name') LIKE 'citus\_internal%';
END
$$;

/*
 * Whether rel is a Citus table (distributed or reference).
 */
CREATE FUNCTION @extschema@.citus_is_citus_table(rel regclass)
RETURNS boolean
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF pg_catalog.to_regclass('pg_catalog.pg_dist_partition') IS NULL THEN
        RETURN false;
    END IF;
    RETURN EXISTS (SELECT 1 FROM pg_catalog.pg_dist_partition p
                    WHERE p.logicalrelid OPERATOR(pg_catalog.=) rel);
END
$$;

/*
 * Whether rel is a shard of a Citus table on this node.
 */
CREATE FUNCTION @extschema@.citus_is_shard(rel oid)
RETURNS boolean
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_is boolean;
BEGIN
    IF pg_catalog.to_regclass('pg_catalog.pg_dist_shard') IS NULL THEN
        RETURN false;
    END IF;
    EXECUTE 'SELECT pg_catalog.relation_is_a_known_shard($1)' INTO v_is USING rel::regclass;
    RETURN COALESCE(v_is, false);
END
$$;

/*
 * Refuse to go on unless Citus is installed and this is its coordinator.
 */
CREATE FUNCTION @extschema@.citus_require_coordinator(what text)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_node text := @extschema@.citus_node();
BEGIN
    IF v_node OPERATOR(pg_catalog.=) 'none' THEN
        RAISE EXCEPTION 'Citus is not installed in this database'
              USING ERRCODE = 'object_not_in_prerequisite_state',
                    DETAIL = pg_catalog.format('%s needs the citus extension.', what),
                    HINT = 'Add citus to shared_preload_libraries on every node, run CREATE EXTENSION citus on the coordinator and the workers, and add the workers with citus_add_node().';
    ELSIF v_node OPERATOR(pg_catalog.=) 'worker' THEN
        RAISE EXCEPTION '% must run on the Citus coordinator', what
              USING ERRCODE = 'object_not_in_prerequisite_state',
                    DETAIL = 'This node is a Citus worker: its bkperf tables are shells of the coordinator''s.',
                    HINT = 'Connect to the coordinator and call it there.';
    END IF;
END
$$;

/*
 * Run one command on every Citus worker, raising the first failure.  It
 * must be a single statement (use a DO block for several):
 * run_command_on_workers() keeps only the first result of a string of
 * statements and returns before the rest have run, whose errors are lost.
 */
CREATE FUNCTION @extschema@.citus_run_on_workers(command text)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    r record;
BEGIN
    FOR r IN EXECUTE 'SELECT nodename, nodeport, success, result FROM pg_catalog.run_command_on_workers($1)'
             USING command
    LOOP
        IF NOT r.success THEN
            RAISE EXCEPTION 'command failed on Citus worker %:%', r.nodename, r.nodeport
                  USING ERRCODE = 'external_routine_exception',
                        DETAIL = r.result;
        END IF;
    END LOOP;
END
$$;

/*
 * Called by track_table_apply: without a distributed log (no Citus, or
 * distribute_by_tenant() not run) a Citus table cannot be tracked, since
 * its changes would be logged on the workers where nobody reads them; with
 * one, only a distributed table whose distribution column is the tenant
 * column, co-located with the log, can: its changes are then logged in the
 * log shard beside the changed shard.  Such a table's capture triggers are
 * propagated to its shards (citus.enable_unsafe_triggers, for this
 * transaction).
 */
CREATE FUNCTION @extschema@.citus_check_trackable(rel regclass, tenant_column name)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_log   regclass := '@extschema@.backup_transaction_logs';
    v_ok    boolean;
BEGIN
    IF NOT @extschema@.citus_is_citus_table(v_log) THEN
        IF @extschema@.citus_is_citus_table(rel) THEN
            RAISE EXCEPTION 'cannot track Citus table % before bkperf is distributed', rel
                  USING ERRCODE = 'object_not_in_prerequisite_state',
                        DETAIL = 'Its changes would be logged on the workers, in tables nobody reads.',
                        HINT = 'Call bkperf.distribute_by_tenant() on the coordinator first.';
        END IF;
        RETURN;
    END IF;
    PERFORM @extschema@.citus_require_coordinator('bkperf.track_table()');
    SELECT p.partmethod OPERATOR(pg_catalog.=) 'h'
           AND p.colocationid OPERATOR(pg_catalog.=)
               (SELECT l.colocationid FROM pg_catalog.pg_dist_partition l
                 WHERE l.logicalrelid OPERATOR(pg_catalog.=) v_log)
           AND pg_catalog.column_to_column_name(p.logicalrelid, p.partkey)
               OPERATOR(pg_catalog.=) tenant_column
      INTO v_ok
      FROM pg_catalog.pg_dist_partition p
     WHERE p.logicalrelid OPERATOR(pg_catalog.=) rel;
    IF v_ok IS NOT TRUE THEN
        RAISE EXCEPTION 'table % is not distributed by "%" co-located with the change log', rel, tenant_column
              USING ERRCODE = 'feature_not_supported',
                    DETAIL = 'On Citus a tracked table''s changes are logged in the log shard on the same worker, so its shards must be co-located with bkperf.backup_transaction_logs.',
                    HINT = pg_catalog.format('Make %I of type text COLLATE "C" and run SELECT create_distributed_table(%L, %L, colocate_with => %L) (or alter_distributed_table with colocate_with).',
                                             tenant_column, rel::text, tenant_column, v_log::text);
    END IF;
    PERFORM pg_catalog.set_config('citus.enable_unsafe_triggers', 'on', true);
END
$$;

/*
 * Distribute bkperf's catalog by tenant on a Citus coordinator (see the
 * README, "Scaling out with Citus").  Idempotent: tables already made Citus
 * tables are left alone, so it may run again after workers were added
 * (it gives new workers their own range of bkperf ids).  Returns every
 * bkperf Citus table with its kind ('distributed' by tenant_id or
 * 'reference') and whether this call made it so.
 */
CREATE FUNCTION @extschema@.distribute_by_tenant()
RETURNS TABLE (table_name text, distribution text, changed boolean)
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    -- Configuration and cluster-wide tables: a copy on every node.
    v_reference regclass[] := ARRAY[
        '@extschema@.tracked_tables', '@extschema@.tracked_column_changes',
        '@extschema@.health_policy', '@extschema@.health_policy_tenant',
        '@extschema@.log_retention_state', '@extschema@.retention_policy',
        '@extschema@.maintenance_settings', '@extschema@.refresh_log',
        '@extschema@.system_alerts']::regclass[];
    -- Per-tenant tables, co-located with the log (first); referenced ones first.
    v_distributed regclass[] := ARRAY[
        '@extschema@.backup_transaction_logs', '@extschema@.backup_jobs',
        '@extschema@.backup_pitr_snapshots', '@extschema@.backup_pitr_rollback_history',
        '@extschema@.backup_fk_constraints_cache']::regclass[];
    v_done  regclass[] := '{}';
    v_rel   regclass;
    v_trigger name;
BEGIN
    PERFORM @extschema@.citus_require_coordinator('bkperf.distribute_by_tenant()');
    -- The restore guards of the settings singletons and of backup_jobs
    -- (70_dump_restore.sql) serve pg_restore of a single node; Citus refuses
    -- to distribute tables with triggers, and their copies on the shards
    -- would keep DROP EXTENSION from working.  They go.
    FOR v_rel, v_trigger IN
        SELECT g.tgrelid::pg_catalog.regclass, g.tgname FROM pg_catalog.pg_trigger g
         WHERE g.tgname IN ('singleton_take_restored', 'health_views_restored')
           AND g.tgrelid OPERATOR(pg_catalog.=) ANY (v_reference OPERATOR(pg_catalog.||) v_distributed)
           AND NOT @extschema@.citus_is_citus_table(g.tgrelid::pg_catalog.regclass)
    LOOP
        EXECUTE pg_catalog.format('DROP TRIGGER %I ON %s', v_trigger, v_rel);
    END LOOP;
    IF NOT @extschema@.citus_is_citus_table('@extschema@.backup_transaction_logs')
       AND EXISTS (SELECT 1 FROM @extschema@.tracked_tables) THEN
        RAISE EXCEPTION 'cannot distribute bkperf while tables are tracked'
              USING ERRCODE = 'object_not_in_prerequisite_state',
                    DETAIL = 'The capture triggers of tracked local tables would write to a log that is now distributed.',
                    HINT = 'Untrack the tables (bkperf.untrack_table), call bkperf.distribute_by_tenant(), distribute them co-located with bkperf.backup_transaction_logs, and track them again.';
    END IF;
    FOREACH v_rel IN ARRAY v_reference LOOP
        IF NOT @extschema@.citus_is_citus_table(v_rel) THEN
            EXECUTE 'SELECT pg_catalog.create_reference_table($1)' USING v_rel;
            v_done := v_done || v_rel;
        END IF;
    END LOOP;
    FOREACH v_rel IN ARRAY v_distributed LOOP
        IF NOT @extschema@.citus_is_citus_table(v_rel) THEN
            EXECUTE 'SELECT pg_catalog.create_distributed_table($1, ''tenant_id'', colocate_with => $2)'
              USING v_rel, CASE WHEN v_rel = v_distributed[1] THEN 'none'
                                ELSE v_distributed[1]::text END;
            v_done := v_done || v_rel;
        END IF;
    END LOOP;
    -- The rows were copied into the shards; drop the hidden local copies
    -- (once every table is distributed: foreign keys).
    FOREACH v_rel IN ARRAY v_done LOOP
        EXECUTE 'SELECT pg_catalog.truncate_local_data_after_distributing_table($1)' USING v_rel;
    END LOOP;
    PERFORM @extschema@.citus_worker_id_ranges();
    PERFORM @extschema@.citus_distribute_functions();
    RETURN QUERY
        SELECT p.logicalrelid::text,
               CASE p.partmethod WHEN 'h' THEN 'distributed' WHEN 'n' THEN 'reference'
                    ELSE p.partmethod::text END,
               p.logicalrelid OPERATOR(pg_catalog.=) ANY (v_done)
          FROM pg_catalog.pg_dist_partition p
          JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) p.logicalrelid
         WHERE c.relnamespace OPERATOR(pg_catalog.=) '@extschema@'::regnamespace
           AND NOT c.relispartition
         ORDER BY 2, 1;
END
$$;

/*
 * Make the per-tenant snapshot and rollback functions distributed by their
 * tenant argument, co-located with the log: Citus then runs a call made on
 * the coordinator (as a statement of its own) on the worker that holds the
 * tenant's rows and log, where MVCC visibility is decided.  The rollback's
 * upsert compares tenants with bkperf.tenant_text() in its ON CONFLICT
 * clause, which Citus accepts only from an immutable function: on Citus
 * every tracked tenant column is text COLLATE "C" (track_table checks it),
 * for which tenant_text() is the identity, so it is marked IMMUTABLE on
 * every node.
 */
CREATE FUNCTION @extschema@.citus_distribute_functions()
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_fn regprocedure;
BEGIN
    FOREACH v_fn IN ARRAY ARRAY[
        '@extschema@.create_snapshot(text, text, text)',
        '@extschema@.rollback_to_snapshot(text, bigint, boolean)',
        '@extschema@.rollback_to_snapshot(text, bigint, boolean, regclass[])',
        '@extschema@.rollback_to_time(text, timestamptz, boolean)',
        '@extschema@.rollback_to_time(text, timestamptz, boolean, regclass[])',
        '@extschema@.rollback_to_snapshot_unlogged(text, bigint, boolean, regclass[])',
        '@extschema@.rollback_to_time_unlogged(text, timestamptz, boolean, regclass[])']::regprocedure[]
    LOOP
        IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_dist_object o
                        WHERE o.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_proc'::regclass
                          AND o.objid OPERATOR(pg_catalog.=) v_fn
                          AND o.distribution_argument_index IS NOT NULL) THEN
            EXECUTE 'SELECT pg_catalog.create_distributed_function($1, $2, colocate_with => $3)'
              USING v_fn, '$1'::text, '@extschema@.backup_transaction_logs'::text;
        END IF;
    END LOOP;
    PERFORM pg_catalog.set_config('citus.enable_ddl_propagation', 'off', true);
    ALTER FUNCTION @extschema@.tenant_text(anyelement) IMMUTABLE;
    PERFORM @extschema@.citus_run_on_workers(
        'DO $do$BEGIN SET LOCAL citus.enable_ddl_propagation = off; '
        'ALTER FUNCTION @extschema@.tenant_text(anyelement) IMMUTABLE; END$do$');
    PERFORM pg_catalog.set_config('citus.enable_ddl_propagation', 'on', true);
END
$$;

/*
 * Give each worker's copies of bkperf's id sequences a range of their own
 * (group id << 48), so that log ids, snapshot ids and the other ids a
 * worker draws are unique across the cluster.  A sequence already in its
 * range is left alone.
 */
CREATE FUNCTION @extschema@.citus_worker_id_ranges()
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM @extschema@.citus_run_on_workers($cmd$
DO $do$
DECLARE
    lo  bigint := (SELECT groupid FROM pg_catalog.pg_dist_local_group)::bigint OPERATOR(pg_catalog.<<) 48;
    s   record;
BEGIN
    SET LOCAL citus.enable_ddl_propagation = off;
    FOR s IN SELECT q.schemaname, q.sequencename, q.min_value FROM pg_catalog.pg_sequences q
              WHERE q.schemaname OPERATOR(pg_catalog.=) 'bkperf'
    LOOP
        IF s.min_value OPERATOR(pg_catalog.<>) (lo OPERATOR(pg_catalog.+) 1) THEN
            EXECUTE pg_catalog.format('ALTER SEQUENCE %I.%I MINVALUE %s MAXVALUE %s START %s RESTART',
                                      s.schemaname, s.sequencename, lo OPERATOR(pg_catalog.+) 1,
                                      (lo OPERATOR(pg_catalog.+) (1::bigint OPERATOR(pg_catalog.<<) 48))
                                          OPERATOR(pg_catalog.-) 1,
                                      lo OPERATOR(pg_catalog.+) 1);
        END IF;
    END LOOP;
END
$do$
$cmd$);
END
$$;

REVOKE ALL ON FUNCTION @extschema@.citus_node() FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@.citus_ddl_is_internal() FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@.citus_is_citus_table(regclass) FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@.citus_is_shard(oid) FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@.citus_require_coordinator(text) FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@.citus_run_on_workers(text) FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@.citus_worker_id_ranges() FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@.citus_distribute_functions() FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@.distribute_by_tenant() FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@.citus_check_trackable(regclass, name) FROM PUBLIC;

COMMENT ON FUNCTION @extschema@.citus_node() IS
    'Which Citus node this is: none (no citus extension), coordinator or worker.';
COMMENT ON FUNCTION @extschema@.citus_ddl_is_internal() IS
    'Internal: whether DDL in this session is Citus applying a command to shards or node copies (bkperf''s event triggers then do nothing).';
COMMENT ON FUNCTION @extschema@.citus_is_citus_table(regclass) IS
    'Internal: whether a table is a Citus distributed or reference table.';
COMMENT ON FUNCTION @extschema@.citus_require_coordinator(text) IS
    'Internal: raises an error unless Citus is installed and this is its coordinator.';
COMMENT ON FUNCTION @extschema@.citus_run_on_workers(text) IS
    'Internal: runs one command on every Citus worker, raising the first failure.';
COMMENT ON FUNCTION @extschema@.citus_worker_id_ranges() IS
    'Internal: gives each Citus worker''s bkperf id sequences a range of their own (group id << 48).';
COMMENT ON FUNCTION @extschema@.distribute_by_tenant() IS
    'On a Citus coordinator: distributes bkperf''s per-tenant tables by tenant_id, co-located with the change log, and makes its configuration tables reference tables. Idempotent.';
COMMENT ON FUNCTION @extschema@.citus_check_trackable(regclass, name) IS
    'Internal: on Citus, refuses to track a table that is not distributed by its tenant column co-located with the change log.';
COMMENT ON FUNCTION @extschema@.citus_is_shard(oid) IS
    'Internal: whether a relation is a shard of a Citus table on this node (bkperf''s event triggers leave shards alone).';
COMMENT ON FUNCTION @extschema@.citus_distribute_functions() IS
    'Internal: makes create_snapshot and the rollbacks distributed by tenant (run on the tenant''s worker) and tenant_text() immutable on every Citus node.';

/*
 * ddl_command_end event trigger for ALTER TRIGGER: bkperf finds a tracked
 * table's capture triggers by name (their checks, track_table's repair,
 * the rollback's trigger checks).  A renamed one would be counted as a
 * trigger of the table's own, and tracking the table again would add a
 * second set: every change logged twice.  So renaming them is refused.
 */
CREATE FUNCTION @extschema@.capture_triggers_keep_names()
RETURNS event_trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_rel   regclass;
    v_name  name;
BEGIN
    IF pg_catalog.to_regprocedure('@extschema@.capture()') IS NULL THEN
        RETURN;
    END IF;
    IF pg_catalog.to_regprocedure('@extschema@.citus_ddl_is_internal()') IS NOT NULL THEN
        IF @extschema@.citus_ddl_is_internal() THEN
            RETURN;             -- Citus applying DDL to shards (70_citus.sql)
        END IF;
    END IF;
    SELECT g.tgrelid, g.tgname INTO v_rel, v_name
      FROM pg_catalog.pg_event_trigger_ddl_commands() d
      JOIN pg_catalog.pg_trigger g ON g.oid OPERATOR(pg_catalog.=) d.objid
     WHERE d.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_trigger'::pg_catalog.regclass
       AND g.tgfoid IN (pg_catalog.to_regprocedure('@extschema@.capture()'),
                        pg_catalog.to_regprocedure('@extschema@.capture_truncate()'))
       AND g.tgname OPERATOR(pg_catalog.<>) ALL ('{bkperf_capture_insert,bkperf_capture_update,'
                                                 'bkperf_capture_delete,bkperf_capture_truncate}'::pg_catalog.name[])
     LIMIT 1;
    IF FOUND THEN
        RAISE EXCEPTION 'cannot rename the capture trigger of table %', v_rel
            USING ERRCODE = 'feature_not_supported',
                  DETAIL = pg_catalog.format('bkperf finds its capture triggers by name; %I would be taken for a trigger of the table''s own, and tracking the table again would log every change twice.', v_name),
                  HINT = 'Keep the bkperf_capture_* names.';
    END IF;
END
$$;

CREATE EVENT TRIGGER bkperf_capture_triggers_keep_names ON ddl_command_end
    WHEN TAG IN ('ALTER TRIGGER')
    EXECUTE FUNCTION @extschema@.capture_triggers_keep_names();

REVOKE ALL ON FUNCTION @extschema@.capture_triggers_keep_names() FROM PUBLIC;
COMMENT ON FUNCTION @extschema@.capture_triggers_keep_names() IS
    'ddl_command_end event trigger: refuses renaming the capture triggers of tracked tables (bkperf finds them by name).';
