-- Driven by test/bench/rollback: prints "name|value" lines.
CREATE EXTENSION bkperf;
CREATE SCHEMA bench;
CREATE TABLE bench.parent (tenant int, id bigint, name text, qty int, PRIMARY KEY (tenant, id));
CREATE TABLE bench.child (tenant int, id bigint, parent_id bigint, payload text, qty int,
    PRIMARY KEY (tenant, id), FOREIGN KEY (tenant, parent_id) REFERENCES bench.parent ON DELETE CASCADE);
CREATE TABLE bench.grandchild (tenant int, id bigint, child_id bigint, payload text, qty int,
    PRIMARY KEY (tenant, id), FOREIGN KEY (tenant, child_id) REFERENCES bench.child ON DELETE CASCADE);
-- Foreign keys indexed, as any application with cascades has them.
CREATE INDEX ON bench.child (tenant, parent_id);
CREATE INDEX ON bench.grandchild (tenant, child_id);
SELECT bkperf.track_table('bench.parent', 'tenant'), bkperf.track_table('bench.child', 'tenant'),
       bkperf.track_table('bench.grandchild', 'tenant') \g /dev/null
\set np :np
INSERT INTO bench.parent SELECT t, i, 'parent ' || i, i % 100 FROM generate_series(1, 5) t, generate_series(1, :np) i;
INSERT INTO bench.child SELECT t, i, (i + 1) / 2, md5(i::text), i % 7 FROM generate_series(1, 5) t, generate_series(1, 2 * :np) i;
INSERT INTO bench.grandchild SELECT t, i, i, md5(i::text), i % 5 FROM generate_series(1, 5) t, generate_series(1, 2 * :np) i;
VACUUM ANALYZE bench.parent, bench.child, bench.grandchild;

-- The snapshot, and typed copies of tenant 1's rows at it (the bare DML's source).
SELECT bkperf.create_snapshot('1') AS snap \gset
CREATE TABLE bench.s_parent AS SELECT * FROM bench.parent WHERE tenant = 1;
CREATE TABLE bench.s_child AS SELECT * FROM bench.child WHERE tenant = 1;
CREATE TABLE bench.s_grandchild AS SELECT * FROM bench.grandchild WHERE tenant = 1;

-- Changes after it: tenant 1 (to undo) and tenant 2 (to keep).
UPDATE bench.parent SET qty = qty + 1, name = name || '!' WHERE tenant IN (1, 2) AND id % 10 < 8;
UPDATE bench.child SET qty = qty + 1 WHERE tenant IN (1, 2) AND id % 10 < 8;
UPDATE bench.grandchild SET qty = qty + 1, payload = 'x' WHERE tenant IN (1, 2) AND id % 10 < 8;
DELETE FROM bench.child WHERE tenant IN (1, 2) AND id % 10 = 8;   -- cascades to grandchild
INSERT INTO bench.parent SELECT t, :np + i, 'new', 0 FROM generate_series(1, 2) t, generate_series(1, :np / 10) i;
INSERT INTO bench.child SELECT t, 2 * :np + i, :np + (i + 1) / 2, 'new', 0 FROM generate_series(1, 2) t, generate_series(1, :np / 5) i;
INSERT INTO bench.grandchild SELECT t, 2 * :np + i, 2 * :np + i, 'new', 0 FROM generate_series(1, 2) t, generate_series(1, :np / 5) i;

-- The keys the bare DML restores (computed outside the timing).
CREATE TABLE bench.k_upsert AS
    SELECT 'parent' AS tbl, id FROM bench.s_parent WHERE id % 10 < 8
    UNION ALL SELECT 'child', id FROM bench.s_child WHERE id % 10 < 9
    UNION ALL SELECT 'grandchild', id FROM bench.s_grandchild WHERE id % 10 < 9;
CREATE TABLE bench.k_delete AS
    SELECT 'parent' AS tbl, id FROM bench.parent WHERE tenant = 1 AND id > :np
    UNION ALL SELECT 'child', id FROM bench.child WHERE tenant = 1 AND id > 2 * :np
    UNION ALL SELECT 'grandchild', id FROM bench.grandchild WHERE tenant = 1 AND id > 2 * :np;
ANALYZE;
CHECKPOINT;
SELECT 'changed_rows|' || ((SELECT count(*) FROM bench.k_upsert) + (SELECT count(*) FROM bench.k_delete));

