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
