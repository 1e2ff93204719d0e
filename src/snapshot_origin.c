/*-------------------------------------------------------------------------
 * snapshot_origin.c
 *		Which cluster's transaction ids a snapshot and the change log hold.
 *
 * A snapshot (pg_snapshot) and the log's txid column only order the
 * transactions of one xid space.  pg_dump and a restore into another
 * cluster start a new one (transaction ids start over, below the stored
 * ones); a restore into another database of the same cluster, a physical
 * copy and pg_upgrade (which carries the xid counter) keep it.  The rule,
 * with the tables of sql/parts/05_dump_restore.sql:
 *
 *	- a snapshot records its cluster's system identifier (cluster_origin);
 *	  its xids are meaningful here iff that cluster is this one or in this
 *	  database's cluster_lineage (not dumped: the cluster CREATE EXTENSION
 *	  ran in and those pg_upgrade made from it);
 *	- cluster_history (dumped) says from when the log was written in which
 *	  cluster.  Log rows written in a cluster outside the lineage all
 *	  committed before this database was restored from them: a target at or
 *	  after that restore treats them as before it (the scan starts after
 *	  them); a target before it is refused, because which of them committed
 *	  before it is unknown here (their xids and commit timestamps belong to
 *	  the other cluster).  Without commit timestamps rollback_to_time
 *	  compares times only, which stays exact.
 *
 * The entry points run inside a rollback's SPI connection and raise the
 * refusals; rollback.c calls them where it resolves its target.
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"

#include "bkperf.h"

/*
 * Refuse clearly when the SQL objects are older than this library (1.0's,
 * before ALTER EXTENSION bkperf UPDATE): they have no cluster records.
 */
static void
so_require_catalog(void)
{
	bool		isnull;

	if (SPI_execute("SELECT pg_catalog.to_regclass('bkperf.cluster_history') IS NOT NULL",
					true, 1) != SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "could not look up bkperf.cluster_history");
	if (!DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull)))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("the bkperf extension in this database is older than its library"),
				 errdetail("Rollback needs the catalog of bkperf 1.1 or later."),
				 errhint("Run ALTER EXTENSION bkperf UPDATE.")));
}

/*
 * The end of the latest log stretch written in a foreign cluster that
 * reaches past scan_from (0 when none).
 */
static TimestampTz
so_foreign_until(TimestampTz scan_from)
{
	Oid			types[1] = {TIMESTAMPTZOID};
	Datum		values[1] = {TimestampTzGetDatum(scan_from)};
	bool		isnull;
	Datum		d;

	if (SPI_execute_with_args("SELECT bkperf.foreign_log_until($1)",
							  1, types, values, NULL, true, 1) != SPI_OK_SELECT
		|| SPI_processed != 1)
		elog(ERROR, "could not read bkperf.cluster_history");
	d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	return isnull ? 0 : DatumGetTimestampTz(d);
}

/*
 * A target at or after every foreign log stretch in the scan starts the
 * scan after them; one before is refused.  what names the target.
 */
static void
so_check_scan(const char *what, TimestampTz target, TimestampTz *scan_from)
{
	TimestampTz until = so_foreign_until(*scan_from);

	if (until == 0)
		return;
	if (target >= until)
	{
		*scan_from = Max(*scan_from, until);
		return;
	}
	ereport(ERROR,
			(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
			 errmsg("%s is before this database was restored from another cluster", what),
			 errdetail("The change log before %s was written in another database cluster; its transaction ids and commit timestamps mean nothing here, so which of those changes came before the target is unknown.",
					   TIMESTAMP_IS_NOBEGIN(until) || TIMESTAMP_IS_NOEND(until)
					   ? "now" : timestamptz_to_str(until)),
			 errhint("Roll back to a snapshot taken after the restore, or to a time after %s.",
					 timestamptz_to_str(until))));
}

/*
 * Refuse a snapshot whose transaction ids do not order this cluster's
 * transactions, and start the log scan after log rows of another cluster
 * that all precede it.  Needs an SPI connection.
 */
void
bkperf_snapshot_origin_check(const char *tenant, int64 snapshot_id,
							 TimestampTz created_at, TimestampTz *scan_from)
{
	Oid			types[2] = {INT8OID, TEXTOID};
	Datum		values[2] = {Int64GetDatum(snapshot_id), CStringGetTextDatum(tenant)};
	HeapTuple	tup;
	TupleDesc	desc;
	bool		isnull;
	bool		comparable;

	so_require_catalog();
	if (SPI_execute_with_args("SELECT s.cluster_origin, bkperf.xids_comparable(s.cluster_origin),"
							  "       bkperf.cluster_identity()"
							  "  FROM bkperf.backup_pitr_snapshots s"
							  " WHERE s.snapshot_id OPERATOR(pg_catalog.=) $1"
							  "   AND s.tenant_id OPERATOR(pg_catalog.=) $2",
							  2, types, values, NULL, true, 1) != SPI_OK_SELECT
		|| SPI_processed != 1)
		elog(ERROR, "snapshot %lld vanished", (long long) snapshot_id);
	tup = SPI_tuptable->vals[0];
	desc = SPI_tuptable->tupdesc;
	(void) SPI_getbinval(tup, desc, 1, &isnull);
	if (isnull)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("snapshot %lld has no recorded cluster", (long long) snapshot_id),
				 errdetail("Its cluster_origin is NULL, so whether its transaction ids mean anything in this cluster is unknown."),
				 errhint("Take a new snapshot with bkperf.create_snapshot(), or roll back to a time.")));
	comparable = DatumGetBool(SPI_getbinval(tup, desc, 2, &isnull));
	if (!comparable)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("snapshot %lld was taken in another database cluster", (long long) snapshot_id),
				 errdetail("The snapshot was taken in the cluster with system identifier %s; this is cluster %s, into which the database was restored from a dump, and its transaction ids started over.",
						   SPI_getvalue(tup, desc, 1), SPI_getvalue(tup, desc, 3)),
				 errhint("Roll back to a snapshot taken after the restore, or to a time after it.")));
	so_check_scan("snapshot", created_at, scan_from);
}

/*
 * For rollback_to_time: with commit timestamps (xid_based), refuse a target
 * before a restore from another cluster whose log rows the scan reaches,
 * and start the scan after them otherwise.  Needs an SPI connection.
 */
void
bkperf_time_origin_check(TimestampTz target, TimestampTz *scan_from, bool xid_based)
{
	so_require_catalog();
	if (!xid_based)
		return;
	so_check_scan("rollback target", target, scan_from);
}
