-- The composite indexes are used by bkperf's own queries.  Each query below
-- is the query text a bkperf function runs (named in the comment), on enough
-- rows that the planner has a real choice.  What is asserted is which
-- indexes serve it and whether a Sort remains: the scan kind (bitmap, plain
-- or index-only) and EXPLAIN's cosmetic lines vary with the server version.
CREATE FUNCTION pg_temp.ix_plan(query text) RETURNS SETOF text
LANGUAGE plpgsql AS $$
DECLARE
    plan jsonb;
BEGIN
    EXECUTE 'EXPLAIN (COSTS OFF, FORMAT JSON) ' || query INTO plan;
    RETURN QUERY
        SELECT DISTINCT 'index ' || (v #>> '{}')
          FROM jsonb_path_query(plan, 'strict $.**."Index Name"') v
        UNION ALL
        SELECT DISTINCT 'Sort'
          FROM jsonb_path_query(plan, 'strict $.**."Node Type"') v
         WHERE v #>> '{}' IN ('Sort', 'Incremental Sort')
        UNION ALL
        SELECT DISTINCT 'Seq Scan on ' || (v #>> '{}')
          FROM jsonb_path_query(plan, 'strict $.** ? (@."Node Type" == "Seq Scan")."Relation Name"') v
        ORDER BY 1;
END $$;
INSERT INTO bkperf.backup_jobs (tenant_id, job_type, job_status, created_at, started_at, finished_at)
SELECT 'ix_' || t, CASE WHEN n % 7 = 0 THEN 'full' ELSE 'incremental' END, 'completed',
       now() - n * interval '1 day', now() - n * interval '1 day',
       now() - n * interval '1 day' + interval '1 hour'
  FROM generate_series(1, 300) t, generate_series(1, 30) n;
INSERT INTO bkperf.backup_jobs (tenant_id, job_type, job_status, created_at)
VALUES ('ix_1', 'full', 'running', now() - interval '2 days');
INSERT INTO bkperf.backup_pitr_snapshots (tenant_id, created_at, snapshot, wal_lsn)
SELECT 'ix_' || t, now() - n * interval '1 hour', pg_current_snapshot(), pg_current_wal_lsn()
  FROM generate_series(1, 300) t, generate_series(1, 100) n;
INSERT INTO bkperf.backup_transaction_logs (tenant_id, table_name, operation, record_id)
SELECT 'ix_' || t, 'public.ix', 'INSERT', jsonb_build_object('id', n)
  FROM generate_series(1, 300) t, generate_series(1, 20) n;
-- VACUUM as well as ANALYZE: the visibility map is then set, as autovacuum
-- would set it at some moment of the run; without it the plans (index scan or
-- index-only scan) depend on whether autovacuum got to these tables first.
VACUUM ANALYZE bkperf.backup_jobs, bkperf.backup_pitr_snapshots, bkperf.backup_transaction_logs;

-- calculate_health_score (src/health.c): the tenant's inputs.
SELECT pg_temp.ix_plan($q$SELECT * FROM bkperf.backup_health_inputs WHERE tenant_id = 'ix_7'$q$);

-- get_backup_statistics (src/stats.c), all job types and one job type.
SELECT pg_temp.ix_plan($q$SELECT count(*) FROM bkperf.backup_jobs j
 WHERE j.tenant_id = 'ix_7' AND j.created_at >= now() - interval '30 days'$q$);
SELECT pg_temp.ix_plan($q$SELECT count(*) FROM bkperf.backup_jobs j
 WHERE j.tenant_id = 'ix_7' AND j.created_at >= now() - interval '30 days' AND j.job_type = 'full'$q$);

-- stale_backup_jobs: queued and running jobs across tenants.
SELECT pg_temp.ix_plan($q$SELECT j.* FROM bkperf.backup_jobs j
 WHERE j.job_status IN ('queued', 'running') AND j.created_at < now() - interval '1 day'
 ORDER BY j.created_at$q$);
SELECT tenant_id, job_status FROM bkperf.stale_backup_jobs('1 day') WHERE tenant_id LIKE 'ix%';

-- calculate_pitr_stats (src/stats.c): the tenant's changes and snapshots in a range.
SELECT pg_temp.ix_plan($q$SELECT count(*) FROM bkperf.backup_transaction_logs l
 WHERE l.tenant_id = 'ix_7' AND l.changed_at BETWEEN now() - interval '1 day' AND now()$q$);
SELECT pg_temp.ix_plan($q$SELECT count(*) FROM bkperf.backup_pitr_snapshots s
 WHERE s.tenant_id = 'ix_7' AND s.created_at BETWEEN now() - interval '1 day' AND now()$q$);
SELECT inserts, updates, deletes, tables_touched, snapshots
  FROM bkperf.calculate_pitr_stats('ix_7', now() - interval '1 day', now());

DELETE FROM bkperf.backup_transaction_logs WHERE tenant_id LIKE 'ix\_%';
DELETE FROM bkperf.backup_pitr_snapshots WHERE tenant_id LIKE 'ix\_%';
DELETE FROM bkperf.backup_jobs WHERE tenant_id LIKE 'ix\_%';
