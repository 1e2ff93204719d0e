/*-------------------------------------------------------------------------
 * capture.c
 *		The change capture triggers of tracked tables.
 *
 * bkperf.track_table() puts three AFTER ... FOR EACH STATEMENT triggers with
 * transition tables on a table (one per event: PostgreSQL refuses transition
 * tables on multi-event triggers), all calling bkperf_capture, and a BEFORE
 * TRUNCATE trigger calling bkperf_capture_truncate.  On a partitioned table
 * the same triggers go on every partition too, because statement triggers of
 * the parent do not fire for DML aimed at a partition, and those of a
 * partition do not fire for DML through the parent: each statement is
 * captured exactly once.
 *
 * Trigger arguments: '#' and the tracked table's table_id (logged as
 * table_id, with the tracked table's current name as table_name, also when
 * the trigger sits on a partition), the tenant column, the capture mode
 * ('full' or 'undo') and the key columns.  Triggers created by 1.0 pass the
 * table's OID first: they go on working until ALTER EXTENSION UPDATE
 * recreates them, logging no table_id.
 *
 * Per statement, bkperf_capture takes the column types from a per-trigger
 * cache (built by capture_json.c, reset by relcache invalidation), reads the
 * transition tables and hands every log row to the bulk writer
 * (capture_log.c).  The row contract is in the header of
 * sql/parts/12_transaction_log.sql.  An UPDATE that changes the key or the
 * tenant of a row is logged as a DELETE of the old row and an INSERT of the
 * new one; every DELETE half of a statement precedes every INSERT half.
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/partition.h"
#include "catalog/pg_collation.h"
#include "commands/trigger.h"
#include "executor/executor.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/hsearch.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/syscache.h"
#include "utils/tuplestore.h"

#include "bkperf.h"

PG_FUNCTION_INFO_V1(bkperf_capture);
PG_FUNCTION_INFO_V1(bkperf_capture_truncate);

/* Index of the fixed trigger arguments. */
#define CS_ARG_TABLE	0
#define CS_ARG_TENANT	1
#define CS_ARG_MODE		2
#define CS_ARG_KEY		3

/* What one firing of the capture trigger needs. */
typedef struct CaptureStmt
{
	Relation	rel;			/* the table the trigger fired on */
	CaptureJsonColumn *cols;	/* per column of rel */
	CaptureJsonShape *row;		/* every live column */
	CaptureJsonShape *key;		/* the key columns */
	CaptureJsonColumn *tenant;	/* the tenant column */
	bool		undo;			/* capture mode 'undo' */
	CaptureLogWriter *w;
} CaptureStmt;

/*
 * The attribute number of a named live column of rel, or an error saying
 * that tracking is stale (the column was dropped or renamed).
 */
static AttrNumber
cs_column(Relation rel, const char *name, const char *tracked)
{
	TupleDesc	desc = RelationGetDescr(rel);

	for (int i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i);

		if (!att->attisdropped && strcmp(NameStr(att->attname), name) == 0)
			return att->attnum;
	}
	ereport(ERROR,
			(errcode(ERRCODE_UNDEFINED_COLUMN),
			 errmsg("column \"%s\" of tracked table %s does not exist",
					name, tracked),
			 errdetail("Change capture needs the tenant and key columns the table was tracked with."),
			 errhint("Track the table again with bkperf.track_table().")));
	return InvalidAttrNumber;	/* keep compiler quiet */
}

/*
 * The schema-qualified name of the tracked table, as logged in table_name.
 */
static char *
cs_table_name(Oid relid)
{
	char	   *rel = get_rel_name(relid);

	if (rel == NULL)
		elog(ERROR, "tracked table with OID %u does not exist", relid);
	return quote_qualified_identifier(get_namespace_name(get_rel_namespace(relid)),
									  rel);
}

/*
 * Per-trigger cache of what cs_init computes from the catalogs (column types,
 * image shapes, the tracked table's name), so that a one-row statement does
 * not pay dozens of catalog lookups.  Entries are keyed by trigger OID (its
 * arguments never change) and marked stale by relcache invalidation of the
 * table or of the tracked parent (ALTER TABLE, renames) and by any type
 * change; a stale entry is rebuilt on its next use.
 */
typedef struct CaptureCacheEntry
{
	Oid			tgoid;			/* hash key */
	Oid			relid;			/* the table the trigger is on */
	Oid			tracked;		/* the tracked table (relid or a parent) */
	bool		valid;
	MemoryContext cxt;			/* everything below */
	CaptureJsonColumn *cols;
	CaptureJsonShape *row;
	CaptureJsonShape *key;
	CaptureJsonColumn *tenant;
	bool		undo;
	char	   *table_name;
	int64		table_id;		/* 0: a 1.0 trigger, no table_id */
	Oid			log_rel;		/* Citus log shard, or InvalidOid (citus.c) */
} CaptureCacheEntry;

static HTAB *cs_cache = NULL;

/*
 * The table_id whose capture an unlogged rollback's apply switched off
 * (bkperf_capture_suppress), or 0.  Set and reset around each of its
 * statements by rollback.c, never by SQL.
 */
static int64 cs_suppressed = 0;

/*
 * Relcache invalidation: entries of the invalidated table (all of them for
 * InvalidOid) become stale.
 */
static void
cs_relcache_cb(Datum arg, Oid relid)
{
	HASH_SEQ_STATUS seq;
	CaptureCacheEntry *e;

	hash_seq_init(&seq, cs_cache);
	while ((e = hash_seq_search(&seq)) != NULL)
		if (relid == InvalidOid || e->relid == relid || e->tracked == relid)
			e->valid = false;
}

/*
 * Type invalidation: output functions or categories may have changed.
 */
static void
cs_type_cb(Datum arg, int cacheid, uint32 hashvalue)
{
	cs_relcache_cb(arg, InvalidOid);
}

/*
 * Create the cache and register its callbacks, on first use.
 */
static void
cs_cache_init(void)
{
	HASHCTL		ctl;

	ctl.keysize = sizeof(Oid);
	ctl.entrysize = sizeof(CaptureCacheEntry);
	cs_cache = hash_create("bkperf capture cache", 64, &ctl,
						   HASH_ELEM | HASH_BLOBS);
	CacheRegisterRelcacheCallback(cs_relcache_cb, (Datum) 0);
	CacheRegisterSyscacheCallback(TYPEOID, cs_type_cb, (Datum) 0);
}

/*
 * The tracked table a trigger on rel logs under: rel's partition root (only
 * roots are tracked), or rel itself.  A table tracked on its own under 1.0
 * and attached later is refused by the partition event trigger.
 */
static Oid
cs_tracked(Relation rel)
{
	List	   *ancestors = NIL;

	if (rel->rd_rel->relispartition)
		ancestors = get_partition_ancestors(RelationGetRelid(rel));
	return ancestors != NIL ? llast_oid(ancestors) : RelationGetRelid(rel);
}

/*
 * The table_id in a 1.1 trigger's first argument ('#42'), or 0 for a 1.0
 * trigger (the table's OID).
 */
static int64
cs_table_id(const char *arg)
{
	if (arg[0] != '#')
		return 0;
	return DatumGetInt64(DirectFunctionCall1(int8in, CStringGetDatum(arg + 1)));
}

/*
 * Fill a cache entry from the trigger arguments and the relation, in the
 * entry's own memory context.
 */
static void
cs_cache_build(CaptureCacheEntry *e, Relation rel, Trigger *tg)
{
	MemoryContext old = MemoryContextSwitchTo(e->cxt);
	TupleDesc	desc = RelationGetDescr(rel);
	int			nkeys = tg->tgnargs - CS_ARG_KEY;
	AttrNumber *keys = palloc(sizeof(AttrNumber) * nkeys);
	Oid			logical;

	e->relid = RelationGetRelid(rel);
	e->tracked = cs_tracked(rel);
	e->table_id = cs_table_id(tg->tgargs[CS_ARG_TABLE]);
	e->log_rel = bkperf_citus_log_target(e->tracked, &logical);
	e->table_name = cs_table_name(logical);
	e->undo = strcmp(tg->tgargs[CS_ARG_MODE], "undo") == 0;
	e->cols = capture_json_columns(desc);
	e->row = capture_json_shape(e->cols, desc->natts, NULL, 0);
	for (int i = 0; i < nkeys; i++)
		keys[i] = cs_column(rel, tg->tgargs[CS_ARG_KEY + i], e->table_name);
	e->key = capture_json_shape(e->cols, desc->natts, keys, nkeys);
	e->tenant = &e->cols[cs_column(rel, tg->tgargs[CS_ARG_TENANT],
								   e->table_name) - 1];
	MemoryContextSwitchTo(old);
	e->valid = true;
}

/*
 * The valid cache entry of a trigger, rebuilt when missing or stale.
 */
static CaptureCacheEntry *
cs_cache_get(Relation rel, Trigger *tg)
{
	CaptureCacheEntry *e;
	bool		found;

	if (cs_cache == NULL)
		cs_cache_init();
	e = hash_search(cs_cache, &tg->tgoid, HASH_ENTER, &found);
	if (found && e->valid && e->relid == RelationGetRelid(rel))
		return e;
	if (!found)
		e->cxt = NULL;
	e->valid = false;
	if (e->cxt != NULL)
		MemoryContextDelete(e->cxt);
	e->cxt = AllocSetContextCreate(CacheMemoryContext, "bkperf capture entry",
								   ALLOCSET_SMALL_SIZES);
	cs_cache_build(e, rel, tg);
	return e;
}

/*
 * A copy of a cached shape whose per-row pairs belong to this statement, so
 * that a nested capture (an output function running SQL) cannot overwrite
 * them.
 */
static CaptureJsonShape *
cs_shape_copy(const CaptureJsonShape *cached)
{
	CaptureJsonShape *shape = palloc(sizeof(CaptureJsonShape));

	*shape = *cached;
	shape->pairs = palloc(sizeof(JsonbPair) * Max(cached->ncols, 1));
	memcpy(shape->pairs, cached->pairs, sizeof(JsonbPair) * cached->ncols);
	return shape;
}

/*
 * Check how we were called and set cs up from the cached trigger data;
 * false when an unlogged rollback switched this table's capture off.
 */
static bool
cs_init(CaptureStmt *cs, TriggerData *td)
{
	Trigger    *tg = td->tg_trigger;
	CaptureCacheEntry *e;

	if (!TRIGGER_FIRED_AFTER(td->tg_event) ||
		!TRIGGER_FIRED_FOR_STATEMENT(td->tg_event) ||
		TRIGGER_FIRED_BY_TRUNCATE(td->tg_event) ||
		tg->tgnargs <= CS_ARG_KEY)
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("bkperf.capture() must be fired AFTER INSERT, UPDATE or DELETE FOR EACH STATEMENT with its tracking arguments"),
				 errhint("Use bkperf.track_table() to create the capture triggers.")));
	cs->rel = td->tg_relation;
	e = cs_cache_get(cs->rel, tg);
	if (cs_suppressed != 0 && e->table_id == cs_suppressed)
		return false;
	cs->undo = e->undo;
	cs->cols = e->cols;
	cs->row = cs_shape_copy(e->row);
	cs->key = cs_shape_copy(e->key);
	cs->tenant = e->tenant;
	cs->w = capture_log_open(CStringGetTextDatum(e->table_name), e->table_id,
							 tuplestore_tuple_count(td->tg_newtable ? td->tg_newtable
													: td->tg_oldtable),
							 e->log_rel);
	return true;
}

/*
 * A reader of a transition table from its first row, with a read pointer of
 * its own so that other triggers reading the same table are not disturbed.
 */
static TupleTableSlot *
cs_reader(CaptureStmt *cs, Tuplestorestate *ts, int *ptr)
{
	*ptr = tuplestore_alloc_read_pointer(ts, EXEC_FLAG_REWIND);
	tuplestore_select_read_pointer(ts, *ptr);
	tuplestore_rescan(ts);
	return MakeSingleTupleTableSlot(RelationGetDescr(cs->rel),
									&TTSOpsMinimalTuple);
}

/*
 * The next row of a transition table into slot, all attributes deformed;
 * false at the end.
 */
static bool
cs_next(Tuplestorestate *ts, int ptr, TupleTableSlot *slot)
{
	tuplestore_select_read_pointer(ts, ptr);
	if (!tuplestore_gettupleslot(ts, true, false, slot))
		return false;
	slot_getallattrs(slot);
	return true;
}

/*
 * The tenant of the row in slot as log text (isnull set for NULL tenants).
 */
static Datum
cs_tenant(CaptureStmt *cs, TupleTableSlot *slot, bool *isnull)
{
	int			a = cs->tenant->attnum - 1;

	*isnull = slot->tts_isnull[a];
	return *isnull ? (Datum) 0 : capture_json_text(cs->tenant, slot->tts_values[a]);
}

/*
 * Queue the log row of one change.  The key and tenant come from newslot
 * for INSERT and UPDATE and from oldslot for DELETE; the images follow the
 * capture mode.  Runs in the writer's batch context.
 */
static void
cs_log(CaptureStmt *cs, CaptureOp op, TupleTableSlot *oldslot,
	   TupleTableSlot *newslot, Jsonb *key)
{
	CaptureLogRow row;
	MemoryContext old = MemoryContextSwitchTo(cs->w->batchcxt);
	TupleTableSlot *keyslot = op == CAPTURE_OP_DELETE ? oldslot : newslot;

	row.operation = op;
	row.tenant = cs_tenant(cs, keyslot, &row.tenant_isnull);
	row.record_id = key ? key : capture_json_build(cs->key, keyslot);
	row.old_data = NULL;
	row.new_data = NULL;
	if (op != CAPTURE_OP_INSERT)
		row.old_data = capture_json_build(cs->row, oldslot);
	if (op != CAPTURE_OP_DELETE && !cs->undo)
		row.new_data = capture_json_build(cs->row, newslot);
	capture_log_add(cs->w, &row);
	MemoryContextSwitchTo(old);
}

/*
 * Log every row of a transition table as op (INSERT or DELETE).
 */
static void
cs_log_all(CaptureStmt *cs, Tuplestorestate *ts, CaptureOp op)
{
	int			ptr;
	TupleTableSlot *slot = cs_reader(cs, ts, &ptr);

	while (cs_next(ts, ptr, slot))
	{
		CHECK_FOR_INTERRUPTS();
		if (op == CAPTURE_OP_INSERT)
			cs_log(cs, op, NULL, slot, NULL);
		else
			cs_log(cs, op, slot, NULL, NULL);
	}
	ExecDropSingleTupleTableSlot(slot);
}

/*
 * Whether a column has the same value in both rows, by binary equality
 * first and by its log text (tenant) or jsonb (key) otherwise.
 */
static bool
cs_same_value(CaptureStmt *cs, AttrNumber attnum, TupleTableSlot *a,
			  TupleTableSlot *b)
{
	Form_pg_attribute att = TupleDescAttr(RelationGetDescr(cs->rel), attnum - 1);
	int			i = attnum - 1;

	if (a->tts_isnull[i] || b->tts_isnull[i])
		return a->tts_isnull[i] && b->tts_isnull[i];
	return datumIsEqual(a->tts_values[i], b->tts_values[i],
						att->attbyval, att->attlen);
}

/*
 * Whether an UPDATE keeps the row's identity (key and tenant), so that it
 * is logged as one UPDATE and not as a DELETE and an INSERT.
 */
static bool
cs_same_identity(CaptureStmt *cs, TupleTableSlot *o, TupleTableSlot *n)
{
	bool		same = true;
	MemoryContext old;

	for (int i = 0; i < cs->key->ncols && same; i++)
		same = cs_same_value(cs, cs->key->cols[i]->attnum, o, n);
	if (same && cs_same_value(cs, cs->tenant->attnum, o, n))
		return true;
	/* Binary different: compare what the log would record. */
	old = MemoryContextSwitchTo(cs->w->batchcxt);
	{
		Jsonb	   *ko = capture_json_build(cs->key, o);
		Jsonb	   *kn = capture_json_build(cs->key, n);
		bool		onull,
					nnull;
		Datum		to = cs_tenant(cs, o, &onull);
		Datum		tn = cs_tenant(cs, n, &nnull);

		same = compareJsonbContainers(&ko->root, &kn->root) == 0 &&
			onull == nnull &&
			(onull || DatumGetBool(DirectFunctionCall2Coll(texteq, C_COLLATION_OID, to, tn)));
	}
	MemoryContextSwitchTo(old);
	return same;
}

/*
 * Log an UPDATE statement.  Old and new transition rows pair up by position.
 * Rows keeping their identity are logged as UPDATE; the others as a DELETE
 * half in the first pass and an INSERT half in a second pass, so that all
 * DELETE halves come first.
 */
static void
cs_log_update(CaptureStmt *cs, Tuplestorestate *olds, Tuplestorestate *news)
{
	int			optr,
				nptr;
	TupleTableSlot *o = cs_reader(cs, olds, &optr);
	TupleTableSlot *n = cs_reader(cs, news, &nptr);
	int			nrows = 0,
				cap = 64;
	bool	   *moved = palloc0(cap);
	bool		anymoved = false;

	while (cs_next(olds, optr, o))
	{
		CHECK_FOR_INTERRUPTS();
		if (!cs_next(news, nptr, n))
			elog(ERROR, "transition tables of an UPDATE differ in length");
		if (nrows == cap)
		{
			moved = repalloc(moved, cap * 2);
			memset(moved + cap, 0, cap);
			cap *= 2;
		}
		moved[nrows] = !cs_same_identity(cs, o, n);
		anymoved |= moved[nrows];
		cs_log(cs, moved[nrows] ? CAPTURE_OP_DELETE : CAPTURE_OP_UPDATE, o, n, NULL);
		nrows++;
	}
	if (anymoved)
	{
		tuplestore_select_read_pointer(news, nptr);
		tuplestore_rescan(news);
		for (int i = 0; cs_next(news, nptr, n); i++)
			if (i < nrows && moved[i])
				cs_log(cs, CAPTURE_OP_INSERT, NULL, n, NULL);
	}
	ExecDropSingleTupleTableSlot(o);
	ExecDropSingleTupleTableSlot(n);
}

/*
 * bkperf.capture(): AFTER INSERT/UPDATE/DELETE FOR EACH STATEMENT trigger
 * with transition tables, writing the statement's change log rows in bulk.
 */
Datum
bkperf_capture(PG_FUNCTION_ARGS)
{
	TriggerData *td = (TriggerData *) fcinfo->context;
	CaptureStmt cs;

	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("bkperf.capture() was not called by trigger manager")));
	if (TRIGGER_FIRED_BY_INSERT(td->tg_event) ? td->tg_newtable == NULL :
		TRIGGER_FIRED_BY_DELETE(td->tg_event) ? td->tg_oldtable == NULL :
		(td->tg_oldtable == NULL || td->tg_newtable == NULL))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("bkperf.capture() needs the transition tables of its event"),
				 errhint("Use bkperf.track_table() to create the capture triggers.")));
	if (!cs_init(&cs, td))
		return PointerGetDatum(NULL);
	if (TRIGGER_FIRED_BY_INSERT(td->tg_event))
		cs_log_all(&cs, td->tg_newtable, CAPTURE_OP_INSERT);
	else if (TRIGGER_FIRED_BY_DELETE(td->tg_event))
		cs_log_all(&cs, td->tg_oldtable, CAPTURE_OP_DELETE);
	else
		cs_log_update(&cs, td->tg_oldtable, td->tg_newtable);
	capture_log_close(cs.w);
	return PointerGetDatum(NULL);
}

/*
 * Switch capture off for one tracked table's triggers (0: on again).
 */
void
bkperf_capture_suppress(int64 table_id)
{
	cs_suppressed = table_id;
}

/*
 * bkperf.capture_truncate(): BEFORE TRUNCATE trigger of tracked tables.
 * TRUNCATE leaves no rows in the transition tables, so the log could not
 * undo it: refuse it.
 */
Datum
bkperf_capture_truncate(PG_FUNCTION_ARGS)
{
	TriggerData *td = (TriggerData *) fcinfo->context;

	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("bkperf.capture_truncate() was not called by trigger manager")));
	ereport(ERROR,
			(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
			 errmsg("cannot truncate tracked table \"%s\"",
					RelationGetRelationName(td->tg_relation)),
			 errdetail("TRUNCATE is not recorded in the change log, so a tenant rollback could not undo it."),
			 errhint("Use DELETE, or stop tracking the table first with bkperf.untrack_table().")));
	PG_RETURN_NULL();
}
