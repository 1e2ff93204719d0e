# bkperf on Citus: a coordinator and two workers.  distribute_by_tenant()
# (refused on a worker and before Citus; idempotent), capture of a
# distributed table through the coordinator into the co-located log shards,
# a snapshot and an exact rollback of one tenant run on its worker (compared
# with a REPEATABLE READ copy taken with the snapshot, other tenants
# untouched), an unlogged rollback there (exact, no log rows, the window
# refused), every health and statistics function on the coordinator
# against the same catalog on one plain node, endpoint alerts, and the
# documented steps to remove bkperf, after which it can be created again.
# Skipped when Citus is not installed in this server (test/check builds it
# from ../shared/vendor/citus).
use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

# A plain node (no Citus): the reference answers of the health functions,
# and the check that Citus is installed at all.
my $single = PostgreSQL::Test::Cluster->new('single');
$single->init;
$single->start;
if ($single->safe_psql('postgres',
        q{SELECT count(*) FROM pg_available_extensions WHERE name = 'citus'}) eq '0')
{
    $single->stop;
    plan skip_all => 'Citus is not installed in this server (test/check builds it from ../shared/vendor/citus)';
}
$single->safe_psql('postgres', 'CREATE EXTENSION bkperf');

# Runs SQL and returns (stderr) of a statement that must fail, with SQLSTATE.
sub fails
{
    my ($node, $sql) = @_;
    my ($out, $err) = ('', '');
    $node->psql('postgres', "\\set VERBOSITY verbose\n$sql", stdout => \$out, stderr => \$err);
    return $err;
}

my @nodes;
for my $name (qw(coord w1 w2))
{
    my $n = PostgreSQL::Test::Cluster->new($name);
    $n->init;
    $n->append_conf('postgresql.conf', qq{
shared_preload_libraries = 'citus,bkperf'
max_prepared_transactions = 20
max_connections = 40
citus.shard_count = 4
});
    $n->start;
    $n->safe_psql('postgres', 'SET client_min_messages = warning; CREATE EXTENSION citus');
    push @nodes, $n;
}
my ($coord, $w1, $w2) = @nodes;
# Nodes reach each other through the unix socket directory.
$coord->safe_psql('postgres', sprintf(q{
    SELECT citus_set_coordinator_host('%s', %d);
    SELECT citus_add_node('%s', %d);
    SELECT citus_add_node('%s', %d);
    SET client_min_messages = warning;
    CREATE EXTENSION bkperf;},
    $coord->host, $coord->port, $w1->host, $w1->port, $w2->host, $w2->port));
is($w1->safe_psql('postgres', q{SELECT extversion FROM pg_extension WHERE extname = 'bkperf'}),
    $coord->safe_psql('postgres', q{SELECT extversion FROM pg_extension WHERE extname = 'bkperf'}),
    'CREATE EXTENSION bkperf propagated to the workers');

# Refusals before distributing.
like(fails($w1, 'SELECT bkperf.distribute_by_tenant()'),
    qr/ERROR:  55000: bkperf\.distribute_by_tenant\(\) must run on the Citus coordinator/,
    'distribute_by_tenant refused on a worker (55000)');
$coord->safe_psql('postgres', q{
    CREATE TABLE early (tenant text COLLATE "C", id int, PRIMARY KEY (tenant, id));
    SELECT create_distributed_table('early', 'tenant');});
like(fails($coord, q{SELECT bkperf.track_table('early', 'tenant')}),
    qr/ERROR:  55000: cannot track Citus table public\.early before bkperf is distributed/,
    'a Citus table cannot be tracked before distribute_by_tenant (55000)');

# Distribute (twice: idempotent).
my $dist = q{SET client_min_messages = warning;
    SELECT string_agg(table_name || ' ' || distribution || ' ' || changed, ', ' ORDER BY table_name)
      FROM bkperf.distribute_by_tenant()};
my $first = $coord->safe_psql('postgres', $dist);
like($first, qr/bkperf\.backup_transaction_logs distributed t/, 'the log is distributed');
like($first, qr/bkperf\.health_policy reference t/, 'the policy is a reference table');
like($first, qr/bkperf\.system_alerts reference t/, 'alerts are a reference table');
unlike($first, qr/performance_metrics/, 'performance_metrics stays on the coordinator');
my $second = $coord->safe_psql('postgres', $dist);
is($second =~ tr/t// > 0 && $second !~ / t(,|$)/ ? 1 : 0, 1, 'a second call changes nothing');
is($coord->safe_psql('postgres', q{SELECT count(DISTINCT colocationid) FROM pg_dist_partition
                                    WHERE partmethod = 'h' AND logicalrelid::text LIKE 'bkperf.%'}),
    '1', 'the per-tenant tables are co-located');

# A distributed application table, co-located with the log; others refused.
$coord->safe_psql('postgres', q{
    CREATE TABLE orders (tenant text COLLATE "C" NOT NULL, id int NOT NULL, qty int, note text,
                         PRIMARY KEY (tenant, id));
    SELECT create_distributed_table('orders', 'tenant', colocate_with => 'bkperf.backup_transaction_logs');
    SELECT bkperf.track_table('orders', 'tenant');
    CREATE TABLE loose (tenant text, id int PRIMARY KEY);});
like(fails($coord, q{SELECT bkperf.track_table('loose', 'tenant')}),
    qr/ERROR:  0A000: table public\.loose is not distributed by "tenant" co-located with the change log/,
    'a local table cannot be tracked on a distributed catalog (0A000)');
my $shard_triggers = $w1->safe_psql('postgres', q{SET citus.override_table_visibility = off;
    SELECT count(*) FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
     WHERE c.relname LIKE 'orders\_%' AND t.tgname LIKE 'bkperf_capture_%'});
ok($shard_triggers > 0, 'the capture triggers are on the shards');

# Writes for several tenants through the coordinator.
$coord->safe_psql('postgres', q{
    INSERT INTO orders SELECT t, i, i, 'n' || i FROM unnest(ARRAY['a', 'b', 'c', 'd']) t, generate_series(1, 10) i;
    UPDATE orders SET qty = qty + 100 WHERE id % 3 = 0;
    DELETE FROM orders WHERE id = 10;
    ALTER TABLE orders ALTER COLUMN note SET DEFAULT 'x';
    UPDATE orders SET note = 'after alter' WHERE id = 1;});
# DDL while a table is tracked: the shards keep their capture triggers, and
# other tables can still be distributed.
$coord->safe_psql('postgres', q{
    CREATE TABLE later (tenant text COLLATE "C", id int, PRIMARY KEY (tenant, id));
    SELECT create_distributed_table('later', 'tenant', colocate_with => 'bkperf.backup_transaction_logs');});
is($w1->safe_psql('postgres', q{SET citus.override_table_visibility = off;
    SELECT count(*) FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
     WHERE c.relname LIKE 'orders\_%' AND t.tgname LIKE 'bkperf_capture_%'}),
    $shard_triggers, 'ALTER TABLE kept the capture triggers of the shards');
is($coord->safe_psql('postgres', q{
    SELECT string_agg(tenant_id || ' ' || operation || ' ' || n, ', ' ORDER BY tenant_id, operation)
      FROM (SELECT tenant_id, operation, count(*) AS n FROM bkperf.backup_transaction_logs
             WHERE table_name = 'public.orders' GROUP BY 1, 2) x}),
    join(', ', map { "$_ DELETE 1, $_ INSERT 10, $_ UPDATE 4" } qw(a b c d)),
    'the coordinator sees every change, under the table name');
# Tracking it again finds its capture triggers complete (ENABLE ALWAYS on
# the coordinator's table): its log floor is kept.
my $floor = q{SELECT tracked_at FROM bkperf.tracked_tables WHERE table_name = 'public.orders'};
my $floor_before = $coord->safe_psql('postgres', $floor);
$coord->safe_psql('postgres', q{SELECT bkperf.track_table('orders', 'tenant')});
is($coord->safe_psql('postgres', $floor), $floor_before, 're-tracking a distributed table keeps its log floor');
# A column rename could not be mapped onto the workers' images: refused.
like(fails($coord, q{ALTER TABLE orders RENAME COLUMN note TO remark}),
    qr/ERROR:  0A000: cannot rename column "note" of tracked Citus table public\.orders/,
    'renaming a column of a tracked distributed table is refused (0A000)');
is($coord->safe_psql('postgres', q{SELECT count(*) FROM pg_attribute WHERE attrelid = 'orders'::regclass AND attname = 'note'}),
    '1', 'and the column keeps its name');
is($coord->safe_psql('postgres', q{
    SELECT count(*) = count(DISTINCT log_id) AND bool_and(table_id = (SELECT table_id FROM bkperf.tracked_tables))
      FROM bkperf.backup_transaction_logs}), 't', 'log ids unique cluster-wide, table_id logged');
# The latest image of each key is the row the table holds.
my $table_text = q{SELECT string_agg(tenant || ':' || id || ':' || qty || ':' || note, ',' ORDER BY tenant, id)
                     FROM orders};
is($coord->safe_psql('postgres', q{
    SELECT string_agg((new_data->>'tenant') || ':' || (new_data->>'id') || ':' || (new_data->>'qty') || ':'
                      || (new_data->>'note'), ',' ORDER BY tenant_id, (new_data->>'id')::int)
      FROM (SELECT DISTINCT ON (tenant_id, record_id) tenant_id, operation, new_data
              FROM bkperf.backup_transaction_logs ORDER BY tenant_id, record_id, log_id DESC) x
     WHERE operation <> 'DELETE'}),
    $coord->safe_psql('postgres', $table_text), 'the log replays to the table');
# Each tenant's log rows are in the log shard on the worker holding its rows.
for my $t (qw(a b c d))
{
    my ($shard, $port) = split /\|/, $coord->safe_psql('postgres', qq{
        SELECT s, n.nodeport FROM (SELECT get_shard_id_for_distribution_column('bkperf.backup_transaction_logs', '$t') s) x
          JOIN pg_dist_placement p ON p.shardid = x.s JOIN pg_dist_node n ON n.groupid = p.groupid});
    my ($opshard, $opport) = split /\|/, $coord->safe_psql('postgres', qq{
        SELECT s, n.nodeport FROM (SELECT get_shard_id_for_distribution_column('orders', '$t') s) x
          JOIN pg_dist_placement p ON p.shardid = x.s JOIN pg_dist_node n ON n.groupid = p.groupid});
    my ($w) = grep { $_->port == $port } ($w1, $w2);
    is($port, $opport, "tenant $t: log shard and table shard on one worker");
    is($w->safe_psql('postgres', qq{SET citus.override_table_visibility = off;
        SELECT count(*) FROM bkperf.backup_transaction_logs_$shard WHERE tenant_id = '$t'}),
        '15', "tenant $t: its 15 log rows are in the co-located log shard");
}

# Snapshots and rollbacks: refused inside a transaction block on the coordinator.
like(fails($coord, q{BEGIN; SELECT bkperf.create_snapshot('b'); COMMIT;}),
    qr/ERROR:  0A000: a snapshot cannot run on the Citus coordinator/,
    'a snapshot that Citus does not delegate is refused (0A000)');

# A transaction of tenant b in flight while the snapshot is taken: not in it.
my $inflight = $coord->background_psql('postgres');
$inflight->query_safe(q{BEGIN; UPDATE orders SET qty = -7 WHERE tenant = 'b' AND id = 2});
my $snap = $coord->safe_psql('postgres', q{SELECT bkperf.create_snapshot('b', 'before')});
like($coord->safe_psql('postgres', qq{SELECT snapshot FROM bkperf.backup_pitr_snapshots WHERE snapshot_id = $snap}),
    qr/^\d+:\d+:/, 'the snapshot was taken on the worker');
my $copy_session = $coord->background_psql('postgres');
$copy_session->query_safe('BEGIN ISOLATION LEVEL REPEATABLE READ');
my $copy = $copy_session->query_safe(
    q{SELECT string_agg(tenant || ':' || id || ':' || qty || ':' || note, ',' ORDER BY tenant, id) FROM orders WHERE tenant = 'b'});
$inflight->query_safe('COMMIT');
$inflight->quit;
$copy_session->query_safe('COMMIT');
$copy_session->quit;

$coord->safe_psql('postgres', q{
    UPDATE orders SET qty = 0, note = 'later' WHERE tenant IN ('a', 'b');
    DELETE FROM orders WHERE tenant = 'b' AND id IN (3, 4);
    INSERT INTO orders VALUES ('b', 50, 1, 'new'), ('c', 50, 1, 'new');});
my $others = q{SELECT string_agg(tenant || ':' || id || ':' || qty || ':' || note, ',' ORDER BY tenant, id)
                 FROM orders WHERE tenant <> 'b'};
my $others_before = $coord->safe_psql('postgres', $others);
is($coord->safe_psql('postgres', qq{
    SELECT status || ' ' || rows_deleted || ' ' || rows_updated || ' ' || rows_inserted
      FROM bkperf.rollback_to_snapshot('b', $snap)}),
    'completed 1 7 2', 'rollback of tenant b completed on its worker');
is($coord->safe_psql('postgres', q{SELECT string_agg(tenant || ':' || id || ':' || qty || ':' || note, ',' ORDER BY tenant, id)
                                     FROM orders WHERE tenant = 'b'}),
    $copy, 'tenant b is exactly what its snapshot saw (the in-flight change undone)');
is($coord->safe_psql('postgres', $others), $others_before, 'other tenants untouched');
like(fails($coord, qq{BEGIN; SELECT * FROM bkperf.rollback_to_snapshot('b', $snap); COMMIT;}),
    qr/ERROR:  0A000: a rollback cannot run on the Citus coordinator/,
    'a rollback that Citus does not delegate is refused (0A000)');

# Health and statistics: the same answers as one plain node with the same catalog.
my $jobs = q{
    INSERT INTO bkperf.backup_jobs (tenant_id, job_type, job_status, created_at, started_at, finished_at,
                                    backup_size_bytes, verify_status, verified_at)
    SELECT t, CASE WHEN i % 4 = 0 THEN 'full' ELSE 'incremental' END,
           CASE WHEN t = 'd' AND i = 1 THEN 'failed' ELSE 'completed' END,
           now() - i * interval '6 hours', now() - i * interval '6 hours',
           now() - i * interval '6 hours' + interval '10 minutes', 1000 * i,
           CASE WHEN t = 'd' AND i = 1 THEN 'unverified' ELSE 'verified' END,
           CASE WHEN t = 'd' AND i = 1 THEN NULL ELSE now() END
      FROM unnest(ARRAY['a', 'b', 'c', 'd']) t, generate_series(1, 12) i;
    INSERT INTO bkperf.backup_jobs (tenant_id, job_type, job_status, created_at)
    VALUES ('c', 'full', 'running', now() - interval '2 days');
    INSERT INTO bkperf.health_policy_tenant (tenant_id, min_redundancy) VALUES ('a', 5);};
$coord->safe_psql('postgres', $jobs);
# The plain node tracks a table too, so the change-log component applies on both.
$single->safe_psql('postgres', q{
    CREATE TABLE orders (tenant text COLLATE "C" NOT NULL, id int NOT NULL, PRIMARY KEY (tenant, id));
    SELECT bkperf.track_table('orders', 'tenant');});
$single->safe_psql('postgres', $jobs);
my $health = q{
    SELECT string_agg(t || ' ' || coalesce(h.score::text, 'null') || ' ' || h.band, ', ' ORDER BY t)
      FROM unnest(ARRAY['a', 'b', 'c', 'd', 'nobody']) t, bkperf.calculate_health_score(t) h};
my $expected_health = $single->safe_psql('postgres', $health);
like($expected_health, qr/nobody null unknown/, 'reference: unknown tenant');
is($coord->safe_psql('postgres', $health), $expected_health,
    'calculate_health_score on the coordinator as on one node (policy and override from reference tables)');
my $stats = q{SELECT s.successful || ' ' || s.failed || ' ' || s.running || ' ' || s.total_size_bytes
                FROM bkperf.get_backup_statistics('c') s};
is($coord->safe_psql('postgres', $stats), $single->safe_psql('postgres', $stats), 'get_backup_statistics');
like(fails($coord, q{SELECT * FROM bkperf.get_backup_statistics('nobody')}),
    qr/ERROR:  42704: tenant "nobody" is unknown to bkperf/, 'get_backup_statistics: unknown tenant (42704)');
is($coord->safe_psql('postgres', q{SELECT inserts || ' ' || updates || ' ' || deletes || ' ' || tables_touched || ' ' || snapshots
                                     FROM bkperf.calculate_pitr_stats('b', now() - interval '1 hour', now())}),
    '13 21 4 1 1', 'calculate_pitr_stats from the distributed log (with the rollback\'s own changes)');
my $stale = q{SELECT string_agg(tenant_id || ' ' || job_status, ',') FROM bkperf.stale_backup_jobs()};
is($coord->safe_psql('postgres', $stale), 'c running', 'stale_backup_jobs');
is($coord->safe_psql('postgres', q{SELECT bkperf.tenant_known('a') || ' ' || bkperf.tenant_known('zz')}),
    'true false', 'tenant_known');
is($coord->safe_psql('postgres', q{SELECT string_agg(view_name || ' ' || refreshed, ', ' ORDER BY view_name)
                                     FROM bkperf.refresh_backup_summaries(true)}),
    'bkperf.mv_backup_health_summary true, bkperf.mv_tenant_backup_summary true', 'refresh_backup_summaries (plain, unpopulated)');
is($coord->safe_psql('postgres', q{SELECT string_agg(view_name || ' ' || refreshed || ' ' || coalesce(note, ''), ', ' ORDER BY view_name)
                                     FROM bkperf.refresh_backup_summaries(true)}),
    'bkperf.mv_backup_health_summary true , bkperf.mv_tenant_backup_summary true ', 'refresh_backup_summaries (concurrently)');
$single->safe_psql('postgres', 'SELECT count(*) FROM bkperf.refresh_backup_summaries(false)');
my $report = q{SELECT string_agg(tenant_id || ' ' || score || ' ' || band || ' ' || total_jobs || ' ' || completed_size_bytes,
                                 ', ' ORDER BY tenant_id) FROM bkperf.health_report()};
is($coord->safe_psql('postgres', $report), $single->safe_psql('postgres', $report), 'health_report as on one node');
is($coord->safe_psql('postgres', q{SELECT string_agg(operation || ' ' || changes, ', ' ORDER BY operation)
                                     FROM bkperf.table_change_summary('orders')}),
    'DELETE 7, INSERT 44, UPDATE 42', 'table_change_summary');
is($coord->safe_psql('postgres', q{SELECT bkperf.change_log_floor() = (SELECT tracked_at FROM bkperf.tracked_tables)}),
    't', 'change_log_floor');
is($coord->safe_psql('postgres', q{SELECT string_agg(label || ' ' || rollbacks, ',') FROM bkperf.list_snapshots('b')}),
    'before 1', 'list_snapshots');

# An unlogged rollback runs on the worker too: exact, nothing logged, and a
# snapshot between its target and itself refused afterwards.
my $snap2 = $coord->safe_psql('postgres', q{SELECT bkperf.create_snapshot('b', 'after rollback')});
$coord->safe_psql('postgres', q{UPDATE orders SET qty = 11 WHERE tenant = 'b'; INSERT INTO orders VALUES ('b', 60, 1, 'x');});
my $snap3 = $coord->safe_psql('postgres', q{SELECT bkperf.create_snapshot('b', 'between')});
$coord->safe_psql('postgres', q{DELETE FROM orders WHERE tenant = 'b' AND id = 60;});
my $b_log = q{SELECT count(*) FROM bkperf.backup_transaction_logs WHERE tenant_id = 'b'};
my $b_logged = $coord->safe_psql('postgres', $b_log);
$others_before = $coord->safe_psql('postgres', $others);
is($coord->safe_psql('postgres', qq{
    SELECT status || ' ' || rows_deleted || ' ' || rows_updated || ' ' || rows_inserted
      FROM bkperf.rollback_to_snapshot_unlogged('b', $snap2)}),
    'completed 0 9 0', 'unlogged rollback of tenant b completed on its worker');
is($coord->safe_psql('postgres', q{SELECT string_agg(tenant || ':' || id || ':' || qty || ':' || note, ',' ORDER BY tenant, id)
                                     FROM orders WHERE tenant = 'b'}),
    $copy, 'tenant b is exactly what the snapshot after the first rollback saw');
is($coord->safe_psql('postgres', $b_log), $b_logged, 'the unlogged rollback wrote no log rows');
is($coord->safe_psql('postgres', $others), $others_before, 'other tenants untouched by the unlogged rollback');
like(fails($coord, qq{SELECT * FROM bkperf.rollback_to_snapshot('b', $snap3)}),
    qr/ERROR:  55000: rollback target lies between an unlogged rollback and its target/,
    'a snapshot between the unlogged rollback and its target is refused on the worker (55000)');


# Endpoint alerts: metrics inserted through the coordinator raise an alert.
$coord->safe_psql('postgres', q{
    INSERT INTO bkperf.performance_metrics (tenant_id, endpoint, response_time_ms, status_code)
    VALUES ('a', '/slow', 5000, 200), ('a', '/slow', 6000, 200), ('b', '/fast', 5, 200);});
is($coord->safe_psql('postgres', q{SELECT string_agg(severity || ' ' || tenant_id || ' ' || source || ' ' || occurrences, ',')
                                     FROM bkperf.system_alerts}),
    'warning a endpoint 2', 'endpoint alert recorded in the reference table');
is($w2->safe_psql('postgres', q{SELECT count(*) FROM bkperf.system_alerts}), '1', 'and visible on a worker');
is($coord->safe_psql('postgres', q{SELECT string_agg(endpoint || ' ' || requests, ',' ORDER BY endpoint) FROM bkperf.performance_summary()}),
    '/fast 1,/slow 2', 'performance_summary');

# DROP EXTENSION: the documented steps leave no Citus metadata or shards.
$coord->safe_psql('postgres', q{
    SET client_min_messages = warning;
    DROP TABLE orders, early, loose, later;
    ALTER TABLE bkperf.backup_transaction_logs DETACH PARTITION bkperf.backup_transaction_logs_default;
    ALTER TABLE bkperf.backup_pitr_snapshots ALTER COLUMN cluster_origin DROP DEFAULT;
    DROP EXTENSION bkperf;});
# The schema outlives the extension (CREATE EXTENSION made it) and Citus
# knows it as distributed: dropping it on the coordinator drops it on the
# workers, with the shards DROP EXTENSION left there.
$coord->safe_psql('postgres', q{SET client_min_messages = warning; DROP SCHEMA bkperf CASCADE;});
is($coord->safe_psql('postgres', q{SELECT count(*) FROM pg_dist_partition}), '0', 'no distributed table left');
for my $w ($w1, $w2)
{
    is($w->safe_psql('postgres', q{SET citus.override_table_visibility = off;
        SELECT count(*) FROM pg_class WHERE relname LIKE 'backup\_%\_1%'}), '0', 'no shard left on ' . $w->name);
    is($w->safe_psql('postgres', q{SELECT count(*) FROM pg_extension WHERE extname = 'bkperf'}), '0',
        'no bkperf left on ' . $w->name);
}


# bkperf can be created and distributed again in that database.
$coord->safe_psql('postgres', q{SET client_min_messages = warning; CREATE EXTENSION bkperf;});
like($coord->safe_psql('postgres', $dist), qr/bkperf\.backup_transaction_logs distributed t/,
    'after DROP EXTENSION and DROP SCHEMA, bkperf is created and distributed again');
$coord->safe_psql('postgres', q{
    CREATE TABLE again (tenant text COLLATE "C", id int, PRIMARY KEY (tenant, id));
    SELECT create_distributed_table('again', 'tenant', colocate_with => 'bkperf.backup_transaction_logs');
    SELECT bkperf.track_table('again', 'tenant');
    INSERT INTO again VALUES ('a', 1), ('b', 1);});
is($coord->safe_psql('postgres', q{SELECT string_agg(tenant_id || ' ' || operation, ',' ORDER BY tenant_id)
                                     FROM bkperf.backup_transaction_logs}),
    'a INSERT,b INSERT', 'and captures again');

$_->stop for (@nodes, $single);
done_testing();
