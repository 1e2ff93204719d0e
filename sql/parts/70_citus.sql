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
