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
 * partitions), logging changes as changes of rel (tracked_tables.table_id).
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
    -- A partition (tracked on its own under 1.0) of a tracked table goes on
    -- being captured as part of that table.
    PERFORM @extschema@.capture_sync_partitions_of(rel);
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

CREATE EVENT TRIGGER bkperf_forget_dropped_tables ON sql_drop
    EXECUTE FUNCTION @extschema@.forget_dropped_tables();


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
CREATE FUNCTION @extschema@.capture_sync_partitions()
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

CREATE EVENT TRIGGER bkperf_capture_sync_partitions ON ddl_command_end
    WHEN TAG IN ('CREATE TABLE', 'ALTER TABLE', 'ALTER SCHEMA')
    EXECUTE FUNCTION @extschema@.capture_sync_partitions();

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

REVOKE ALL ON FUNCTION @extschema@.capture() FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@.capture_truncate() FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@.track_table_apply(regclass, name, text, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@.untrack_table_apply(regclass, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@.capture_triggers_drop(regclass) FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@.capture_triggers_create(regclass, regclass, name, text, name[]) FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@.capture_sync_partitions() FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@.capture_sync_partitions_of(regclass) FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@.capture_sync_columns(regclass) FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@.forget_dropped_tables() FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@.capture_log_restarts(regclass, text) FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@.capture_attached_rows(regclass) FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@.capture_detached_rows(regclass) FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@.capture_partitions_before_drop() FROM PUBLIC;
REVOKE ALL ON FUNCTION @extschema@.capture_triggers_keep_names() FROM PUBLIC;
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
COMMENT ON FUNCTION @extschema@.capture_sync_partitions_of(regclass) IS
    'Internal: gives the partitions of the tracked tree containing a table the capture triggers they lack.';
COMMENT ON FUNCTION @extschema@.capture_sync_columns(regclass) IS
    'Internal: records renamed and added columns of a tracked table in tracked_column_changes.';
COMMENT ON FUNCTION @extschema@.column_map(regclass) IS
    'The names of a table''s live columns by attnum, with its OID: what capture_sync_columns compares.';
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
COMMENT ON FUNCTION @extschema@.capture_triggers_keep_names() IS
    'ddl_command_end event trigger: refuses renaming the capture triggers of tracked tables (bkperf finds them by name).';
COMMENT ON FUNCTION @extschema@.track_table(regclass, name, text) IS
    'Starts (or changes) change capture of a table owned by the caller: tenant column, capture mode full or undo.';
COMMENT ON FUNCTION @extschema@.untrack_table(regclass) IS
    'Stops change capture of a table owned by the caller and removes it from bkperf.tracked_tables.';
