/*-------------------------------------------------------------------------
 * capture_log.c
 *		Bulk writer of bkperf.backup_transaction_logs rows.
 *
 * The capture trigger hands over one statement's log rows; this file writes
 * them the way COPY FROM does: the target partition is chosen once per
 * statement (every row of a transaction has changed_at = now(), the
 * transaction start), rows are collected into slots and written in batches
 * with table_multi_insert, and each batch's index entries are then inserted
 * with ExecInsertIndexTuples.  No SPI, no executor per row, and no privilege
 * check: the log is written whatever the writing role may do with it.
 *
 * The rows satisfy the log's NOT NULL and CHECK constraints by construction
 * (capture.c only produces INSERT, UPDATE and DELETE), and the partition is
 * found from the partition bounds exactly as tuple routing finds it, so the
 * partition constraint holds.
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/heapam.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/partition.h"
#include "commands/sequence.h"
#include "executor/executor.h"
#include "miscadmin.h"
#include "partitioning/partbounds.h"
#include "partitioning/partdesc.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/partcache.h"
#include "utils/inval.h"
#include "utils/rel.h"
#include "utils/syscache.h"
#include "utils/timestamp.h"
#include "utils/xid8.h"

#include "bkperf.h"
#include "compat.h"

/* Rows per table_multi_insert call (COPY uses 1000 too). */
#define CL_BATCH_ROWS	1000

/* The log's columns, in the order of the CREATE TABLE. */
static const char *const cl_colnames[CL_NCOLS] = {
	"log_id", "tenant_id", "table_name", "operation", "record_id",
	"old_data", "new_data", "changed_at", "txid", "changed_by", "table_id"
};

/* Columns a 1.0 catalog lacks (the library is newer until ALTER EXTENSION). */
#define CL_FIRST_OPTIONAL	10

/*
 * The attribute number of a named column of rel, or an error.
 */
static AttrNumber
cl_attnum(Relation rel, const char *colname)
{
	AttrNumber	attnum = get_attnum(RelationGetRelid(rel), colname);

	if (attnum == InvalidAttrNumber)
		elog(ERROR, "column \"%s\" missing from change log relation \"%s\"",
			 colname, RelationGetRelationName(rel));
	return attnum;
}

/*
 * The partition of a range-partitioned rel that holds changed_at, found from
 * its bounds as tuple routing does (get_partition_for_tuple).
 */
static Oid
cl_route(Relation rel, Datum changed_at)
{
	PartitionKey key = RelationGetPartitionKey(rel);
	PartitionDesc pd = RelationGetPartitionDesc(rel, true);
	PartitionBoundInfo bi = pd->boundinfo;
	bool		equal = false;
	int			idx = -1;

	if (key->strategy != PARTITION_STRATEGY_RANGE || key->partnatts != 1 ||
		key->partattrs[0] != cl_attnum(rel, "changed_at"))
		elog(ERROR, "change log relation \"%s\" must be range-partitioned on changed_at",
			 RelationGetRelationName(rel));
	if (bi != NULL)
	{
		int			off = partition_range_datum_bsearch(key->partsupfunc,
														key->partcollation,
														bi, 1, &changed_at,
														&equal);

		idx = bi->indexes[off + 1];
		if (idx < 0)
			idx = bi->default_index;
	}
	if (idx < 0)
		ereport(ERROR,
				(errcode(ERRCODE_CHECK_VIOLATION),
				 errmsg("no partition of relation \"%s\" found for the change log row",
						RelationGetRelationName(rel)),
				 errdetail("Partition key of the failing row contains (changed_at) = (%s).",
						   DatumGetCString(DirectFunctionCall1(timestamptz_out, changed_at))),
				 errhint("Create a partition for this time or restore the default partition.")));
	return pd->oids[idx];
}

/*
 * What capture_log_open would otherwise look up in the catalogs for every
 * statement: the log's OIDs, the leaf partition for the current transaction
 * start time, the leaf's column positions and the current role's name.
 * Relcache invalidation of the log or the leaf (partitions attached,
 * detached, dropped; the extension dropped) and role changes reset it.
 */
static struct
{
	bool		registered;
	bool		valid;			/* parent and seq name the log */
	Oid			parent;
	Oid			seq;
	Oid			leaf;			/* one-level route, or InvalidOid */
	Datum		leaf_for;		/* the changed_at it was routed for */
	Oid			att_rel;		/* the relation attidx describes */
	int			natts;
	int			attidx[CL_NCOLS];
	Oid			user;
	NameData	username;
}			cl_cache;

/*
 * Relcache invalidation callback: forget what concerns the relation.
 */
static void
cl_relcache_cb(Datum arg, Oid relid)
{
	if (relid == InvalidOid || relid == cl_cache.parent ||
		relid == cl_cache.leaf || relid == cl_cache.att_rel)
	{
		cl_cache.valid = false;
		cl_cache.leaf = InvalidOid;
		cl_cache.att_rel = InvalidOid;
	}
}

/*
 * Role invalidation callback: the cached role name may be stale.
 */
static void
cl_role_cb(Datum arg, int cacheid, uint32 hashvalue)
{
	cl_cache.user = InvalidOid;
}

/*
 * Open (RowExclusiveLock) the partitioned log, looking its OIDs up again
 * when the cache was reset, also by the invalidations the lock accepts.
 */
static Relation
cl_open_parent(void)
{
	if (!cl_cache.registered)
	{
		CacheRegisterRelcacheCallback(cl_relcache_cb, (Datum) 0);
		CacheRegisterSyscacheCallback(AUTHOID, cl_role_cb, (Datum) 0);
		cl_cache.registered = true;
	}
	for (;;)
	{
		Relation	rel;

		if (!cl_cache.valid)
		{
			cl_cache.parent = bkperf_relid("backup_transaction_logs");
			cl_cache.seq = bkperf_relid("backup_transaction_logs_log_id_seq");
			cl_cache.leaf = InvalidOid;
			cl_cache.valid = true;
		}
		rel = try_table_open(cl_cache.parent, RowExclusiveLock);
		if (rel != NULL && cl_cache.valid)
			return rel;
		if (rel != NULL)
			table_close(rel, NoLock);
		cl_cache.valid = false;
	}
}

/*
 * Open the leaf partition of the log (or of target, a Citus log shard, when
 * valid) that takes rows changed at changed_at, descending through
 * sub-partitioned levels.
 */
static Relation
cl_open_leaf(Datum changed_at, Oid target)
{
	Relation	rel = cl_open_parent();
	bool		top = true;

	/* Citus: a log shard instead of the log (citus.c); routes not cached. */
	if (OidIsValid(target))
	{
		table_close(rel, NoLock);
		rel = table_open(target, RowExclusiveLock);
		top = false;
	}

	while (rel->rd_rel->relkind == RELKIND_PARTITIONED_TABLE)
	{
		Oid			child;

		if (top && OidIsValid(cl_cache.leaf) && cl_cache.leaf_for == changed_at)
			child = cl_cache.leaf;
		else
			child = cl_route(rel, changed_at);
		table_close(rel, NoLock);
		rel = table_open(child, RowExclusiveLock);
		if (top && !cl_cache.valid)
		{
			/*
			 * The partitions changed while we waited for the child's lock
			 * (ATTACH PARTITION holds the default partition's lock until it
			 * commits): the route may be stale, and table_multi_insert does
			 * not check partition constraints.  Route again.
			 */
			table_close(rel, NoLock);
			rel = cl_open_parent();
			continue;
		}
		if (top && rel->rd_rel->relkind == RELKIND_RELATION)
		{
			cl_cache.leaf = child;
			cl_cache.leaf_for = changed_at;
		}
		top = false;
	}
	if (rel->rd_rel->relkind != RELKIND_RELATION)
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("change log partition \"%s\" is not a table",
						RelationGetRelationName(rel))));
	return rel;
}

/*
 * Where each log column is in the leaf w->rel (cached per leaf).
 */
static void
cl_columns(CaptureLogWriter *w)
{
	if (cl_cache.att_rel != RelationGetRelid(w->rel))
	{
		cl_cache.att_rel = InvalidOid;
		for (int i = 0; i < CL_NCOLS; i++)
			cl_cache.attidx[i] = i < CL_FIRST_OPTIONAL ?
				cl_attnum(w->rel, cl_colnames[i]) - 1 :
				get_attnum(RelationGetRelid(w->rel), cl_colnames[i]) - 1;
		cl_cache.natts = RelationGetDescr(w->rel)->natts;
		cl_cache.att_rel = RelationGetRelid(w->rel);
	}
	w->natts = cl_cache.natts;
	memcpy(w->attidx, cl_cache.attidx, sizeof(w->attidx));
}

/*
 * The current role's name as text (cached per role).
 */
static Datum
cl_user_name(void)
{
	Oid			user = GetUserId();

	if (cl_cache.user != user)
	{
		namestrcpy(&cl_cache.username, GetUserNameFromId(user, false));
		cl_cache.user = user;
	}
	return CStringGetTextDatum(NameStr(cl_cache.username));
}

/*
 * Start writing one statement's log rows (about rows of them): open the
 * partition and its indexes, and compute the values shared by all rows.
 * log_rel is the Citus log shard to write to (citus.c), or InvalidOid for
 * bkperf.backup_transaction_logs.
 */
CaptureLogWriter *
capture_log_open(Datum table_name, int64 table_id, int64 rows, Oid log_rel)
{
	CaptureLogWriter *w = palloc0(sizeof(CaptureLogWriter));

	w->changed_at = TimestampTzGetDatum(GetCurrentTransactionStartTimestamp());
	w->txid = FullTransactionIdGetDatum(GetTopFullTransactionId());
	w->changed_by = cl_user_name();
	w->table_name = table_name;
	w->table_id = table_id;
	w->opnames[CAPTURE_OP_INSERT] = CStringGetTextDatum("INSERT");
	w->opnames[CAPTURE_OP_UPDATE] = CStringGetTextDatum("UPDATE");
	w->opnames[CAPTURE_OP_DELETE] = CStringGetTextDatum("DELETE");
	w->rel = cl_open_leaf(w->changed_at, log_rel);
	w->seqid = cl_cache.seq;
	cl_columns(w);
	if (w->attidx[10] >= 0 && table_id == 0)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("capture trigger of table %s predates bkperf 1.1",
						TextDatumGetCString(table_name)),
				 errdetail("Its changes would be logged without the table's identity, and no rollback would find them."),
				 errhint("Track the table again with bkperf.track_table().")));

	w->estate = CreateExecutorState();
	w->rri = makeNode(ResultRelInfo);
	InitResultRelInfo(w->rri, w->rel, 1, NULL, 0);
	ExecOpenIndices(w->rri, false);
	w->cid = GetCurrentCommandId(true);
	w->nslots = (int) Max(Min(rows, CL_BATCH_ROWS), 1);
	w->slots = palloc0(sizeof(TupleTableSlot *) * w->nslots);
	w->cxt = CurrentMemoryContext;
	w->batchcxt = AllocSetContextCreate(CurrentMemoryContext,
										"bkperf capture batch",
										ALLOCSET_DEFAULT_SIZES);
	return w;
}

/*
 * Write the collected rows: one multi-insert, then their index entries.
 */
static void
cl_flush(CaptureLogWriter *w)
{
	if (w->nused == 0)
		return;
	/* A bulk-write buffer ring pays off for big statements only. */
	if (w->bistate == NULL && w->nused == CL_BATCH_ROWS)
	{
		MemoryContext old = MemoryContextSwitchTo(w->cxt);

		w->bistate = GetBulkInsertState();
		MemoryContextSwitchTo(old);
	}
	table_multi_insert(w->rel, w->slots, w->nused, w->cid, 0, w->bistate);
	for (int i = 0; i < w->nused; i++)
	{
		if (w->rri->ri_NumIndices > 0)
			list_free(bkperf_insert_index_tuples(w->rri, w->slots[i], w->estate));
		ResetPerTupleExprContext(w->estate);
		ExecClearTuple(w->slots[i]);
	}
	w->nused = 0;
	MemoryContextReset(w->batchcxt);
}

/*
 * Queue one log row.  Its datums must live in w->batchcxt (or longer); the
 * batch is written, and that context reset, when it is full.
 */
void
capture_log_add(CaptureLogWriter *w, const CaptureLogRow *row)
{
	TupleTableSlot *slot;
	Datum	   *v;
	bool	   *n;

	if (w->slots[w->nused] == NULL)
	{
		/* Slots outlive the batches: not in the batch context. */
		MemoryContext old = MemoryContextSwitchTo(w->cxt);

		w->slots[w->nused] = table_slot_create(w->rel, NULL);
		MemoryContextSwitchTo(old);
	}
	slot = w->slots[w->nused];
	ExecClearTuple(slot);
	v = slot->tts_values;
	n = slot->tts_isnull;
	memset(n, true, sizeof(bool) * w->natts);
	v[w->attidx[0]] = Int64GetDatum(nextval_internal(w->seqid, false));
	v[w->attidx[1]] = row->tenant;
	v[w->attidx[2]] = w->table_name;
	v[w->attidx[3]] = w->opnames[row->operation];
	v[w->attidx[4]] = JsonbPGetDatum(row->record_id);
	v[w->attidx[5]] = JsonbPGetDatum(row->old_data);
	v[w->attidx[6]] = JsonbPGetDatum(row->new_data);
	v[w->attidx[7]] = w->changed_at;
	v[w->attidx[8]] = w->txid;
	v[w->attidx[9]] = w->changed_by;
	for (int i = 0; i < CL_FIRST_OPTIONAL; i++)
		n[w->attidx[i]] = false;
	if (w->attidx[10] >= 0 && w->table_id != 0)
	{
		v[w->attidx[10]] = Int64GetDatum(w->table_id);
		n[w->attidx[10]] = false;
	}
	n[w->attidx[1]] = row->tenant_isnull;
	n[w->attidx[5]] = (row->old_data == NULL);
	n[w->attidx[6]] = (row->new_data == NULL);
	ExecStoreVirtualTuple(slot);
	if (++w->nused == w->nslots)
		cl_flush(w);
}

/*
 * Finish the statement: write what is left and release everything.  The
 * locks are kept to the end of the transaction, as the executor does.
 */
void
capture_log_close(CaptureLogWriter *w)
{
	cl_flush(w);
	for (int i = 0; i < w->nslots && w->slots[i] != NULL; i++)
		ExecDropSingleTupleTableSlot(w->slots[i]);
	if (w->bistate != NULL)
		FreeBulkInsertState(w->bistate);
	ExecCloseIndices(w->rri);
	FreeExecutorState(w->estate);
	table_close(w->rel, NoLock);
	MemoryContextDelete(w->batchcxt);
}
