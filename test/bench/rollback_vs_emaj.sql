-- Driven by test/bench/rollback_vs_emaj (and rollback_fk_noindex): builds one
-- database of the side-by-side rollback benchmark.  Variables:
--   :kind   bk (tracked by bkperf), em (an E-Maj logging group), pl (plain)
--   :np     parents per tenant (children and grandchildren: 2 * np each)
--   :shape  chain (~110k changed rows of tenant 1: updates, deletes, inserts)
--           newparents (tenant 1 inserts :newp parents, :kids children each,
--           2 grandchildren per child: the rollback deletes them)
--   :fkidx  on / off: indexes on the referencing columns of the FK chain
--   :other  on / off: tenant 2 makes the same changes as tenant 1 (chain
--           only), which a rollback of tenant 1 must keep
-- Prints "changed_rows|N" (rows of tenant 1 to undo).  With :other off only
-- tenant 1 changes after the snapshot, so E-Maj (which rolls back a whole
-- group) undoes the same rows as bkperf.
SET client_min_messages = warning;
\if :{?other}
\else
\set other off
\endif
CREATE SCHEMA bench;
CREATE SCHEMA snap;
CREATE TABLE bench.parent (tenant int, id bigint, name text, qty int, PRIMARY KEY (tenant, id));
CREATE TABLE bench.child (tenant int, id bigint, parent_id bigint, payload text, qty int,
    PRIMARY KEY (tenant, id), FOREIGN KEY (tenant, parent_id) REFERENCES bench.parent ON DELETE CASCADE);
CREATE TABLE bench.grandchild (tenant int, id bigint, child_id bigint, payload text, qty int,
    PRIMARY KEY (tenant, id), FOREIGN KEY (tenant, child_id) REFERENCES bench.child ON DELETE CASCADE);
SELECT :'fkidx' = 'on' AS fkidx \gset
\if :fkidx
CREATE INDEX child_parent_idx ON bench.child (tenant, parent_id);
CREATE INDEX grandchild_child_idx ON bench.grandchild (tenant, child_id);
\endif

-- Capture starts before the load for both bkperf and E-Maj, so each log
-- holds the same history before the snapshot / mark.
SELECT :'kind' = 'bk' AS is_bk, :'kind' = 'em' AS is_em \gset
\if :is_bk
CREATE EXTENSION bkperf;
SELECT bkperf.track_table('bench.parent', 'tenant'), bkperf.track_table('bench.child', 'tenant'),
       bkperf.track_table('bench.grandchild', 'tenant') \g /dev/null
\elif :is_em
CREATE EXTENSION emaj CASCADE;
SELECT emaj.emaj_create_group('bench') \g /dev/null
SELECT emaj.emaj_assign_tables('bench', '.*', '', 'bench') \g /dev/null
SELECT emaj.emaj_start_group('bench', 'START') \g /dev/null
\endif

INSERT INTO bench.parent SELECT t, i, 'parent ' || i, i % 100 FROM generate_series(1, 5) t, generate_series(1, :np) i;
INSERT INTO bench.child SELECT t, i, (i + 1) / 2, md5(i::text), i % 7 FROM generate_series(1, 5) t, generate_series(1, 2 * :np) i;
INSERT INTO bench.grandchild SELECT t, i, i, md5(i::text), i % 5 FROM generate_series(1, 5) t, generate_series(1, 2 * :np) i;
VACUUM ANALYZE bench.parent, bench.child, bench.grandchild;

-- The state every timed run must restore: count and hash of the text output
-- of each table's rows of tenant 1 and of the other tenants (expected: tenant
-- 1 as at the snapshot, the others as after the changes).
CREATE FUNCTION snap.state() RETURNS TABLE (tbl text, part text, n bigint, h text) LANGUAGE sql AS $$
    SELECT 'parent', (tenant = 1)::text, count(*), md5(string_agg(t::text, E'\n' ORDER BY tenant, id))
      FROM bench.parent t GROUP BY tenant = 1
    UNION ALL
    SELECT 'child', (tenant = 1)::text, count(*), md5(string_agg(t::text, E'\n' ORDER BY tenant, id))
      FROM bench.child t GROUP BY tenant = 1
    UNION ALL
    SELECT 'grandchild', (tenant = 1)::text, count(*), md5(string_agg(t::text, E'\n' ORDER BY tenant, id))
      FROM bench.grandchild t GROUP BY tenant = 1
$$;
CREATE TABLE snap.expect AS SELECT * FROM snap.state() WHERE part = 'true';
-- Parts differing from the expected state (0 after a correct rollback).
CREATE FUNCTION snap.diff() RETURNS bigint LANGUAGE sql AS $$
    SELECT count(*) FROM snap.state() s FULL JOIN snap.expect e USING (tbl, part)
     WHERE s.n IS DISTINCT FROM e.n OR s.h IS DISTINCT FROM e.h
$$;
-- Typed copies of tenant 1's rows at the snapshot (the bare DML's source).
CREATE TABLE snap.s_parent AS SELECT * FROM bench.parent WHERE tenant = 1;
CREATE TABLE snap.s_child AS SELECT * FROM bench.child WHERE tenant = 1;
CREATE TABLE snap.s_grandchild AS SELECT * FROM bench.grandchild WHERE tenant = 1;

-- The snapshot (bkperf) or the mark (E-Maj) the timed runs go back to.
\if :is_bk
SELECT bkperf.create_snapshot('1') AS snap \gset
\elif :is_em
SELECT emaj.emaj_set_mark_group('bench', 'M0') \g /dev/null
\endif

SELECT :'shape' = 'chain' AS chain, CASE WHEN :'other' = 'on' THEN 2 ELSE 1 END AS upto \gset
\if :chain
-- ~110k distinct rows of tenant 1 at np = 22500: 80% of the rows updated,
-- 10% of the children deleted (cascading to their grandchildren), 10% more
-- parents, 10% more children and grandchildren inserted.
UPDATE bench.parent SET qty = qty + 1, name = name || '!' WHERE tenant <= :upto AND id % 10 < 8;
UPDATE bench.child SET qty = qty + 1 WHERE tenant <= :upto AND id % 10 < 8;
UPDATE bench.grandchild SET qty = qty + 1, payload = 'x' WHERE tenant <= :upto AND id % 10 < 8;
DELETE FROM bench.child WHERE tenant <= :upto AND id % 10 = 8;   -- cascades to grandchild
INSERT INTO bench.parent SELECT t, :np + i, 'new', 0 FROM generate_series(1, :upto) t, generate_series(1, :np / 10) i;
INSERT INTO bench.child SELECT t, 2 * :np + i, :np + (i + 1) / 2, 'new', 0
    FROM generate_series(1, :upto) t, generate_series(1, :np / 5) i;
INSERT INTO bench.grandchild SELECT t, 2 * :np + i, 2 * :np + i, 'new', 0
    FROM generate_series(1, :upto) t, generate_series(1, :np / 5) i;
\else
-- :newp new parents of tenant 1 with :kids children each, 2 grandchildren per child.
INSERT INTO bench.parent SELECT 1, :np + i, 'new', 0 FROM generate_series(1, :newp) i;
INSERT INTO bench.child SELECT 1, 2 * :np + i, :np + (i - 1) / :kids + 1, 'new', 0
    FROM generate_series(1, :newp * :kids) i;
INSERT INTO bench.grandchild SELECT 1, 2 * :np + i, 2 * :np + (i + 1) / 2, 'new', 0
    FROM generate_series(1, 2 * :newp * :kids) i;
\endif
INSERT INTO snap.expect SELECT * FROM snap.state() WHERE part = 'false';

-- The keys the bare DML restores (computed outside the timing): rows of the
-- snapshot that differ now or are gone (upsert), rows that are new (delete).
CREATE TABLE snap.k_upsert AS
    SELECT 'parent' AS tbl, s.id FROM snap.s_parent s LEFT JOIN bench.parent t USING (tenant, id)
     WHERE t IS DISTINCT FROM s
    UNION ALL SELECT 'child', s.id FROM snap.s_child s LEFT JOIN bench.child t USING (tenant, id)
     WHERE t IS DISTINCT FROM s
    UNION ALL SELECT 'grandchild', s.id FROM snap.s_grandchild s LEFT JOIN bench.grandchild t USING (tenant, id)
     WHERE t IS DISTINCT FROM s;
CREATE TABLE snap.k_delete AS
    SELECT 'parent' AS tbl, id FROM bench.parent t WHERE tenant = 1 AND NOT EXISTS
        (SELECT FROM snap.s_parent s WHERE s.id = t.id)
    UNION ALL SELECT 'child', id FROM bench.child t WHERE tenant = 1 AND NOT EXISTS
        (SELECT FROM snap.s_child s WHERE s.id = t.id)
    UNION ALL SELECT 'grandchild', id FROM bench.grandchild t WHERE tenant = 1 AND NOT EXISTS
        (SELECT FROM snap.s_grandchild s WHERE s.id = t.id);
CREATE INDEX ON snap.k_upsert (tbl, id);
CREATE INDEX ON snap.k_delete (tbl, id);
VACUUM ANALYZE;
SELECT 'changed_rows|' || ((SELECT count(*) FROM snap.k_upsert) + (SELECT count(*) FROM snap.k_delete));
