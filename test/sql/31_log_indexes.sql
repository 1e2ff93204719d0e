-- The change log's indexes are used by bkperf's own queries: per-table
-- change counts (table_change_summary) read idx_transaction_logs_table, a
-- tenant's changes in a time range (calculate_pitr_stats, rollback) read
-- idx_transaction_logs_tenant_time.
CREATE TABLE li_a (id int PRIMARY KEY, tenant int);
CREATE TABLE li_b (id int PRIMARY KEY, tenant int);
SELECT bkperf.track_table('li_a', 'tenant');
SELECT bkperf.track_table('li_b', 'tenant');
INSERT INTO li_a SELECT g, g % 50 FROM generate_series(1, 20000) g;
INSERT INTO li_b SELECT g, g % 50 FROM generate_series(1, 300) g;
UPDATE li_b SET tenant = tenant WHERE id <= 100;
DELETE FROM li_b WHERE id > 250;
ANALYZE bkperf.backup_transaction_logs;

SELECT * FROM bkperf.table_change_summary('li_b');
SELECT table_name, sum(changes) FROM bkperf.table_change_summary()
 WHERE table_name LIKE 'public.li\_%' GROUP BY 1 ORDER BY 1;

-- The plan of table_change_summary's query for one table, reduced to its
-- index scans (partition names carry dates: normalised).
CREATE FUNCTION pg_temp.index_scans(q text) RETURNS SETOF text LANGUAGE plpgsql AS $$
DECLARE line text;
BEGIN
    FOR line IN EXECUTE 'EXPLAIN (COSTS OFF) ' || q LOOP
        IF line ~ 'Index' THEN
            RETURN NEXT regexp_replace(btrim(line, ' ->'), '_p\d{8}', '_pYYYYMMDD', 'g');
        END IF;
    END LOOP;
END $$;
SELECT bool_or(s ~ 'Index.* Scan .*backup_transaction_logs_p\w+_table_name_operation_idx')
           AS uses_idx_transaction_logs_table
  FROM pg_temp.index_scans($$
    SELECT l.table_name, l.operation, count(*) FROM bkperf.backup_transaction_logs l
     WHERE l.table_name = 'public.li_b' GROUP BY l.table_name, l.operation $$) s;

-- A table never tracked has no changes; an untracked one keeps its history.
SELECT * FROM bkperf.table_change_summary('pg_class');
SELECT bkperf.untrack_table('li_a');
SELECT bkperf.untrack_table('li_b');
SELECT sum(changes) AS li_b_history FROM bkperf.table_change_summary('li_b');
DROP TABLE li_a, li_b;
DELETE FROM bkperf.backup_transaction_logs WHERE table_name IN ('public.li_a', 'public.li_b');
