-- Exact row images (issue 10, item 6) and the tenant's text form (item 4).
-- Rows written under hostile session settings must decode (with
-- bkperf.image_record, the decoder a rollback uses) to values with the same
-- text output as the table's rows, compared as text under two different
-- settings, also when the decoding session has hostile settings.
SET client_min_messages = warning;

-- SQLSTATE, message and first context line of a statement's error.
CREATE FUNCTION cv_error(sql text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    st text; msg text; ctx text;
BEGIN
    EXECUTE sql;
    RETURN 'no error';
EXCEPTION WHEN OTHERS THEN
    GET STACKED DIAGNOSTICS st = RETURNED_SQLSTATE, msg = MESSAGE_TEXT, ctx = PG_EXCEPTION_CONTEXT;
    RETURN st || ': ' || msg || coalesce(' / ' || nullif(split_part(ctx, E'\n', 1), ''), '');
END
$$;

-- Settings that change the text form of many types.
CREATE FUNCTION cv_hostile(variant int) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
    IF variant = 1 THEN
        PERFORM set_config('extra_float_digits', '0', false);
        PERFORM set_config('DateStyle', 'SQL, DMY', false);
        PERFORM set_config('IntervalStyle', 'sql_standard', false);
        PERFORM set_config('TimeZone', 'Pacific/Kiritimati', false);
    ELSE
        PERFORM set_config('extra_float_digits', '-3', false);
        PERFORM set_config('DateStyle', 'German', false);
        PERFORM set_config('IntervalStyle', 'iso_8601', false);
        PERFORM set_config('TimeZone', 'America/St_Johns', false);
    END IF;
    PERFORM set_config('bytea_output', 'escape', false);
    PERFORM set_config('xmloption', CASE variant WHEN 1 THEN 'content' ELSE 'document' END, false);
    PERFORM set_config('lc_monetary', 'C', false);
END
$$;

CREATE TYPE cv_mood AS ENUM ('sad', 'ok', 'happy');
CREATE DOMAIN cv_pos AS int CHECK (VALUE > 0);
CREATE TYPE cv_pair AS (f float8, iv interval, ts timestamptz, j json, b bytea, a int[]);
CREATE TABLE cv_vals (
    id int PRIMARY KEY, tenant int,
    i2 int2, i4 int4, i8 int8, n numeric, n52 numeric(5, 2), f4 float4, f8 float8, m money,
    t text, vc varchar(5), c char(4), ch "char", nm name, by bytea, b bool,
    d date, tm time, ttz timetz, ts timestamp, tstz timestamptz, iv interval,
    u uuid, ip inet, cid cidr, mac macaddr, mac8 macaddr8, bt bit(4), vb varbit,
    j json, jb jsonb, x xml,
    ia int[], ia0 int[], ia2 int[], iae int[], fa float8[], ta text[], ja json[], jba jsonb[],
    tsa timestamptz[], va varchar(3)[],
    ir int4range, nr numrange, dr daterange, tsr tstzrange, imr int4multirange, tsmr tsmultirange,
    pair cv_pair, pairs cv_pair[], mood cv_mood, moods cv_mood[], dom cv_pos, doms cv_pos[],
    tsv tsvector, tsq tsquery, pt point, ln line, ls lseg, bx box, pth path, pg polygon, ci circle,
    lsn pg_lsn, o oid, x8 xid8);
SELECT bkperf.track_table('cv_vals', 'tenant');
RESET client_min_messages;

SELECT cv_hostile(1);
INSERT INTO cv_vals VALUES
    (1, 1, -32768, 2147483647, -9223372036854775808, 123.4500, 1.5, 0.1, 0.30000000000000004, 1234.56,
     E'quote " back \\ tab \t é', 'abc', 'ab', 'z', 'a name', '\xdeadbeef00', true,
     '2024-02-29', '23:59:59.999999', '12:00:00+05:45', '2024-02-29 23:59:59.123456',
     '2024-02-29 23:59:59.5+05:30', '1 year 2 mons -3 days 04:05:06.789',
     'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '192.168.0.1/24', '10.0.0.0/8', '08:00:2b:01:02:03',
     '08:00:2b:01:02:03:04:05', B'1010', B'101',
     '{"b": 1, "a": 2, "a": 3,   "n": [1.0, 2e2]}', '{"b": 1.50, "a": [true, null]}', '<a x="1">t<b/></a>',
     '{1,2,3}', '[0:2]={1,2,3}', '{{1,2},{3,4}}', '{}', '{0.30000000000000004,-0,NaN,1e-320}',
     '{"x","y z",NULL,""}', '{"{\"b\":1, \"a\":2}","[1, 2]"}', '{"[1, 2]","{}"}',
     '{"2024-01-01 00:00:00+00","-infinity"}', '{ab,c}',
     '[1,10)', '(1.5,2.25]', '[2024-01-01,2024-03-01)', '[2024-01-01 10:00+02,infinity)',
     '{[1,3),[5,7)}', '{[2024-01-01 00:00,2024-01-02 00:00)}',
     ROW('-0', '-1 day 02:00', '2024-06-01 12:00+00', '{"k":  [1,1]}', '\x00ff', '[2:3]={7,8}'),
     ARRAY[ROW(0.1, '1 sec', NULL, 'null', NULL, '{1}')::cv_pair], 'happy', '{sad,ok}', 7, '{1,2}',
     'a:1A fat:2B cat', 'fat & (rat | cat)', '(0.30000000000000004,1e-320)', '{1,-1,0.1}',
     '[(0,0),(1.5,2.5)]', '(1,1),(0,0)', '[(0,0),(1,1),(2,0.1)]', '((0,0),(1,1),(2,0))', '<(1,2),0.30000000000000004>',
     '16/B374D848', 4294967295, '18446744073709551615'),
    (2, 2, 0, 0, 0, 'NaN', NULL, 'NaN', '-0', -0.01,
     '', '', '', NULL, '', '\x', false,
     'infinity', '00:00', '00:00-12', '-infinity', 'infinity', '-80000000 years -1 usec',
     NULL, '::1', '::/0', NULL, NULL, B'0000', B'',
     '"scalar"', '"scalar"', 'text <b/> more', NULL, NULL, NULL, NULL, '{Infinity,-Infinity}', '{NULL}', '{}', '{}',
     NULL, '{}', 'empty', '(,)', '(,infinity]', NULL, '{}', NULL,
     ROW(NULL, NULL, NULL, NULL, NULL, NULL), '{}', 'sad', '{}', 1, '{}',
     '', 'a', NULL, NULL, NULL, NULL, NULL, NULL, NULL, '0/0', 0, '0');
INSERT INTO cv_vals (id, tenant, n, f4, f8, d, ts, tstz, j, jb, fa, tsa) VALUES
    (3, 3, '-Infinity', '-Infinity', 1e-320, '0044-03-15 BC', '0044-03-15 12:00 BC',
     '1900-01-01 00:00+00:19:32', '[1, 2 , 3]', '[]', '{-0}', '{{"2024-01-01 00:00+00"},{NULL}}');
INSERT INTO cv_vals (id, tenant, f4, f8, m, j, jb) VALUES
    (4, 4, 3.4028235e38, 1.7976931348623157e308, -92233720368547758.08, 'null', 'null');
RESET ALL;

-- The copy an UPDATE's old images are checked against.
BEGIN ISOLATION LEVEL REPEATABLE READ;
CREATE TABLE cv_before AS SELECT * FROM cv_vals;
COMMIT;

SELECT cv_hostile(2);
UPDATE cv_vals SET f8 = f8 / 3, tstz = tstz + interval '1 hour', iv = iv * 2, n = n + 1,
                   pair.f = 0.1 + 0.2, m = m / 2;
RESET ALL;

-- The images and the rows they must give back.
CREATE VIEW cv_images AS
SELECT l.log_id, l.operation, (l.record_id ->> 'id')::int AS id, l.old_data, l.new_data, l.tenant_id
  FROM bkperf.backup_transaction_logs l
 WHERE l.table_name = 'public.cv_vals';

-- Decoded under default settings: every image gives the row's text exactly.
-- Compared under the default settings and under others.
CREATE FUNCTION cv_compare() RETURNS TABLE (op text, id int, image text, exact bool)
LANGUAGE sql AS $$
    SELECT i.operation, i.id, 'new',
           bkperf.image_record(i.new_data, NULL::cv_vals)::text = v::text
      FROM cv_images i JOIN cv_vals v USING (id) WHERE i.operation = 'UPDATE'
    UNION ALL
    SELECT i.operation, i.id, 'old',
           bkperf.image_record(i.old_data, NULL::cv_vals)::text = bf::text
      FROM cv_images i JOIN cv_before bf USING (id) WHERE i.operation = 'UPDATE'
    UNION ALL
    SELECT i.operation, i.id, 'new',
           bkperf.image_record(i.new_data, NULL::cv_vals)::text = bf::text
      FROM cv_images i JOIN cv_before bf USING (id) WHERE i.operation = 'INSERT'
    ORDER BY 2, 1, 3
$$;
SELECT * FROM cv_compare();
SET extra_float_digits = 3;
SET DateStyle = 'ISO, YMD';
SET IntervalStyle = iso_8601;
SET TimeZone = 'UTC';
SELECT bool_and(exact) AS all_exact_other_settings, count(*) FROM cv_compare();
RESET ALL;

-- Decoded under hostile settings, compared under default ones.
SELECT cv_hostile(2);
CREATE TEMP TABLE cv_decoded AS
SELECT i.id, bkperf.image_record(i.new_data, NULL::cv_vals) AS r
  FROM cv_images i WHERE i.operation = 'UPDATE';
RESET ALL;
SELECT d.id, (d.r)::text = v::text AS exact FROM cv_decoded d JOIN cv_vals v USING (id) ORDER BY d.id;

-- The images are readable jsonb: numbers, strings, arrays and objects.
SELECT key, value FROM cv_images i, jsonb_each(i.new_data)
 WHERE i.operation = 'INSERT' AND i.id = 1 ORDER BY key;
SELECT key, value FROM cv_images i, jsonb_each(i.new_data)
 WHERE i.operation = 'INSERT' AND i.id IN (2, 3, 4) AND value <> 'null' ORDER BY i.id, key;

-- 1.0 logged to_jsonb(row): such images still decode (json normalised,
-- array bounds, float -0 and jsonb 'null' lost, as 1.0 logged them).
SELECT v.id, bkperf.image_record(to_jsonb(v), NULL::cv_vals)::text = v::text AS exact
  FROM cv_vals v ORDER BY v.id;
SELECT r.m, r.j, r.f8, r.ts, r.jb
  FROM bkperf.image_record('{"m": "$1,234.56", "j": {"b": 1}, "f8": 0.1, "ts": "2024-02-29T23:59:59.5",
                             "jb": "a string"}', NULL::cv_vals) r;

-- Keys missing from an image give NULL; unknown keys are ignored.
SELECT (bkperf.image_record('{"id": 9, "gone": 1}', NULL::cv_vals)).id,
       (bkperf.image_record('{"id": 9, "gone": 1}', NULL::cv_vals)).tenant IS NULL AS tenant_null;

-- Bad input, each with its SQLSTATE; conversion errors name the column.
SELECT cv_error($$SELECT bkperf.image_record(NULL, NULL::cv_vals)$$);
SELECT cv_error($$SELECT bkperf.image_record('{}', 1)$$);
SELECT cv_error($$SELECT bkperf.image_record('{}', NULL::record)$$);
SELECT cv_error($$SELECT bkperf.image_record('[1]', NULL::cv_vals)$$);
SELECT cv_error($$SELECT bkperf.image_record('"x"', NULL::cv_vals)$$);
SELECT cv_error($$SELECT bkperf.image_record('{"dom": 0}', NULL::cv_vals)$$);
SELECT cv_error($$SELECT bkperf.image_record('{"vc": "abcdef"}', NULL::cv_vals)$$);
SELECT cv_error($$SELECT bkperf.image_record('{"ia2": [[1], [2, 3]]}', NULL::cv_vals)$$);
SELECT cv_error($$SELECT bkperf.image_record('{"ia": {"a": 1}}', NULL::cv_vals)$$);
SELECT cv_error($$SELECT bkperf.image_record('{"pair": [1]}', NULL::cv_vals)$$);
SELECT cv_error($$SELECT bkperf.image_record('{"pair": {"f": "x"}}', NULL::cv_vals)$$);
SELECT cv_error($$SELECT bkperf.image_record('{"doms": [1, -1]}', NULL::cv_vals)$$);
SELECT cv_error($$SELECT bkperf.image_record('{"x": "<a>"}', NULL::cv_vals)$$);

-- A value no longer valid for its column's type (ALTER TYPE after logging).
SET client_min_messages = warning;
CREATE TABLE cv_alter (id int PRIMARY KEY, tenant int, v text);
SELECT bkperf.track_table('cv_alter', 'tenant');
RESET client_min_messages;
INSERT INTO cv_alter VALUES (1, 1, 'abc'), (2, 1, '42');
ALTER TABLE cv_alter ALTER COLUMN v TYPE int USING length(v);
SELECT (l.record_id ->> 'id')::int AS id,
       cv_error(format('SELECT bkperf.image_record(%L, NULL::cv_alter)', l.new_data)) AS decode
  FROM bkperf.backup_transaction_logs l WHERE l.table_name = 'public.cv_alter' ORDER BY l.log_id;

-- Tenant text (item 4): bkperf.tenant_text gives what capture logs, and
-- does not depend on the session's settings.
SET client_min_messages = warning;
CREATE TABLE cv_ttz (id int PRIMARY KEY, tenant timestamptz);
CREATE TABLE cv_tdate (id int PRIMARY KEY, tenant date);
CREATE TABLE cv_tnum (id int PRIMARY KEY, tenant numeric);
CREATE TABLE cv_tfloat (id int PRIMARY KEY, tenant float8);
SELECT bkperf.track_table('cv_ttz', 'tenant'), bkperf.track_table('cv_tdate', 'tenant'),
       bkperf.track_table('cv_tnum', 'tenant'), bkperf.track_table('cv_tfloat', 'tenant');
RESET client_min_messages;
SELECT cv_hostile(1);
INSERT INTO cv_ttz VALUES (1, '2024-03-01 09:30:00+01');
INSERT INTO cv_tdate VALUES (1, '2024-03-01');
INSERT INTO cv_tfloat VALUES (1, 0.30000000000000004);
SELECT cv_hostile(2);
INSERT INTO cv_ttz VALUES (2, '2024-03-01 08:30:00+00');
INSERT INTO cv_tdate VALUES (2, '2024-03-01');
INSERT INTO cv_tfloat VALUES (2, 0), (3, '-0');
RESET ALL;
INSERT INTO cv_ttz VALUES (3, '2024-03-01 03:30:00-05');
INSERT INTO cv_tnum VALUES (1, 1), (2, 1.0), (3, 1.00);
SELECT l.table_name, l.tenant_id, count(*) AS rows
  FROM bkperf.backup_transaction_logs l
 WHERE l.table_name IN ('public.cv_ttz', 'public.cv_tdate', 'public.cv_tnum', 'public.cv_tfloat')
 GROUP BY 1, 2 ORDER BY 1, 2;
-- tenant_text of the row's value is its logged tenant_id, in any session.
SELECT cv_hostile(2);
SELECT l.table_name, count(*) AS rows,
       count(*) FILTER (WHERE l.tenant_id = coalesce(bkperf.tenant_text(a.tenant), bkperf.tenant_text(b.tenant),
                                                    bkperf.tenant_text(c.tenant), bkperf.tenant_text(d.tenant))) AS same
  FROM bkperf.backup_transaction_logs l
  LEFT JOIN cv_ttz a ON l.table_name = 'public.cv_ttz' AND a.id = (l.record_id ->> 'id')::int
  LEFT JOIN cv_tdate b ON l.table_name = 'public.cv_tdate' AND b.id = (l.record_id ->> 'id')::int
  LEFT JOIN cv_tnum c ON l.table_name = 'public.cv_tnum' AND c.id = (l.record_id ->> 'id')::int
  LEFT JOIN cv_tfloat d ON l.table_name = 'public.cv_tfloat' AND d.id = (l.record_id ->> 'id')::int
 WHERE l.table_name IN ('public.cv_ttz', 'public.cv_tdate', 'public.cv_tnum', 'public.cv_tfloat')
 GROUP BY 1 ORDER BY 1;
RESET ALL;
SELECT bkperf.tenant_text(1::numeric) AS n1, bkperf.tenant_text(1.0::numeric) AS n10,
       bkperf.tenant_text(0::float8) AS f0, bkperf.tenant_text('-0'::float8) AS fm0,
       bkperf.tenant_text(0.1::float4) AS f4, bkperf.tenant_text(42) AS i,
       bkperf.tenant_text('a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11'::uuid) AS u,
       bkperf.tenant_text('t1'::text) AS t, bkperf.tenant_text(NULL::int) IS NULL AS null_is_null;
-- Tenants compared by their logged text: 1 and 1.0 are different tenants.
SELECT id FROM cv_tnum WHERE bkperf.tenant_text(tenant) OPERATOR(pg_catalog.=) '1' ORDER BY id;
SELECT id FROM cv_tfloat WHERE bkperf.tenant_text(tenant) OPERATOR(pg_catalog.=) '-0' ORDER BY id;
