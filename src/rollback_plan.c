/*-------------------------------------------------------------------------
 * rollback_plan.c
 *		The net-change plan of one rollback, held in backend memory.
 *
 * A rollback restores, for every key its tenant changed after the target,
 * the image the earliest such change saw (absent for an INSERT).  The plan
 * is built from one scan of the tenant's change log (the query comes from
 * rollback.c):
 *
 *	- every log row goes into a tuplestore of its table and kind (INSERT or
 *	  not) holding log_id, key hash, record_id and old_data; tuplestores
 *	  spill to temporary files beyond work_mem, so the row images never have
 *	  to fit in memory (the hash below is in memory: about 100 bytes plus the
 *	  record_id per changed key);
 *	- a hash table keyed by (table, record_id) keeps, per changed key, the
 *	  log_id of its earliest change and whether the key was present at the
 *	  target (that change was not an INSERT).  Keys compare as jsonb does
 *	  (1.0 and 1.00 are one numeric key), as GROUP BY record_id would.
 *
 * The apply statements read the plan through bkperf.rollback_plan_rows(
 * table, present, proto), which returns the earliest change of each key of
 * that table and kind, decoded into rows of the table (rollback_image.c,
 * with the column epochs of rollback_columns.c).  When no key of the table changed twice (the usual case)
 * every stored row is its key's earliest change and is returned without a
 * hash look-up.  It only answers inside a rollback of this backend.
 *
 * An earlier version wrote the plan into a temporary table: writing it,
 * de-duplicating it and scanning it once per statement cost more than the
 * log scan itself, and each rollback left catalog rows to vacuum.
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/table.h"
#include "catalog/pg_type.h"
#include "common/hashfn.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "nodes/params.h"
#include "tcop/dest.h"
#include "utils/builtins.h"
#include "utils/fmgrprotos.h"
#include "utils/hsearch.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/tuplestore.h"

#include "bkperf.h"

PG_FUNCTION_INFO_V1(bkperf_rollback_plan_rows);

/* Columns of the per-table tuplestores. */
#define RP_COL_LOG_ID	0
#define RP_COL_HASH		1
#define RP_COL_KEY		2
#define RP_COL_OLD		3
#define RP_NCOLS		4

/* A changed key: its table and record_id (with the record_id's hash). */
typedef struct RpKey
{
	int			table;
	uint32		hash;
	Jsonb	   *record_id;
} RpKey;

/* What the plan knows of a changed key. */
typedef struct RpEntry
{
	RpKey		key;			/* hash key: must be first */
	int64		first_log_id;	/* its earliest change after the target */
	bool		present;		/* that change was not an INSERT */
} RpEntry;

/* How the rows of one table are decoded (made on first use). */
typedef struct RpDecode
{
	TupleDesc	desc;			/* the table's row type */
	bool	   *is_key;			/* per attribute */
	BkperfImageDecoder *decoder;
	BkperfRbColumns *columns;
} RpDecode;

struct BkperfRbPlan
{
	MemoryContext cxt;
	int			ntables;
	char	  **names;			/* table key (table_id) of each table */
	int64	   *table_ids;
	Oid		   *relids;
	char	  **qnames;			/* for messages */
	bool	  **is_key;			/* per table and attribute */
	RpDecode   *decode;
	int			active;			/* table being restored, or -1 */
	Oid			active_owner;
	Tuplestorestate **rows;		/* per table and kind: every log row read */
	int64	   *repeated;		/* per table: log rows of keys seen before */
	TupleDesc	desc;			/* of those tuplestores */
	HTAB	   *keys;			/* RpKey -> RpEntry */
	int64	   *present;		/* per table: keys present at the target */
	int64	   *absent;			/* per table: keys absent at the target */
};

/* The plan of the rollback running in this backend, if any. */
static BkperfRbPlan *rp_active = NULL;

static uint32
rp_hash(const void *key, Size keysize)
{
	return ((const RpKey *) key)->hash;
}

static int
rp_match(const void *a, const void *b, Size keysize)
{
	const RpKey *ka = a;
	const RpKey *kb = b;

	if (ka->table != kb->table || ka->hash != kb->hash)
		return 1;
	return compareJsonbContainers(&ka->record_id->root, &kb->record_id->root);
}

/*
 * The key of a record_id of table t, hashed as jsonb_hash does.
 */
static void
rp_key(RpKey *key, int table, Jsonb *record_id)
{
	uint32		h = DatumGetUInt32(DirectFunctionCall1(jsonb_hash,
													   JsonbPGetDatum(record_id)));

	key->table = table;
	key->hash = hash_combine(h, (uint32) table);
	key->record_id = record_id;
}

/*
 * The index of a logged table_name among the plan's tables, or -1.  Log
 * rows come in runs of one table, so the last hit is tried first.
 */
static int
rp_table(BkperfRbPlan *plan, text *name, int last)
{
	const char *s = VARDATA_ANY(name);
	int			len = VARSIZE_ANY_EXHDR(name);

	for (int k = 0; k < plan->ntables; k++)
	{
		int			i = (last + k) % plan->ntables;

		if (strlen(plan->names[i]) == (size_t) len &&
			memcmp(plan->names[i], s, len) == 0)
			return i;
	}
	return -1;
}

/*
 * Add one log row to the plan.
 */
static void
rp_add(BkperfRbPlan *plan, int table, int64 log_id, bool is_insert,
	   Jsonb *record_id, Datum old_data, bool old_isnull)
{
	RpKey		key;
	RpEntry    *e;
	bool		found;
	Datum		values[RP_NCOLS];
	bool		nulls[RP_NCOLS] = {false, false, false, false};

	rp_key(&key, table, record_id);
	e = hash_search(plan->keys, &key, HASH_ENTER, &found);
	if (!found)
	{
		e->key.record_id = MemoryContextAlloc(plan->cxt, VARSIZE(record_id));
		memcpy(e->key.record_id, record_id, VARSIZE(record_id));
		e->first_log_id = log_id;
		e->present = !is_insert;
	}
	else
	{
		plan->repeated[table]++;
		if (log_id < e->first_log_id)
		{
			e->first_log_id = log_id;
			e->present = !is_insert;
		}
	}
	values[RP_COL_LOG_ID] = Int64GetDatum(log_id);
	values[RP_COL_HASH] = UInt32GetDatum(key.hash);
	values[RP_COL_KEY] = JsonbPGetDatum(record_id);
	values[RP_COL_OLD] = old_data;
	/* An INSERT's old image is never restored: do not keep it. */
	nulls[RP_COL_OLD] = old_isnull || is_insert;
	tuplestore_putvalues(plan->rows[2 * table + (is_insert ? 0 : 1)], plan->desc,
						 values, nulls);
}

/* Receives the log query's rows straight from the executor. */
typedef struct RpReceiver
{
	DestReceiver pub;
	BkperfRbPlan *plan;
	MemoryContext rowcxt;		/* reset per row */
	int			last;			/* table of the previous row */
} RpReceiver;

/*
 * Add the log row in slot (table_name, record_id, log_id, operation,
 * old_data) to the plan.
 */
static bool
rp_receive(TupleTableSlot *slot, DestReceiver *self)
{
	RpReceiver *r = (RpReceiver *) self;
	MemoryContext old = MemoryContextSwitchTo(r->rowcxt);
	text	   *name;
	text	   *op;
	int			table;

	slot_getallattrs(slot);
	if (slot->tts_isnull[0] || slot->tts_isnull[1] || slot->tts_isnull[2] ||
		slot->tts_isnull[3])
		elog(ERROR, "change log row with a NULL table_id, record_id, log_id or operation");
	name = DatumGetTextPP(slot->tts_values[0]);
	op = DatumGetTextPP(slot->tts_values[3]);
	table = rp_table(r->plan, name, r->last);
	if (table < 0)
		elog(ERROR, "change log row of untracked table \"%s\" in a rollback plan",
			 text_to_cstring(name));
	r->last = table;
	rp_add(r->plan, table, DatumGetInt64(slot->tts_values[2]),
		   VARSIZE_ANY_EXHDR(op) == 6 && memcmp(VARDATA_ANY(op), "INSERT", 6) == 0,
		   DatumGetJsonbP(slot->tts_values[1]), slot->tts_values[4],
		   slot->tts_isnull[4]);
	MemoryContextSwitchTo(old);
	MemoryContextReset(r->rowcxt);
	return true;
}

static void
rp_startup(DestReceiver *self, int operation, TupleDesc typeinfo)
{
	if (typeinfo->natts != 5)
		elog(ERROR, "rollback plan query must return 5 columns");
}

static void
rp_noop(DestReceiver *self)
{
}

/*
 * Build the plan from a log query returning (table key text, record_id
 * jsonb, log_id bigint, operation text, old_data jsonb), one row per change
 * after the target, in any order.  tables are the tables in the rollback's
 * scope (their key: table_id as text) and is_key their key columns (kept,
 * not copied); rows of other tables are an error.  Needs an SPI
 * connection; the plan lives in the current memory context.  The rows go
 * from the executor to the plan without being copied into SPI's result.
 */
BkperfRbPlan *
bkperf_rb_plan_build(const char *sql, int nargs, Oid *types, Datum *values,
					 BkperfRbTable *tables, bool **is_key, int ntables)
{
	MemoryContext cxt = AllocSetContextCreate(CurrentMemoryContext,
											  "bkperf rollback plan",
											  ALLOCSET_DEFAULT_SIZES);
	MemoryContext old = MemoryContextSwitchTo(cxt);
	BkperfRbPlan *plan = palloc0(sizeof(BkperfRbPlan));
	HASHCTL		ctl;
	RpReceiver	receiver;
	SPIExecuteOptions options;
	SPIPlanPtr	query;
	ParamListInfo params;
	int			ret;

	plan->cxt = cxt;
	plan->ntables = ntables;
	plan->names = palloc(sizeof(char *) * Max(ntables, 1));
	plan->rows = palloc(sizeof(Tuplestorestate *) * 2 * Max(ntables, 1));
	plan->repeated = palloc0(sizeof(int64) * Max(ntables, 1));
	plan->present = palloc0(sizeof(int64) * Max(ntables, 1));
	plan->absent = palloc0(sizeof(int64) * Max(ntables, 1));
	plan->table_ids = palloc(sizeof(int64) * Max(ntables, 1));
	plan->relids = palloc(sizeof(Oid) * Max(ntables, 1));
	plan->qnames = palloc(sizeof(char *) * Max(ntables, 1));
	plan->is_key = palloc(sizeof(bool *) * Max(ntables, 1));
	plan->decode = palloc0(sizeof(RpDecode) * Max(ntables, 1));
	plan->active = -1;
	for (int i = 0; i < ntables; i++)
	{
		plan->names[i] = pstrdup(tables[i].key);
		plan->table_ids[i] = tables[i].table_id;
		plan->relids[i] = tables[i].relid;
		plan->qnames[i] = pstrdup(tables[i].qname);
		plan->is_key[i] = is_key[i];
		/* Beyond work_mem the rows spill to temporary files, as a sort's do. */
		plan->rows[2 * i] = tuplestore_begin_heap(false, false, work_mem);
		plan->rows[2 * i + 1] = tuplestore_begin_heap(false, false, work_mem);
	}
	plan->desc = CreateTemplateTupleDesc(RP_NCOLS);
	TupleDescInitEntry(plan->desc, RP_COL_LOG_ID + 1, "log_id", INT8OID, -1, 0);
	TupleDescInitEntry(plan->desc, RP_COL_HASH + 1, "hash", INT4OID, -1, 0);
	TupleDescInitEntry(plan->desc, RP_COL_KEY + 1, "record_id", JSONBOID, -1, 0);
	TupleDescInitEntry(plan->desc, RP_COL_OLD + 1, "old_data", JSONBOID, -1, 0);
	ctl.keysize = sizeof(RpKey);
	ctl.entrysize = sizeof(RpEntry);
	ctl.hash = rp_hash;
	ctl.match = rp_match;
	ctl.hcxt = cxt;
	plan->keys = hash_create("bkperf rollback plan keys", 1024, &ctl,
							 HASH_ELEM | HASH_FUNCTION | HASH_COMPARE | HASH_CONTEXT);
	MemoryContextSwitchTo(old);

	memset(&receiver, 0, sizeof(receiver));
	receiver.pub.receiveSlot = rp_receive;
	receiver.pub.rStartup = rp_startup;
	receiver.pub.rShutdown = rp_noop;
	receiver.pub.rDestroy = rp_noop;
	receiver.pub.mydest = DestNone;
	receiver.plan = plan;
	receiver.rowcxt = AllocSetContextCreate(CurrentMemoryContext,
											"bkperf rollback plan row",
											ALLOCSET_SMALL_SIZES);
	query = SPI_prepare(sql, nargs, types);
	if (query == NULL)
		elog(ERROR, "SPI_prepare failed (%s): %s",
			 SPI_result_code_string(SPI_result), sql);
	params = makeParamList(nargs);
	for (int i = 0; i < nargs; i++)
	{
		params->params[i].value = values[i];
		params->params[i].isnull = false;
		params->params[i].pflags = PARAM_FLAG_CONST;
		params->params[i].ptype = types[i];
	}
	memset(&options, 0, sizeof(options));
	options.params = params;
	/*
	 * Not read-only: SPI then takes a fresh snapshot, which sees the writers
	 * the rollback's table locks waited for.
	 */
	options.read_only = false;
	options.dest = &receiver.pub;
	ret = SPI_execute_plan_extended(query, &options);
	/* SPI reports a SELECT into a receiver of its own as a utility command. */
	if (ret != SPI_OK_SELECT && ret != SPI_OK_UTILITY)
		elog(ERROR, "SPI statement failed (%s): %s", SPI_result_code_string(ret), sql);
	SPI_freeplan(query);
	MemoryContextDelete(receiver.rowcxt);

	{
		HASH_SEQ_STATUS seq;
		RpEntry    *e;

		hash_seq_init(&seq, plan->keys);
		while ((e = hash_seq_search(&seq)) != NULL)
		{
			if (e->present)
				plan->present[e->key.table]++;
			else
				plan->absent[e->key.table]++;
		}
	}
	return plan;
}

/*
 * How many keys of table i were present and absent at the target.
 */
void
bkperf_rb_plan_counts(BkperfRbPlan *plan, int i, int64 *present, int64 *absent)
{
	*present = plan->present[i];
	*absent = plan->absent[i];
}

/*
 * Make plan the one bkperf.rollback_plan_rows() reads (NULL: none); returns
 * the previous one, to be restored afterwards (also on error).
 */
BkperfRbPlan *
bkperf_rb_plan_activate(BkperfRbPlan *plan)
{
	BkperfRbPlan *prev = rp_active;

	rp_active = plan;
	return prev;
}

/*
 * Release a plan's memory and temporary files.
 */
void
bkperf_rb_plan_free(BkperfRbPlan *plan)
{
	for (int i = 0; i < 2 * plan->ntables; i++)
		tuplestore_end(plan->rows[i]);
	MemoryContextDelete(plan->cxt);
}

/*
 * Make table i of the plan (run as role owner) the one whose rows
 * bkperf.rollback_plan_rows() serves, with the relation whose row type the
 * rows are decoded into; -1: none.
 */
void
bkperf_rb_plan_set_active(BkperfRbPlan *plan, int i, Oid owner)
{
	plan->active = i;
	plan->active_owner = owner;
}

/*
 * Make the decoding state (row type, decoder, column epochs) of every table
 * the plan changes, in the plan's context.  Called by the rollback, as its
 * caller, before the apply: the apply runs as each table's owner, who may
 * not read bkperf's catalog.  Needs an SPI connection.
 */
void
bkperf_rb_plan_prepare(BkperfRbPlan *plan)
{
	for (int i = 0; i < plan->ntables; i++)
	{
		RpDecode   *d = &plan->decode[i];
		MemoryContext old;
		Relation	rel;

		if (plan->present[i] + plan->absent[i] == 0)
			continue;
		old = MemoryContextSwitchTo(plan->cxt);
		rel = table_open(plan->relids[i], AccessShareLock);
		d->desc = CreateTupleDescCopy(RelationGetDescr(rel));
		table_close(rel, NoLock);
		d->is_key = plan->is_key[i];
		d->decoder = bkperf_image_decoder(d->desc);
		d->columns = bkperf_rb_columns(plan->table_ids[i], d->desc, d->is_key);
		MemoryContextSwitchTo(old);
	}
}

/*
 * bkperf_image_decode, with a decoding error's detail saying which column
 * of which table and log entry could not be restored (the decoder's error
 * context, which the rollback's summary would not show).
 */
static void
rp_decode_guarded(BkperfRbPlan *plan, int table, RpDecode *d, int64 log_id,
				  Jsonb *image, const char *const *keys, Datum *values,
				  bool *nulls, bool *absent)
{
	MemoryContext cxt = CurrentMemoryContext;

	PG_TRY();
	{
		bkperf_image_decode(d->decoder, image, keys, values, nulls, absent);
	}
	PG_CATCH();
	{
		ErrorData  *edata;
		char	   *where;

		MemoryContextSwitchTo(cxt);
		edata = CopyErrorData();
		if (edata->detail != NULL || edata->context == NULL ||
			edata->sqlerrcode == ERRCODE_QUERY_CANCELED)
			PG_RE_THROW();
		FlushErrorState();
		where = pstrdup(edata->context);
		where[strcspn(where, "\n")] = '\0';
		edata->detail = psprintf("The value of %s of table %s in change log entry %lld cannot be restored.",
								 where, plan->qnames[table], (long long) log_id);
		ReThrowError(edata);
	}
	PG_END_TRY();
}

/*
 * Decode one plan row's image (old_data, or record_id for a key absent at
 * the target) into values/nulls of the table's row.  Columns added after
 * the image was logged get the value ADD COLUMN gave existing rows; a
 * column the image should hold but lacks, or an added column whose value is
 * unknown, makes the rollback fail: it would not be exact.
 */
static void
rp_decode_row(BkperfRbPlan *plan, int table, RpDecode *d, int64 log_id,
			  Jsonb *image, bool present, Datum *values, bool *nulls)
{
	BkperfRbEpoch *e = bkperf_rb_columns_epoch(d->columns, log_id);
	int			natts = d->desc->natts;
	bool	   *absent = palloc0(sizeof(bool) * Max(natts, 1));

	rp_decode_guarded(plan, table, d, log_id, image, present ? e->keys : e->key_keys,
					  values, nulls, absent);
	for (int i = 0; i < natts; i++)
	{
		const char *name = NameStr(TupleDescAttr(d->desc, i)->attname);

		if (!present && !d->is_key[i])
			continue;
		if (absent[i])
			ereport(ERROR,
					(errcode(ERRCODE_DATA_CORRUPTED),
					 errmsg("cannot restore column \"%s\" of table %s exactly: its logged image has no key \"%s\"",
							name, plan->qnames[table], e->keys[i]),
					 errdetail("The change log entry %lld does not hold the column.", (long long) log_id)));
		if (e->kind[i] == 'u')
			ereport(ERROR,
					(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
					 errmsg("cannot restore column \"%s\" of table %s exactly: it was added after the target and the value it gave existing rows is unknown",
							name, plan->qnames[table]),
					 errdetail("The column was added with a volatile default or in a table rewrite."),
					 errhint("Choose a target after the column was added.")));
		if (e->kind[i] == 'a')
		{
			nulls[i] = e->added[i] == NULL;
			values[i] = nulls[i] ? (Datum) 0 :
				bkperf_image_decode_text(d->decoder, i, e->added[i]);
		}
	}
	pfree(absent);
}

/*
 * bkperf.rollback_plan_rows(table_key, present, proto): rows of the running
 * rollback's plan for one table, as rows of that table (proto's type): the
 * target images of the keys present at the target, or the keys (other
 * columns NULL) of those absent at it.  Each key's earliest change after
 * the target is the one served.  It answers only inside a rollback of this
 * backend, only for the table whose statements are running, and only to
 * that table's owner: a trigger of another role cannot read the plan.
 */
Datum
bkperf_rollback_plan_rows(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	BkperfRbPlan *plan = rp_active;
	bool		present;
	int			table;
	Tuplestorestate *ts;
	TupleTableSlot *slot;
	MemoryContext rowcxt;
	RpDecode   *d;
	Datum	   *values;
	bool	   *nulls;

	if (plan == NULL || plan->active < 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("bkperf.rollback_plan_rows() can only be called by a rollback"),
				 errdetail("It reads the plan of the rollback running in this session.")));
	bkperf_require_arg(fcinfo, 0, "table_key");
	bkperf_require_arg(fcinfo, 1, "present");
	present = PG_GETARG_BOOL(1);
	table = rp_table(plan, PG_GETARG_TEXT_PP(0), 0);
	if (table != plan->active || GetUserId() != plan->active_owner ||
		get_fn_expr_argtype(fcinfo->flinfo, 2) != get_rel_type_id(plan->relids[table]))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("bkperf.rollback_plan_rows() only serves the table the rollback is restoring")));
	InitMaterializedSRF(fcinfo, 0);
	if ((present ? plan->present[table] : plan->absent[table]) == 0)
		PG_RETURN_NULL();

	d = &plan->decode[table];
	if (d->desc == NULL || d->desc->tdtypeid != get_rel_type_id(plan->relids[table]))
		elog(ERROR, "rollback plan of table %s was not prepared", plan->qnames[table]);
	values = palloc(sizeof(Datum) * Max(d->desc->natts, 1));
	nulls = palloc(sizeof(bool) * Max(d->desc->natts, 1));
	ts = plan->rows[2 * table + (present ? 1 : 0)];
	tuplestore_rescan(ts);
	slot = MakeSingleTupleTableSlot(plan->desc, &TTSOpsMinimalTuple);
	rowcxt = AllocSetContextCreate(CurrentMemoryContext, "bkperf rollback plan row",
								   ALLOCSET_DEFAULT_SIZES);
	while (tuplestore_gettupleslot(ts, true, false, slot))
	{
		MemoryContext old;
		int64		log_id;

		CHECK_FOR_INTERRUPTS();
		slot_getallattrs(slot);
		log_id = DatumGetInt64(slot->tts_values[RP_COL_LOG_ID]);
		MemoryContextReset(rowcxt);
		old = MemoryContextSwitchTo(rowcxt);
		if (plan->repeated[table] != 0)
		{
			RpKey		key;
			RpEntry    *e;

			key.table = table;
			key.hash = DatumGetUInt32(slot->tts_values[RP_COL_HASH]);
			key.record_id = DatumGetJsonbP(slot->tts_values[RP_COL_KEY]);
			e = hash_search(plan->keys, &key, HASH_FIND, NULL);
			if (e == NULL)
				elog(ERROR, "rollback plan lost a key of table %s", plan->qnames[table]);
			if (e->first_log_id != log_id || e->present != present)
			{
				MemoryContextSwitchTo(old);
				continue;
			}
		}
		rp_decode_row(plan, table, d, log_id,
					  DatumGetJsonbP(slot->tts_values[present ? RP_COL_OLD : RP_COL_KEY]),
					  present, values, nulls);
		MemoryContextSwitchTo(old);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	ExecDropSingleTupleTableSlot(slot);
	MemoryContextDelete(rowcxt);
	PG_RETURN_NULL();
}
