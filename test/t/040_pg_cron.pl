# pg_cron scheduling for real: schedule_maintenance() registers the jobs of
# this database (twice leaves one set), each job runs and succeeds
# (cron.job_run_details), a run that overlaps a maintenance task in progress
# returns at once instead of queueing, and unschedule_maintenance() removes
# the jobs.  pg_cron 1.4 has minute resolution, so this takes 2-3 minutes.
use strict;
use warnings;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('cron');
$node->init;
$node->append_conf(
	'postgresql.conf', q{
shared_preload_libraries = 'pg_cron,bkperf'
cron.database_name = 'postgres'
cron.use_background_workers = on
max_worker_processes = 16
});
$node->start;
$node->safe_psql('postgres', 'CREATE EXTENSION pg_cron; CREATE EXTENSION bkperf;');
$node->safe_psql('postgres',
	"INSERT INTO bkperf.backup_jobs (tenant_id, job_type, job_status, started_at, finished_at)
	 VALUES ('cron_t', 'full', 'completed', now() - interval '1 hour', now())");

my $every_minute = q{'* * * * *', '* * * * *', '* * * * *'};
is( $node->safe_psql(
		'postgres',
		"SELECT string_agg(job_name, ',' ORDER BY job_name) FROM bkperf.schedule_maintenance($every_minute)"),
	'bkperf-flush@postgres,bkperf-maintenance@postgres,bkperf-refresh@postgres',
	'schedule_maintenance registers three named jobs');
$node->safe_psql('postgres', "SELECT * FROM bkperf.schedule_maintenance($every_minute)");
is( $node->safe_psql('postgres', "SELECT count(*) FROM cron.job WHERE jobname LIKE 'bkperf-%'"),
	'3', 'calling schedule_maintenance twice leaves one set of jobs');

# Every job runs and succeeds within a couple of minutes.
ok( $node->poll_query_until(
		'postgres', q{
		SELECT count(DISTINCT j.jobname) = 3
		  FROM cron.job_run_details d JOIN cron.job j USING (jobid)
		 WHERE j.jobname LIKE 'bkperf-%' AND d.status = 'succeeded'}),
	'each scheduled job ran and succeeded');
ok( $node->safe_psql('postgres',
		"SELECT count(*) > 0 FROM bkperf.refresh_log WHERE view_name = 'mv_backup_health_summary'") eq 't',
	'the refresh job refreshed the health view');
is( $node->safe_psql('postgres',
		"SELECT count(*) FROM bkperf.mv_backup_health_summary WHERE tenant_id = 'cron_t'"),
	'1', 'the refreshed view holds the tenant');
is( $node->safe_psql('postgres',
		q{SELECT count(*) FROM cron.job_run_details WHERE status <> 'succeeded'}),
	'0', 'no job run failed');

# A refresh task held open in another session: the next scheduled refresh run
# must return at once (skipped), not wait for it.
my $held = $node->background_psql('postgres');
$held->query_safe('BEGIN');
$held->query_safe("SELECT * FROM bkperf.run_maintenance(ARRAY['refresh'])");
my $since = $node->safe_psql('postgres', 'SELECT now()');
ok( $node->poll_query_until(
		'postgres', qq{
		SELECT count(*) > 0
		  FROM cron.job_run_details d JOIN cron.job j USING (jobid)
		 WHERE j.jobname = 'bkperf-refresh\@postgres' AND d.start_time > '$since'
		   AND d.status = 'succeeded'}),
	'a refresh run overlapping a held refresh finished');
is( $node->safe_psql(
		'postgres', qq{
		SELECT bool_and(d.end_time - d.start_time < interval '10 seconds')
		  FROM cron.job_run_details d JOIN cron.job j USING (jobid)
		 WHERE j.jobname = 'bkperf-refresh\@postgres' AND d.start_time > '$since'}),
	't', 'the overlapping run returned at once instead of queueing');
$held->query_safe('COMMIT');
$held->quit;

# unschedule removes exactly our jobs.
$node->safe_psql('postgres', "SELECT cron.schedule('other-job', '0 0 * * *', 'SELECT 1')");
is( $node->safe_psql('postgres',
		"SELECT string_agg(job_name, ',' ORDER BY job_name) FROM bkperf.unschedule_maintenance()"),
	'bkperf-flush@postgres,bkperf-maintenance@postgres,bkperf-refresh@postgres',
	'unschedule_maintenance reports the jobs it removed');
is($node->safe_psql('postgres', 'SELECT string_agg(jobname, \',\') FROM cron.job'),
	'other-job', 'other pg_cron jobs are left alone');

$node->stop;
done_testing();
