/*
 * Snapshots and exact per-tenant point-in-time rollback (src/rollback.c),
 * foreign-key restore order (src/fkorder.c), and the read-only functions
 * over snapshots and rollback history.
 *
 * Privileges: creating snapshots and rolling back change data, so EXECUTE is
 * revoked from PUBLIC.  The functions are not SECURITY DEFINER.  A rollback
 * covers the tracked tables the caller owns (a superuser: all), and writes
 * each as its owner (src/rollback_apply.c).  A role granted EXECUTE also
 * needs SELECT on the change log, tracked_tables, tracked_column_changes,
 * log_retention_state, and SELECT/INSERT/UPDATE on the snapshot, history and
 * FK cache tables (with their sequences).
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

CREATE FUNCTION @extschema@.list_snapshots(tenant text, snapshot_type text DEFAULT NULL)
RETURNS TABLE (snapshot_id bigint, snapshot_type text, label text, created_at timestamptz,
               wal_lsn pg_lsn, rollbacks bigint)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT * FROM @extschema@.list_snapshots_query($1, $2)
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

COMMENT ON FUNCTION @extschema@.list_snapshots_query(text, text) IS
    'Internal: the query of list_snapshots (PL/pgSQL, which Citus can plan).';
