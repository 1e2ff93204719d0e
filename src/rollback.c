/*-------------------------------------------------------------------------
 * rollback.c
 *		Per-tenant restore points and exact point-in-time rollback.
 *
 * create_snapshot records pg_current_snapshot() with the start time of the
 * oldest transaction then running (log_scan_from): change-log rows carry
 * their transaction's START time, so a transaction that began before the
 * snapshot but commits after it has changed_at < created_at, and the log
 * scan of a rollback must reach back that far.
 *
 * A rollback (rollback_to_snapshot, rollback_to_time) runs in four steps:
 *	1. lock: a transaction advisory lock per tenant (two rollbacks of one
 *	   tenant never interleave), then every tracked table in SHARE ROW
 *	   EXCLUSIVE mode, which waits for the writers in flight and keeps new
 *	   ones out until commit, so the plan sees every change it must undo
 *	   (dry runs skip the table locks);
 *	2. plan: the net change per key in one scan of the tenant's log, held in
 *	   backend memory and tuplestores (rollback_plan.c): the earliest change
 *	   after the target gives the row's image at the target (INSERT: absent;
 *	   UPDATE, DELETE: old_data);
 *	3. order: the foreign-key order of the changed tables (fkorder.c),
 *	   stored in backup_fk_constraints_cache and read back from there;
 *	4. apply, in an internal subtransaction: per table one INSERT ... ON
 *	   CONFLICT DO UPDATE of the target images, parents first, then one
 *	   DELETE of the keys absent at the target, children first.  Upserting
 *	   first lets a child row go back to its old parent before the new
 *	   parent is deleted.  A dry run rolls the subtransaction back; a failure
 *	   rolls it back too and is recorded in the history with its error.
 *
 * Every statement goes through the capture triggers, so a rollback is
 * itself logged and can be rolled back.
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/commit_ts.h"
#include "access/xact.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "storage/lmgr.h"
#include "utils/array.h"
#include "utils/backend_status.h"
#include "utils/builtins.h"
#include "utils/fmgrprotos.h"
#include "utils/json.h"
#include "utils/memutils.h"
#include "utils/resowner.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"

#include "bkperf.h"

PG_FUNCTION_INFO_V1(bkperf_create_snapshot);
PG_FUNCTION_INFO_V1(bkperf_rollback_to_snapshot);
PG_FUNCTION_INFO_V1(bkperf_rollback_to_time);

/*
 * Slack subtracted from log_scan_from when scanning: a backend stamps its
 * transaction start a moment before it publishes it, so a snapshot could
 * miss a start stamped just before it looked.
 */
#define RB_SCAN_MARGIN_USEC		(1 * USECS_PER_SEC)

/* One tracked table as the rollback sees it. */
typedef struct RbTable
{
	Oid			relid;
	char	   *log_name;		/* tracked_tables.table_name, as logged */
	char	   *qname;			/* quoted schema.table */
	char	   *tenant_col;		/* quoted */
	char	   *tenant_type;	/* format_type of the tenant column */
	char	   *key_list;		/* quoted key columns, comma separated */
	char	   *key_join;		/* t.k = k.k AND ... */
	char	   *cols;			/* insertable columns */
	char	   *rcols;			/* the same, prefixed r. */
	char	   *sets;			/* non-key col = EXCLUDED.col, or NULL */
	int64		planned_present;	/* net keys present at the target */
	int64		planned_absent; /* net keys absent at the target */
	int64		deleted;
	int64		updated;
	int64		inserted;
	int			level;
	int			cycle_group;
} RbTable;

/* What to roll back to and how. */
typedef struct RbTarget
{
	char	   *tenant;
	int64		snapshot_id;	/* 0 for rollback_to_time */
	Datum		snapshot;		/* pg_snapshot, when snapshot_id != 0 */
	TimestampTz target_time;
	TimestampTz scan_from;
	bool		by_commit_ts;
	bool		dry_run;
} RbTarget;

/* One rollback in progress. */
typedef struct RbRun
{
	RbTarget   *target;
	int64		rollback_id;
	int			ntables;
	RbTable    *tables;
	BkperfFkOrder *order;
	BkperfRbPlan *plan;			/* net change per key (rollback_plan.c) */
	List	   *deferred;		/* qualified names of deferred FKs */
	List	   *init_deferred;	/* those of them INITIALLY DEFERRED */
	TimestampTz started;
	char	   *error;
	char	   *sqlstate;
} RbRun;

/*
 * Run one SPI statement with parameters and check its result code.
 */
static void
rb_exec(const char *sql, int nargs, Oid *types, Datum *values,
		const char *nulls, bool read_only, int expect)
{
	int			ret = SPI_execute_with_args(sql, nargs, types, values, nulls,
											read_only, 0);

	if (ret != expect)
		elog(ERROR, "SPI statement failed (%s): %s",
			 SPI_result_code_string(ret), sql);
}

/*
 * Column col of the first result row as int64 (0 when NULL).
 */
static int64
rb_int64_result(int col)
{
	bool		isnull;
	Datum		d;

	if (SPI_processed == 0)
		return 0;
	d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, col, &isnull);
	return isnull ? 0 : DatumGetInt64(d);
}

/*
 * Text argument that must not be NULL or empty.
 */
static char *
rb_required_text(FunctionCallInfo fcinfo, int argno, const char *what)
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
static void
rb_require_tracked(void)
{
	rb_exec("SELECT pg_catalog.count(*) FROM bkperf.tracked_tables",
			0, NULL, NULL, NULL, false, SPI_OK_SELECT);
	if (rb_int64_result(1) == 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("no tables are tracked"),
				 errdetail("Snapshots and rollbacks work on the change log of tracked tables."),
				 errhint("Track the tenant's tables with bkperf.track_table() first.")));
}

/*
 * OIDs of every tracked table, in OID order (the table lock order).
 */
Oid *
bkperf_tracked_relids(int *ntables)
{
	Oid		   *relids;

	rb_exec("SELECT relid::pg_catalog.oid FROM bkperf.tracked_tables ORDER BY 1",
			0, NULL, NULL, NULL, false, SPI_OK_SELECT);
	relids = palloc(sizeof(Oid) * Max(SPI_processed, 1));
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		bool		isnull;

		relids[i] = DatumGetObjectId(SPI_getbinval(SPI_tuptable->vals[i],
												   SPI_tuptable->tupdesc, 1, &isnull));
	}
	*ntables = (int) SPI_processed;
	return relids;
}

/*
 * The change log's lower bound of completeness (bkperf.change_log_floor()),
 * or 0 when nothing is tracked.
 */
static TimestampTz
rb_log_floor(void)
{
	bool		isnull;
	Datum		d;

	rb_exec("SELECT bkperf.change_log_floor()", 0, NULL, NULL, NULL, false,
			SPI_OK_SELECT);
	if (SPI_processed == 0)
		return 0;
	d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	return isnull ? 0 : DatumGetTimestampTz(d);
}

/* ---------------------------------------------------------------------
 * create_snapshot
 * ---------------------------------------------------------------------
 */

/*
 * Start time of the oldest transaction of any backend, bounded above by the
 * current time.  Read from the backend status array in C so that it needs
 * no privilege (pg_stat_activity hides other users' xact_start).  Returns 0
 * when transaction start times are not tracked (track_activities off) or a
 * prepared transaction exists (its start is unknown): the caller then scans
 * from the log floor, which is exact but slower.
 */
static TimestampTz
cs_oldest_xact_start(void)
{
	TimestampTz oldest = GetCurrentTimestamp();
	int			n;

	if (!pgstat_track_activities)
		return 0;
	rb_exec("SELECT pg_catalog.count(*) FROM pg_catalog.pg_prepared_xacts",
			0, NULL, NULL, NULL, false, SPI_OK_SELECT);
	if (rb_int64_result(1) > 0)
		return 0;

	pgstat_clear_backend_activity_snapshot();
	n = pgstat_fetch_stat_numbackends();
	for (int i = 1; i <= n; i++)
	{
		LocalPgBackendStatus *l = pgstat_fetch_stat_local_beentry(i);

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
cs_current_snapshot(void)
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
cs_check_type(const char *type)
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
	char	   *tenant = rb_required_text(fcinfo, 0, "tenant");
	char	   *type = rb_required_text(fcinfo, 2, "snapshot_type");
	TimestampTz scan_from;
	Oid			types[5] = {TEXTOID, TEXTOID, TEXTOID, PG_SNAPSHOTOID, TIMESTAMPTZOID};
	Datum		values[5];
	char		nulls[5] = {' ', ' ', ' ', ' ', ' '};
	int64		id;

	cs_check_type(type);
	SPI_connect();
	rb_require_tracked();
	scan_from = cs_oldest_xact_start();
	values[3] = cs_current_snapshot();
	if (scan_from == 0)
		scan_from = rb_log_floor();
	values[0] = CStringGetTextDatum(tenant);
	values[1] = CStringGetTextDatum(type);
	values[2] = PG_ARGISNULL(1) ? (Datum) 0 : PG_GETARG_DATUM(1);
	nulls[2] = PG_ARGISNULL(1) ? 'n' : ' ';
	values[4] = TimestampTzGetDatum(scan_from);
	rb_exec("INSERT INTO bkperf.backup_pitr_snapshots"
			" (tenant_id, snapshot_type, label, snapshot, txid, wal_lsn, log_scan_from)"
			" VALUES ($1, $2, $3, $4, pg_catalog.pg_current_xact_id_if_assigned(),"
			"         pg_catalog.pg_current_wal_lsn(), $5)"
			" RETURNING snapshot_id",
			5, types, values, nulls, false, SPI_OK_INSERT_RETURNING);
	id = rb_int64_result(1);
	SPI_finish();
	PG_RETURN_INT64(id);
}

/* ---------------------------------------------------------------------
 * Target resolution and refusals
 * ---------------------------------------------------------------------
 */

/*
 * Refuse a target the change log cannot restore exactly: one before the log
 * was complete (a table tracked later, or partitions pruned), or whose log
 * scan would need rows pruned away.
 */
static void
rb_check_floor(TimestampTz target, TimestampTz scan_from)
{
	TimestampTz floor = rb_log_floor();
	TimestampTz pruned = 0;
	bool		isnull;
	Datum		d;

	rb_exec("SELECT pruned_before FROM bkperf.log_retention_state",
			0, NULL, NULL, NULL, false, SPI_OK_SELECT);
	if (SPI_processed > 0)
	{
		d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
		pruned = isnull ? 0 : DatumGetTimestampTz(d);
	}
	if ((floor != 0 && target < floor) || (pruned != 0 && scan_from < pruned))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("rollback target is older than the change log"),
				 errdetail("The change log is complete from %s; this target needs changes from %s.",
						   timestamptz_to_str(Max(floor, pruned)),
						   timestamptz_to_str(Min(target, scan_from))),
				 errhint("Choose a later snapshot or time; see bkperf.change_log_floor().")));
}

/*
 * Look up snapshot id for the tenant; refuse unknown ones and those of
 * another tenant.
 */
static void
rb_resolve_snapshot(RbTarget *t)
{
	Oid			types[1] = {INT8OID};
	Datum		values[1] = {Int64GetDatum(t->snapshot_id)};
	HeapTuple	tup;
	TupleDesc	desc;
	bool		isnull;
	char	   *owner;

	rb_exec("SELECT tenant_id, snapshot, created_at, log_scan_from"
			"  FROM bkperf.backup_pitr_snapshots WHERE snapshot_id = $1",
			1, types, values, NULL, false, SPI_OK_SELECT);
	if (SPI_processed == 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("snapshot does not exist"),
				 errdetail("No snapshot has id %lld.", (long long) t->snapshot_id)));
	tup = SPI_tuptable->vals[0];
	desc = SPI_tuptable->tupdesc;
	owner = SPI_getvalue(tup, desc, 1);
	if (strcmp(owner, t->tenant) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("snapshot belongs to another tenant"),
				 errdetail("Snapshot %lld is not a snapshot of tenant \"%s\"; a tenant can only be rolled back to its own snapshots.",
						   (long long) t->snapshot_id, t->tenant)));
	t->snapshot = SPI_datumTransfer(SPI_getbinval(tup, desc, 2, &isnull), false, -1);
	t->target_time = DatumGetTimestampTz(SPI_getbinval(tup, desc, 3, &isnull));
	t->scan_from = DatumGetTimestampTz(SPI_getbinval(tup, desc, 4, &isnull));
	if (isnull)
		t->scan_from = Min(rb_log_floor(), t->target_time);
	bkperf_snapshot_origin_check(t->tenant, t->snapshot_id, t->target_time, &t->scan_from);
	rb_check_floor(t->target_time, t->scan_from);
}

/*
 * Resolve a time target.  With commit timestamps a change is after the
 * target iff its transaction committed after it; such a transaction may have
 * started long before, so the scan starts at the log_scan_from of the
 * tenant's latest snapshot taken at or before the target, else at the log
 * floor.  Without them, a change is after the target iff its transaction
 * started after it (changed_at), and the scan starts at the target.
 */
static void
rb_resolve_time(RbTarget *t)
{
	Oid			types[2] = {TEXTOID, TIMESTAMPTZOID};
	Datum		values[2] = {CStringGetTextDatum(t->tenant),
	TimestampTzGetDatum(t->target_time)};

	if (t->target_time > GetCurrentTimestamp())
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("rollback target is in the future"),
				 errdetail("The target is %s.", timestamptz_to_str(t->target_time))));
	rb_check_floor(t->target_time, t->target_time);
	t->by_commit_ts = track_commit_timestamp;
	t->scan_from = t->target_time;
	if (!t->by_commit_ts)
		return;
	rb_exec("SELECT log_scan_from FROM bkperf.backup_pitr_snapshots"
			" WHERE tenant_id = $1 AND created_at <= $2"
			" ORDER BY created_at DESC LIMIT 1",
			2, types, values, NULL, false, SPI_OK_SELECT);
	if (SPI_processed > 0 && rb_int64_result(1) != 0)
		t->scan_from = DatumGetTimestampTz(rb_int64_result(1));
	else
		t->scan_from = Min(rb_log_floor(), t->target_time);
	bkperf_time_origin_check(t->target_time, &t->scan_from, t->by_commit_ts);
	rb_check_floor(t->target_time, t->scan_from);
}

/* ---------------------------------------------------------------------
 * Tables, locks, history
 * ---------------------------------------------------------------------
 */

/*
 * Take the per-tenant transaction advisory lock: rollbacks of one tenant
 * queue behind each other; those of other tenants do not.
 */
static void
rb_lock_tenant(const char *tenant)
{
	bkperf_xact_lock(bkperf_name_key(tenant), BKPERF_LOCK_ROLLBACK, true);
}

/*
 * Load every tracked table with the SQL fragments its statements need.
 */
static void
rb_load_tables(RbRun *run)
{
	rb_exec("SELECT t.relid::pg_catalog.oid, t.table_name,"
			"  pg_catalog.quote_ident(n.nspname) OPERATOR(pg_catalog.||) '.'"
			"    OPERATOR(pg_catalog.||) pg_catalog.quote_ident(c.relname),"
			"  pg_catalog.quote_ident(t.tenant_column),"
			"  pg_catalog.format_type(ta.atttypid, ta.atttypmod),"
			"  (SELECT pg_catalog.string_agg(pg_catalog.quote_ident(k), ', ') FROM pg_catalog.unnest(t.key_columns) k),"
			"  (SELECT pg_catalog.string_agg(pg_catalog.format('t.%1$I OPERATOR(pg_catalog.=) k.%1$I', k), ' AND ')"
			"     FROM pg_catalog.unnest(t.key_columns) k),"
			"  pg_catalog.string_agg(pg_catalog.quote_ident(a.attname), ', ' ORDER BY a.attnum),"
			"  pg_catalog.string_agg('r.' OPERATOR(pg_catalog.||) pg_catalog.quote_ident(a.attname), ', ' ORDER BY a.attnum),"
			"  pg_catalog.string_agg(pg_catalog.format('%1$I = EXCLUDED.%1$I', a.attname), ', ' ORDER BY a.attnum)"
			"    FILTER (WHERE a.attname OPERATOR(pg_catalog.<>) ALL (t.key_columns))"
			"  FROM bkperf.tracked_tables t"
			"  JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) t.relid"
			"  JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace"
			"  JOIN pg_catalog.pg_attribute ta ON ta.attrelid OPERATOR(pg_catalog.=) t.relid"
			"   AND ta.attname OPERATOR(pg_catalog.=) t.tenant_column"
			"  JOIN pg_catalog.pg_attribute a ON a.attrelid OPERATOR(pg_catalog.=) t.relid"
			"   AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated OPERATOR(pg_catalog.=) ''"
			" GROUP BY 1, 2, 3, 4, 5, 6, 7 ORDER BY 1",
			0, NULL, NULL, NULL, false, SPI_OK_SELECT);
	run->ntables = (int) SPI_processed;
	run->tables = palloc0(sizeof(RbTable) * Max(run->ntables, 1));
	for (int i = 0; i < run->ntables; i++)
	{
		HeapTuple	tup = SPI_tuptable->vals[i];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		RbTable    *t = &run->tables[i];
		bool		isnull;

		t->relid = DatumGetObjectId(SPI_getbinval(tup, desc, 1, &isnull));
		t->log_name = SPI_getvalue(tup, desc, 2);
		t->qname = SPI_getvalue(tup, desc, 3);
		t->tenant_col = SPI_getvalue(tup, desc, 4);
		t->tenant_type = SPI_getvalue(tup, desc, 5);
		t->key_list = SPI_getvalue(tup, desc, 6);
		t->key_join = SPI_getvalue(tup, desc, 7);
		t->cols = SPI_getvalue(tup, desc, 8);
		t->rcols = SPI_getvalue(tup, desc, 9);
		t->sets = SPI_getvalue(tup, desc, 10);
	}
}

/*
 * Lock every tracked table in SHARE ROW EXCLUSIVE mode: this waits for the
 * writers in flight and keeps new writers out until commit, so the plan,
 * read after it, misses no change (see the file header).  Writers take their
 * tables in any order, so holding some locks while waiting for another would
 * deadlock with them: all locks are tried without waiting; when one is busy,
 * every lock is released and only that one is waited for, then all are tried
 * again (the wait queues new writers behind us, so this ends).
 */
static void
rb_lock_tables(RbRun *run)
{
	int			held = -1;

	for (;;)
	{
		int			i;

		for (i = 0; i < run->ntables; i++)
			if (!ConditionalLockRelationOid(run->tables[i].relid, ShareRowExclusiveLock))
				break;
		if (held >= 0)
			UnlockRelationOid(run->tables[held].relid, ShareRowExclusiveLock);
		if (i == run->ntables)
			return;
		for (int j = 0; j < i; j++)
			UnlockRelationOid(run->tables[j].relid, ShareRowExclusiveLock);
		LockRelationOid(run->tables[i].relid, ShareRowExclusiveLock);
		held = i;
		CHECK_FOR_INTERRUPTS();
	}
}

/*
 * Insert the history row of this rollback (status running) and keep its id.
 */
static void
rb_history_start(RbRun *run)
{
	RbTarget   *t = run->target;
	Oid			types[5] = {TEXTOID, INT8OID, TIMESTAMPTZOID, PG_SNAPSHOTOID, BOOLOID};
	Datum		values[5];
	char		nulls[5] = {' ', ' ', ' ', ' ', ' '};

	values[0] = CStringGetTextDatum(t->tenant);
	values[1] = Int64GetDatum(t->snapshot_id);
	nulls[1] = t->snapshot_id == 0 ? 'n' : ' ';
	values[2] = TimestampTzGetDatum(t->target_time);
	values[3] = t->snapshot;
	nulls[3] = t->snapshot_id == 0 ? 'n' : ' ';
	values[4] = BoolGetDatum(t->dry_run);
	rb_exec("INSERT INTO bkperf.backup_pitr_rollback_history"
			" (tenant_id, snapshot_id, target_time, target_snapshot, dry_run, started_at)"
			" VALUES ($1, $2, $3, $4, $5, pg_catalog.clock_timestamp())"
			" RETURNING rollback_id, started_at",
			5, types, values, nulls, false, SPI_OK_INSERT_RETURNING);
	run->rollback_id = rb_int64_result(1);
	run->started = DatumGetTimestampTz(rb_int64_result(2));
}

/*
 * Set one phase time column of the history row to clock_timestamp().
 */
static void
rb_history_phase(RbRun *run, const char *column)
{
	Oid			types[2] = {TEXTOID, INT8OID};
	Datum		values[2] = {CStringGetTextDatum(run->target->tenant),
	Int64GetDatum(run->rollback_id)};
	char	   *sql = psprintf("UPDATE bkperf.backup_pitr_rollback_history"
							   " SET %s = pg_catalog.clock_timestamp()"
							   " WHERE tenant_id = $1 AND rollback_id = $2", column);

	rb_exec(sql, 2, types, values, NULL, false, SPI_OK_UPDATE);
}

/* ---------------------------------------------------------------------
 * Plan
 * ---------------------------------------------------------------------
 */

/*
 * The SQL predicate "this log row l is after the target" ($4 = snapshot or
 * target time).
 */
static const char *
rb_after_predicate(RbTarget *t)
{
	if (t->snapshot_id != 0)
		return "NOT pg_catalog.pg_visible_in_snapshot(l.txid, $4::pg_catalog.pg_snapshot)";
	if (!t->by_commit_ts)
		return "l.changed_at > $4::pg_catalog.timestamptz";
	/* Own changes are after; a missing commit time falls back to changed_at. */
	return "(l.txid OPERATOR(pg_catalog.=) pg_catalog.pg_current_xact_id_if_assigned()"
		" OR COALESCE(pg_catalog.pg_xact_commit_timestamp("
		"      ((l.txid::pg_catalog.text::pg_catalog.numeric OPERATOR(pg_catalog.%) 4294967296)"
		"       ::pg_catalog.text)::pg_catalog.xid), l.changed_at)"
		"    > $4::pg_catalog.timestamptz)";
}

/*
 * Build the plan (rollback_plan.c) from one scan of the tenant's log: every
 * change after the target, reduced there to the earliest change per key.
 */
static void
rb_build_plan(RbRun *run)
{
	RbTarget   *t = run->target;
	Datum	   *names = palloc(sizeof(Datum) * Max(run->ntables, 1));
	char	  **cnames = palloc(sizeof(char *) * Max(run->ntables, 1));
	Oid			types[4] = {TEXTOID, TIMESTAMPTZOID, TEXTARRAYOID,
	t->snapshot_id != 0 ? PG_SNAPSHOTOID : TIMESTAMPTZOID};
	Datum		values[4];

	for (int i = 0; i < run->ntables; i++)
	{
		names[i] = CStringGetTextDatum(run->tables[i].log_name);
		cnames[i] = run->tables[i].log_name;
	}
	values[0] = CStringGetTextDatum(t->tenant);
	values[1] = TimestampTzGetDatum(t->scan_from - RB_SCAN_MARGIN_USEC);
	values[2] = PointerGetDatum(construct_array(names, run->ntables, TEXTOID,
												-1, false, TYPALIGN_INT));
	values[3] = t->snapshot_id != 0 ? t->snapshot : TimestampTzGetDatum(t->target_time);

	run->plan = bkperf_rb_plan_build(psprintf("SELECT l.table_name, l.record_id, l.log_id, l.operation, l.old_data"
											  "  FROM bkperf.backup_transaction_logs l"
											  " WHERE l.tenant_id OPERATOR(pg_catalog.=) $1"
											  "   AND l.changed_at OPERATOR(pg_catalog.>=) $2"
											  "   AND l.table_name OPERATOR(pg_catalog.=) ANY ($3) AND %s",
											  rb_after_predicate(t)),
									 4, types, values, cnames, run->ntables);
	for (int i = 0; i < run->ntables; i++)
		bkperf_rb_plan_counts(run->plan, i, &run->tables[i].planned_present,
							  &run->tables[i].planned_absent);
}

/* ---------------------------------------------------------------------
 * Order
 * ---------------------------------------------------------------------
 */

/*
 * Does the plan change any row of table i?
 */
static bool
rb_changed(RbRun *run, int i)
{
	return run->tables[i].planned_present + run->tables[i].planned_absent > 0;
}

/*
 * Check the cycle group g: when two or more of its tables change, every
 * foreign key inside it must be deferrable (refused otherwise, naming the
 * rigid ones), and all of them are deferred for the apply.
 */
static void
rb_check_group(RbRun *run, int g)
{
	BkperfFkOrder *o = run->order;
	int			nchanged = 0;
	StringInfoData rigid;

	for (int i = 0; i < o->ntables; i++)
		if (o->tables[i].cycle_group == g && rb_changed(run, i))
			nchanged++;
	if (nchanged < 2)
		return;
	initStringInfo(&rigid);
	for (int e = 0; e < o->nedges; e++)
	{
		BkperfFkEdge *edge = &o->edges[e];

		if (o->tables[edge->child].cycle_group == g &&
			o->tables[edge->parent].cycle_group == g && !edge->deferrable)
			appendStringInfo(&rigid, "%s%s", rigid.len > 0 ? ", " : "", edge->name);
	}
	if (rigid.len > 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("cannot restore tables in a cycle of foreign keys that are not deferrable: %s",
						rigid.data),
				 errdetail("Rows of tables that reference each other can only be restored with those keys deferred."),
				 errhint("Make them DEFERRABLE with ALTER TABLE ... ALTER CONSTRAINT ... DEFERRABLE.")));
	for (int e = 0; e < o->nedges; e++)
	{
		BkperfFkEdge *edge = &o->edges[e];

		if (o->tables[edge->child].cycle_group != g ||
			o->tables[edge->parent].cycle_group != g)
			continue;
		run->deferred = lappend(run->deferred, edge->name);
		if (edge->initially_deferred)
			run->init_deferred = lappend(run->init_deferred, edge->name);
	}
}

/*
 * Refuse when deleting rows of a changed table would cascade into a table
 * that is not tracked (ON DELETE CASCADE, SET NULL, SET DEFAULT): a
 * rollback never writes untracked tables.  Keys without an action make the
 * apply fail instead if such a row still references a deleted one.
 */
static void
rb_check_untracked_cascades(RbRun *run)
{
	Datum	   *all = palloc(sizeof(Datum) * Max(run->ntables, 1));
	Datum	   *deleting = palloc(sizeof(Datum) * Max(run->ntables, 1));
	int			ndel = 0;
	Oid			types[2] = {OIDARRAYOID, OIDARRAYOID};
	Datum		values[2];

	for (int i = 0; i < run->ntables; i++)
	{
		all[i] = ObjectIdGetDatum(run->tables[i].relid);
		if (run->tables[i].planned_absent > 0)
			deleting[ndel++] = all[i];
	}
	if (ndel == 0)
		return;
	values[0] = PointerGetDatum(construct_array(deleting, ndel, OIDOID, sizeof(Oid), true, TYPALIGN_INT));
	values[1] = PointerGetDatum(construct_array(all, run->ntables, OIDOID, sizeof(Oid), true, TYPALIGN_INT));
	rb_exec("SELECT pg_catalog.format('%s on %s', c.conname, c.conrelid::pg_catalog.regclass)"
			"  FROM pg_catalog.pg_constraint c"
			" WHERE c.contype = 'f' AND c.confrelid OPERATOR(pg_catalog.=) ANY ($1)"
			"   AND c.conrelid OPERATOR(pg_catalog.<>) ALL ($2)"
			"   AND c.confdeltype OPERATOR(pg_catalog.=) ANY ('{c,n,d}'::\"char\"[])"
			" ORDER BY 1 LIMIT 1",
			2, types, values, NULL, false, SPI_OK_SELECT);
	if (SPI_processed > 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("rollback would change an untracked table through foreign key %s",
						SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1)),
				 errdetail("Deleting rows the rollback must remove would cascade into a table that is not tracked."),
				 errhint("Track the referencing table too, or change the key's ON DELETE action.")));
}

/*
 * Compute the FK order of the tracked tables and store the order of the
 * changed ones in backup_fk_constraints_cache for this rollback.
 */
static void
rb_store_order(RbRun *run)
{
	Oid		   *relids = palloc(sizeof(Oid) * Max(run->ntables, 1));
	Oid			types[6] = {TEXTOID, INT8OID, TEXTOID, INT4OID, INT4OID, TEXTARRAYOID};
	Datum		values[6];
	char		nulls[6] = {' ', ' ', ' ', ' ', ' ', ' '};

	for (int i = 0; i < run->ntables; i++)
		relids[i] = run->tables[i].relid;
	run->order = bkperf_fk_order(relids, run->ntables);
	rb_check_untracked_cascades(run);
	for (int g = 1; g <= run->order->ngroups; g++)
		rb_check_group(run, g);

	values[0] = CStringGetTextDatum(run->target->tenant);
	values[1] = Int64GetDatum(run->rollback_id);
	for (int i = 0; i < run->ntables; i++)
	{
		BkperfFkTable *ft = &run->order->tables[i];

		if (!rb_changed(run, i))
			continue;
		values[2] = CStringGetTextDatum(run->tables[i].log_name);
		values[3] = Int32GetDatum(ft->level);
		values[4] = Int32GetDatum(ft->cycle_group);
		nulls[4] = nulls[5] = ft->cycle_group == 0 ? 'n' : ' ';
		if (ft->cycle_group != 0)
			values[5] = PointerGetDatum(bkperf_fk_group_constraints(run->order,
																	ft->cycle_group, false));
		rb_exec("INSERT INTO bkperf.backup_fk_constraints_cache"
				" (tenant_id, rollback_id, table_name, restore_level, cycle_group,"
				"  deferred_constraints) VALUES ($1, $2, $3, $4, $5, $6)",
				6, types, values, nulls, false, SPI_OK_INSERT);
	}
}

/*
 * The changed tables in the stored order (parents first, or children first
 * when reverse), read back from backup_fk_constraints_cache.
 */
static List *
rb_stored_order(RbRun *run, bool reverse)
{
	Oid			types[2] = {TEXTOID, INT8OID};
	Datum		values[2] = {CStringGetTextDatum(run->target->tenant),
	Int64GetDatum(run->rollback_id)};
	List	   *result = NIL;

	rb_exec(reverse ?
			"SELECT table_name FROM bkperf.backup_fk_constraints_cache"
			" WHERE tenant_id = $1 AND rollback_id = $2"
			" ORDER BY restore_level DESC, table_name DESC" :
			"SELECT table_name FROM bkperf.backup_fk_constraints_cache"
			" WHERE tenant_id = $1 AND rollback_id = $2"
			" ORDER BY restore_level, table_name",
			2, types, values, NULL, false, SPI_OK_SELECT);
	for (uint64 r = 0; r < SPI_processed; r++)
	{
		char	   *name = SPI_getvalue(SPI_tuptable->vals[r], SPI_tuptable->tupdesc, 1);

		for (int i = 0; i < run->ntables; i++)
			if (strcmp(run->tables[i].log_name, name) == 0)
				result = lappend(result, &run->tables[i]);
	}
	return result;
}

/* ---------------------------------------------------------------------
 * Apply
 * ---------------------------------------------------------------------
 */

/*
 * Run SET CONSTRAINTS names mode, for a non-empty list.
 */
static void
rb_set_constraints(List *names, const char *mode)
{
	StringInfoData sql;
	ListCell   *lc;

	if (names == NIL)
		return;
	initStringInfo(&sql);
	appendStringInfoString(&sql, "SET CONSTRAINTS ");
	foreach(lc, names)
		appendStringInfo(&sql, "%s%s", lc == list_head(names) ? "" : ", ",
						 (char *) lfirst(lc));
	appendStringInfo(&sql, " %s", mode);
	rb_exec(sql.data, 0, NULL, NULL, NULL, false, SPI_OK_UTILITY);
}

/*
 * Refuse, after an upsert that skipped rows, when a key the tenant had at
 * the target now holds another tenant's row.
 */
static void
rb_check_key_owner(RbTable *t)
{
	Oid			types[1] = {TEXTOID};
	Datum		values[1] = {CStringGetTextDatum(t->log_name)};

	rb_exec(psprintf("SELECT pg_catalog.count(*) FROM bkperf.rollback_plan_rows($1, true) n"
					 " CROSS JOIN LATERAL pg_catalog.jsonb_populate_record(NULL::%s, n.old_data) k"
					 " JOIN %s t ON %s"
					 " WHERE t.%s IS DISTINCT FROM k.%s",
					 t->qname, t->qname, t->key_join, t->tenant_col, t->tenant_col),
			1, types, values, NULL, false, SPI_OK_SELECT);
	if (rb_int64_result(1) > 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNIQUE_VIOLATION),
				 errmsg_plural("cannot restore %lld row of table %s: its key now belongs to another tenant",
							   "cannot restore %lld rows of table %s: their keys now belong to another tenant",
							   rb_int64_result(1),
							   (long long) rb_int64_result(1), t->qname),
				 errdetail("The rows moved to another tenant, or their keys were reused by one, after the rollback target.")));
}

/*
 * Upsert the target images of table t's keys present at the target.
 * Identical rows are left alone; rows of another tenant are not touched
 * (and make the rollback fail).
 */
static void
rb_apply_upsert(RbTable *t, const char *tenant)
{
	Oid			types[1] = {TEXTOID};
	Datum		values[1] = {CStringGetTextDatum(t->log_name)};
	char	   *conflict;

	if (t->planned_present == 0)
		return;
	conflict = t->sets == NULL ? pstrdup("DO NOTHING") :
		psprintf("DO UPDATE SET %s WHERE t.%s IS NOT DISTINCT FROM EXCLUDED.%s"
				 " AND t.* OPERATOR(pg_catalog.*<>) EXCLUDED.*",
				 t->sets, t->tenant_col, t->tenant_col);
	rb_exec(psprintf("WITH u AS (INSERT INTO %s AS t (%s) OVERRIDING SYSTEM VALUE"
					 " SELECT %s FROM bkperf.rollback_plan_rows($1, true) n"
					 " CROSS JOIN LATERAL pg_catalog.jsonb_populate_record(NULL::%s, n.old_data) r"
					 " ON CONFLICT (%s) %s RETURNING t.xmax OPERATOR(pg_catalog.=) 0 AS ins)"
					 " SELECT pg_catalog.count(*) FILTER (WHERE ins),"
					 "        pg_catalog.count(*) FILTER (WHERE NOT ins) FROM u",
					 t->qname, t->cols, t->rcols, t->qname, t->key_list, conflict),
			1, types, values, NULL, false, SPI_OK_SELECT);
	t->inserted = rb_int64_result(1);
	t->updated = rb_int64_result(2);
	if (t->inserted + t->updated < t->planned_present)
		rb_check_key_owner(t);
}

/*
 * Delete table t's rows of the tenant whose keys are absent at the target.
 */
static void
rb_apply_delete(RbTable *t, const char *tenant)
{
	Oid			types[2] = {TEXTOID, TEXTOID};
	Datum		values[2] = {CStringGetTextDatum(t->log_name), CStringGetTextDatum(tenant)};

	if (t->planned_absent == 0)
		return;
	rb_exec(psprintf("WITH d AS (DELETE FROM %s t USING"
					 " (SELECT k.* FROM bkperf.rollback_plan_rows($1, false) n"
					 "  CROSS JOIN LATERAL pg_catalog.jsonb_populate_record(NULL::%s, n.record_id) k) k"
					 " WHERE %s AND t.%s = $2::pg_catalog.text::%s RETURNING 1)"
					 " SELECT pg_catalog.count(*) FROM d",
					 t->qname, t->qname, t->key_join, t->tenant_col, t->tenant_type),
			2, types, values, NULL, false, SPI_OK_SELECT);
	t->deleted = rb_int64_result(1);
}

/*
 * The apply phase: upserts parents first, deletes children first, with the
 * foreign keys inside changed cycles deferred and checked at the end (so a
 * violation fails here, inside the subtransaction).
 */
static void
rb_apply(RbRun *run)
{
	ListCell   *lc;
	List	   *parents_first = rb_stored_order(run, false);
	List	   *children_first = rb_stored_order(run, true);

	rb_set_constraints(run->deferred, "DEFERRED");
	foreach(lc, parents_first)
		rb_apply_upsert((RbTable *) lfirst(lc), run->target->tenant);
	foreach(lc, children_first)
		rb_apply_delete((RbTable *) lfirst(lc), run->target->tenant);
	rb_set_constraints(run->deferred, "IMMEDIATE");
	rb_set_constraints(run->init_deferred, "DEFERRED");
}

/*
 * Run the apply phase in an internal subtransaction.  A dry run rolls it
 * back.  A failure rolls it back and is kept in run->error (cancels and
 * shutdowns are re-thrown).  Nothing the apply did survives a failure.
 */
static void
rb_apply_guarded(RbRun *run)
{
	MemoryContext cxt = CurrentMemoryContext;
	ResourceOwner owner = CurrentResourceOwner;

	BeginInternalSubTransaction(NULL);
	MemoryContextSwitchTo(cxt);
	PG_TRY();
	{
		rb_apply(run);
		if (run->target->dry_run)
			RollbackAndReleaseCurrentSubTransaction();
		else
			ReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(cxt);
		CurrentResourceOwner = owner;
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		MemoryContextSwitchTo(cxt);
		edata = CopyErrorData();
		FlushErrorState();
		RollbackAndReleaseCurrentSubTransaction();
		MemoryContextSwitchTo(cxt);
		CurrentResourceOwner = owner;
		if (edata->sqlerrcode == ERRCODE_QUERY_CANCELED ||
			edata->sqlerrcode == ERRCODE_ADMIN_SHUTDOWN)
			ReThrowError(edata);
		run->error = edata->detail == NULL ? pstrdup(edata->message) :
			psprintf("%s: %s", edata->message, edata->detail);
		run->sqlstate = pstrdup(unpack_sql_state(edata->sqlerrcode));
		ereport(WARNING,
				(errcode(edata->sqlerrcode),
				 errmsg("rollback of tenant \"%s\" failed and changed nothing: %s",
						run->target->tenant, edata->message),
				 edata->detail ? errdetail_internal("%s", edata->detail) : 0));
		for (int i = 0; i < run->ntables; i++)
			run->tables[i].deleted = run->tables[i].updated = run->tables[i].inserted = 0;
	}
	PG_END_TRY();
}

/* ---------------------------------------------------------------------
 * Finish and entry points
 * ---------------------------------------------------------------------
 */

/*
 * The per-table counts as a jsonb text: {"table": {"deleted": n, ...}}.
 */
static char *
rb_table_counts(RbRun *run)
{
	StringInfoData buf;
	bool		first = true;

	initStringInfo(&buf);
	appendStringInfoChar(&buf, '{');
	for (int i = 0; i < run->ntables; i++)
	{
		RbTable    *t = &run->tables[i];

		if (!rb_changed(run, i))
			continue;
		if (!first)
			appendStringInfoString(&buf, ", ");
		first = false;
		escape_json(&buf, t->log_name);
		appendStringInfo(&buf, ": {\"deleted\": " INT64_FORMAT ", \"updated\": " INT64_FORMAT
						 ", \"inserted\": " INT64_FORMAT "}", t->deleted, t->updated, t->inserted);
	}
	appendStringInfoChar(&buf, '}');
	return buf.data;
}

/*
 * Close the history row: status, counts, error, finish time.
 */
static void
rb_history_finish(RbRun *run, const char *status, int ntables, int64 *sums)
{
	Oid			types[10] = {TEXTOID, INT8OID, TEXTOID, INT4OID, INT8OID, INT8OID,
	INT8OID, TEXTOID, TEXTOID, TEXTOID};
	Datum		values[10];
	char		nulls[10] = {' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' '};

	values[0] = CStringGetTextDatum(run->target->tenant);
	values[1] = Int64GetDatum(run->rollback_id);
	values[2] = CStringGetTextDatum(status);
	values[3] = Int32GetDatum(ntables);
	for (int i = 0; i < 3; i++)
		values[4 + i] = Int64GetDatum(sums[i]);
	values[7] = CStringGetTextDatum(rb_table_counts(run));
	values[8] = run->error ? CStringGetTextDatum(run->error) : (Datum) 0;
	values[9] = run->sqlstate ? CStringGetTextDatum(run->sqlstate) : (Datum) 0;
	nulls[8] = nulls[9] = run->error ? ' ' : 'n';
	rb_exec("UPDATE bkperf.backup_pitr_rollback_history"
			"   SET rollback_status = $3, tables = $4, rows_deleted = $5,"
			"       rows_updated = $6, rows_inserted = $7, table_counts = $8::pg_catalog.jsonb,"
			"       error_message = $9, error_sqlstate = $10,"
			"       finished_at = pg_catalog.clock_timestamp()"
			" WHERE tenant_id = $1 AND rollback_id = $2",
			10, types, values, nulls, false, SPI_OK_UPDATE);
}

/*
 * Build the summary row (rollback_id, status, tables, rows_deleted,
 * rows_updated, rows_inserted, duration_ms, error) and close the history.
 */
static Datum
rb_summary(FunctionCallInfo fcinfo, RbRun *run)
{
	TupleDesc	desc;
	Datum		values[8];
	bool		nulls[8] = {false, false, false, false, false, false, false, false};
	int64		sums[3] = {0, 0, 0};
	int			ntables = 0;
	const char *status = run->error ? "failed" :
		run->target->dry_run ? "dry_run" : "completed";
	HeapTuple	tup;

	if (get_call_result_type(fcinfo, NULL, &desc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	for (int i = 0; i < run->ntables; i++)
	{
		ntables += rb_changed(run, i) ? 1 : 0;
		sums[0] += run->tables[i].deleted;
		sums[1] += run->tables[i].updated;
		sums[2] += run->tables[i].inserted;
	}
	rb_history_finish(run, status, ntables, sums);
	values[0] = Int64GetDatum(run->rollback_id);
	values[1] = CStringGetTextDatum(status);
	values[2] = Int32GetDatum(ntables);
	for (int i = 0; i < 3; i++)
		values[3 + i] = Int64GetDatum(sums[i]);
	values[6] = Float8GetDatum((GetCurrentTimestamp() - run->started) / 1000.0);
	values[7] = run->error ? CStringGetTextDatum(run->error) : (Datum) 0;
	nulls[7] = run->error == NULL;
	tup = heap_form_tuple(BlessTupleDesc(desc), values, nulls);
	return HeapTupleGetDatum(tup);
}

/*
 * The rollback itself, for a resolved target (see the file header).  The
 * caller holds the tenant lock and an SPI connection.
 */
static Datum
rb_run(FunctionCallInfo fcinfo, RbTarget *target)
{
	RbRun	   *run = palloc0(sizeof(RbRun));
	BkperfRbPlan *prev;
	Datum		result;

	run->target = target;
	if (!target->dry_run && IsolationUsesXactSnapshot())
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_TRANSACTION_STATE),
				 errmsg("a rollback must run in a READ COMMITTED transaction"),
				 errdetail("Its plan must see every change committed up to its table locks."),
				 errhint("Run it outside REPEATABLE READ and SERIALIZABLE transactions.")));
	rb_load_tables(run);
	if (!target->dry_run)
		rb_lock_tables(run);
	rb_history_start(run);
	rb_build_plan(run);
	rb_store_order(run);
	rb_history_phase(run, "planned_at");
	prev = bkperf_rb_plan_activate(run->plan);
	PG_TRY();
	{
		rb_apply_guarded(run);
	}
	PG_FINALLY();
	{
		bkperf_rb_plan_activate(prev);
	}
	PG_END_TRY();
	bkperf_rb_plan_free(run->plan);
	rb_history_phase(run, "applied_at");
	result = rb_summary(fcinfo, run);
	return SPI_datumTransfer(result, false, -1);
}

/*
 * Argument checks and locks shared by both entry points.
 */
static RbTarget *
rb_begin(FunctionCallInfo fcinfo, const char *what)
{
	RbTarget   *t = palloc0(sizeof(RbTarget));

	t->tenant = rb_required_text(fcinfo, 0, "tenant");
	if (PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("%s must not be NULL", what)));
	if (PG_ARGISNULL(2))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("dry_run must not be NULL")));
	t->dry_run = PG_GETARG_BOOL(2);
	SPI_connect();
	rb_require_tracked();
	rb_lock_tenant(t->tenant);
	return t;
}

/*
 * bkperf.rollback_to_snapshot(tenant, snapshot_id, dry_run): restore the
 * tenant's rows in every tracked table to what snapshot_id saw.
 */
Datum
bkperf_rollback_to_snapshot(PG_FUNCTION_ARGS)
{
	RbTarget   *t = rb_begin(fcinfo, "snapshot_id");
	Datum		result;

	t->snapshot_id = PG_GETARG_INT64(1);
	rb_resolve_snapshot(t);
	result = rb_run(fcinfo, t);
	SPI_finish();
	PG_RETURN_DATUM(result);
}

/*
 * bkperf.rollback_to_time(tenant, target, dry_run): restore the tenant's
 * rows in every tracked table to their state at the target time.
 */
Datum
bkperf_rollback_to_time(PG_FUNCTION_ARGS)
{
	RbTarget   *t = rb_begin(fcinfo, "target");
	Datum		result;

	t->target_time = PG_GETARG_TIMESTAMPTZ(1);
	rb_resolve_time(t);
	result = rb_run(fcinfo, t);
	SPI_finish();
	PG_RETURN_DATUM(result);
}
