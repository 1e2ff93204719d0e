# Slow-query ring: overflow keeps the newest entries and counts the dropped
# ones; flush per database; pg_notify for new critical alerts; behaviour
# across restarts (kept over a clean restart, lost in a crash); capture and
# flush on a hot standby; the error without preload.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('alerts');
$node->init(allows_streaming => 1);
$node->append_conf('postgresql.conf',
	"shared_preload_libraries = 'bkperf'\nbkperf.slow_query_max = 10\n");
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION bkperf');

# Overflow: 25 recorded statements into a ring of 10.
$node->safe_psql('postgres',
	"SET bkperf.slow_query_ms = 0; SET bkperf.tenant_id = 'tap_overflow';\n"
	  . join('', map { "SELECT $_ AS n;\n" } 1 .. 25));
is( $node->safe_psql(
		'postgres', 'SELECT capacity, entries, dropped FROM bkperf.slow_queries_info()'),
	'10|10|15',
	'ring holds its capacity and counts the overwritten entries');
is( $node->safe_psql(
		'postgres',
		"SELECT string_agg(substr(query, 8), ',' ORDER BY seq) FROM bkperf.slow_queries()"),
	join(',', map { "$_ AS n" } 16 .. 25),
	'the newest entries are kept, oldest first');

# Flushing empties the ring into the table.
is($node->safe_psql('postgres', 'SELECT bkperf.flush_alerts()'),
	'10', 'flush moves every entry');
is( $node->safe_psql(
		'postgres',
		"SELECT count(*), sum(occurrences) FROM bkperf.system_alerts WHERE tenant_id = 'tap_overflow'"),
	'1|10',
	'the ten statements fold into one alert (same normalised text)');

# flush_alerts() moves only the entries of its own database.
$node->safe_psql('postgres', 'CREATE DATABASE alerts_other');
$node->safe_psql('alerts_other', 'CREATE EXTENSION bkperf');
$node->safe_psql('alerts_other',
	"SET bkperf.slow_query_ms = 0; SET bkperf.tenant_id = 'tap_other_db'; SELECT 'other';");
is($node->safe_psql('postgres', 'SELECT bkperf.flush_alerts()'),
	'0', 'nothing of another database is flushed here');
is( $node->safe_psql(
		'postgres', "SELECT count(*) FROM bkperf.slow_queries() WHERE tenant_id = 'tap_other_db'"),
	'1', 'the other database\'s entry stays in the ring');
is($node->safe_psql('alerts_other', 'SELECT bkperf.flush_alerts()'),
	'1', 'and is flushed from its own database');
is( $node->safe_psql(
		'alerts_other', "SELECT count(*) FROM bkperf.system_alerts WHERE tenant_id = 'tap_other_db'"),
	'1', 'into that database\'s alerts');

# A new critical alert is sent to the bkperf_alerts channel when the flush
# commits.
my $out = $node->safe_psql('postgres',
	"LISTEN bkperf_alerts;\n"
	  . "SET bkperf.slow_query_ms = 0; SET bkperf.slow_query_critical_ms = 0;\n"
	  . "SET bkperf.tenant_id = 'tap_notify';\n"
	  . "SELECT 42 AS notify_me;\n"
	  . "RESET bkperf.slow_query_ms;\n"
	  . "SELECT bkperf.flush_alerts();\n");
like(
	$out,
	qr/Asynchronous notification "bkperf_alerts" with payload "\{.*"severity" : "critical".*"tenant_id" : "tap_notify"/,
	'critical alert notified');

# Clean restart: the ring is written to pg_stat/ at shutdown and read back,
# so unflushed entries survive (sequence numbers too); flushed alerts stay
# in the table; the drop counter starts again.
$node->safe_psql('postgres',
	"SET bkperf.slow_query_ms = 0; SET bkperf.tenant_id = 'tap_restart'; SELECT 'unflushed';");
my $before = $node->safe_psql('postgres',
	"SELECT seq || ':' || query FROM bkperf.slow_queries() WHERE tenant_id = 'tap_restart'");
like($before, qr/^\d+:SELECT 'unflushed'$/, 'entry in the ring before restart');
$node->restart;
is( $node->safe_psql(
		'postgres',
		"SELECT seq || ':' || query FROM bkperf.slow_queries() WHERE tenant_id = 'tap_restart'"),
	$before,
	'unflushed entry survives a clean restart');
is( $node->safe_psql('postgres', 'SELECT dropped FROM bkperf.slow_queries_info()'),
	'0', 'drop counter restarts');
ok(!-e $node->data_dir . '/pg_stat/bkperf_slow_queries.stat',
	'dump file removed once read');
is( $node->safe_psql(
		'postgres',
		"SELECT count(*) FROM bkperf.system_alerts WHERE tenant_id IN ('tap_overflow', 'tap_notify')"),
	'2',
	'flushed alerts survive the restart');

# Crash (a server process dies, shared memory is reinitialised): unflushed
# entries are lost.
$node->append_conf('postgresql.conf', "restart_after_crash = on\n");
$node->reload;
my $victim = $node->safe_psql('postgres',
	"SELECT pid FROM pg_stat_activity WHERE backend_type = 'checkpointer'");
kill 'KILL', $victim;
ok( $node->poll_query_until(
		'postgres', 'SELECT entries FROM bkperf.slow_queries_info()', '0'),
	'ring is empty after a crash');
$node->append_conf('postgresql.conf', "restart_after_crash = off\n");
$node->reload;

# Hot standby: capture works (read-only), flush does nothing and says so.
$node->backup('alerts_backup');
my $standby = PostgreSQL::Test::Cluster->new('alerts_standby');
$standby->init_from_backup($node, 'alerts_backup', has_streaming => 1);
$standby->start;
$node->wait_for_catchup($standby);
$standby->safe_psql('postgres',
	"SET bkperf.slow_query_ms = 0; SET bkperf.tenant_id = 'tap_standby'; SELECT 'on standby';");
is( $standby->safe_psql(
		'postgres',
		"SELECT query FROM bkperf.slow_queries() WHERE tenant_id = 'tap_standby'"),
	"SELECT 'on standby'",
	'standby captures slow statements');
my ($ret, $stdout, $stderr) =
  $standby->psql('postgres', 'SELECT bkperf.flush_alerts()');
is($stdout, '0', 'flush on a standby moves nothing');
like($stderr, qr/alerts were not flushed because the server is in recovery/,
	'flush on a standby says why');
$standby->stop;

# Without preload: the ring functions fail with a hint, the rest works.
$node->append_conf('postgresql.conf', "shared_preload_libraries = ''\n");
$node->restart;
($ret, $stdout, $stderr) = $node->psql('postgres',
	"\\set VERBOSITY verbose\nSELECT * FROM bkperf.slow_queries()");
isnt($ret, 0, 'slow_queries() fails without preload');
like($stderr, qr/55000: bkperf\.slow_queries\(\) requires bkperf to be loaded via shared_preload_libraries/,
	'object_not_in_prerequisite_state');
like($stderr, qr/HINT:  Add bkperf to shared_preload_libraries/, 'with a hint');
($ret, $stdout, $stderr) = $node->psql('postgres',
	"\\set VERBOSITY verbose\nSELECT bkperf.flush_alerts()");
isnt($ret, 0, 'flush_alerts() fails without preload');
like($stderr, qr/55000: bkperf\.flush_alerts\(\) requires bkperf to be loaded via shared_preload_libraries/,
	'flush_alerts(): object_not_in_prerequisite_state');
is( $node->safe_psql(
		'postgres',
		"INSERT INTO bkperf.performance_metrics (tenant_id, endpoint, response_time_ms)
		 VALUES ('tap_nopreload', '/x', 50000);
		 SELECT severity FROM bkperf.system_alerts WHERE tenant_id = 'tap_nopreload';
		 SELECT requests FROM bkperf.performance_summary() WHERE endpoint = '/x';"),
	"critical\n1",
	'endpoint alerts and summary work without preload');

$node->stop;
done_testing();
