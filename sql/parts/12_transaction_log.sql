/*
 * Change capture catalog: which tables are tracked, and the per-tenant
 * transaction log that rollback reads.  The log is range-partitioned on
 * changed_at so retention drops whole partitions; the default partition
 * guarantees an insert never fails for want of a partition.
 *
 * Log row contract (capture writes it, rollback reads it):
 *  - log_id orders the changes of one transaction and of one row; it is not
 *    commit order across transactions (rollback uses txid visibility).
 *  - txid is the top-level transaction id; changed_at is the transaction's
 *    start time (now()), so all rows of a statement share one partition.
 *  - record_id is the jsonb object of the key columns of the row after an
 *    INSERT or UPDATE and before a DELETE.  An UPDATE that changes the key
 *    (or the row's tenant) is logged as a DELETE of the old row followed by
 *    an INSERT of the new one, and within one statement every DELETE half
 *    precedes every INSERT half.  So every log row has one tenant, and an
 *    UPDATE row's key and tenant are the same before and after.
 *  - old_data / new_data are to_jsonb-compatible row images.  Capture 'full'
 *    stores both; 'undo' stores the key only for INSERT and the old row for
 *    UPDATE and DELETE (what rollback needs).
 *  - tenant_id is the text form of the row's tenant column (bkperf.tenant_text(),
 *    independent of session settings); NULL when the row's tenant value is
 *    NULL (such rows belong to no tenant).
 *  - table_id (1.1) is tracked_tables.table_id: rollback matches log rows to
 *    tables by it; table_name is the table's name when the row was logged.
 */
CREATE SEQUENCE @extschema@.tracked_tables_table_id_seq AS bigint;

CREATE TABLE @extschema@.tracked_tables (
    relid           regclass NOT NULL,
    table_name      text COLLATE "C" NOT NULL,
    tenant_column   name NOT NULL,
    key_columns     name[] NOT NULL,
    capture_mode    text NOT NULL DEFAULT 'full',
    tracked_at      timestamptz NOT NULL DEFAULT pg_catalog.now(),
    tracked_by      text NOT NULL DEFAULT CURRENT_USER,
    -- 1.1: the table's identity in the log (survives renames, schema moves
    -- and dump/restore, unlike an OID or a name), and the names of its
    -- columns by attnum as last seen (column_map, see capture_sync_columns).
    table_id        bigint NOT NULL DEFAULT nextval('@extschema@.tracked_tables_table_id_seq'),
    column_map      jsonb NOT NULL DEFAULT '{}',
    -- 1.1: the transaction that started the table's log (tracking it, or a
    -- restart), and the cluster whose transaction ids it belongs to: a
    -- snapshot that does not see it is older than the log (src/rollback.c).
    tracked_xid     xid8,
    tracked_origin  bigint,
    CONSTRAINT tracked_tables_pkey PRIMARY KEY (relid),
    CONSTRAINT tracked_tables_table_id_key UNIQUE (table_id),
    CONSTRAINT tracked_tables_table_name_key UNIQUE (table_name),
    CONSTRAINT tracked_tables_capture_mode_check CHECK (capture_mode IN ('full', 'undo')),
    CONSTRAINT tracked_tables_key_columns_check CHECK (pg_catalog.cardinality(key_columns) > 0)
);

CREATE SEQUENCE @extschema@.backup_transaction_logs_log_id_seq AS bigint;

CREATE TABLE @extschema@.backup_transaction_logs (
    log_id          bigint NOT NULL DEFAULT nextval('@extschema@.backup_transaction_logs_log_id_seq'),
    tenant_id       text COLLATE "C",
    table_name      text COLLATE "C" NOT NULL,
    operation       text NOT NULL,
    record_id       jsonb NOT NULL,
    old_data        jsonb,
    new_data        jsonb,
    changed_at      timestamptz NOT NULL DEFAULT pg_catalog.now(),
    txid            xid8 NOT NULL DEFAULT pg_catalog.pg_current_xact_id(),
    changed_by      text NOT NULL DEFAULT CURRENT_USER,
    table_id        bigint,
    CONSTRAINT backup_transaction_logs_operation_check CHECK
        (operation IN ('INSERT', 'UPDATE', 'DELETE'))
) PARTITION BY RANGE (changed_at);
ALTER SEQUENCE @extschema@.backup_transaction_logs_log_id_seq
    OWNED BY @extschema@.backup_transaction_logs.log_id;

CREATE TABLE @extschema@.backup_transaction_logs_default
    PARTITION OF @extschema@.backup_transaction_logs DEFAULT;

CREATE INDEX idx_transaction_logs_tenant_time
    ON @extschema@.backup_transaction_logs (tenant_id, changed_at DESC);
CREATE INDEX idx_transaction_logs_table
    ON @extschema@.backup_transaction_logs (table_name, operation);

/*
 * Lower bound of what the log can be trusted for: a point in time after which
 * every change of every tracked table is in the log.  Pruning raises it.
 */
CREATE TABLE @extschema@.log_retention_state (
    singleton       boolean NOT NULL DEFAULT true,
    pruned_before   timestamptz,
    CONSTRAINT log_retention_state_pkey PRIMARY KEY (singleton),
    CONSTRAINT log_retention_state_singleton_check CHECK (singleton)
);
INSERT INTO @extschema@.log_retention_state DEFAULT VALUES;
CREATE TRIGGER singleton_take_restored BEFORE INSERT ON @extschema@.log_retention_state
    FOR EACH ROW WHEN (@extschema@.restoring())
    EXECUTE FUNCTION @extschema@.singleton_take_restored();

ALTER SEQUENCE @extschema@.tracked_tables_table_id_seq
    OWNED BY @extschema@.tracked_tables.table_id;

/*
 * Renamed and added columns of tracked tables (1.1).  A log image holds a
 * row under the column names of its time: a row logged before log_mark (a
 * log_id taken by the DDL, under its ACCESS EXCLUSIVE lock, so every image
 * of the table's older changes has a smaller log_id) reads new_name from the
 * key old_name ('rename'), or gets added_value, the value ADD COLUMN gave
 * existing rows ('add'; unknown when the table was rewritten, e.g. by a
 * volatile default, and then such images cannot be restored).
 */
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

SELECT pg_catalog.pg_extension_config_dump('@extschema@.tracked_tables', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.tracked_tables_table_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.tracked_column_changes', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.backup_transaction_logs_default', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.backup_transaction_logs_log_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.log_retention_state', '');

/*
 * The earliest time from which the change log is complete for every tracked
 * table: the latest tracking start, raised by pruning.  NULL when nothing is
 * tracked.  Health scoring, PITR statistics and rollback_to_time use it.
 */
CREATE FUNCTION @extschema@.change_log_floor()
RETURNS timestamptz
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT GREATEST(t.latest,
                               (SELECT pruned_before FROM @extschema@.log_retention_state))
      FROM (SELECT pg_catalog.max(tracked_at) AS latest FROM @extschema@.tracked_tables) t
     WHERE t.latest IS NOT NULL
$$;

/*
 * How many changes of each kind the log holds, per table (or for one table,
 * tracked now or before): which tables make the log grow.  For one table it
 * reads idx_transaction_logs_table.
 */
-- PL/pgSQL, not SQL: Citus cannot plan a SQL function's parameters (nor
-- join the distributed log with pg_class); the name is looked up first.
CREATE FUNCTION @extschema@.table_change_summary(rel regclass DEFAULT NULL)
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

COMMENT ON TABLE @extschema@.tracked_tables IS
    'Application tables whose changes are captured, with tenant column, key columns and capture mode.';
COMMENT ON TABLE @extschema@.backup_transaction_logs IS
    'Per-tenant change log written by the capture triggers in the changing transaction; partitioned by changed_at.';
COMMENT ON TABLE @extschema@.tracked_column_changes IS
    'Columns of tracked tables renamed or added since tracking: how older log images map onto today''s columns.';
COMMENT ON TABLE @extschema@.log_retention_state IS
    'Single row: the time before which change-log partitions were pruned.';
COMMENT ON FUNCTION @extschema@.table_change_summary(regclass) IS
    'Changes in the log per table and operation, for every tracked table or one.';
COMMENT ON FUNCTION @extschema@.change_log_floor() IS
    'Earliest time from which the change log is complete for every tracked table; NULL when nothing is tracked.';
