# Upgrade from the frozen 1.0 script: install 1.0, fill it, call the new
# library through 1.0's SQL definitions (works or fails with a clear error,
# never crashes), ALTER EXTENSION bkperf UPDATE, then: (a) every member
# object is described exactly as in a fresh install, (b) every row is still
# there, (c) capture works, (d) a rollback to a snapshot taken under 1.0 is
# exact (compared with a REPEATABLE READ copy by text output).
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('upgrade');
$node->init;
$node->append_conf('postgresql.conf', "shared_preload_libraries = 'bkperf'");
$node->start;

my $tenant_rows = q{
    SELECT string_agg(x, ' | ' ORDER BY x) FROM (
        SELECT 'acct:' || a::text AS x FROM acct a WHERE tenant = 'a'
        UNION ALL SELECT 'mixed:' || m::text FROM "Mixed Case" m WHERE "Tenant" = 'a'
        UNION ALL SELECT 'parted:' || p::text FROM parted p WHERE tenant = 'a') s};

$node->safe_psql('postgres', q{
    CREATE EXTENSION bkperf VERSION '1.0';
    CREATE TABLE acct (tenant text, id int, bal int, PRIMARY KEY (tenant, id));
    CREATE TABLE "Mixed Case" ("Tenant" text, "Id" int, v text, PRIMARY KEY ("Tenant", "Id"));
    CREATE TABLE parted (tenant text, id int, v text, PRIMARY KEY (tenant, id)) PARTITION BY LIST (tenant);
    CREATE TABLE parted_a PARTITION OF parted FOR VALUES IN ('a');
    CREATE TABLE parted_b PARTITION OF parted FOR VALUES IN ('b');
    CREATE TABLE by_uuid (org uuid, k1 int, k2 text, v numeric, PRIMARY KEY (org, k1, k2));
    SELECT bkperf.track_table('acct', 'tenant');
    SELECT bkperf.track_table('"Mixed Case"', 'Tenant', 'undo');
    SELECT bkperf.track_table('parted', 'tenant');
    SELECT bkperf.track_table('by_uuid', 'org');
    INSERT INTO acct SELECT t, i, 100 FROM unnest(ARRAY['a', 'b']) t, generate_series(1, 5) i;
    INSERT INTO "Mixed Case" VALUES ('a', 1, 'x'), ('a', 2, 'y'), ('b', 1, 'z');
    INSERT INTO parted VALUES ('a', 1, 'x'), ('a', 2, 'y'), ('b', 1, 'z');
    INSERT INTO by_uuid VALUES ('00000000-0000-0000-0000-00000000000a', 1, 'k', 1.50);
    INSERT INTO bkperf.backup_transaction_logs (tenant_id, table_name, operation, record_id, new_data, changed_at)
    SELECT 'old', 'public.gone', 'INSERT', jsonb_build_object('id', d), '{}', now() + d * interval '1 day'
      FROM generate_series(1, 3) d;
    INSERT INTO bkperf.backup_jobs (tenant_id, job_type, job_status, started_at, finished_at, backup_size_bytes)
    VALUES ('a', 'full', 'completed', now() - interval '2 hours', now() - interval '1 hour', 1000),
           ('b', 'full', 'failed', now() - interval '3 hours', now() - interval '2 hours', NULL);
    INSERT INTO bkperf.performance_metrics (tenant_id, endpoint, response_time_ms, status_code)
    VALUES ('a', '/slow', 5000, 200), ('a', '/fast', 10, 200);
    SELECT bkperf.acknowledge_alert(min(alert_id)) FROM bkperf.system_alerts;
    UPDATE bkperf.health_policy SET rpo_target = '2 days';
    UPDATE bkperf.maintenance_settings SET log_partition_days_ahead = 9;
    INSERT INTO bkperf.retention_policy (tenant_id, keep_daily) VALUES ('a', 3);
    SELECT * FROM bkperf.refresh_backup_summaries(false);
});

# A snapshot under 1.0 and what it sees; changes after it (by_uuid's rows
# belong to another tenant: the rollback leaves them alone).
my ($snap, $copy) = split /\n/, $node->safe_psql('postgres', qq{
    BEGIN ISOLATION LEVEL REPEATABLE READ;
    SELECT bkperf.create_snapshot('a', 'under 1.0');
    $tenant_rows;
    COMMIT;});
$node->safe_psql('postgres', q{
    UPDATE acct SET bal = bal + 1 WHERE tenant = 'a';
    DELETE FROM "Mixed Case" WHERE "Tenant" = 'a' AND "Id" = 2;
    INSERT INTO parted VALUES ('a', 3, 'new');
    UPDATE by_uuid SET v = 2.25;
});

# The new library behind 1.0's SQL definitions: each call works or fails
# with an error; the server never crashes.
for my $call (
	[ 'capture', q{UPDATE acct SET bal = bal WHERE tenant = 'b'}, 1 ],
	[ 'create_snapshot', q{SELECT bkperf.create_snapshot('b') > 0}, 1 ],
	[ 'calculate_health_score', q{SELECT score IS NOT NULL FROM bkperf.calculate_health_score('a')}, 1 ],
	[ 'health_report', q{SELECT count(*) > 0 FROM bkperf.health_report()}, 1 ],
	[ 'refresh', q{SELECT count(*) = 2 FROM bkperf.refresh_backup_summaries()}, 1 ],
	[ 'get_backup_statistics', q{SELECT successful = 1 FROM bkperf.get_backup_statistics('a')}, 1 ],
	[ 'table_restore_order', q{SELECT count(*) = 4 FROM bkperf.table_restore_order()}, 1 ],
	[ 'rollback_to_snapshot', qq{SELECT status FROM bkperf.rollback_to_snapshot('a', $snap, true)}, 0 ])
{
	my ($name, $sql, $must_work) = @$call;
	my ($ret, $out, $err) = $node->psql('postgres', "\\set VERBOSITY verbose\n$sql");
	if ($must_work)
	{
		is($ret, 0, "1.0 SQL, new library: $name works") or diag($err);
	}
	else
	{
		like($err, qr/ERROR:  55000: the bkperf extension in this database is older than its library/,
			"1.0 SQL, new library: $name refuses clearly");
	}
	is($node->safe_psql('postgres', 'SELECT 1'), '1', "server alive after $name");
}

# Every row of every table 1.0 dumps, over the columns 1.0 had.
my %columns = map { split /\t/ } split /\n/, $node->safe_psql('postgres', q{
    SELECT c.oid::regclass, string_agg(quote_ident(a.attname), ', ' ORDER BY a.attnum)
      FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
     WHERE (c.oid = ANY ((SELECT extconfig FROM pg_extension WHERE extname = 'bkperf')::oid[]) AND c.relkind = 'r')
        OR c.oid = 'bkperf.backup_transaction_logs'::regclass
     GROUP BY c.oid}, extra_params => [ '-F', "\t" ]);
sub rows_fingerprint
{
	return join "\n", map {
		"$_=" . $node->safe_psql('postgres',
			"SELECT count(*) || ':' || coalesce(md5(string_agg(x::text, ',' ORDER BY x::text)), '')"
			  . " FROM (SELECT $columns{$_} FROM $_) x")
	} sort keys %columns;
}
my $rows_before = rows_fingerprint();
ok(scalar(keys %columns) >= 12, 'rows of every 1.0 table fingerprinted');

$node->safe_psql('postgres', 'ALTER EXTENSION bkperf UPDATE');
is($node->safe_psql('postgres', q{SELECT extversion FROM pg_extension WHERE extname = 'bkperf'}),
	'1.1', 'updated to 1.1');
$node->safe_psql('postgres', 'CREATE DATABASE fresh');
$node->safe_psql('fresh', 'CREATE EXTENSION bkperf');

# (a) A description of every member object of the extension, whatever the
# objects are: kind and identity, then what defines it.
my $describe = q{
WITH m AS (
    SELECT d.classid, d.objid, d.objsubid, (pg_identify_object(d.classid, d.objid, d.objsubid)).*
      FROM pg_depend d JOIN pg_extension e ON d.refclassid = 'pg_extension'::regclass AND d.refobjid = e.oid
     WHERE e.extname = 'bkperf' AND d.deptype = 'e'),
rel AS (SELECT c.* FROM pg_class c JOIN m ON m.classid = 'pg_class'::regclass AND m.objid = c.oid)
SELECT line FROM (
    SELECT m.type || ' ' || m.identity || ' comment=' || coalesce(obj_description(m.objid, (SELECT relname FROM pg_class WHERE oid = m.classid)), '-') AS line FROM m
    UNION ALL
    SELECT format('rel %s kind=%s persistence=%s acl=%s options=%s', c.oid::regclass, c.relkind, c.relpersistence, c.relacl, c.reloptions) FROM rel c
    UNION ALL
    SELECT format('column %s #%s %I %s notnull=%s default=%s collation=%s acl=%s comment=%s', a.attrelid::regclass,
                  row_number() OVER (PARTITION BY a.attrelid ORDER BY a.attnum), a.attname,
                  format_type(a.atttypid, a.atttypmod), a.attnotnull, pg_get_expr(ad.adbin, ad.adrelid),
                  a.attcollation::regcollation, a.attacl, col_description(a.attrelid, a.attnum))
      FROM pg_attribute a JOIN rel c ON c.oid = a.attrelid
      LEFT JOIN pg_attrdef ad ON ad.adrelid = a.attrelid AND ad.adnum = a.attnum
     WHERE a.attnum > 0 AND NOT a.attisdropped
    UNION ALL
    SELECT format('constraint %s %I %s', n.conrelid::regclass, n.conname, pg_get_constraintdef(n.oid))
      FROM pg_constraint n JOIN rel c ON c.oid = n.conrelid
    UNION ALL
    SELECT format('index %s', pg_get_indexdef(i.indexrelid)) FROM pg_index i JOIN rel c ON c.oid = i.indrelid
    UNION ALL
    SELECT format('trigger %s enabled=%s', pg_get_triggerdef(t.oid), t.tgenabled)
      FROM pg_trigger t JOIN rel c ON c.oid = t.tgrelid WHERE NOT t.tgisinternal
    UNION ALL
    SELECT format('view %s %s', c.oid::regclass, pg_get_viewdef(c.oid)) FROM rel c WHERE c.relkind IN ('v', 'm')
    UNION ALL
    SELECT format('sequence %s %s %s %s %s %s %s', s.seqrelid::regclass, s.seqtypid::regtype, s.seqstart,
                  s.seqincrement, s.seqmin, s.seqcache, s.seqcycle)
      FROM pg_sequence s JOIN rel c ON c.oid = s.seqrelid
    UNION ALL
    SELECT format('function %s acl=%s def=%s', p.oid::regprocedure, p.proacl, pg_get_functiondef(p.oid))
      FROM pg_proc p JOIN m ON m.classid = 'pg_proc'::regclass AND m.objid = p.oid
    UNION ALL
    SELECT format('event trigger %s %s %s %s %s', v.evtname, v.evtevent, v.evtfoid::regprocedure, v.evttags, v.evtenabled)
      FROM pg_event_trigger v JOIN m ON m.classid = 'pg_event_trigger'::regclass AND m.objid = v.oid
    UNION ALL
    SELECT format('type %s', t.oid::regtype) FROM pg_type t JOIN m ON m.classid = 'pg_type'::regclass AND m.objid = t.oid
    UNION ALL
    SELECT format('config dump %s %s', x.tab::regclass, x.cond)
      FROM pg_extension e, unnest(e.extconfig, e.extcondition) x(tab, cond) WHERE e.extname = 'bkperf'
    UNION ALL
    SELECT format('schema %s acl=%s', n.nspname, n.nspacl) FROM pg_namespace n WHERE n.nspname = 'bkperf'
) d ORDER BY line};
my %upgraded = map { $_ => 1 } split /\n/, $node->safe_psql('postgres', $describe);
my %fresh = map { $_ => 1 } split /\n/, $node->safe_psql('fresh', $describe);
ok(scalar(keys %fresh) > 300, 'the description covers many objects (' . scalar(keys %fresh) . ' lines)');
my @only_upgraded = grep { !$fresh{$_} } sort keys %upgraded;
my @only_fresh = grep { !$upgraded{$_} } sort keys %fresh;
is(join("\n", @only_upgraded), '', '(a) nothing in the updated extension that a fresh 1.1 lacks');
is(join("\n", @only_fresh), '', '(a) nothing in a fresh 1.1 that the updated extension lacks');

# (b) Every row is still there.
is(rows_fingerprint(), $rows_before, '(b) every row of every table is still there');

# (c) Capture keeps working.
is($node->safe_psql('postgres', q{
    BEGIN;
    UPDATE acct SET bal = bal WHERE tenant = 'b' AND id = 1;
    INSERT INTO parted VALUES ('b', 9, 'p');
    SELECT string_agg(table_name || ' ' || operation, ', ' ORDER BY log_id) FROM bkperf.backup_transaction_logs
     WHERE txid = pg_current_xact_id();
    COMMIT;}), 'public.acct UPDATE, public.parted INSERT', '(c) capture works after the update');

# (d) The snapshot taken under 1.0 is exact after the update.
$node->safe_psql('postgres', q{UPDATE acct SET bal = -1 WHERE tenant = 'a'; INSERT INTO "Mixed Case" VALUES ('a', 9, 'n')});
is($node->safe_psql('postgres', "SELECT status || coalesce(' ' || error, '') FROM bkperf.rollback_to_snapshot('a', $snap)"),
	'completed', '(d) rollback to the 1.0 snapshot completes');
is($node->safe_psql('postgres', $tenant_rows), $copy, '(d) ... exactly as the snapshot saw it');

$node->stop;
done_testing();
