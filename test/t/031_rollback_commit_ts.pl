# rollback_to_time with track_commit_timestamp on: a change is after the
# target iff its transaction committed after it.  A transaction that began
# (and wrote) before the target but committed after it is undone; one that
# committed before the target is kept, although it began after an earlier
# snapshot.  A rollback_to_time with no snapshot before the target scans
# from the log floor.
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(usleep);

my $node = PostgreSQL::Test::Cluster->new('rollback_commit_ts');
$node->init;
$node->append_conf('postgresql.conf', "track_commit_timestamp = on");
$node->start;
$node->safe_psql('postgres', q{
    CREATE EXTENSION bkperf;
    CREATE TABLE acct (tenant text, id int, bal int, PRIMARY KEY (tenant, id));
    SELECT bkperf.track_table('acct', 'tenant');
    INSERT INTO acct SELECT t, i, 100 FROM unnest(ARRAY['a', 'b']) t, generate_series(1, 3) i;
});

# A long transaction writes early and commits late (after the target).
my $long = $node->background_psql('postgres');
$long->query_safe('BEGIN');
$long->query_safe(q{UPDATE acct SET bal = 1 WHERE tenant = 'a' AND id = 1});
# A short one commits before the target.
$node->safe_psql('postgres', q{UPDATE acct SET bal = 2 WHERE tenant = 'a' AND id = 2});
usleep(50_000);
my $target = $node->safe_psql('postgres', 'SELECT clock_timestamp()');
usleep(50_000);
$long->query_safe('COMMIT');
$long->quit;
$node->safe_psql('postgres', q{UPDATE acct SET bal = 3 WHERE tenant = 'a' AND id = 3});

my $res = $node->safe_psql('postgres', qq{
    SELECT status || ' ' || rows_updated FROM bkperf.rollback_to_time('a', '$target')});
is($res, 'completed 2', 'two changes committed after the target undone');
is($node->safe_psql('postgres', q{SELECT string_agg(id || '=' || bal, ' ' ORDER BY id) FROM acct WHERE tenant = 'a'}),
    '1=100 2=2 3=100',
    'by commit time: the early writer committing late is undone, the change committed before is kept');

# An unlogged rollback by commit time: a writer that began before its target
# but committed after it is undone; a later target that saw that commit is
# then refused (only the commit-time rule counts that change after the
# unlogged rollback's target), its own target is not.
my $long2 = $node->background_psql('postgres');
$long2->query_safe('BEGIN');
$long2->query_safe(q{UPDATE acct SET bal = 10 WHERE tenant = 'a' AND id = 1});
usleep(50_000);
my $t1 = $node->safe_psql('postgres', 'SELECT clock_timestamp()');
usleep(50_000);
$long2->query_safe('COMMIT');
$long2->quit;
usleep(50_000);
my $t_mid = $node->safe_psql('postgres', 'SELECT clock_timestamp()');
usleep(50_000);
$node->safe_psql('postgres', q{UPDATE acct SET bal = 30 WHERE tenant = 'a' AND id = 3});
is($node->safe_psql('postgres', qq{
    SELECT status || ' ' || rows_updated FROM bkperf.rollback_to_time_unlogged('a', '$t1')}),
    'completed 2', 'unlogged rollback by commit time undid the late committer and the later change');
is($node->safe_psql('postgres', q{SELECT string_agg(id || '=' || bal, ' ' ORDER BY id) FROM acct WHERE tenant = 'a'}),
    '1=100 2=2 3=100', 'the rows as at its target');
my ($ret, $out, $err) = $node->psql('postgres', qq{\\set VERBOSITY verbose
    SELECT status FROM bkperf.rollback_to_time('a', '$t_mid')});
like($err, qr/55000: rollback target lies between an unlogged rollback and its target/,
    'a time that saw the late commit is refused (55000)');
is($node->safe_psql('postgres', qq{SELECT status FROM bkperf.rollback_to_time('a', '$t1')}),
    'completed', 'the unlogged rollback\'s own target is not');

$node->stop;
done_testing();
