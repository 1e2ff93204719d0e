/*
 * Alerts: slow statements captured by the executor hooks (ring in shared
 * memory, read by slow_queries(), moved into system_alerts by flush_alerts()),
 * and slow endpoints reported into performance_metrics (trigger).
 * Both fold repeats of one fingerprint through record_alert().
 */

-- Fold one alert into system_alerts (used by flush_alerts() and the metrics
-- trigger, which call it directly, without an EXECUTE privilege check).
CREATE FUNCTION @extschema@.record_alert(
    p_source text, p_severity text, p_tenant text, p_key text, p_message text,
    p_occurrences bigint, p_first_seen timestamptz, p_last_seen timestamptz,
    p_fold_window interval, p_details jsonb)
RETURNS bigint
LANGUAGE plpgsql SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_fingerprint text;
    v_id bigint;
    v_occurrences bigint;
    v_meta jsonb;
    v_total double precision;
BEGIN
    IF p_source IS NULL OR p_severity IS NULL OR p_key IS NULL OR p_message IS NULL
       OR p_occurrences IS NULL OR p_first_seen IS NULL OR p_last_seen IS NULL
       OR p_fold_window IS NULL OR p_details IS NULL THEN
        RAISE EXCEPTION 'only the tenant of an alert may be NULL'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    v_fingerprint := pg_catalog.md5(pg_catalog.concat_ws('|', p_source, p_severity,
                                    COALESCE(p_tenant, ''), p_key));
    -- One folder per fingerprint at a time, so repeats never make two alerts.
    PERFORM pg_catalog.pg_advisory_xact_lock(1651208289, pg_catalog.hashtext(v_fingerprint));

    SELECT a.alert_id, a.occurrences, a.metadata INTO v_id, v_occurrences, v_meta
      FROM @extschema@.system_alerts a
     WHERE a.fingerprint = v_fingerprint AND NOT a.acknowledged
       AND a.first_seen > p_first_seen - p_fold_window
     ORDER BY a.first_seen DESC
     LIMIT 1;

    IF v_id IS NOT NULL THEN
        v_total := COALESCE((v_meta->>'total_ms')::float8, 0)
                   + COALESCE((p_details->>'total_ms')::float8, 0);
        UPDATE @extschema@.system_alerts a
           SET occurrences = a.occurrences + p_occurrences,
               first_seen = LEAST(a.first_seen, p_first_seen),
               last_seen = GREATEST(a.last_seen, p_last_seen),
               metadata = a.metadata || p_details || pg_catalog.jsonb_build_object(
                   'max_ms', GREATEST((v_meta->>'max_ms')::float8, (p_details->>'max_ms')::float8),
                   'total_ms', v_total,
                   'mean_ms', pg_catalog.round((v_total / (v_occurrences + p_occurrences))::numeric, 3),
                   'errors', COALESCE((v_meta->>'errors')::bigint, 0)
                             + COALESCE((p_details->>'errors')::bigint, 0))
         WHERE a.alert_id = v_id;
        RETURN v_id;
    END IF;

    INSERT INTO @extschema@.system_alerts AS a
           (severity, source, tenant_id, message, metadata, fingerprint,
            occurrences, first_seen, last_seen)
    VALUES (p_severity, p_source, NULLIF(p_tenant, ''), p_message,
            p_details || pg_catalog.jsonb_build_object('mean_ms',
                pg_catalog.round((COALESCE((p_details->>'total_ms')::float8, 0)
                                  / p_occurrences)::numeric, 3)),
            v_fingerprint, p_occurrences, p_first_seen, p_last_seen)
    RETURNING a.alert_id INTO v_id;

    IF p_severity = 'critical' THEN
        PERFORM pg_catalog.pg_notify('bkperf_alerts', pg_catalog.json_build_object(
            'alert_id', v_id, 'severity', p_severity, 'source', p_source,
            'tenant_id', NULLIF(p_tenant, ''), 'message', pg_catalog.left(p_message, 1000),
            'first_seen', p_first_seen)::text);
    END IF;
    RETURN v_id;
END
$$;
REVOKE ALL ON FUNCTION @extschema@.record_alert(text, text, text, text, text, bigint,
    timestamptz, timestamptz, interval, jsonb) FROM PUBLIC;
COMMENT ON FUNCTION @extschema@.record_alert(text, text, text, text, text, bigint,
    timestamptz, timestamptz, interval, jsonb) IS
    'Fold occurrences of one alert into system_alerts: repeats of a fingerprint (source, severity, tenant, key) within the fold window after the alert''s first occurrence, while unacknowledged, add to it; a new critical alert is sent to pg_notify channel bkperf_alerts.';

CREATE FUNCTION @extschema@.slow_queries(
    OUT seq bigint, OUT logged_at timestamptz, OUT dbid oid, OUT userid oid,
    OUT pid integer, OUT application_name text, OUT tenant_id text,
    OUT queryid bigint, OUT duration_ms double precision, OUT rows bigint,
    OUT severity text, OUT sqlstate text, OUT query text)
RETURNS SETOF record
LANGUAGE c VOLATILE STRICT PARALLEL SAFE
AS 'MODULE_PATHNAME', 'bkperf_slow_queries';
COMMENT ON FUNCTION @extschema@.slow_queries() IS
    'Slow statements in the shared-memory ring (all databases), oldest first; query text of other roles only for superusers and pg_read_all_stats members.  Needs shared_preload_libraries.';

CREATE FUNCTION @extschema@.slow_queries_info(
    OUT capacity integer, OUT entries integer, OUT dropped bigint,
    OUT next_seq bigint, OUT ring_started timestamptz)
RETURNS record
LANGUAGE c VOLATILE STRICT PARALLEL SAFE
AS 'MODULE_PATHNAME', 'bkperf_slow_queries_info';
COMMENT ON FUNCTION @extschema@.slow_queries_info() IS
    'State of the slow-query ring: capacity, entries held, entries dropped by overflow since server start, next sequence number, when the ring was created.';

CREATE FUNCTION @extschema@.flush_alerts()
RETURNS bigint
LANGUAGE c VOLATILE STRICT PARALLEL UNSAFE
AS 'MODULE_PATHNAME', 'bkperf_flush_alerts';
REVOKE ALL ON FUNCTION @extschema@.flush_alerts() FROM PUBLIC;
COMMENT ON FUNCTION @extschema@.flush_alerts() IS
    'Move this database''s slow queries from the ring into system_alerts in the caller''s transaction (each exactly once; kept in the ring if the transaction aborts), folding repeats; returns the number of entries moved.  Does nothing on a standby.';

CREATE FUNCTION @extschema@.check_performance_alerts()
RETURNS trigger
LANGUAGE c
AS 'MODULE_PATHNAME', 'bkperf_check_performance_alerts';
REVOKE ALL ON FUNCTION @extschema@.check_performance_alerts() FROM PUBLIC;
COMMENT ON FUNCTION @extschema@.check_performance_alerts() IS
    'Statement-level trigger on performance_metrics: folded warning alerts at bkperf.endpoint_alert_ms, critical at bkperf.endpoint_critical_ms, per tenant and endpoint.';

CREATE TRIGGER check_performance_alerts
    AFTER INSERT ON @extschema@.performance_metrics
    REFERENCING NEW TABLE AS new_metrics
    FOR EACH STATEMENT
    -- Metrics a restore loads were alerted on when first reported; the
    -- dumped system_alerts rows follow.
    WHEN (NOT @extschema@.restoring())
    EXECUTE FUNCTION @extschema@.check_performance_alerts();

CREATE FUNCTION @extschema@.performance_summary(since interval DEFAULT '1 hour')
RETURNS TABLE (endpoint text, requests bigint, mean_ms double precision,
               p50_ms double precision, p95_ms double precision, p99_ms double precision,
               max_ms double precision, error_ratio double precision,
               cache_hit_ratio double precision)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
#variable_conflict use_column
BEGIN
    IF since IS NULL THEN
        RAISE EXCEPTION 'since must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF since < interval '0' THEN
        RAISE EXCEPTION 'since must be a non-negative interval'
            USING ERRCODE = 'invalid_parameter_value',
                  DETAIL = pg_catalog.format('The value given was %s.', since);
    END IF;
    RETURN QUERY
    SELECT s.endpoint, s.requests, s.mean_ms, s.p[1], s.p[2], s.p[3], s.max_ms,
           s.error_ratio, s.cache_hit_ratio
      FROM (SELECT m.endpoint,
                   pg_catalog.count(*) AS requests,
                   pg_catalog.avg(m.response_time_ms) AS mean_ms,
                   pg_catalog.percentile_cont(ARRAY[0.5, 0.95, 0.99]::float8[])
                       WITHIN GROUP (ORDER BY m.response_time_ms) AS p,
                   pg_catalog.max(m.response_time_ms) AS max_ms,
                   pg_catalog.count(*) FILTER (WHERE m.status_code >= 500)::float8
                       / pg_catalog.count(*) AS error_ratio,
                   pg_catalog.count(*) FILTER (WHERE m.cache_hit)::float8
                       / NULLIF(pg_catalog.count(m.cache_hit), 0) AS cache_hit_ratio
              FROM @extschema@.performance_metrics m
             WHERE m.recorded_at >= pg_catalog.now() - since
             GROUP BY m.endpoint) s
     ORDER BY s.endpoint;
END
$$;
COMMENT ON FUNCTION @extschema@.performance_summary(interval) IS
    'Per endpoint over the last "since": requests, mean, p50/p95/p99 (interpolated), max, share of 5xx statuses, cache-hit share among rows that report it.';

CREATE FUNCTION @extschema@.acknowledge_alert(alert_id bigint)
RETURNS boolean
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF acknowledge_alert.alert_id IS NULL THEN
        RAISE EXCEPTION 'alert_id must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    UPDATE @extschema@.system_alerts a
       SET acknowledged = true, acknowledged_at = pg_catalog.now(),
           acknowledged_by = CURRENT_USER
     WHERE a.alert_id = acknowledge_alert.alert_id AND NOT a.acknowledged;
    IF FOUND THEN
        RETURN true;
    END IF;
    PERFORM FROM @extschema@.system_alerts a WHERE a.alert_id = acknowledge_alert.alert_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'alert % does not exist', acknowledge_alert.alert_id
            USING ERRCODE = 'undefined_object';
    END IF;
    RETURN false;
END
$$;
REVOKE ALL ON FUNCTION @extschema@.acknowledge_alert(bigint) FROM PUBLIC;
COMMENT ON FUNCTION @extschema@.acknowledge_alert(bigint) IS
    'Mark an alert acknowledged (true), or report that it already was (false); later repeats of its fingerprint open a new alert.';

CREATE FUNCTION @extschema@.prune_alerts(alerts_older_than interval DEFAULT '30 days',
                                         metrics_older_than interval DEFAULT '7 days')
RETURNS TABLE (alerts_deleted bigint, metrics_deleted bigint)
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    v_alerts bigint;
    v_metrics bigint;
BEGIN
    IF alerts_older_than IS NULL OR metrics_older_than IS NULL THEN
        RAISE EXCEPTION 'retention intervals must not be NULL'
            USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF alerts_older_than < interval '0' OR metrics_older_than < interval '0' THEN
        RAISE EXCEPTION 'retention intervals must be non-negative'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    DELETE FROM @extschema@.system_alerts a
     WHERE a.last_seen < pg_catalog.now() - alerts_older_than;
    GET DIAGNOSTICS v_alerts = ROW_COUNT;
    DELETE FROM @extschema@.performance_metrics m
     WHERE m.recorded_at < pg_catalog.now() - metrics_older_than;
    GET DIAGNOSTICS v_metrics = ROW_COUNT;
    RETURN QUERY SELECT v_alerts, v_metrics;
END
$$;
REVOKE ALL ON FUNCTION @extschema@.prune_alerts(interval, interval) FROM PUBLIC;
COMMENT ON FUNCTION @extschema@.prune_alerts(interval, interval) IS
    'Delete alerts last seen, and metrics recorded, before the given ages; returns how many rows went.  Called by maintenance.';
