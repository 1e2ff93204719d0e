# Change capture and crashes: the log commits and aborts with the change.
#  - an immediate shutdown right after commit keeps every log row;
#  - a backend killed (SIGKILL) in the middle of a 1M-row insert, after it
#    has already written log rows to disk, leaves neither rows nor log rows.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use IPC::Run;
use Time::HiRes qw(usleep);

my $node = PostgreSQL::Test::Cluster->new('capture_crash');
$node->init;
# Cluster.pm turns crash restarts off; the killed-backend case needs them.
$node->append_conf('postgresql.conf', 'restart_after_crash = on');
$node->start;
$node->safe_psql('postgres', q{
    CREATE EXTENSION bkperf;
    CREATE TABLE cap_crash (id bigint PRIMARY KEY, tenant int, v text);
    SELECT bkperf.track_table('cap_crash', 'tenant');
});

# Committed changes survive an immediate shutdown (crash recovery replays
# the log rows with the rows).
$node->safe_psql('postgres', q{
    INSERT INTO cap_crash SELECT g, g % 10, 'x' FROM generate_series(1, 1000) g;
    UPDATE cap_crash SET v = 'y' WHERE id <= 10;
    DELETE FROM cap_crash WHERE id > 990;
});
$node->stop('immediate');
$node->start;
is($node->safe_psql('postgres', 'SELECT count(*) FROM cap_crash'), '990',
    'committed rows survive an immediate shutdown');
is( $node->safe_psql(
        'postgres', q{SELECT operation || ' ' || count(*) FROM bkperf.backup_transaction_logs
                      GROUP BY operation ORDER BY operation}),
    "DELETE 10\nINSERT 1000\nUPDATE 10",
    'their log rows survive it too');

# The size of the whole change log (every partition: track_table created the
# daily ones, so rows go to today's).
my $log_size = q{SELECT sum(pg_relation_size(relid)) FROM pg_partition_tree('bkperf.backup_transaction_logs')};
my $size_before = $node->safe_psql('postgres', $log_size);

# A 1M-row insert, killed once its capture trigger is writing log rows.
my ($out, $err) = ('', '');
my $h = IPC::Run::start(
    [
        'psql', '-X', '-d', $node->connstr('postgres'), '-c',
        q{INSERT INTO cap_crash SELECT g, g % 10, 'killed' FROM generate_series(1001, 1001000) g}
    ],
    '>', \$out, '2>', \$err);
my $pid = '';
my $written = 0;
for (my $i = 0; $i < 1200 && !$written; $i++)
{
    $pid = $node->safe_psql('postgres',
        q{SELECT pid FROM pg_stat_activity WHERE query LIKE 'INSERT INTO cap_crash%'})
      if $pid eq '';
    $written = $node->safe_psql('postgres', "SELECT ($log_size) > $size_before + 8192 * 128")
      eq 't';
    usleep(100_000) unless $written;
}
ok($pid ne '' && $written, 'the insert was writing log rows when killed');
kill 'KILL', $pid;
$h->finish;
like($err, qr/server closed the connection|terminated/, 'the inserting backend died');

# The postmaster restarts after the crash.
$node->poll_query_until('postgres', 'SELECT true') or die 'server did not come back';
is($node->safe_psql('postgres', 'SELECT count(*) FROM cap_crash'), '990',
    'no row of the killed insert is visible');
is($node->safe_psql('postgres',
        q{SELECT count(*) FROM bkperf.backup_transaction_logs WHERE new_data->>'v' = 'killed'}),
    '0', 'no log row of the killed insert is visible');
is($node->safe_psql('postgres', 'SELECT count(*) FROM bkperf.backup_transaction_logs'),
    '1020', 'the committed log rows are all still there');

# Capture still works after the crash.
$node->safe_psql('postgres', q{INSERT INTO cap_crash VALUES (5000, 1, 'after')});
is($node->safe_psql('postgres',
        q{SELECT count(*) FROM bkperf.backup_transaction_logs WHERE record_id = '{"id": 5000}'}),
    '1', 'capture works after recovery');

$node->stop;
done_testing();
