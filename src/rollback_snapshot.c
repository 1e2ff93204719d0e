/*-------------------------------------------------------------------------
 * rollback_snapshot.c
 *		Per-tenant restore points: bkperf.create_snapshot() and what the
 *		rollback needs to know about snapshots and the log's floor.
 *
 * create_snapshot records pg_current_snapshot() with the start time of the
 * oldest transaction then running (log_scan_from): change-log rows carry
 * their transaction's START time, so a transaction that began before the
 * snapshot but commits after it has changed_at < created_at, and the log
 * scan of a rollback must reach back that far.
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "utils/backend_status.h"
#include "utils/builtins.h"
#include "utils/fmgrprotos.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "bkperf.h"
#include "compat.h"

PG_FUNCTION_INFO_V1(bkperf_create_snapshot);

/*
 * Text argument that must not be NULL or empty.
 */
char *
bkperf_rb_required_text(FunctionCallInfo fcinfo, int argno, const char *what)
{
	char	   *s;

	if (PG_ARGISNULL(argno))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("%s must not be NULL", what)));
	s = text_to_cstring(PG_GETARG_TEXT_PP(argno));
	if (s[0] == '\0')
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s must not be empty", what)));
	return s;
}

/*
 * Refuse when no table is tracked: no change log, nothing to restore.
 */
void
bkperf_rb_require_tracked(void)
{
	bkperf_spi_exec("SELECT pg_catalog.count(*) FROM bkperf.tracked_tables",
			0, NULL, NULL, NULL, SPI_OK_SELECT);
	if (bkperf_spi_int64(1) == 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("no tables are tracked"),
				 errdetail("Snapshots and rollbacks work on the change log of tracked tables."),
				 errhint("Track the tenant's tables with bkperf.track_table() first.")));
}

/*
 * The SQL predicate "log row l (its txid and changed_at) is after target",
 * by one of the rollback's three rules: a change is after a snapshot iff
 * the snapshot does not see its transaction; after a time by its
 * transaction's commit time (by_commit_ts; a missing one falls back to
 * changed_at) or else by its start time (changed_at).  With own_after, the
 * rows of the transaction running the predicate count as after (it has no
 * commit time yet); a transaction without an id yet has none, and the
 * predicate is then false, not NULL, for the others (NOT of it is used).
 * target is an SQL expression of type pg_snapshot or timestamptz.
 */
char *
bkperf_rb_after_sql(bool by_snapshot, bool by_commit_ts, bool own_after,
					const char *target)
{
	if (by_snapshot)
		return psprintf("NOT pg_catalog.pg_visible_in_snapshot(l.txid, %s)", target);
	if (!by_commit_ts)
		return psprintf("l.changed_at OPERATOR(pg_catalog.>) %s", target);
	return psprintf("(%sCOALESCE(pg_catalog.pg_xact_commit_timestamp("
					"      ((l.txid::pg_catalog.text::pg_catalog.numeric OPERATOR(pg_catalog.%%) 4294967296)"
					"       ::pg_catalog.text)::pg_catalog.xid), l.changed_at)"
					"    OPERATOR(pg_catalog.>) %s)",
					own_after ? "COALESCE(l.txid OPERATOR(pg_catalog.=) pg_catalog.pg_current_xact_id_if_assigned(),"
					"          false) OR " : "",
					target);
}

/*
 * The change log's lower bound of completeness (bkperf.change_log_floor()),
 * or 0 when nothing is tracked.
 */
TimestampTz
bkperf_rb_log_floor(void)
{
	bool		isnull;
	Datum		d;

	bkperf_spi_exec("SELECT bkperf.change_log_floor()", 0, NULL, NULL, NULL,
					SPI_OK_SELECT);
	if (SPI_processed == 0)
		return 0;
	d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	return isnull ? 0 : DatumGetTimestampTz(d);
}

/*
 * Start time of the oldest transaction of any backend, bounded above by the
 * current time.  Read from the backend status array in C so that it needs
 * no privilege (pg_stat_activity hides other users' xact_start).  Returns 0
 * when transaction start times are not tracked (track_activities off) or a
 * prepared transaction exists (its start is unknown): the caller then scans
 * from the log floor, which is exact but slower.
 */
static TimestampTz
rs_oldest_xact_start(void)
{
	TimestampTz oldest = GetCurrentTimestamp();
	int			n;

	if (!pgstat_track_activities)
		return 0;
	bkperf_spi_exec("SELECT pg_catalog.count(*) FROM pg_catalog.pg_prepared_xacts",
			0, NULL, NULL, NULL, SPI_OK_SELECT);
	if (bkperf_spi_int64(1) > 0)
		return 0;

	pgstat_clear_backend_activity_snapshot();
	n = bkperf_local_beentry_count();
	for (int i = 1; i <= n; i++)
	{
		LocalPgBackendStatus *l = bkperf_local_beentry(i);

		/* Only client backends and background workers write tables. */
		if (l == NULL || l->backendStatus.st_xact_start_timestamp == 0 ||
			(l->backendStatus.st_backendType != B_BACKEND &&
			 l->backendStatus.st_backendType != B_BG_WORKER))
			continue;
		oldest = Min(oldest, l->backendStatus.st_xact_start_timestamp);
	}
	pgstat_clear_backend_activity_snapshot();
	return oldest;
}

/*
 * The MVCC snapshot to record.  In READ COMMITTED a fresh one, taken after
 * the transaction start times were read: every transaction it does not see
 * is then either running at that read or started after it.  In REPEATABLE
 * READ and SERIALIZABLE the transaction's own snapshot, so that what the
 * caller reads in the same transaction is what a rollback restores.
 */
static Datum
rs_current_snapshot(void)
{
	Datum		snap;

	if (IsolationUsesXactSnapshot())
		return DirectFunctionCall1(pg_current_snapshot, (Datum) 0);
	PushActiveSnapshot(GetLatestSnapshot());
	snap = DirectFunctionCall1(pg_current_snapshot, (Datum) 0);
	PopActiveSnapshot();
	return snap;
}

/*
 * Refuse a snapshot type the catalog does not know, with the list.
 */
static void
rs_check_type(const char *type)
{
	static const char *const types[] = {"manual", "scheduled", "pre_rollback",
	"pre_migration", "automatic"};

	bkperf_require_one_of(type, types, lengthof(types), "snapshot type");
}

/*
 * bkperf.create_snapshot(tenant, label, snapshot_type): record a restore
 * point for the tenant and return its id.
 */
Datum
bkperf_create_snapshot(PG_FUNCTION_ARGS)
{
	char	   *tenant = bkperf_rb_required_text(fcinfo, 0, "tenant");
	char	   *type = bkperf_rb_required_text(fcinfo, 2, "snapshot_type");
	TimestampTz scan_from;
	Oid			types[5] = {TEXTOID, TEXTOID, TEXTOID, PG_SNAPSHOTOID, TIMESTAMPTZOID};
	Datum		values[5];
	char		nulls[5] = {' ', ' ', ' ', ' ', ' '};
	int64		id;

	rs_check_type(type);
	SPI_connect();
	bkperf_citus_refuse_on_coordinator("a snapshot");
	bkperf_rb_require_tracked();
	scan_from = rs_oldest_xact_start();
	values[3] = rs_current_snapshot();
	if (scan_from == 0)
		scan_from = bkperf_rb_log_floor();
	values[0] = CStringGetTextDatum(tenant);
	values[1] = CStringGetTextDatum(type);
	values[2] = PG_ARGISNULL(1) ? (Datum) 0 : PG_GETARG_DATUM(1);
	nulls[2] = PG_ARGISNULL(1) ? 'n' : ' ';
	values[4] = TimestampTzGetDatum(scan_from);
	bkperf_spi_exec("INSERT INTO bkperf.backup_pitr_snapshots"
			" (tenant_id, snapshot_type, label, snapshot, txid, wal_lsn, log_scan_from)"
			" VALUES ($1, $2, $3, $4, pg_catalog.pg_current_xact_id_if_assigned(),"
			"         pg_catalog.pg_current_wal_lsn(), $5)"
			" RETURNING snapshot_id",
			5, types, values, nulls, SPI_OK_INSERT_RETURNING);
	id = bkperf_spi_int64(1);
	SPI_finish();
	PG_RETURN_INT64(id);
}


/*
 * Look up snapshot id of tenant: its pg_snapshot (in the caller's context),
 * creation time and log_scan_from (0 when NULL).  Refuses unknown snapshots
 * and those of another tenant.
 */
void
bkperf_rb_snapshot_lookup(int64 id, const char *tenant, Datum *snapshot,
						  TimestampTz *created, TimestampTz *scan_from)
{
	Oid			types[1] = {INT8OID};
	Datum		values[1] = {Int64GetDatum(id)};
	HeapTuple	tup;
	TupleDesc	desc;
	bool		isnull;

	bkperf_spi_exec("SELECT tenant_id, snapshot, created_at, log_scan_from"
					"  FROM bkperf.backup_pitr_snapshots WHERE snapshot_id = $1",
					1, types, values, NULL, SPI_OK_SELECT);
	if (SPI_processed == 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("snapshot does not exist"),
				 errdetail("No snapshot has id %lld.", (long long) id)));
	tup = SPI_tuptable->vals[0];
	desc = SPI_tuptable->tupdesc;
	if (strcmp(SPI_getvalue(tup, desc, 1), tenant) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("snapshot belongs to another tenant"),
				 errdetail("Snapshot %lld is not a snapshot of tenant \"%s\"; a tenant can only be rolled back to its own snapshots.",
						   (long long) id, tenant)));
	*snapshot = SPI_datumTransfer(SPI_getbinval(tup, desc, 2, &isnull), false, -1);
	*created = DatumGetTimestampTz(SPI_getbinval(tup, desc, 3, &isnull));
	*scan_from = DatumGetTimestampTz(SPI_getbinval(tup, desc, 4, &isnull));
	if (isnull)
		*scan_from = 0;
}
