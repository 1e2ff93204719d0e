# Rollback under load: pgbench's TPC-B workload runs with its four tables
# tracked (tenant = branch).  A REPEATABLE READ transaction takes a snapshot
# of branch 1 and copies its rows; the load goes on; then, with the load
# still running, branch 1 is rolled back to the snapshot, and inside the
# rollback's transaction (its table locks keep writers out) branch 1's rows
# must equal the copy, and every row the rollback wrote (its own log rows, as
# all four tables are tracked) must be branch 1's: no other branch changed.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;
use Time::HiRes qw(usleep);

my $node = PostgreSQL::Test::Cluster->new('rollback_pgbench');
$node->init;
$node->append_conf('postgresql.conf', "shared_preload_libraries = 'bkperf'");
$node->start;

$node->command_ok([ 'pgbench', '-i', '-q', '-s', '2', '-p', $node->port, '-h', $node->host, 'postgres' ],
    'pgbench -i');
$node->safe_psql('postgres', q{
    CREATE EXTENSION bkperf;
    ALTER TABLE pgbench_history ADD COLUMN hid bigserial PRIMARY KEY;
    SELECT bkperf.track_table('pgbench_accounts', 'bid'), bkperf.track_table('pgbench_tellers', 'bid'),
           bkperf.track_table('pgbench_branches', 'bid'), bkperf.track_table('pgbench_history', 'bid');
});

my ($out, $err) = ('', '');
my $bench = IPC::Run::start(
    [ 'pgbench', '-n', '-c', '3', '-T', '12', '-p', $node->port, '-h', $node->host, 'postgres' ],
    '>', \$out, '2>', \$err);
sleep 3;

# The snapshot and the copy, in one REPEATABLE READ transaction.
$node->safe_psql('postgres', q{
    BEGIN ISOLATION LEVEL REPEATABLE READ;
    CREATE TABLE snap_id AS SELECT bkperf.create_snapshot('1') AS id;
    CREATE TABLE copy_accounts AS SELECT * FROM pgbench_accounts WHERE bid = 1;
    CREATE TABLE copy_tellers AS SELECT * FROM pgbench_tellers WHERE bid = 1;
    CREATE TABLE copy_branches AS SELECT * FROM pgbench_branches WHERE bid = 1;
    CREATE TABLE copy_history AS SELECT * FROM pgbench_history WHERE bid = 1;
    COMMIT;
});
sleep 3;
my $changed = $node->safe_psql('postgres', q{
    SELECT count(*) FROM bkperf.backup_transaction_logs l, bkperf.backup_pitr_snapshots s
     WHERE l.tenant_id = '1' AND s.snapshot_id = (SELECT id FROM snap_id)
       AND NOT pg_visible_in_snapshot(l.txid, s.snapshot)});
cmp_ok($changed, '>', 100, 'the load changed branch 1 after the snapshot');

my $diff_sql = join ' UNION ALL ', map {
    "(SELECT to_jsonb(t) FROM pgbench_$_ t WHERE bid = 1 EXCEPT ALL SELECT to_jsonb(c) FROM copy_$_ c)"
  . " UNION ALL (SELECT to_jsonb(c) FROM copy_$_ c EXCEPT ALL SELECT to_jsonb(t) FROM pgbench_$_ t WHERE bid = 1)"
} qw(accounts tellers branches history);
my $result = $node->safe_psql('postgres', qq{
    BEGIN;
    SELECT status FROM bkperf.rollback_to_snapshot('1', (SELECT id FROM snap_id));
    SELECT count(*) FROM ($diff_sql) d;
    SELECT count(*) FILTER (WHERE tenant_id IS DISTINCT FROM '1') || ' ' || (count(*) > 0)
      FROM bkperf.backup_transaction_logs WHERE txid = pg_current_xact_id();
    COMMIT;
});
is($result, "completed\n0\n0 true",
    'branch 1 equals the copy taken with the snapshot, under load, and the rollback wrote only branch 1');

$bench->finish;
is($bench->result(0), 0, 'pgbench ran to the end next to the rollback') or diag($err);
is($node->safe_psql('postgres', q{
    SELECT rollback_status || ' ' || (rows_updated > 0) FROM bkperf.backup_pitr_rollback_history}),
    'completed true', 'the rollback is in the history');

$node->stop;
done_testing();
