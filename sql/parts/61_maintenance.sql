/*
 * Operations: change-log partitions, pruning, the maintenance entry point
 * that pg_cron jobs call, and the pg_cron schedule itself.  pg_cron is
 * optional: nothing here refers to cron.* outside dynamic SQL.
 */
CREATE TABLE @extschema@.maintenance_settings (
    singleton               boolean NOT NULL DEFAULT true,
    log_partition_days_ahead integer NOT NULL DEFAULT 7,
    log_retention           interval,           -- NULL: keep the change log forever
    alert_retention         interval NOT NULL DEFAULT '90 days',
    metric_retention        interval NOT NULL DEFAULT '30 days',
    refresh_log_retention   interval NOT NULL DEFAULT '30 days',
    CONSTRAINT maintenance_settings_pkey PRIMARY KEY (singleton),
    CONSTRAINT maintenance_settings_singleton_check CHECK (singleton),
    CONSTRAINT maintenance_settings_ahead_check CHECK (log_partition_days_ahead BETWEEN 1 AND 366),
    CONSTRAINT maintenance_settings_retention_check CHECK
        (log_retention > '0' AND alert_retention > '0' AND metric_retention > '0'
         AND refresh_log_retention > '0')
);
INSERT INTO @extschema@.maintenance_settings DEFAULT VALUES;
CREATE TRIGGER singleton_take_restored BEFORE INSERT ON @extschema@.maintenance_settings
    FOR EACH ROW WHEN (@extschema@.restoring())
    EXECUTE FUNCTION @extschema@.singleton_take_restored();
SELECT pg_catalog.pg_extension_config_dump('@extschema@.maintenance_settings', '');

-- Non-waiting per-task lock of run_maintenance (bkperf's own lock space).
CREATE FUNCTION @extschema@.try_maintenance_lock(task text)
RETURNS boolean
LANGUAGE c VOLATILE STRICT
AS 'MODULE_PATHNAME', 'bkperf_try_maintenance_lock';
REVOKE ALL ON FUNCTION @extschema@.try_maintenance_lock(text) FROM PUBLIC;

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

/*
 * Daily partitions of the change log (UTC days), from today to days_ahead
 * days ahead.  Rows that landed in the default partition for a day get moved
 * into that day's new partition, so creation never fails.
 */
CREATE FUNCTION @extschema@.ensure_log_partitions(days_ahead integer DEFAULT NULL)
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
REVOKE ALL ON FUNCTION @extschema@.ensure_log_partitions(integer) FROM PUBLIC;

/*
 * The oldest change-log time that something kept still needs: the oldest
 * snapshot's log_scan_from (the start of the oldest transaction running when
 * it was taken: its changes are logged at that time; one day before
 * created_at for a snapshot recorded without it) and the longest recovery
 * window of any enabled retention policy.  Pruning never goes past it.
 */
CREATE FUNCTION @extschema@.log_prune_horizon()
RETURNS timestamptz
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT LEAST(
        (SELECT pg_catalog.min(COALESCE(s.log_scan_from, s.created_at - interval '1 day'))
           FROM @extschema@.backup_pitr_snapshots s),
        pg_catalog.now() - (SELECT pg_catalog.max(p.recovery_window)
                              FROM @extschema@.retention_policy p WHERE p.enabled))
$$;

/*
 * Drop the daily change-log partitions that end before now() - older_than,
 * never past log_prune_horizon(); rows older than the cutoff in the default
 * partition are deleted.  Raises log_retention_state.pruned_before, so
 * change_log_floor() tells rollback and health what the log still covers.
 */
CREATE FUNCTION @extschema@.prune_transaction_logs(older_than interval)
RETURNS TABLE (partition_name text, range_from timestamptz, range_to timestamptz,
               action text, rows_removed bigint)
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    wanted timestamptz;
    horizon timestamptz := @extschema@.log_prune_horizon();
    cutoff timestamptz;
    p record;
BEGIN
    IF older_than IS NULL OR older_than < interval '0' THEN
        RAISE EXCEPTION 'older_than must be a non-negative interval'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    wanted := now() - older_than;
    cutoff := LEAST(wanted, horizon);
    FOR p IN
        SELECT c.oid::regclass AS rel, c.relname,
               (regexp_match(pg_get_expr(c.relpartbound, c.oid), 'FROM \(''([^'']+)''\)'))[1]::timestamptz AS lo,
               (regexp_match(pg_get_expr(c.relpartbound, c.oid), 'TO \(''([^'']+)''\)'))[1]::timestamptz AS hi
          FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
         WHERE i.inhparent = '@extschema@.backup_transaction_logs'::regclass
           AND c.relname <> 'backup_transaction_logs_default'
         ORDER BY 3
    LOOP
        CONTINUE WHEN p.hi > wanted;
        partition_name := '@extschema@.' || p.relname;
        range_from := p.lo;
        range_to := p.hi;
        IF p.hi > cutoff THEN
            action := 'kept: needed by a snapshot or recovery window';
            rows_removed := 0;
        ELSE
            EXECUTE format('SELECT count(*) FROM %s', p.rel) INTO rows_removed;
            EXECUTE format('DROP TABLE %s', p.rel);
            action := 'dropped';
            UPDATE @extschema@.log_retention_state
               SET pruned_before = GREATEST(pruned_before, p.hi);
        END IF;
        RETURN NEXT;
    END LOOP;
    DELETE FROM @extschema@.backup_transaction_logs_default WHERE changed_at < cutoff;
    GET DIAGNOSTICS rows_removed = ROW_COUNT;
    IF rows_removed > 0 THEN
        partition_name := '@extschema@.backup_transaction_logs_default';
        range_from := NULL;
        range_to := cutoff;
        action := 'rows deleted';
        UPDATE @extschema@.log_retention_state SET pruned_before = GREATEST(pruned_before, cutoff);
        RETURN NEXT;
    END IF;
END
$$;
REVOKE ALL ON FUNCTION @extschema@.prune_transaction_logs(interval) FROM PUBLIC;

/*
 * The one entry point of the pg_cron jobs.  Tasks: partitions, flush,
 * refresh, retention, prune (all when NULL).  A task already running in
 * another session is skipped, never queued.  On a standby nothing is done.
 */
CREATE FUNCTION @extschema@.run_maintenance(tasks text[] DEFAULT NULL)
RETURNS TABLE (task text, status text, detail text)
LANGUAGE plpgsql VOLATILE SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    all_tasks constant text[] := ARRAY['partitions', 'flush', 'refresh', 'retention', 'prune'];
    s @extschema@.maintenance_settings;
    n bigint;
    m bigint;
BEGIN
    IF pg_is_in_recovery() THEN
        RETURN QUERY SELECT 'all'::text, 'skipped'::text, 'standby: nothing to do'::text;
        RETURN;
    END IF;
    IF tasks IS NOT NULL AND NOT tasks <@ all_tasks THEN
        RAISE EXCEPTION 'unknown maintenance task in %', tasks
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Tasks are partitions, flush, refresh, retention and prune.';
    END IF;
    SELECT * INTO s FROM @extschema@.maintenance_settings;
    FOREACH task IN ARRAY all_tasks LOOP
        CONTINUE WHEN tasks IS NOT NULL AND NOT task = ANY (tasks);
        IF NOT @extschema@.try_maintenance_lock(task) THEN
            status := 'skipped'; detail := 'already running';
            RETURN NEXT;
            CONTINUE;
        END IF;
        status := 'done';
        CASE task
        WHEN 'partitions' THEN
            SELECT count(*), COALESCE(sum(e.rows_moved), 0) INTO n, m
              FROM @extschema@.ensure_log_partitions(s.log_partition_days_ahead) e;
            detail := format('%s partitions created, %s rows moved from the default partition', n, m);
        WHEN 'flush' THEN
            BEGIN
                n := @extschema@.flush_alerts();
                detail := format('%s slow queries moved into system_alerts', n);
            EXCEPTION WHEN object_not_in_prerequisite_state THEN
                -- bkperf is not in shared_preload_libraries: no ring to flush.
                status := 'skipped'; detail := SQLERRM;
            END;
        WHEN 'refresh' THEN
            SELECT string_agg(r.view_name || ': ' || COALESCE(r.note, 'refreshed'), ', ')
              INTO detail FROM @extschema@.refresh_backup_summaries(true) r;
        WHEN 'retention' THEN
            SELECT count(*) FILTER (WHERE r.action = 'expire'), count(DISTINCT p.tenant_id)
              INTO n, m
              FROM @extschema@.retention_policy p,
                   @extschema@.apply_retention(p.tenant_id, p.keep_daily, p.keep_weekly,
                       p.keep_monthly, p.keep_yearly, p.min_redundancy, p.recovery_window,
                       false) r
             WHERE p.enabled;
            detail := format('%s backups expired for %s tenants with a policy', n, m);
        WHEN 'prune' THEN
            n := 0;
            IF s.log_retention IS NOT NULL THEN
                SELECT count(*) FILTER (WHERE l.action = 'dropped') INTO n
                  FROM @extschema@.prune_transaction_logs(s.log_retention) l;
            END IF;
            DELETE FROM @extschema@.refresh_log WHERE started_at < now() - s.refresh_log_retention;
            GET DIAGNOSTICS m = ROW_COUNT;
            SELECT format('%s log partitions dropped, %s alerts, %s metrics and %s refresh records deleted',
                          n, a.alerts_deleted, a.metrics_deleted, m)
              INTO detail
              FROM @extschema@.prune_alerts(s.alert_retention, s.metric_retention) a;
        END CASE;
        RETURN NEXT;
    END LOOP;
END
$$;
REVOKE ALL ON FUNCTION @extschema@.run_maintenance(text[]) FROM PUBLIC;

/*
 * The pg_cron jobs of this database, by name.  Named with the database so
 * that several databases of one cluster can each have their own.
 */
CREATE FUNCTION @extschema@.maintenance_jobs(refresh_schedule text, flush_schedule text,
                                             maintenance_schedule text)
RETURNS TABLE (job_name text, schedule text, command text)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT 'bkperf-' || v.kind || '@' || pg_catalog.current_database(), v.schedule,
           'SELECT * FROM @extschema@.run_maintenance(' || v.tasks || ')'
      FROM (VALUES ('refresh', refresh_schedule, '''{refresh}'''),
                   ('flush', flush_schedule, '''{flush}'''),
                   ('maintenance', maintenance_schedule, '''{partitions,retention,prune}''')) v(kind, schedule, tasks)
$$;

/* Fail unless pg_cron is installed here; the hint gives the calls to run instead. */
CREATE FUNCTION @extschema@.require_pg_cron(calls text)
RETURNS void
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'pg_cron') THEN
        RAISE EXCEPTION 'pg_cron is not installed in database "%"', current_database()
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  DETAIL = format('pg_cron can only be installed in the database named by cron.database_name (%s).',
                                  COALESCE(current_setting('cron.database_name', true), 'not set: pg_cron is not preloaded')),
                  HINT = 'Run these in that database instead: ' || calls;
    END IF;
END
$$;

CREATE FUNCTION @extschema@.schedule_maintenance(
    refresh_schedule text DEFAULT '0 * * * *',
    flush_schedule text DEFAULT '* * * * *',
    maintenance_schedule text DEFAULT '30 3 * * *')
RETURNS TABLE (job_name text, schedule text, command text, jobid bigint)
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    j record;
BEGIN
    IF refresh_schedule IS NULL OR flush_schedule IS NULL OR maintenance_schedule IS NULL THEN
        RAISE EXCEPTION 'schedules must not be null' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    PERFORM @extschema@.require_pg_cron(
        (SELECT string_agg(format('SELECT cron.schedule_in_database(%L, %L, %L, %L);',
                                  m.job_name, m.schedule, m.command, current_database()), ' ')
           FROM @extschema@.maintenance_jobs(refresh_schedule, flush_schedule, maintenance_schedule) m));
    FOR j IN SELECT * FROM @extschema@.maintenance_jobs(refresh_schedule, flush_schedule,
                                                         maintenance_schedule)
    LOOP
        job_name := j.job_name; schedule := j.schedule; command := j.command;
        -- cron.schedule replaces the user's job of the same name: calling twice leaves one set.
        EXECUTE 'SELECT cron.schedule($1, $2, $3)' INTO jobid USING j.job_name, j.schedule, j.command;
        RETURN NEXT;
    END LOOP;
END
$$;
REVOKE ALL ON FUNCTION @extschema@.schedule_maintenance(text, text, text) FROM PUBLIC;

CREATE FUNCTION @extschema@.unschedule_maintenance()
RETURNS TABLE (job_name text, jobid bigint)
LANGUAGE plpgsql VOLATILE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM @extschema@.require_pg_cron(
        (SELECT string_agg(format('SELECT cron.unschedule(%L);', m.job_name), ' ')
           FROM @extschema@.maintenance_jobs('', '', '') m));
    -- Only this database's bkperf jobs, selected first, then removed one by one.
    FOR job_name, jobid IN EXECUTE
        'SELECT j.jobname::text, j.jobid FROM cron.job j WHERE j.jobname = ANY ($1) ORDER BY j.jobid'
        USING (SELECT array_agg(m.job_name) FROM @extschema@.maintenance_jobs('', '', '') m)
    LOOP
        EXECUTE 'SELECT cron.unschedule($1)' USING jobid;
        RETURN NEXT;
    END LOOP;
END
$$;
REVOKE ALL ON FUNCTION @extschema@.unschedule_maintenance() FROM PUBLIC;

COMMENT ON TABLE @extschema@.maintenance_settings IS
    'Settings of run_maintenance(): partitions created ahead, change-log, alert, metric and refresh-record retention.';
COMMENT ON FUNCTION @extschema@.try_maintenance_lock(text) IS
    'Take the transaction-level lock of one maintenance task without waiting; false if another session holds it.';
COMMENT ON FUNCTION @extschema@.attach_log_partition(text, timestamptz, timestamptz) IS
    'Internal: attach one daily change-log partition, moving its rows out of the default partition.';
COMMENT ON FUNCTION @extschema@.ensure_log_partitions(integer) IS
    'Create the daily change-log partitions from today to days_ahead days ahead, moving rows out of the default partition.';
COMMENT ON FUNCTION @extschema@.log_prune_horizon() IS
    'Oldest change-log time still needed by a snapshot or a retention policy''s recovery window.';
COMMENT ON FUNCTION @extschema@.prune_transaction_logs(interval) IS
    'Drop whole change-log partitions older than the interval, never past log_prune_horizon(); reports what it did.';
COMMENT ON FUNCTION @extschema@.run_maintenance(text[]) IS
    'The one maintenance entry point of the pg_cron jobs: partitions, flush, refresh, retention, prune.';
COMMENT ON FUNCTION @extschema@.maintenance_jobs(text, text, text) IS
    'Names, schedules and commands of the pg_cron jobs of this database.';
COMMENT ON FUNCTION @extschema@.require_pg_cron(text) IS
    'Raise an error, with the given calls as hint, unless pg_cron is installed in this database.';
COMMENT ON FUNCTION @extschema@.schedule_maintenance(text, text, text) IS
    'Register (or replace) the refresh, flush and maintenance jobs of this database with pg_cron.';
COMMENT ON FUNCTION @extschema@.unschedule_maintenance() IS
    'Remove the pg_cron jobs registered by schedule_maintenance().';
