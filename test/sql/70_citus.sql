-- Citus support on a server without Citus (the Citus suite itself is
-- test/t/070_citus.pl): bkperf knows it is not on Citus, distribute_by_tenant()
-- refuses with 55000 and a hint, the event-trigger guard is off, and
-- capture, health and statistics work as before.
SELECT bkperf.citus_node(), bkperf.citus_ddl_is_internal(),
       bkperf.citus_is_citus_table('bkperf.backup_transaction_logs'),
       bkperf.citus_is_shard('bkperf.backup_jobs'::regclass);
-- (the PL/pgSQL context lines are left out: they name line numbers)
\set SHOW_CONTEXT never
SELECT * FROM bkperf.distribute_by_tenant();
\set SHOW_CONTEXT errors
\set VERBOSITY sqlstate
SELECT * FROM bkperf.distribute_by_tenant();
SELECT bkperf.citus_require_coordinator('x');
\set VERBOSITY default
-- Not for PUBLIC.
CREATE ROLE bkperf_citus_app;
SET ROLE bkperf_citus_app;
\set VERBOSITY sqlstate
SELECT * FROM bkperf.distribute_by_tenant();
\set VERBOSITY default
RESET ROLE;
DROP ROLE bkperf_citus_app;
-- A table whose name ends like a Citus shard's is an ordinary table here.
CREATE TABLE citus_like_102008 (tenant text, id int PRIMARY KEY, v int);
SELECT bkperf.track_table('citus_like_102008', 'tenant');
INSERT INTO citus_like_102008 VALUES ('ct', 1, 1);
UPDATE citus_like_102008 SET v = 2;
SELECT table_name, operation, new_data->>'v' AS v
  FROM bkperf.backup_transaction_logs WHERE tenant_id = 'ct' ORDER BY log_id;
SELECT * FROM bkperf.table_change_summary('citus_like_102008');
SELECT bkperf.tenant_known('ct'), bkperf.tenant_known('no such tenant');
SELECT inserts, updates, deletes, tables_touched
  FROM bkperf.calculate_pitr_stats('ct', now() - interval '1 hour', now());
SELECT bkperf.untrack_table('citus_like_102008');
DROP TABLE citus_like_102008;
