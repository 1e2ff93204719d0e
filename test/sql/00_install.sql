-- Install: every catalog object, with the names and index columns of the contract.
CREATE EXTENSION bkperf;

SELECT c.relname, c.relkind
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspname = 'bkperf' AND c.relkind IN ('r', 'p', 'm', 'v')
 ORDER BY c.relname;

-- The composite indexes of DESIGN.md, with exactly these columns and orders.
SELECT indexrelid::regclass AS index, indrelid::regclass AS on_table,
       pg_get_indexdef(indexrelid) ~ 'DESC' AS has_desc,
       (SELECT string_agg(a.attname, ', ' ORDER BY k.ord)
          FROM unnest(i.indkey) WITH ORDINALITY k(attnum, ord)
          JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum) AS columns
  FROM pg_index i
 WHERE indexrelid::regclass::text IN (
        'bkperf.idx_backup_jobs_tenant_created', 'bkperf.idx_backup_jobs_status',
        'bkperf.idx_backup_jobs_type_tenant', 'bkperf.idx_pitr_snapshots_tenant_created',
        'bkperf.idx_pitr_snapshots_type', 'bkperf.idx_transaction_logs_tenant_time',
        'bkperf.idx_transaction_logs_table', 'bkperf.idx_rollback_history_snapshot',
        'bkperf.idx_rollback_history_tenant_time', 'bkperf.idx_fk_constraints_cache_lookup')
 ORDER BY 1::text;

-- Every primary key and unique index of a per-tenant table (tenant_id NOT NULL)
-- includes tenant_id.
SELECT c.relname AS table_name, i.indexrelid::regclass AS index
  FROM pg_index i
  JOIN pg_class c ON c.oid = i.indrelid
  JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspname = 'bkperf' AND i.indisunique
   AND EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attname = 'tenant_id'
                AND a.attnotnull)
   AND NOT EXISTS (SELECT 1 FROM pg_attribute a
                    WHERE a.attrelid = c.oid AND a.attname = 'tenant_id'
                      AND a.attnum = ANY (i.indkey))
 ORDER BY 1, 2;

-- Tenant keys are text COLLATE "C" everywhere.
SELECT c.relname, format_type(a.atttypid, a.atttypmod) AS type, co.collname
  FROM pg_attribute a
  JOIN pg_class c ON c.oid = a.attrelid
  JOIN pg_namespace n ON n.oid = c.relnamespace
  LEFT JOIN pg_collation co ON co.oid = a.attcollation
 WHERE n.nspname = 'bkperf' AND a.attname = 'tenant_id' AND c.relkind IN ('r', 'p', 'm')
   AND (a.atttypid <> 'text'::regtype OR co.collname IS DISTINCT FROM 'C')
 ORDER BY 1;

-- Tables holding user data are dumped by pg_dump (extension config).  Only
-- two are not, on purpose: cluster_lineage describes this database's files
-- (a restore from a dump must start it anew) and log_partitions_pending
-- holds OIDs.
SELECT c.relname
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspname = 'bkperf' AND c.relkind = 'r'
   AND c.oid <> ALL ((SELECT extconfig FROM pg_extension WHERE extname = 'bkperf')::oid[])
 ORDER BY 1;

-- Every SQL and PL function pins its search_path (C functions schema-qualify
-- every name they look up, and a proconfig would slow every trigger call).
SELECT p.oid::regprocedure AS function
  FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
 WHERE n.nspname = 'bkperf'
   AND NOT EXISTS (SELECT 1 FROM unnest(p.proconfig) c WHERE c LIKE 'search_path=%')
   AND p.prolang <> (SELECT oid FROM pg_language WHERE lanname = 'c')
 ORDER BY 1::text;

-- Every public table, view and function has a comment.
SELECT c.oid::regclass::text AS undocumented
  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
 WHERE n.nspname = 'bkperf' AND c.relkind IN ('r', 'p', 'm', 'v')
   AND c.relispartition IS FALSE AND obj_description(c.oid, 'pg_class') IS NULL
UNION ALL
SELECT p.oid::regprocedure::text
  FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
 WHERE n.nspname = 'bkperf' AND obj_description(p.oid, 'pg_proc') IS NULL
 ORDER BY 1;
