-- The bkperf demo (run by test/demo on a throwaway cluster).
\pset footer off
SET client_min_messages = warning;
CREATE EXTENSION bkperf;

\echo '== Backup health: 300 tenants, 60 days of nightly backups (some tenants in trouble)'
INSERT INTO bkperf.backup_jobs (tenant_id, job_type, job_status, created_at, started_at,
                                finished_at, backup_size_bytes, stored_size_bytes,
                                verify_status, verified_at, error_message)
SELECT 'tenant-' || lpad(t::text, 3, '0'),
       CASE WHEN d % 7 = 0 THEN 'full' ELSE 'incremental' END,
       CASE WHEN (t % 50 = 0 AND d < 4) OR (t * 7 + d) % 41 = 0 THEN 'failed' ELSE 'completed' END,
       now() - d * interval '1 day' - (t % 20) * interval '1 hour',
       now() - d * interval '1 day' - (t % 20) * interval '1 hour',
       now() - d * interval '1 day' - (t % 20) * interval '1 hour' + (20 + t % 40) * interval '1 minute',
       (5 + t % 20) * 1000000000::bigint, (2 + t % 9) * 1000000000::bigint,
       CASE WHEN d % 3 = 0 THEN 'verified' ELSE 'unverified' END,
       CASE WHEN d % 3 = 0 THEN now() - d * interval '1 day' END,
       CASE WHEN (t % 50 = 0 AND d < 4) OR (t * 7 + d) % 41 = 0 THEN 'could not connect to storage' END
  FROM generate_series(1, 300) t, generate_series(
           CASE WHEN t % 37 = 0 THEN 3 ELSE 0 END,   -- every 37th tenant: nothing for 3 days
           CASE WHEN t % 60 = 0 THEN 4 ELSE 60 END) d; -- every 60th: only 5 days of history

\echo
\echo '== Refresh the materialized health views (concurrently; pg_cron runs this hourly)'
SELECT view_name, refreshed, round(duration_ms::numeric, 1) AS ms, note
  FROM bkperf.refresh_backup_summaries();

\echo
\echo '== Health report: tenants per band'
SELECT band, count(*) AS tenants, round(avg(score)::numeric, 1) AS mean_score
  FROM bkperf.health_report() GROUP BY band ORDER BY min(score);

\echo
\echo '== The ten least healthy tenants, with the caps that apply'
SELECT tenant_id, score, band, failed_jobs, components -> 'caps' AS caps,
       round((components -> 'recency' ->> 'value')::numeric, 2) AS recency
  FROM bkperf.health_report() ORDER BY score, tenant_id LIMIT 10;

\echo
\echo '== One tenant in detail: live score components'
SELECT c.key AS component, c.value ->> 'value' AS value, c.value ->> 'weight' AS weight
  FROM jsonb_each((bkperf.calculate_health_score('tenant-050')).components) c
 WHERE c.key <> 'caps' ORDER BY c.key;

\echo
\echo '== Backup statistics of tenant-050, last 30 days (all jobs, then fulls only)'
SELECT successful, failed, running, pg_size_pretty(avg_size_bytes::bigint) AS avg_size,
       pg_size_pretty(total_size_bytes) AS total, round(mean_duration_s::numeric) AS mean_s
  FROM bkperf.get_backup_statistics('tenant-050');
SELECT successful, failed, pg_size_pretty(total_size_bytes) AS total
  FROM bkperf.get_backup_statistics('tenant-050', '30 days', 'full');

\echo
\echo '== A second refresh while the first is still running returns at once'
BEGIN;
SELECT view_name, refreshed, note FROM bkperf.refresh_backup_summaries();
\! psql -X -q -At -c "SELECT view_name || ': ' || coalesce(note, 'refreshed') FROM bkperf.refresh_backup_summaries()"
COMMIT;

\echo '== Per-tenant point-in-time rollback: three tenants share two tracked tables'
CREATE TABLE customers (tenant_id int, id bigint, name text NOT NULL,
                        PRIMARY KEY (tenant_id, id));
CREATE TABLE orders (tenant_id int, id bigint, customer_id bigint NOT NULL, total numeric NOT NULL,
                     PRIMARY KEY (tenant_id, id),
                     FOREIGN KEY (tenant_id, customer_id) REFERENCES customers ON DELETE CASCADE);
SELECT bkperf.track_table('customers', 'tenant_id') \g /dev/null
SELECT bkperf.track_table('orders', 'tenant_id', 'undo') \g /dev/null
INSERT INTO customers SELECT t, c, 'customer ' || c FROM generate_series(1, 3) t, generate_series(1, 1000) c;
INSERT INTO orders SELECT t, o, 1 + o % 1000, (o % 97) * 10 FROM generate_series(1, 3) t, generate_series(1, 5000) o;
CREATE TABLE tenant2_at_snapshot AS
SELECT (SELECT count(*) FROM customers WHERE tenant_id = 2) AS customers,
       (SELECT count(*) FROM orders WHERE tenant_id = 2) AS orders,
       (SELECT sum(total) FROM orders WHERE tenant_id = 2) AS revenue;
SELECT bkperf.create_snapshot('2', 'before the 14:00 deploy') AS snap \gset

\echo '-- a bad deploy damages tenant 2 (deletes cascade to orders, prices x100) while tenant 3 keeps working'
DELETE FROM customers WHERE tenant_id = 2 AND id % 3 = 0;
UPDATE orders SET total = total * 100 WHERE tenant_id = 2;
INSERT INTO orders SELECT 2, 10000 + o, 1, 1 FROM generate_series(1, 200) o;
INSERT INTO orders SELECT 3, 10000 + o, 1, 5 FROM generate_series(1, 300) o;
SELECT tenant_id, count(*) AS orders, sum(total) AS revenue FROM orders GROUP BY 1 ORDER BY 1;

\echo '-- what the change log holds for tenant 2, and a dry run of the rollback'
SELECT inserts, updates, deletes, tables_touched
  FROM bkperf.calculate_pitr_stats('2', now() - interval '1 hour', now() + interval '1 hour');
SELECT status, tables, rows_deleted, rows_updated, rows_inserted
  FROM bkperf.rollback_to_snapshot('2', :snap, dry_run => true);

\echo '-- roll tenant 2 back to the snapshot, in one transaction, inside the database'
SELECT status, tables, rows_deleted, rows_updated, rows_inserted
  FROM bkperf.rollback_to_snapshot('2', :snap);
SELECT tenant_id, count(*) AS orders, sum(total) AS revenue FROM orders GROUP BY 1 ORDER BY 1;
SELECT (SELECT count(*) FROM customers WHERE tenant_id = 2) = customers
       AND (SELECT count(*) FROM orders WHERE tenant_id = 2) = orders
       AND (SELECT sum(total) FROM orders WHERE tenant_id = 2) = revenue AS tenant2_as_at_snapshot
  FROM tenant2_at_snapshot;
SELECT rollback_status, dry_run, rows_deleted, rows_updated, rows_inserted
  FROM bkperf.backup_pitr_rollback_history WHERE tenant_id = '2' ORDER BY rollback_id;
