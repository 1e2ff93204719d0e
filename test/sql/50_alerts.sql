-- Slow-query alerts: GUCs, ring capture, flush and folding, failures,
-- privileges.  The test command preloads bkperf.  Timings are only compared
-- with thresholds, never shown; alerts are selected by tenant tag.

-- Start with nothing of this database left in the ring.
SELECT bkperf.flush_alerts() >= 0 AS flushed_earlier_tests;

-- Defaults and bad values.
SELECT name, setting, unit, context FROM pg_settings
 WHERE name LIKE 'bkperf.%' AND name IN ('bkperf.slow_query_ms', 'bkperf.slow_query_critical_ms',
       'bkperf.slow_query_max', 'bkperf.slow_query_text_max', 'bkperf.slow_query_nested',
       'bkperf.tenant_id', 'bkperf.alert_fold_window', 'bkperf.endpoint_alert_ms',
       'bkperf.endpoint_critical_ms')
 ORDER BY name;
-- Out of range: SQLSTATE only (from PostgreSQL 17 on, the message's range shows units).
\set VERBOSITY sqlstate
SET bkperf.slow_query_ms = -2;
\set VERBOSITY default
SET bkperf.slow_query_ms = 'soon';
\set VERBOSITY sqlstate
SET bkperf.endpoint_alert_ms = -5;
SET bkperf.alert_fold_window = -1;
\set VERBOSITY default
SET bkperf.slow_query_max = 50;
SET bkperf.tenant_id = 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa';
SET bkperf.tenant_id = E'alerts\nt1';
SET bkperf.no_such_setting = 1;
SET bkperf.alert_fold_window = '2h';
SHOW bkperf.alert_fold_window;
RESET bkperf.alert_fold_window;

-- Thresholds for this session: warning at 300 ms, critical at 1 s.
SET bkperf.slow_query_ms = 300;
SET bkperf.slow_query_critical_ms = '1s';
SET bkperf.tenant_id = 'alerts_t1';

-- Below the threshold: not recorded.  At or above: warning, then critical.
SELECT pg_sleep(0.01);
SELECT pg_sleep(0.35);
SELECT pg_sleep(0.35) AS again;
SELECT pg_sleep(1.05), 1 AS one;

SELECT tenant_id, severity, sqlstate, query, rows,
       duration_ms >= 350 AS over_sleep,
       userid = current_user::regrole AS mine,
       dbid = (SELECT oid FROM pg_database WHERE datname = current_database()) AS this_db,
       pid = pg_backend_pid() AS my_pid, queryid IS NULL AS no_queryid
  FROM bkperf.slow_queries() WHERE tenant_id = 'alerts_t1' AND query LIKE '%pg_sleep%' ORDER BY seq;

-- Failed and cancelled statements that ran past the threshold, with SQLSTATE.
CREATE FUNCTION alerts_fail_after(s float8) RETURNS int LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_sleep(s);
    RETURN 1 / (s * 0)::int;
END $$;
SELECT alerts_fail_after(0.35);
SELECT alerts_fail_after(0.0);
SET statement_timeout = '400ms';
SELECT pg_sleep(5);
RESET statement_timeout;
SELECT severity, sqlstate, query, duration_ms >= 350 AS over_threshold
  FROM bkperf.slow_queries() WHERE tenant_id = 'alerts_t1' AND sqlstate IS NOT NULL
 ORDER BY seq;

-- Nested statements only with bkperf.slow_query_nested.
CREATE FUNCTION alerts_sleep_inner(s float8) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_sleep(s);
END $$;
SET bkperf.tenant_id = 'alerts_nested';
SELECT alerts_sleep_inner(0.35);
SET bkperf.slow_query_nested = on;
SELECT alerts_sleep_inner(0.35) AS nested_on;
RESET bkperf.slow_query_nested;
SELECT query FROM bkperf.slow_queries() WHERE tenant_id = 'alerts_nested' ORDER BY seq;
SET bkperf.tenant_id = 'alerts_t1';

-- Flush: repeats of one normalised statement fold into one alert per
-- severity; failures count as errors of the same alert.
SELECT bkperf.flush_alerts() >= 7 AS moved;
SELECT count(*) AS left_in_ring FROM bkperf.slow_queries()
 WHERE tenant_id IN ('alerts_t1', 'alerts_nested')
   AND dbid = (SELECT oid FROM pg_database WHERE datname = current_database());
SELECT source, severity, tenant_id, message, occurrences,
       (metadata->>'max_ms')::float8 >= 350 AS max_ok,
       (metadata->>'mean_ms')::float8 BETWEEN 350 AND (metadata->>'max_ms')::float8 AS mean_ok,
       metadata->>'errors' AS errors, metadata->>'last_sqlstate' AS last_sqlstate,
       metadata->>'user' = current_user AS user_ok, metadata->>'database' = current_database() AS db_ok,
       last_seen >= first_seen AS seen_ok, acknowledged
  FROM bkperf.system_alerts WHERE tenant_id IN ('alerts_t1', 'alerts_nested')
   AND message ~ 'pg_sleep|alerts_'
 ORDER BY tenant_id, message, severity;

-- A second flush folds into the same alerts.
SELECT pg_sleep(0.35);
SELECT bkperf.flush_alerts() >= 1 AS moved;
SELECT severity, message, occurrences FROM bkperf.system_alerts
 WHERE tenant_id = 'alerts_t1' AND message ~ 'pg_sleep|alerts_' ORDER BY message, severity;

-- An aborted flush loses nothing and a committed one moves each entry once,
-- including a flush rolled back to a savepoint.
SELECT pg_sleep(0.35);
BEGIN;
SELECT bkperf.flush_alerts() >= 1 AS moved_in_aborted_transaction;
SELECT occurrences FROM bkperf.system_alerts
 WHERE tenant_id = 'alerts_t1' AND message = 'slow statement: SELECT pg_sleep(?)' AND severity = 'warning';
ROLLBACK;
SELECT count(*) AS still_in_ring FROM bkperf.slow_queries()
 WHERE tenant_id = 'alerts_t1' AND query LIKE '%pg_sleep%';
BEGIN;
SAVEPOINT s1;
SELECT bkperf.flush_alerts() >= 1 AS moved_in_savepoint;
ROLLBACK TO SAVEPOINT s1;
SELECT count(*) AS back_in_ring FROM bkperf.slow_queries()
 WHERE tenant_id = 'alerts_t1' AND query LIKE '%pg_sleep%';
SAVEPOINT s2;
SELECT bkperf.flush_alerts() >= 1 AS moved_in_released_savepoint;
RELEASE SAVEPOINT s2;
COMMIT;
SELECT count(*) AS left_in_ring FROM bkperf.slow_queries()
 WHERE tenant_id = 'alerts_t1' AND query LIKE '%pg_sleep%';
SELECT occurrences FROM bkperf.system_alerts
 WHERE tenant_id = 'alerts_t1' AND message = 'slow statement: SELECT pg_sleep(?)' AND severity = 'warning';

-- PREPARE TRANSACTION after a flush is refused, and the entry stays.
SELECT pg_sleep(0.35);
BEGIN;
SELECT bkperf.flush_alerts() >= 1 AS moved;
PREPARE TRANSACTION 'alerts_prepared';
SELECT count(*) AS kept_after_prepare FROM bkperf.slow_queries()
 WHERE tenant_id = 'alerts_t1' AND query LIKE '%pg_sleep%';

-- Fold window: with 0 a repeat opens a new alert.
SET bkperf.alert_fold_window = 0;
SELECT bkperf.flush_alerts() >= 1 AS moved;
RESET bkperf.alert_fold_window;
SELECT severity, occurrences FROM bkperf.system_alerts
 WHERE tenant_id = 'alerts_t1' AND message = 'slow statement: SELECT pg_sleep(?)'
 ORDER BY alert_id;
-- Acknowledged alerts absorb nothing: once both are acknowledged, a repeat
-- opens a new alert.
SELECT bool_and(bkperf.acknowledge_alert(alert_id)) AS acknowledged
  FROM bkperf.system_alerts
 WHERE tenant_id = 'alerts_t1' AND message = 'slow statement: SELECT pg_sleep(?)';
SELECT bkperf.acknowledge_alert(max(alert_id)) AS already
  FROM bkperf.system_alerts
 WHERE tenant_id = 'alerts_t1' AND message = 'slow statement: SELECT pg_sleep(?)';
SELECT acknowledged, acknowledged_by = current_user AS by_me, acknowledged_at IS NOT NULL AS at_set
  FROM bkperf.system_alerts
 WHERE alert_id = (SELECT max(alert_id) FROM bkperf.system_alerts
                    WHERE tenant_id = 'alerts_t1' AND message = 'slow statement: SELECT pg_sleep(?)');
SELECT pg_sleep(0.35);
SELECT bkperf.flush_alerts() >= 1 AS moved;
SELECT severity, occurrences, acknowledged FROM bkperf.system_alerts
 WHERE tenant_id = 'alerts_t1' AND message = 'slow statement: SELECT pg_sleep(?)'
 ORDER BY alert_id;
SELECT bkperf.acknowledge_alert(NULL);
SELECT bkperf.acknowledge_alert(-1);

-- Query text of other roles: only for superusers and pg_read_all_stats.
CREATE ROLE regress_alerts_app;
CREATE ROLE regress_alerts_watcher;
-- Thresholds can be set per role by a superuser.
ALTER ROLE regress_alerts_app SET bkperf.slow_query_ms = '250ms';
SELECT unnest(setconfig) AS role_setting FROM pg_db_role_setting
 WHERE setrole = 'regress_alerts_app'::regrole;
SET bkperf.tenant_id = 'alerts_priv';
SET ROLE regress_alerts_app;
SELECT pg_sleep(0.35) AS app_statement;
SELECT query FROM bkperf.slow_queries() WHERE tenant_id = 'alerts_priv'
   AND userid = 'regress_alerts_app'::regrole;
SET ROLE regress_alerts_watcher;
SELECT query FROM bkperf.slow_queries() WHERE tenant_id = 'alerts_priv'
   AND userid = 'regress_alerts_app'::regrole;
SET bkperf.slow_query_ms = 0;
SET bkperf.tenant_id = 'alerts_watcher';
SHOW bkperf.tenant_id;
SELECT bkperf.flush_alerts();
RESET ROLE;
GRANT pg_read_all_stats TO regress_alerts_watcher;
SET ROLE regress_alerts_watcher;
SELECT query FROM bkperf.slow_queries() WHERE tenant_id = 'alerts_priv'
   AND userid = 'regress_alerts_app'::regrole;
RESET ROLE;
SELECT bkperf.flush_alerts() >= 1 AS moved;

-- With compute_query_id the fingerprint is the queryid: two statements with
-- different literals fold into one alert.
SET compute_query_id = on;
SET bkperf.tenant_id = 'alerts_queryid';
SELECT pg_sleep(0.35) AS with_queryid;
SELECT pg_sleep(0.36) AS with_queryid;
SELECT count(*) AS entries, count(DISTINCT queryid) AS queryids, bool_and(queryid IS NOT NULL) AS all_set
  FROM bkperf.slow_queries() WHERE tenant_id = 'alerts_queryid' AND query LIKE '%with_queryid%';
RESET compute_query_id;
SELECT bkperf.flush_alerts() >= 2 AS moved;
SELECT occurrences, metadata ? 'queryid' AS has_queryid FROM bkperf.system_alerts
 WHERE tenant_id = 'alerts_queryid';

-- Query text is cut to bkperf.slow_query_text_max bytes (1024) at a
-- character boundary.
SET bkperf.tenant_id = 'alerts_text';
SELECT format('SELECT pg_sleep(0.35) AS long_text WHERE %L <> %L', repeat('é', 600), '') \gexec
SELECT octet_length(query) BETWEEN 1023 AND 1024 AS cut, left(query, 34) AS head,
       right(query, 1) = 'é' AS whole_character
  FROM bkperf.slow_queries() WHERE tenant_id = 'alerts_text';
SELECT bkperf.flush_alerts() >= 1 AS moved;

-- Indexes used by the alert queries.
SET enable_seqscan = off;
EXPLAIN (COSTS OFF)
SELECT a.alert_id FROM bkperf.system_alerts a
 WHERE a.fingerprint = 'x' AND NOT a.acknowledged AND a.first_seen > now() - interval '1 hour'
 ORDER BY a.first_seen DESC LIMIT 1;
EXPLAIN (COSTS OFF)
SELECT m.endpoint FROM bkperf.performance_metrics m WHERE m.recorded_at >= now() - interval '1 hour';
RESET enable_seqscan;

RESET bkperf.slow_query_ms;
RESET bkperf.slow_query_critical_ms;
RESET bkperf.tenant_id;
DROP FUNCTION alerts_fail_after(float8);
DROP FUNCTION alerts_sleep_inner(float8);
