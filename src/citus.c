/*-------------------------------------------------------------------------
 * citus.c
 *		Everything Citus-specific in bkperf's C code.
 *
 * On a Citus cluster distributed by bkperf.distribute_by_tenant(), a
 * tracked distributed table's capture triggers fire on its shards, on the
 * workers.  The change log is distributed by tenant_id and co-located with
 * the tracked table (track_table checks that), so the log shard with the
 * same hash range is on the same worker: capture writes there, in the same
 * transaction, under the logical table's name.  This file finds that shard
 * from Citus's metadata (pg_dist_shard, pg_dist_partition, synced to every
 * node); it is read with plain SPI queries on those catalog tables and
 * never needs Citus's headers or library.  Without the citus extension
 * every function here returns "not a shard" after one catalog look-up.
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "commands/extension.h"
#include "executor/spi.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"

#include "bkperf.h"

/*
 * The shard id in a Citus shard's relation name ("orders_102045"), or 0
 * when the name does not end in "_<digits>".
 */
static int64
ct_shard_id_of_name(const char *relname)
{
	const char *us = strrchr(relname, '_');
	int64		id = 0;

	if (us == NULL || us[1] == '\0')
		return 0;
	for (const char *p = us + 1; *p; p++)
	{
		if (*p < '0' || *p > '9' || id > (PG_INT64_MAX - 9) / 10)
			return 0;
		id = id * 10 + (*p - '0');
	}
	return id;
}

/*
 * Whether the change log is a Citus table (distribute_by_tenant() ran).
 * Must be called inside SPI_connect().
 */
static bool
ct_log_is_distributed(Oid log)
{
	Oid			types[1] = {OIDOID};
	Datum		values[1] = {ObjectIdGetDatum(log)};

	bkperf_spi_exec("SELECT 1 FROM pg_catalog.pg_dist_partition p"
					" WHERE p.logicalrelid OPERATOR(pg_catalog.=) $1",
					1, types, values, NULL, SPI_OK_SELECT);
	return SPI_processed > 0;
}

/*
 * Raise the error of a tracked Citus table whose changes cannot be logged
 * beside it.
 */
static void
ct_refuse(Oid relid, const char *why)
{
	ereport(ERROR,
			(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
			 errmsg("cannot capture changes of table \"%s\" on this Citus node",
					get_rel_name(relid)),
			 errdetail("%s", why),
			 errhint("Distribute the tracked table by its tenant column (text COLLATE \"C\") with colocate_with => 'bkperf.backup_transaction_logs', and track it on the coordinator.")));
}

/*
 * Look the shard relid up in Citus's metadata.  Returns the log shard
 * co-located with it, and sets *logical to the distributed table the shard
 * belongs to.  Must be called inside SPI_connect().
 */
static Oid
ct_colocated_log_shard(Oid relid, int64 shardid, Oid log, Oid *logical)
{
	Oid			types[2] = {INT8OID, OIDOID};
	Datum		values[2] = {Int64GetDatum(shardid), ObjectIdGetDatum(log)};
	bool		isnull;
	bool		colocated;
	int64		logshard;
	char	   *name;
	Oid			shard;

	/* Result: logical table, co-located log shard id, same colocation group. */
	bkperf_spi_exec("SELECT s.logicalrelid::pg_catalog.oid, l.shardid,"
					"       sp.colocationid OPERATOR(pg_catalog.=) lp.colocationid"
					"  FROM pg_catalog.pg_dist_shard s"
					"  JOIN pg_catalog.pg_dist_partition sp"
					"    ON sp.logicalrelid OPERATOR(pg_catalog.=) s.logicalrelid"
					"  JOIN pg_catalog.pg_dist_shard l"
					"    ON l.logicalrelid OPERATOR(pg_catalog.=) $2"
					"   AND l.shardminvalue OPERATOR(pg_catalog.=) s.shardminvalue"
					"  JOIN pg_catalog.pg_dist_partition lp"
					"    ON lp.logicalrelid OPERATOR(pg_catalog.=) l.logicalrelid"
					" WHERE s.shardid OPERATOR(pg_catalog.=) $1",
					2, types, values, NULL, SPI_OK_SELECT);
	if (SPI_processed != 1)
		return InvalidOid;
	*logical = DatumGetObjectId(SPI_getbinval(SPI_tuptable->vals[0],
											  SPI_tuptable->tupdesc, 1, &isnull));
	if (get_rel_namespace(*logical) != get_rel_namespace(relid))
		return InvalidOid;
	logshard = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[0],
										   SPI_tuptable->tupdesc, 2, &isnull));
	colocated = DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0],
										   SPI_tuptable->tupdesc, 3, &isnull));
	if (!colocated)
		ct_refuse(relid, "The table is not co-located with bkperf.backup_transaction_logs, so the log shard of its tenants may be on another node.");
	name = psprintf("%s_" INT64_FORMAT, get_rel_name(log), logshard);
	shard = get_relname_relid(name, get_rel_namespace(log));
	if (!OidIsValid(shard))
		ct_refuse(relid, "The co-located shard of bkperf.backup_transaction_logs is not on this node.");
	return shard;
}

/*
 * Where the changes of table relid (the tracked table or partition root a
 * capture trigger logs under) go on this node.  Returns InvalidOid when
 * they go to bkperf.backup_transaction_logs itself (no Citus, or a table
 * that is not a shard while the log is not distributed).  For a shard of a
 * distributed table it returns the co-located log shard, and sets
 * *logical to the distributed table (whose name is logged).  A table that
 * is neither, while the log is distributed, is refused: its rows would go
 * to a table nobody reads.
 */
Oid
bkperf_citus_log_target(Oid relid, Oid *logical)
{
	Oid			log;
	Oid			shard = InvalidOid;
	int64		shardid;
	bool		distributed;

	*logical = relid;
	if (!OidIsValid(get_extension_oid("citus", true)))
		return InvalidOid;
	log = bkperf_relid("backup_transaction_logs");
	SPI_connect();
	distributed = ct_log_is_distributed(log);
	shardid = ct_shard_id_of_name(get_rel_name(relid));
	if (distributed && shardid > 0)
		shard = ct_colocated_log_shard(relid, shardid, log, logical);
	SPI_finish();
	if (distributed && !OidIsValid(shard))
		ct_refuse(relid, "The change log is distributed by tenant, and this table is not a shard co-located with it.");
	return shard;
}

/*
 * This node's Citus group (0: the coordinator), or -1 without Citus.
 * Must be called inside SPI_connect().
 */
static int
ct_local_group(void)
{
	bool		isnull;

	if (!OidIsValid(get_extension_oid("citus", true)))
		return -1;
	bkperf_spi_exec("SELECT groupid FROM pg_catalog.pg_dist_local_group",
					0, NULL, NULL, NULL, SPI_OK_SELECT);
	if (SPI_processed != 1)
		return -1;
	return DatumGetInt32(SPI_getbinval(SPI_tuptable->vals[0],
									   SPI_tuptable->tupdesc, 1, &isnull));
}

/*
 * Whether this is a Citus worker: tracked_tables.relid then holds the
 * coordinator's OIDs, and tables are found by their names instead.  Must be
 * called inside SPI_connect().
 */
bool
bkperf_citus_on_worker(void)
{
	return ct_local_group() > 0;
}

/*
 * Refuse a snapshot or rollback run on the coordinator of a distributed
 * catalog: its transaction ids and MVCC snapshot are not those of the
 * worker that holds the tenant's rows and log, so visibility cannot be
 * decided there.  bkperf.distribute_by_tenant() makes these functions
 * distributed by tenant, so that Citus runs a call on the tenant's worker.
 * Must be called inside SPI_connect().
 */
void
bkperf_citus_refuse_on_coordinator(const char *what)
{
	if (ct_local_group() != 0 ||
		!ct_log_is_distributed(bkperf_relid("backup_transaction_logs")))
		return;
	ereport(ERROR,
			(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
			 errmsg("%s cannot run on the Citus coordinator", what),
			 errdetail("The tenant's rows and change log are on a worker, whose transaction ids and snapshots differ from the coordinator's."),
			 errhint("Call it as a statement of its own (not inside BEGIN ... COMMIT or another query), so that Citus runs it on the tenant's worker.")));
}
