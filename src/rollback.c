/*-------------------------------------------------------------------------
 * rollback.c
 *		Exact per-tenant point-in-time rollback: rollback_to_snapshot and
 *		rollback_to_time.
 *
 * Scope.  A rollback covers the tenant's rows in the tracked tables the
 * caller owns (a superuser: all of them), optionally narrowed to an
 * explicit list.  Tables outside the scope, and tables tracked after the
 * target (their log starts later: their state at the target is unknown),
 * are left alone and reported in the result and the history (when they
 * hold changes of the tenant after the target, or may).  Only tables in
 * the scope are locked.  Log rows are matched to tables by table_id, the
 * identity tracking gave them, which survives renames and dump/restore.
 *
 * A rollback runs in four steps:
 *	1. lock: a transaction advisory lock per tenant (two rollbacks of one
 *	   tenant never interleave), then every table in the scope in SHARE ROW
 *	   EXCLUSIVE mode, which waits for the writers in flight and keeps new
 *	   ones out until commit, so the plan sees every change it must undo
 *	   (dry runs skip the table locks);
 *	2. plan: the net change per key in one scan of the tenant's log, held in
 *	   backend memory and tuplestores (rollback_plan.c): the earliest change
 *	   after the target gives the row's image at the target (INSERT: absent;
 *	   UPDATE, DELETE: old_data);
 *	3. order: the foreign-key order of the changed tables (fkorder.c), kept
 *	   in memory and recorded in backup_fk_constraints_cache;
 *	4. apply, in an internal subtransaction (rollback_apply.c, each table's
 *	   statements as its owner, with no trigger but the capture's): per
 *	   table one DELETE of the keys absent at the target, children first,
 *	   then one upsert of the target images, parents first, and the checks
 *	   of the foreign keys (rollback_fk.c) and deferrable unique and
 *	   exclusion constraints (rollback_unique.c) that no trigger enforced.
 *	   Deleting first frees the unique values a restored row takes back.
 *	   A dry run rolls the subtransaction back; a failure rolls it back too
 *	   and is recorded in the history with its error.
 *
 * Every statement goes through the capture triggers, so a rollback is
 * itself logged and can be rolled back; except in the _unlogged forms
 * (rollback_unlogged.c), whose apply switches capture off for the table it
 * writes, and whose window every later rollback checks first.
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/commit_ts.h"
#include "access/table.h"
#include "access/xact.h"
#include "catalog/pg_class.h"
#include "catalog/pg_operator.h"
#include "catalog/pg_type.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "storage/lmgr.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/fmgrprotos.h"
#include "utils/json.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/resowner.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"
#include "utils/typcache.h"

#include "bkperf.h"
#include "compat.h"

PG_FUNCTION_INFO_V1(bkperf_rollback_to_snapshot);
PG_FUNCTION_INFO_V1(bkperf_rollback_to_time);
PG_FUNCTION_INFO_V1(bkperf_rollback_to_snapshot_unlogged);
PG_FUNCTION_INFO_V1(bkperf_rollback_to_time_unlogged);

/*
 * Slack subtracted from log_scan_from when scanning: a backend stamps its
 * transaction start a moment before it publishes it, so a snapshot could
 * miss a start stamped just before it looked.
 */
#define RB_SCAN_MARGIN_USEC		(1 * USECS_PER_SEC)

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
	bool		unlogged;		/* the _unlogged forms */
	int			nlist;			/* explicit table list, or -1 */
	Oid		   *list;
} RbTarget;

/* A tracked table left out of the rollback, and why. */
typedef struct RbSkipped
{
	int64		table_id;
	Oid			relid;
	const char *reason;
	bool		always;			/* report even without logged changes */
} RbSkipped;

/* One rollback in progress. */
typedef struct RbRun
{
	RbTarget   *target;
	int64		rollback_id;
	int			ntables;
	BkperfRbTable *tables;		/* the scope, in OID order */
	bool	  **is_key;			/* per table and attribute */
	int			nskipped;
	RbSkipped  *skipped;
	char	   *skipped_json;	/* those reported, as jsonb text, or NULL */
	BkperfFkOrder *order;
	BkperfRbPlan *plan;			/* net change per key (rollback_plan.c) */
	List	   *fk_checks;		/* BkperfRbFkCheck: keys to check after the apply */
	TimestampTz started;
	char	   *error;
	char	   *sqlstate;
} RbRun;

/* ---------------------------------------------------------------------
 * Scope
 * ---------------------------------------------------------------------
 */

/*
 * Fill the SQL fragments of t from its relation and tracking.
 */
static void
rb_table_sql(BkperfRbTable *t, const BkperfTracked *tr, bool **is_key)
{
	Relation	rel = table_open(t->relid, AccessShareLock);
	TupleDesc	desc = RelationGetDescr(rel);
	StringInfoData cols,
				rcols,
				sets,
				keys,
				join,
				tcols,
				kcols;

	t->owner = rel->rd_rel->relowner;
	t->partitioned = rel->rd_rel->relkind == RELKIND_PARTITIONED_TABLE;
	t->qname = quote_qualified_identifier(get_namespace_name(RelationGetNamespace(rel)),
										  RelationGetRelationName(rel));
	t->tenant_col = pstrdup(quote_identifier(tr->tenant_column));
	t->tenant_attnum = get_attnum(t->relid, tr->tenant_column);
	*is_key = palloc0(sizeof(bool) * Max(desc->natts, 1));
	initStringInfo(&cols);
	initStringInfo(&rcols);
	initStringInfo(&sets);
	initStringInfo(&keys);
	initStringInfo(&join);
	initStringInfo(&tcols);
	initStringInfo(&kcols);
	for (int i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i);
		const char *q = quote_identifier(NameStr(att->attname));
		bool		key = false;

		if (att->attisdropped || att->attgenerated != '\0')
			continue;
		for (int k = 0; k < tr->nkeys; k++)
			key |= strcmp(tr->key_columns[k], NameStr(att->attname)) == 0;
		(*is_key)[i] = key;
		appendStringInfo(&cols, "%s%s", cols.len ? ", " : "", q);
		appendStringInfo(&rcols, "%sr.%s", rcols.len ? ", " : "", q);
		appendStringInfo(&tcols, "%st.%s", tcols.len ? ", " : "", q);
		appendStringInfo(&kcols, "%sk.%s", kcols.len ? ", " : "", q);
		if (!key)
			appendStringInfo(&sets, "%s%s = EXCLUDED.%s", sets.len ? ", " : "", q, q);
		else
		{
			appendStringInfo(&keys, "%s%s", keys.len ? ", " : "", q);
			appendStringInfo(&join, "%st.%s %s k.%s", join.len ? " AND " : "", q,
							 bkperf_eq_operator(att->atttypid), q);
		}
	}
	table_close(rel, NoLock);
	if (keys.len == 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_COLUMN),
				 errmsg("key columns of tracked table %s do not exist", t->qname),
				 errhint("Track the table again with bkperf.track_table().")));
	t->cols = cols.data;
	t->rcols = rcols.data;
	t->sets = sets.len ? sets.data : NULL;
	t->key_list = keys.data;
	t->key_join = join.data;
	t->same_row = psprintf("ROW(%s)::pg_catalog.record OPERATOR(pg_catalog.*=) ROW(%s)::pg_catalog.record",
						   tcols.data, kcols.data);
}

/*
 * Is relid in the explicit table list (or is there none)?
 */
static bool
rb_listed(RbTarget *target, Oid relid)
{
	if (target->nlist < 0)
		return true;
	for (int i = 0; i < target->nlist; i++)
		if (target->list[i] == relid)
			return true;
	return false;
}

/*
 * Refuse list entries that are not tracked or not the caller's.
 */
static void
rb_check_list(RbTarget *target, BkperfTracked *tracked, int ntracked)
{
	for (int i = 0; i < target->nlist; i++)
	{
		Oid			relid = target->list[i];
		bool		found = false;

		for (int j = 0; j < ntracked; j++)
			found |= tracked[j].relid == relid;
		if (!found)
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_OBJECT),
					 errmsg("table %s is not tracked", format_type_be(get_rel_type_id(relid))),
					 errhint("bkperf.tracked_tables lists the tracked tables.")));
		if (!bkperf_rel_ownercheck(relid, GetUserId()))
			ereport(ERROR,
					(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
					 errmsg("must be owner of table %s to roll it back",
							format_type_be(get_rel_type_id(relid)))));
	}
}

/*
 * The table_ids of the tracked tables whose log started (tracking, or a
 * restart) in a transaction the target does not count as before it, by
 * the same rule as log rows (bkperf_rb_after_sql): a snapshot that does not
 * see that transaction, or, by commit time, one committed after the target
 * time.  tracked_at alone is that transaction's start: a snapshot taken
 * while it was in flight is newer, yet missed what came in unlogged (rows
 * written before the capture triggers existed, or of an attached
 * partition).  Known only for transaction ids of this database's lineage
 * (not across a restore from a dump, not for a Citus coordinator's ids on a
 * worker, not for tables tracked by 1.0): there tracked_at decides alone.
 * Returns how many, in *ids.
 */
static int
rb_restarted_after(RbTarget *target, int64 **ids)
{
	bool		by_snapshot = target->snapshot_id != 0;
	Oid			types[1] = {by_snapshot ? PG_SNAPSHOTOID : TIMESTAMPTZOID};
	Datum		values[1] = {by_snapshot ? target->snapshot :
	TimestampTzGetDatum(target->target_time)};

	*ids = NULL;
	/* By start time, tracked_at > the target time says it all. */
	if (!by_snapshot && !target->by_commit_ts)
		return 0;
	bkperf_spi_exec(psprintf("SELECT l.table_id"
							 "  FROM (SELECT t.table_id, t.tracked_xid AS txid, t.tracked_at AS changed_at"
							 "          FROM bkperf.tracked_tables t"
							 "         WHERE t.tracked_xid IS NOT NULL"
							 "           AND bkperf.xids_comparable(t.tracked_origin)) l"
							 " WHERE %s",
							 bkperf_rb_after_sql(by_snapshot, target->by_commit_ts, true,
												 by_snapshot ? "$1::pg_catalog.pg_snapshot"
												 : "$1::pg_catalog.timestamptz")),
					1, types, values, NULL, SPI_OK_SELECT);
	if (SPI_processed == 0)
		return 0;
	*ids = palloc(sizeof(int64) * SPI_processed);
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		bool		isnull;

		(*ids)[i] = DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[i], SPI_tuptable->tupdesc,
												1, &isnull));
	}
	return (int) SPI_processed;
}

/*
 * Is id among the n ids?
 */
static bool
rb_id_in(int64 id, const int64 *ids, int n)
{
	for (int i = 0; i < n; i++)
		if (ids[i] == id)
			return true;
	return false;
}

/*
 * Split the tracked tables into the scope and the skipped ones (see the
 * file header), and build the scope's SQL fragments.
 */
static void
rb_load_scope(RbRun *run)
{
	RbTarget   *target = run->target;
	int			ntracked;
	BkperfTracked *tracked = bkperf_tracked_tables(&ntracked);
	int64	   *restarted;
	int			nrestarted = rb_restarted_after(target, &restarted);

	if (target->nlist >= 0)
		rb_check_list(target, tracked, ntracked);
	run->tables = palloc0(sizeof(BkperfRbTable) * Max(ntracked, 1));
	run->is_key = palloc0(sizeof(bool *) * Max(ntracked, 1));
	run->skipped = palloc0(sizeof(RbSkipped) * Max(ntracked, 1));
	for (int i = 0; i < ntracked; i++)
	{
		BkperfTracked *tr = &tracked[i];
		RbSkipped  *sk = &run->skipped[run->nskipped];

		sk->table_id = tr->table_id;
		sk->relid = tr->relid;
		if (!rb_listed(target, tr->relid))
			sk->reason = "not in the tables list";
		else if (!bkperf_rel_ownercheck(tr->relid, GetUserId()))
			sk->reason = "not owned by the caller";
		else if (TIMESTAMP_IS_NOEND(tr->tracked_at))
		{
			/* capture_sync_partitions: a capture trigger is off. */
			sk->reason = "capture is off";
			sk->always = true;
		}
		else if (tr->tracked_at > target->target_time ||
				 rb_id_in(tr->table_id, restarted, nrestarted))
		{
			sk->reason = "tracked after the target";
			sk->always = true;
		}
		else
		{
			BkperfRbTable *t = &run->tables[run->ntables];

			t->relid = tr->relid;
			t->table_id = tr->table_id;
			t->key = psprintf(INT64_FORMAT, tr->table_id);
			rb_table_sql(t, tr, &run->is_key[run->ntables]);
			run->ntables++;
			continue;
		}
		run->nskipped++;
	}
	for (int i = 0; i < run->nskipped && run->ntables == 0; i++)
		if (run->skipped[i].always)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("rollback target is older than the change log"),
				 errdetail("Every table in the rollback's scope was tracked after the target."),
				 errhint("Choose a later snapshot or time; see bkperf.tracked_tables.tracked_at.")));
}

/*
 * The skipped tables to report, as a jsonb object text {"table": "reason"}
 * (NULL when none): those tracked after the target, and the others that
 * hold changes of the tenant after the scan start.
 */
static void
rb_report_skipped(RbRun *run)
{
	StringInfoData buf;
	int			n = 0;

	initStringInfo(&buf);
	appendStringInfoChar(&buf, '{');
	for (int i = 0; i < run->nskipped; i++)
	{
		RbSkipped  *sk = &run->skipped[i];

		if (!sk->always)
		{
			Oid			types[3] = {TEXTOID, TIMESTAMPTZOID, INT8OID};
			Datum		values[3] = {CStringGetTextDatum(run->target->tenant),
				TimestampTzGetDatum(run->target->scan_from - RB_SCAN_MARGIN_USEC),
			Int64GetDatum(sk->table_id)};

			bkperf_spi_exec("SELECT 1 FROM bkperf.backup_transaction_logs l"
							" WHERE l.tenant_id OPERATOR(pg_catalog.=) $1"
							"   AND l.changed_at OPERATOR(pg_catalog.>=) $2"
							"   AND l.table_id OPERATOR(pg_catalog.=) $3 LIMIT 1",
							3, types, values, NULL, SPI_OK_SELECT);
			if (SPI_processed == 0)
				continue;
		}
		appendStringInfoString(&buf, n++ ? ", " : "");
		escape_json(&buf, format_type_be(get_rel_type_id(sk->relid)));
		appendStringInfoString(&buf, ": ");
		escape_json(&buf, sk->reason);
	}
	appendStringInfoChar(&buf, '}');
	run->skipped_json = n > 0 ? buf.data : NULL;
	if (n > 0)
		ereport(WARNING,
				(errmsg("rollback of tenant \"%s\" leaves %d tracked table(s) outside its scope unchanged",
						run->target->tenant, n),
				 errdetail_internal("%s", buf.data)));
}

/* ---------------------------------------------------------------------
 * Targets, locks, history
 * ---------------------------------------------------------------------
 */

/*
 * Refuse a target whose log scan would need rows pruned away (the floor of
 * each table, its tracking start, is applied in rb_load_scope).
 */
static void
rb_check_pruned(TimestampTz target, TimestampTz scan_from)
{
	TimestampTz pruned;

	bkperf_spi_exec("SELECT pruned_before FROM bkperf.log_retention_state",
					0, NULL, NULL, NULL, SPI_OK_SELECT);
	pruned = bkperf_spi_int64(1);
	if (pruned != 0 && (scan_from < pruned || target < pruned))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("rollback target is older than the change log"),
				 errdetail("The change log is complete from %s; this target needs changes from %s.",
						   timestamptz_to_str(pruned),
						   timestamptz_to_str(Min(target, scan_from))),
				 errhint("Choose a later snapshot or time; see bkperf.change_log_floor().")));
}

/*
 * Resolve a snapshot target.
 */
static void
rb_resolve_snapshot(RbTarget *t)
{
	bkperf_rb_snapshot_lookup(t->snapshot_id, t->tenant, &t->snapshot,
							  &t->target_time, &t->scan_from);
	if (t->scan_from == 0)
		t->scan_from = Min(bkperf_rb_log_floor(), t->target_time);
	bkperf_snapshot_origin_check(t->tenant, t->snapshot_id, t->target_time, &t->scan_from);
	rb_check_pruned(t->target_time, t->scan_from);
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
	t->by_commit_ts = track_commit_timestamp;
	t->scan_from = t->target_time;
	if (t->by_commit_ts)
	{
		bkperf_spi_exec("SELECT log_scan_from FROM bkperf.backup_pitr_snapshots"
						" WHERE tenant_id OPERATOR(pg_catalog.=) $1 AND created_at OPERATOR(pg_catalog.<=) $2"
						" ORDER BY created_at DESC LIMIT 1",
						2, types, values, NULL, SPI_OK_SELECT);
		if (SPI_processed > 0 && bkperf_spi_int64(1) != 0)
			t->scan_from = DatumGetTimestampTz(bkperf_spi_int64(1));
		else
			t->scan_from = Min(bkperf_rb_log_floor(), t->target_time);
	}
	bkperf_time_origin_check(t->target_time, &t->scan_from, t->by_commit_ts);
	rb_check_pruned(t->target_time, t->scan_from);
}

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
	bkperf_spi_exec("INSERT INTO bkperf.backup_pitr_rollback_history"
			" (tenant_id, snapshot_id, target_time, target_snapshot, dry_run, started_at)"
			" VALUES ($1, $2, $3, $4, $5, pg_catalog.clock_timestamp())"
			" RETURNING rollback_id, started_at",
			5, types, values, nulls, SPI_OK_INSERT_RETURNING);
	run->rollback_id = bkperf_spi_int64(1);
	run->started = DatumGetTimestampTz(bkperf_spi_int64(2));
}

/*
 * Set one phase time column of the history row to the current time (a
 * parameter, not clock_timestamp(): Citus refuses volatile functions in an
 * UPDATE of a distributed table).
 */
static void
rb_history_phase(RbRun *run, const char *column)
{
	Oid			types[3] = {TEXTOID, INT8OID, TIMESTAMPTZOID};
	Datum		values[3] = {CStringGetTextDatum(run->target->tenant),
		Int64GetDatum(run->rollback_id),
	TimestampTzGetDatum(GetCurrentTimestamp())};
	char	   *sql = psprintf("UPDATE bkperf.backup_pitr_rollback_history"
							   " SET %s = $3"
							   " WHERE tenant_id OPERATOR(pg_catalog.=) $1 AND rollback_id OPERATOR(pg_catalog.=) $2", column);

	bkperf_spi_exec(sql, 3, types, values, NULL, SPI_OK_UPDATE);
}

/*
 * The SQL predicate "this log row l is after the target" ($4 = snapshot or
 * target time).
 */
static const char *
rb_after_predicate(RbTarget *t)
{
	if (t->snapshot_id != 0)
		return bkperf_rb_after_sql(true, false, true, "$4::pg_catalog.pg_snapshot");
	return bkperf_rb_after_sql(false, t->by_commit_ts, true, "$4::pg_catalog.timestamptz");
}

/*
 * Refuse a target inside the window of an earlier unlogged rollback of the
 * tenant that changed a table of the scope (rollback_unlogged.c).
 */
static void
rb_check_unlogged(RbRun *run)
{
	RbTarget   *t = run->target;
	int64	   *ids = palloc(sizeof(int64) * Max(run->ntables, 1));

	if (run->ntables == 0)
		return;
	for (int i = 0; i < run->ntables; i++)
		ids[i] = run->tables[i].table_id;
	bkperf_rb_unlogged_check(t->tenant, t->snapshot_id != 0,
							 t->snapshot_id != 0 ? t->snapshot : TimestampTzGetDatum(t->target_time),
							 t->scan_from - RB_SCAN_MARGIN_USEC, t->by_commit_ts,
							 ids, run->ntables);
}

/* ---------------------------------------------------------------------
 * Plan and order
 * ---------------------------------------------------------------------
 */

/*
 * Build the plan (rollback_plan.c) from one scan of the tenant's log: every
 * change of a table in the scope after the target, reduced there to the
 * earliest change per key.
 */
static void
rb_build_plan(RbRun *run)
{
	RbTarget   *t = run->target;
	Datum	   *ids = palloc(sizeof(Datum) * Max(run->ntables, 1));
	Oid			types[4] = {TEXTOID, TIMESTAMPTZOID, INT8ARRAYOID,
	t->snapshot_id != 0 ? PG_SNAPSHOTOID : TIMESTAMPTZOID};
	Datum		values[4];

	for (int i = 0; i < run->ntables; i++)
		ids[i] = Int64GetDatum(run->tables[i].table_id);
	values[0] = CStringGetTextDatum(t->tenant);
	values[1] = TimestampTzGetDatum(t->scan_from - RB_SCAN_MARGIN_USEC);
	values[2] = PointerGetDatum(construct_array(ids, run->ntables, INT8OID,
												sizeof(int64), FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
	values[3] = t->snapshot_id != 0 ? t->snapshot : TimestampTzGetDatum(t->target_time);

	run->plan = bkperf_rb_plan_build(psprintf("SELECT l.table_id::pg_catalog.text, l.record_id, l.log_id,"
											  "       l.operation, l.old_data"
											  "  FROM bkperf.backup_transaction_logs l"
											  " WHERE l.tenant_id OPERATOR(pg_catalog.=) $1"
											  "   AND l.changed_at OPERATOR(pg_catalog.>=) $2"
											  "   AND l.table_id OPERATOR(pg_catalog.=) ANY ($3) AND %s",
											  rb_after_predicate(t)),
									 4, types, values, run->tables, run->is_key,
									 run->ntables);
	for (int i = 0; i < run->ntables; i++)
		bkperf_rb_plan_counts(run->plan, i, &run->tables[i].planned_present,
							  &run->tables[i].planned_absent);
}

/*
 * Does the plan change any row of table i?
 */
static bool
rb_changed(RbRun *run, int i)
{
	return run->tables[i].planned_present + run->tables[i].planned_absent > 0;
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
	bkperf_spi_exec("SELECT pg_catalog.format('%s on %s', c.conname, c.conrelid::pg_catalog.regclass)"
			"  FROM pg_catalog.pg_constraint c"
			" WHERE c.contype = 'f' AND c.confrelid OPERATOR(pg_catalog.=) ANY ($1)"
			"   AND c.conrelid OPERATOR(pg_catalog.<>) ALL ($2)"
			"   AND c.confdeltype OPERATOR(pg_catalog.=) ANY ('{c,n,d}'::\"char\"[])"
			" ORDER BY 1 LIMIT 1",
			2, types, values, NULL, SPI_OK_SELECT);
	if (SPI_processed > 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("rollback would change an untracked table through foreign key %s",
						SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1)),
				 errdetail("Deleting rows the rollback must remove would cascade into a table that is not tracked."),
				 errhint("Track the referencing table too, or change the key's ON DELETE action.")));
}

/*
 * Whether predicate fn (a bkperf function of one regclass, defined in
 * 30_capture.sql, where track_table and the DDL trigger use it too) holds
 * for table t.
 */
static bool
rb_table_is(BkperfRbTable *t, const char *fn)
{
	Oid			types[1] = {OIDOID};
	Datum		values[1] = {ObjectIdGetDatum(t->relid)};

	/* Result: the predicate. */
	bkperf_spi_exec(psprintf("SELECT pg_catalog.count(*) WHERE bkperf.%s($1)", fn),
					1, types, values, NULL, SPI_OK_SELECT);
	return bkperf_spi_int64(1) != 0;
}

/*
 * Refuse a table in table inheritance (not partitioning), tracked before
 * track_table refused it: its statements would reach rows of other tables.
 */
static void
rb_check_inheritance(BkperfRbTable *t)
{
	if (rb_table_is(t, "capture_in_inheritance"))
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("cannot roll back table %s: it uses table inheritance", t->qname),
				 errdetail("Statements on an inheritance parent change rows that live in its children, which its key does not cover."),
				 errhint("Leave the table out with an explicit table list.")));
}

/*
 * Refuse when the rollback's own changes of table t would not be logged:
 * the apply runs in replica mode, where only ENABLE ALWAYS capture triggers
 * fire (track_table makes them so; a trigger disabled or changed by hand
 * would lose them, and the rollback could not itself be rolled back).
 */
static void
rb_check_capture(BkperfRbTable *t)
{
	if (rb_table_is(t, "capture_is_off"))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("capture triggers of table %s are missing or not ENABLE ALWAYS", t->qname),
				 errdetail("The rollback's own changes would not be logged, so it could not be rolled back."),
				 errhint("Track the table again with bkperf.track_table().")));
}

/*
 * Compute the FK order of the scope (in memory, driving the apply), check
 * it, record the order of the changed tables in backup_fk_constraints_cache
 * for this rollback, and refuse tables of other owners with deferrable
 * triggers.
 */
static void
rb_order(RbRun *run)
{
	Oid		   *relids = palloc(sizeof(Oid) * Max(run->ntables, 1));
	Oid			types[6] = {TEXTOID, INT8OID, TEXTOID, INT4OID, INT4OID, TEXTARRAYOID};
	Datum		values[6];
	char		nulls[6] = {' ', ' ', ' ', ' ', ' ', ' '};

	for (int i = 0; i < run->ntables; i++)
		relids[i] = run->tables[i].relid;
	run->order = bkperf_fk_order(relids, run->ntables);
	rb_check_untracked_cascades(run);
	run->fk_checks = bkperf_rb_fk_checks(run->tables, run->ntables, run->is_key);

	values[0] = CStringGetTextDatum(run->target->tenant);
	values[1] = Int64GetDatum(run->rollback_id);
	for (int i = 0; i < run->ntables; i++)
	{
		BkperfFkTable *ft = &run->order->tables[i];

		if (!rb_changed(run, i))
			continue;
		bkperf_rb_check_owner_triggers(&run->tables[i]);
		rb_check_capture(&run->tables[i]);
		rb_check_inheritance(&run->tables[i]);
		values[2] = CStringGetTextDatum(run->tables[i].qname);
		values[3] = Int32GetDatum(ft->level);
		values[4] = Int32GetDatum(ft->cycle_group);
		nulls[4] = nulls[5] = ft->cycle_group == 0 ? 'n' : ' ';
		if (ft->cycle_group != 0)
			values[5] = PointerGetDatum(bkperf_fk_group_constraints(run->order,
																	ft->cycle_group, false));
		bkperf_spi_exec("INSERT INTO bkperf.backup_fk_constraints_cache"
						" (tenant_id, rollback_id, table_name, restore_level, cycle_group,"
						"  deferred_constraints) VALUES ($1, $2, $3, $4, $5, $6)",
						6, types, values, nulls, SPI_OK_INSERT);
	}
}

/*
 * The changed tables' indexes in restore order: parents first (by level,
 * then name), or children first when reverse.
 */
static int *
rb_ordered(RbRun *run, bool reverse, int *n)
{
	int		   *idx = palloc(sizeof(int) * Max(run->ntables, 1));

	*n = 0;
	for (int i = 0; i < run->ntables; i++)
		if (rb_changed(run, i))
			idx[(*n)++] = i;
	/* Insertion sort: a rollback changes few tables. */
	for (int a = 1; a < *n; a++)
		for (int b = a; b > 0; b--)
		{
			int			x = idx[b - 1],
						y = idx[b];
			int			lx = run->order->tables[x].level,
						ly = run->order->tables[y].level;
			int			cmp = lx != ly ? (lx < ly ? -1 : 1) :
				strcmp(run->tables[x].qname, run->tables[y].qname);

			if ((reverse ? -cmp : cmp) <= 0)
				break;
			idx[b - 1] = y;
			idx[b] = x;
		}
	return idx;
}

/* ---------------------------------------------------------------------
 * Apply
 * ---------------------------------------------------------------------
 */

/*
 * The change-log rows this transaction has written so far (all in the
 * partition of its start time).
 */
static int64
rb_own_log_rows(void)
{
	/* Result: that count. */
	bkperf_spi_exec("SELECT pg_catalog.count(*) FROM bkperf.backup_transaction_logs l"
					" WHERE l.changed_at OPERATOR(pg_catalog.=) pg_catalog.now()"
					"   AND l.txid OPERATOR(pg_catalog.=) pg_catalog.pg_current_xact_id()",
					0, NULL, NULL, NULL, SPI_OK_SELECT);
	return bkperf_spi_int64(1);
}

/*
 * With ENABLE ALWAYS triggers in scope: every change this transaction
 * logged since the apply began (before: the count then) must be one of
 * the apply's own statements' rows.  A trigger that wrote a tracked table
 * (in the scope or not, any tenant) would leave it unlike the target, and
 * is refused.
 */
static void
rb_check_trigger_writes(RbRun *run, int n, const int *idx, int64 before)
{
	int64		own = 0,
				logged;

	for (int k = 0; k < n; k++)
	{
		BkperfRbTable *t = &run->tables[idx[k]];

		own += t->deleted + t->inserted + t->updated;
	}
	logged = rb_own_log_rows() - before;
	if (logged != own)
		ereport(ERROR,
				(errcode(ERRCODE_TRIGGERED_DATA_CHANGE_VIOLATION),
				 errmsg("ENABLE ALWAYS triggers wrote %lld change(s) to tracked tables during the rollback",
						(long long) (logged - own)),
				 errdetail("The rollback wrote %lld row(s); %lld change(s) were logged while it applied them.",
						   (long long) own, (long long) logged),
				 errhint("Make the triggers ENABLE (not ALWAYS), have them do nothing when session_replication_role is replica, or leave their tables out with an explicit table list.")));
}

/*
 * The apply phase: the deletes (children first), then the upserts (parents
 * first), then the checks of what no trigger enforced in replica mode: each
 * table's rows when ENABLE ALWAYS triggers may have written them, its
 * deferrable unique and exclusion constraints (rollback_apply.c), and the
 * foreign keys the apply does not keep by construction (rollback_fk.c),
 * all set-based.  No foreign-key trigger fires in
 * the apply's replica mode, so the order serves unique constraints: a
 * value that a row written after the target holds is free again before
 * the row that held it at the target is restored.  Each table's statements
 * read its rows of the plan, and only its own.
 */
static void
rb_apply(RbRun *run)
{
	int			n;
	int		   *parents_first = rb_ordered(run, false, &n);
	int		   *children_first = rb_ordered(run, true, &n);
	bool		triggers = false;
	int64		before = 0;

	for (int k = 0; k < n && !triggers; k++)
		triggers = bkperf_rb_has_always_triggers(&run->tables[parents_first[k]]);
	if (triggers && run->target->unlogged)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("an unlogged rollback cannot restore tables with ENABLE ALWAYS triggers"),
				 errdetail("With capture off, what such a trigger writes during the rollback could not be seen."),
				 errhint("Use rollback_to_snapshot or rollback_to_time, which log their changes.")));
	if (triggers)
		before = rb_own_log_rows();
	PG_TRY();
	{
		for (int k = 0; k < n; k++)
		{
			BkperfRbTable *t = &run->tables[children_first[k]];

			bkperf_rb_plan_set_active(run->plan, children_first[k], t->owner);
			if (run->target->unlogged)
				bkperf_capture_suppress(t->table_id);
			bkperf_rb_apply_delete(t, run->target->tenant);
		}
		for (int k = 0; k < n; k++)
		{
			BkperfRbTable *t = &run->tables[parents_first[k]];

			bkperf_rb_plan_set_active(run->plan, parents_first[k], t->owner);
			if (run->target->unlogged)
				bkperf_capture_suppress(t->table_id);
			bkperf_rb_apply_upsert(t, run->target->tenant);
		}
	}
	PG_FINALLY();
	{
		bkperf_capture_suppress(0);
	}
	PG_END_TRY();
	/* What no trigger enforced, once every table is written. */
	if (triggers)
	{
		for (int k = 0; k < n; k++)
			bkperf_rb_fire_deferred_always(&run->tables[parents_first[k]]);
		rb_check_trigger_writes(run, n, parents_first, before);
	}
	for (int k = 0; k < n; k++)
	{
		BkperfRbTable *t = &run->tables[parents_first[k]];

		bkperf_rb_plan_set_active(run->plan, parents_first[k], t->owner);
		bkperf_rb_apply_verify(t, run->target->tenant, triggers);
	}
	bkperf_rb_plan_set_active(run->plan, -1, InvalidOid);
	bkperf_rb_fk_run(run->fk_checks, run->tables, run->plan);
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
		BkperfRbTable    *t = &run->tables[i];

		if (!rb_changed(run, i))
			continue;
		if (!first)
			appendStringInfoString(&buf, ", ");
		first = false;
		escape_json(&buf, t->qname);
		appendStringInfo(&buf, ": {\"deleted\": " INT64_FORMAT ", \"updated\": " INT64_FORMAT
						 ", \"inserted\": " INT64_FORMAT "}", t->deleted, t->updated, t->inserted);
	}
	appendStringInfoChar(&buf, '}');
	return buf.data;
}

/* ---------------------------------------------------------------------
 * Finish and entry points
 * ---------------------------------------------------------------------
 */

/*
 * Close the history row: status, counts, error, skipped tables, finish time.
 */
static void
rb_history_finish(RbRun *run, const char *status, int ntables, int64 *sums)
{
	Oid			types[12] = {TEXTOID, INT8OID, TEXTOID, INT4OID, INT8OID, INT8OID,
	INT8OID, TEXTOID, TEXTOID, TEXTOID, TEXTOID, TIMESTAMPTZOID};
	Datum		values[12];
	char		nulls[12] = {' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' ', ' '};

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
	values[10] = run->skipped_json ? CStringGetTextDatum(run->skipped_json) : (Datum) 0;
	nulls[10] = run->skipped_json ? ' ' : 'n';
	/* A parameter: Citus refuses volatile functions in this UPDATE. */
	values[11] = TimestampTzGetDatum(GetCurrentTimestamp());
	bkperf_spi_exec("UPDATE bkperf.backup_pitr_rollback_history"
					"   SET rollback_status = $3, tables = $4, rows_deleted = $5,"
					"       rows_updated = $6, rows_inserted = $7, table_counts = $8::pg_catalog.jsonb,"
					"       error_message = $9, error_sqlstate = $10,"
					"       skipped_tables = $11::pg_catalog.jsonb,"
					"       finished_at = $12"
					" WHERE tenant_id OPERATOR(pg_catalog.=) $1 AND rollback_id OPERATOR(pg_catalog.=) $2",
					12, types, values, nulls, SPI_OK_UPDATE);
}

/*
 * Build the summary row (rollback_id, status, tables, rows_deleted,
 * rows_updated, rows_inserted, duration_ms, error[, skipped_tables]) and
 * close the history.
 */
static Datum
rb_summary(FunctionCallInfo fcinfo, RbRun *run)
{
	TupleDesc	desc;
	Datum		values[9];
	bool		nulls[9] = {false, false, false, false, false, false, false, false, false};
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
	if (run->target->unlogged && run->error == NULL && !run->target->dry_run)
	{
		int64	   *ids = palloc(sizeof(int64) * Max(run->ntables, 1));
		int			nids = 0;

		for (int i = 0; i < run->ntables; i++)
			if (rb_changed(run, i))
				ids[nids++] = run->tables[i].table_id;
		if (nids > 0)
			bkperf_rb_unlogged_record(run->target->tenant, run->rollback_id,
									  run->target->scan_from - RB_SCAN_MARGIN_USEC,
									  run->target->by_commit_ts, ids, nids);
	}
	values[0] = Int64GetDatum(run->rollback_id);
	values[1] = CStringGetTextDatum(status);
	values[2] = Int32GetDatum(ntables);
	for (int i = 0; i < 3; i++)
		values[3 + i] = Int64GetDatum(sums[i]);
	values[6] = Float8GetDatum((GetCurrentTimestamp() - run->started) / 1000.0);
	values[7] = run->error ? CStringGetTextDatum(run->error) : (Datum) 0;
	nulls[7] = run->error == NULL;
	/* The form with an explicit table list also returns skipped_tables. */
	values[8] = run->skipped_json ?
		DirectFunctionCall1(jsonb_in, CStringGetDatum(run->skipped_json)) : (Datum) 0;
	nulls[8] = run->skipped_json == NULL;
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
	rb_load_scope(run);
	if (!target->dry_run)
		rb_lock_tables(run);
	rb_report_skipped(run);
	rb_check_unlogged(run);
	rb_history_start(run);
	rb_build_plan(run);
	rb_order(run);
	bkperf_rb_plan_prepare(run->plan);
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
 * The explicit table list of the four-argument forms (-1: none, the
 * default scope).  NULL elements and duplicates are dropped.
 */
static void
rb_table_list(FunctionCallInfo fcinfo, RbTarget *t)
{
	ArrayType  *arr;
	Datum	   *elems;
	bool	   *nulls;
	int			nelems;

	t->nlist = -1;
	if (PG_NARGS() < 4 || (t->unlogged && PG_ARGISNULL(3)))
		return;
	if (PG_ARGISNULL(3))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("tables must not be NULL"),
				 errhint("Omit the argument to roll back every table you own.")));
	arr = PG_GETARG_ARRAYTYPE_P(3);
	deconstruct_array(arr, REGCLASSOID, sizeof(Oid), true, TYPALIGN_INT,
					  &elems, &nulls, &nelems);
	t->list = palloc(sizeof(Oid) * Max(nelems, 1));
	t->nlist = 0;
	for (int i = 0; i < nelems; i++)
		if (!nulls[i])
			t->list[t->nlist++] = DatumGetObjectId(elems[i]);
	if (t->nlist == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("tables must name at least one table")));
}

/*
 * Argument checks and locks shared by both entry points.
 */
static RbTarget *
rb_begin(FunctionCallInfo fcinfo, const char *what, bool unlogged)
{
	RbTarget   *t = palloc0(sizeof(RbTarget));

	t->unlogged = unlogged;
	t->tenant = bkperf_rb_required_text(fcinfo, 0, "tenant");
	if (PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("%s must not be NULL", what)));
	if (PG_ARGISNULL(2))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("dry_run must not be NULL")));
	t->dry_run = PG_GETARG_BOOL(2);
	rb_table_list(fcinfo, t);
	SPI_connect();
	bkperf_citus_refuse_on_coordinator("a rollback");
	bkperf_rb_require_tracked();
	rb_lock_tenant(t->tenant);
	return t;
}

/*
 * Both targets of both forms: resolve, run, return the summary.
 */
static Datum
rb_entry(FunctionCallInfo fcinfo, bool by_snapshot, bool unlogged)
{
	RbTarget   *t = rb_begin(fcinfo, by_snapshot ? "snapshot_id" : "target", unlogged);
	Datum		result;

	if (by_snapshot)
	{
		t->snapshot_id = PG_GETARG_INT64(1);
		rb_resolve_snapshot(t);
	}
	else
	{
		t->target_time = PG_GETARG_TIMESTAMPTZ(1);
		rb_resolve_time(t);
	}
	result = rb_run(fcinfo, t);
	SPI_finish();
	return result;
}

/*
 * bkperf.rollback_to_snapshot(tenant, snapshot_id, dry_run[, tables]):
 * restore the tenant's rows in the tables in scope to what snapshot_id saw.
 */
Datum
bkperf_rollback_to_snapshot(PG_FUNCTION_ARGS)
{
	PG_RETURN_DATUM(rb_entry(fcinfo, true, false));
}

/*
 * bkperf.rollback_to_time(tenant, target, dry_run[, tables]): restore the
 * tenant's rows in the tables in scope to their state at the target time.
 */
Datum
bkperf_rollback_to_time(PG_FUNCTION_ARGS)
{
	PG_RETURN_DATUM(rb_entry(fcinfo, false, false));
}

/*
 * bkperf.rollback_to_snapshot_unlogged(tenant, snapshot_id, dry_run,
 * tables): the same, without logging the rollback's own changes.
 */
Datum
bkperf_rollback_to_snapshot_unlogged(PG_FUNCTION_ARGS)
{
	PG_RETURN_DATUM(rb_entry(fcinfo, true, true));
}

/*
 * bkperf.rollback_to_time_unlogged(tenant, target, dry_run, tables): the
 * same, without logging the rollback's own changes.
 */
Datum
bkperf_rollback_to_time_unlogged(PG_FUNCTION_ARGS)
{
	PG_RETURN_DATUM(rb_entry(fcinfo, false, true));
}
