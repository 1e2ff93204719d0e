-- Endpoint alerts (trigger on performance_metrics), performance_summary(),
-- prune_alerts().  Tenants and endpoints are prefixed alerts_ / /alerts/.

-- Default thresholds: warning at 2000 ms, critical at 10000 ms, inclusive.
INSERT INTO bkperf.performance_metrics (tenant_id, endpoint, response_time_ms, status_code)
VALUES ('alerts_m1', '/alerts/a', 1999.9, 200),
       ('alerts_m1', '/alerts/a', 2000, 200),
       ('alerts_m1', '/alerts/a', 2500, 200),
       ('alerts_m1', '/alerts/b', 9999.9, 200),
       ('alerts_m1', '/alerts/b', 10000, 503),
       ('alerts_m2', '/alerts/a', 12000, 200);
SELECT tenant_id, severity, source, message, occurrences,
       metadata->>'max_ms' AS max_ms, metadata->>'mean_ms' AS mean_ms,
       metadata->>'threshold_ms' AS threshold_ms, acknowledged
  FROM bkperf.system_alerts WHERE tenant_id IN ('alerts_m1', 'alerts_m2')
 ORDER BY tenant_id, message, severity;

-- A second statement folds into the same alerts.
INSERT INTO bkperf.performance_metrics (tenant_id, endpoint, response_time_ms)
SELECT 'alerts_m1', '/alerts/a', 3000 FROM generate_series(1, 3);
SELECT severity, message, occurrences, metadata->>'max_ms' AS max_ms, metadata->>'mean_ms' AS mean_ms
  FROM bkperf.system_alerts WHERE tenant_id = 'alerts_m1' AND message LIKE 'endpoint /alerts/a %'
 ORDER BY severity;

-- Per-session thresholds (superuser), and off.
SET bkperf.endpoint_alert_ms = 100;
SET bkperf.endpoint_critical_ms = -1;
INSERT INTO bkperf.performance_metrics (tenant_id, endpoint, response_time_ms)
VALUES ('alerts_m3', '/alerts/c', 99), ('alerts_m3', '/alerts/c', 100000);
SET bkperf.endpoint_alert_ms = -1;
INSERT INTO bkperf.performance_metrics (tenant_id, endpoint, response_time_ms)
VALUES ('alerts_m3', '/alerts/d', 100000);
RESET bkperf.endpoint_alert_ms;
RESET bkperf.endpoint_critical_ms;
SELECT severity, message, occurrences FROM bkperf.system_alerts
 WHERE tenant_id = 'alerts_m3' ORDER BY message;

-- Fast rows raise nothing.
INSERT INTO bkperf.performance_metrics (tenant_id, endpoint, response_time_ms)
SELECT 'alerts_m4', '/alerts/fast', g FROM generate_series(1, 1000) g;
SELECT count(*) AS alerts_for_fast_rows FROM bkperf.system_alerts WHERE tenant_id = 'alerts_m4';

-- A role that may only insert metrics still gets its alerts recorded (the
-- trigger writes them as the extension owner), but cannot read or write
-- alerts itself.
CREATE ROLE regress_alerts_reporter;
GRANT INSERT ON bkperf.performance_metrics TO regress_alerts_reporter;
GRANT USAGE ON SEQUENCE bkperf.performance_metrics_metric_id_seq TO regress_alerts_reporter;
SET ROLE regress_alerts_reporter;
INSERT INTO bkperf.performance_metrics (tenant_id, endpoint, response_time_ms)
VALUES ('alerts_m5', '/alerts/e', 20000);
SELECT count(*) FROM bkperf.system_alerts;
SELECT bkperf.record_alert('endpoint', 'critical', 'alerts_m5', 'x', 'forged', 1, now(), now(),
                           '1 hour', '{}');
SELECT bkperf.acknowledge_alert(1);
SELECT bkperf.prune_alerts();
RESET ROLE;
SELECT severity, message, occurrences FROM bkperf.system_alerts WHERE tenant_id = 'alerts_m5';

-- Wrong use of the trigger function.
CREATE TABLE alerts_wrong (tenant_id text, endpoint text, response_time_ms float8,
                           recorded_at timestamptz);
CREATE TRIGGER alerts_wrong_row AFTER INSERT ON alerts_wrong
    FOR EACH ROW EXECUTE FUNCTION bkperf.check_performance_alerts();
INSERT INTO alerts_wrong VALUES ('alerts_w', '/alerts/w', 50000, now());
DROP TRIGGER alerts_wrong_row ON alerts_wrong;
ALTER TABLE alerts_wrong ALTER COLUMN response_time_ms TYPE int;
CREATE TRIGGER alerts_wrong_stmt AFTER INSERT ON alerts_wrong REFERENCING NEW TABLE AS n
    FOR EACH STATEMENT EXECUTE FUNCTION bkperf.check_performance_alerts();
INSERT INTO alerts_wrong VALUES ('alerts_w', '/alerts/w', 50000, now());
DROP TABLE alerts_wrong;

-- Percentiles on a known distribution: 1..100 ms, 5 errors, cache hits on
-- 30 of the 60 rows that report it; one old row outside the window.
INSERT INTO bkperf.performance_metrics (tenant_id, endpoint, response_time_ms, status_code, cache_hit)
SELECT 'alerts_p', '/alerts/pct', g,
       CASE WHEN g % 20 = 0 THEN 500 ELSE 200 END,
       CASE WHEN g <= 60 THEN g % 2 = 0 END
  FROM generate_series(1, 100) g;
INSERT INTO bkperf.performance_metrics (tenant_id, endpoint, response_time_ms, recorded_at)
VALUES ('alerts_p', '/alerts/pct', 5000, now() - interval '2 hours');
SELECT * FROM bkperf.performance_summary() WHERE endpoint = '/alerts/pct';
SELECT endpoint, requests, max_ms, round(error_ratio::numeric, 4) AS error_ratio, cache_hit_ratio
  FROM bkperf.performance_summary('3 hours') WHERE endpoint = '/alerts/pct';
SELECT endpoint, requests, round(p50_ms::numeric, 3) AS p50, round(p95_ms::numeric, 3) AS p95
  FROM bkperf.performance_summary('1 hour')
 WHERE endpoint LIKE '/alerts/%' ORDER BY endpoint;
\set VERBOSITY sqlstate
SELECT * FROM bkperf.performance_summary(NULL);
\set VERBOSITY default
SELECT * FROM bkperf.performance_summary('-1 hour');

-- Pruning: only rows older than the given ages go.
INSERT INTO bkperf.performance_metrics (tenant_id, endpoint, response_time_ms, recorded_at)
VALUES ('alerts_p', '/alerts/old', 1, now() - interval '10 days');
UPDATE bkperf.system_alerts SET first_seen = now() - interval '40 days', last_seen = now() - interval '40 days'
 WHERE tenant_id = 'alerts_m3';
SELECT * FROM bkperf.prune_alerts('30 days', '7 days');
SELECT count(*) FILTER (WHERE tenant_id = 'alerts_m3') AS old_alerts_left,
       count(*) FILTER (WHERE tenant_id = 'alerts_m1') AS recent_alerts_left
  FROM bkperf.system_alerts;
SELECT count(*) FILTER (WHERE endpoint = '/alerts/old') AS old_metrics_left,
       count(*) FILTER (WHERE endpoint = '/alerts/pct') AS recent_metrics_left
  FROM bkperf.performance_metrics;
\set VERBOSITY sqlstate
SELECT * FROM bkperf.prune_alerts(NULL);
\set VERBOSITY default
SELECT * FROM bkperf.prune_alerts('1 day', '-1 day');

REVOKE ALL ON bkperf.performance_metrics FROM regress_alerts_reporter;
REVOKE ALL ON SEQUENCE bkperf.performance_metrics_metric_id_seq FROM regress_alerts_reporter;
DROP ROLE regress_alerts_reporter;
DROP ROLE regress_alerts_app;
DROP ROLE regress_alerts_watcher;
