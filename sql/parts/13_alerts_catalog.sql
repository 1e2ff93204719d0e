/*
 * Performance metrics reported by applications, and alerts (slow queries,
 * slow endpoints, backup health) recorded inside the database.
 */
CREATE SEQUENCE @extschema@.performance_metrics_metric_id_seq AS bigint;

CREATE TABLE @extschema@.performance_metrics (
    tenant_id           text COLLATE "C" NOT NULL,
    metric_id           bigint NOT NULL DEFAULT nextval('@extschema@.performance_metrics_metric_id_seq'),
    endpoint            text NOT NULL,
    response_time_ms    double precision NOT NULL,
    status_code         integer,
    cache_hit           boolean,
    recorded_at         timestamptz NOT NULL DEFAULT pg_catalog.now(),
    metadata            jsonb NOT NULL DEFAULT '{}',
    CONSTRAINT performance_metrics_pkey PRIMARY KEY (tenant_id, metric_id),
    CONSTRAINT performance_metrics_response_time_check CHECK (response_time_ms >= 0),
    CONSTRAINT performance_metrics_status_code_check CHECK (status_code BETWEEN 100 AND 599)
);
ALTER SEQUENCE @extschema@.performance_metrics_metric_id_seq
    OWNED BY @extschema@.performance_metrics.metric_id;

CREATE SEQUENCE @extschema@.system_alerts_alert_id_seq AS bigint;

-- Not a per-tenant table: a slow query may carry no tenant tag.
CREATE TABLE @extschema@.system_alerts (
    alert_id            bigint NOT NULL DEFAULT nextval('@extschema@.system_alerts_alert_id_seq'),
    severity            text NOT NULL,
    source              text NOT NULL,
    tenant_id           text COLLATE "C",
    message             text NOT NULL,
    metadata            jsonb NOT NULL DEFAULT '{}',
    fingerprint         text,
    occurrences         bigint NOT NULL DEFAULT 1,
    first_seen          timestamptz NOT NULL DEFAULT pg_catalog.now(),
    last_seen           timestamptz NOT NULL DEFAULT pg_catalog.now(),
    acknowledged        boolean NOT NULL DEFAULT false,
    acknowledged_at     timestamptz,
    acknowledged_by     text,
    CONSTRAINT system_alerts_pkey PRIMARY KEY (alert_id),
    CONSTRAINT system_alerts_severity_check CHECK (severity IN ('info', 'warning', 'critical')),
    CONSTRAINT system_alerts_source_check CHECK
        (source IN ('slow_query', 'endpoint', 'backup', 'maintenance')),
    CONSTRAINT system_alerts_occurrences_check CHECK (occurrences >= 1),
    CONSTRAINT system_alerts_seen_check CHECK (last_seen >= first_seen)
);
ALTER SEQUENCE @extschema@.system_alerts_alert_id_seq
    OWNED BY @extschema@.system_alerts.alert_id;

-- performance_summary() and prune_alerts() select metrics by time.
CREATE INDEX idx_performance_metrics_recorded ON @extschema@.performance_metrics (recorded_at);
-- record_alert() finds the open alert of a fingerprint to fold into.
CREATE INDEX idx_system_alerts_fingerprint ON @extschema@.system_alerts (fingerprint, first_seen DESC)
    WHERE NOT acknowledged;

SELECT pg_catalog.pg_extension_config_dump('@extschema@.performance_metrics', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.performance_metrics_metric_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.system_alerts', '');
SELECT pg_catalog.pg_extension_config_dump('@extschema@.system_alerts_alert_id_seq', '');

COMMENT ON TABLE @extschema@.performance_metrics IS
    'Endpoint timings reported by applications: tenant, endpoint, response time, status, cache hit.';
COMMENT ON TABLE @extschema@.system_alerts IS
    'Alerts recorded inside the database; repeats of one fingerprint are folded into one row with a count.';
