/*
 * Restoring a dump (continued from 05_dump_restore.sql): the change-log
 * partitions created at run time, and the health views.
 *
 * pg_dump writes each run-time log partition as CREATE TABLE + ATTACH
 * PARTITION (pre-data) and its indexes as CREATE INDEX + ALTER INDEX ...
 * ATTACH PARTITION (post-data).  The log's partitioned indexes belong to the
 * extension, so they already exist when the ATTACH runs, and the ATTACH
 * creates the partition's indexes under the very names the dump creates
 * later ("relation ... already exists").  In a restoring session the event
 * trigger below detaches such a partition again (dropping the indexes the
 * ATTACH made) and attaches it back once the dump has created its indexes.
 */

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
