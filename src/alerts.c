/*-------------------------------------------------------------------------
 * alerts.c
 *		Slow-query capture: a shared-memory ring fed by the executor hooks,
 *		read by bkperf.slow_queries() and moved into bkperf.system_alerts by
 *		bkperf.flush_alerts().
 *
 * The executor hooks (installed by bkperf.c) time each top-level statement
 * (every statement with bkperf.slow_query_nested) through
 * queryDesc->totaltime, as auto_explain does, and append one entry to the
 * ring when the executor time reached bkperf.slow_query_ms.  A statement
 * that fails or is cancelled inside ExecutorRun/ExecutorFinish after running
 * past the threshold is appended from the hook's error path, with the
 * error's SQLSTATE.  The hooks never touch a table.
 *
 * The ring holds bkperf.slow_query_max fixed-size entries in order of their
 * sequence number, oldest at "head".  When it is full the oldest entry is
 * overwritten and counted as dropped.
 *
 * flush_alerts() moves entries exactly once, in the caller's transaction:
 * it marks this database's ready entries as claimed by its backend, copies
 * them, and folds them into bkperf.system_alerts (via bkperf.record_alert).
 * The entries leave the ring only when that transaction commits (transaction
 * callback); on abort, or when the subtransaction that claimed them aborts,
 * they become ready again.  Other flushes skip claimed entries.  PREPARE
 * TRANSACTION of a transaction holding claims is refused.
 *
 * Lock protocol (one LWLock, tranche "bkperf_alerts", in the ring header):
 *	- it protects every field of the ring header and every entry;
 *	- appenders (executor hooks) hold it exclusive for a memcpy only;
 *	- readers (slow_queries, slow_queries_info) hold it shared;
 *	- flush_alerts holds it exclusive to claim and copy, and releases it
 *	  before calling anything that touches a table;
 *	- the commit/abort callbacks hold it exclusive to delete or release
 *	  their backend's claims;
 *	- no other lock is taken while it is held, and nothing that can fail
 *	  runs under it once entries are being marked; only slow_queries() may
 *	  run out of memory while building its result under the shared lock
 *	  (as pg_stat_statements does), and abort releases the lock then.
 *
 * Across restarts: at a clean shutdown the postmaster writes the ring to
 * pg_stat/bkperf_slow_queries.stat and the next start reads it back (and
 * removes the file), so unflushed entries survive; so does an immediate
 * shutdown (the postmaster still exits normally).  After a crash (shared
 * memory reinitialised) they are lost.  Flushed alerts are in the table.
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/parallel.h"
#include "access/xact.h"
#include "access/xlog.h"
#include "catalog/namespace.h"
#include "catalog/pg_authid_d.h"
#include "catalog/pg_type_d.h"
#include "commands/dbcommands.h"
#include "executor/instrument.h"
#include "fmgr.h"
#include "funcapi.h"
#include "lib/stringinfo.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "parser/parse_func.h"
#include "parser/scansup.h"
#include "storage/fd.h"
#include "storage/ipc.h"
#include "storage/lwlock.h"
#include "storage/shmem.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/elog.h"
#include "utils/fmgrprotos.h"
#include "utils/guc.h"
#include "utils/json.h"
#include "utils/memutils.h"
#include "utils/timestamp.h"

#include "bkperf.h"

/* State of a ring entry. */
#define BKA_READY		1		/* waiting for a flush */
#define BKA_CLAIMED		2		/* copied by a flush not yet committed */

/* One slow statement; query text follows inline, ring->text_max + 1 bytes. */
typedef struct BkaEntry
{
	uint64		seq;			/* order of insertion, never reused */
	int			state;			/* BKA_READY or BKA_CLAIMED */
	int			claimer_pid;	/* backend holding the claim */
	TimestampTz logged_at;		/* when the statement ended */
	Oid			dbid;
	Oid			userid;
	int			pid;
	int			sqlerrcode;		/* 0 when the statement completed */
	uint64		queryid;		/* 0 when compute_query_id is off */
	uint64		rows;
	double		duration_ms;
	char		severity;		/* 'w' warning, 'c' critical */
	char		appname[NAMEDATALEN];
	char		tenant[BKPERF_TENANT_TAG_MAX + 1];
	char		query[FLEXIBLE_ARRAY_MEMBER];
} BkaEntry;

/* The ring in shared memory. */
typedef struct BkaRing
{
	LWLock	   *lock;
	int			capacity;
	int			text_max;
	Size		entry_size;
	int			head;			/* slot of the oldest entry */
	int			count;			/* entries in use */
	uint64		next_seq;
	uint64		dropped;		/* entries overwritten before a flush */
	TimestampTz started_at;		/* when the ring was created */
	char		entries[FLEXIBLE_ARRAY_MEMBER];
} BkaRing;

/* A claim of this backend: which entry, in which subtransaction. */
typedef struct BkaClaim
{
	uint64		seq;
	SubTransactionId subid;
} BkaClaim;

int			bkperf_alerts_nesting_level = 0;

static BkaRing *bka_ring = NULL;
static BkaClaim *bka_claims = NULL;
static int	bka_nclaims = 0;
static int	bka_claims_size = 0;
static bool bka_callbacks_registered = false;

PG_FUNCTION_INFO_V1(bkperf_slow_queries);
PG_FUNCTION_INFO_V1(bkperf_slow_queries_info);
PG_FUNCTION_INFO_V1(bkperf_flush_alerts);

/*
 * Size of one entry, from the text limit.
 */
static Size
bka_entry_size(int text_max)
{
	return MAXALIGN(offsetof(BkaEntry, query) + text_max + 1);
}

/*
 * Shared memory needed for the ring with the current settings.
 */
static Size
bka_ring_size(void)
{
	return add_size(offsetof(BkaRing, entries),
					mul_size(bkperf_slow_query_max,
							 bka_entry_size(bkperf_slow_query_text_max)));
}

/*
 * Entry at position i (0 = oldest) of the ring.
 */
static BkaEntry *
bka_entry(BkaRing *ring, int i)
{
	int			slot = (ring->head + i) % ring->capacity;

	return (BkaEntry *) (ring->entries + (Size) slot * ring->entry_size);
}

/*
 * shmem_request_hook part: ask for the ring and its lock.
 */
void
bkperf_alerts_shmem_request(void)
{
	RequestAddinShmemSpace(bka_ring_size());
	RequestNamedLWLockTranche("bkperf_alerts", 1);
}

/*
 * Make room for one more entry at the tail (overwriting the oldest when the
 * ring is full) and return it, ready and unclaimed.  Caller holds the lock
 * exclusively (or is the postmaster loading the ring) and fills the rest.
 */
static BkaEntry *
bka_new_slot(BkaRing *ring)
{
	BkaEntry   *e;

	if (ring->count == ring->capacity)
	{
		if (bka_entry(ring, 0)->state == BKA_READY)
			ring->dropped++;
		ring->head = (ring->head + 1) % ring->capacity;
		ring->count--;
	}
	e = bka_entry(ring, ring->count);
	ring->count++;
	e->state = BKA_READY;
	e->claimer_pid = 0;
	return e;
}

/*
 * Fixed part of an entry as stored in the dump file; the query text follows
 * as a length and bytes.
 */
#define BKA_DUMP_FILE		"pg_stat/bkperf_slow_queries.stat"
#define BKA_DUMP_MAGIC		0x626B7173	/* "bkqs" */
#define BKA_DUMP_VERSION	1

/*
 * Write the ring to the dump file at a clean shutdown of the postmaster (not
 * after a crash), so unflushed slow queries survive a restart.
 */
static void
bka_write_dump(int code, Datum arg)
{
	FILE	   *file;
	uint32		header[2] = {BKA_DUMP_MAGIC, BKA_DUMP_VERSION};
	bool		ok;
	int			i;

	if (code != 0 || bka_ring == NULL)
		return;
	file = AllocateFile(BKA_DUMP_FILE ".tmp", PG_BINARY_W);
	if (file == NULL)
		goto error;
	ok = fwrite(header, sizeof(header), 1, file) == 1 &&
		fwrite(&bka_ring->count, sizeof(int), 1, file) == 1 &&
		fwrite(&bka_ring->next_seq, sizeof(uint64), 1, file) == 1;
	for (i = 0; ok && i < bka_ring->count; i++)
	{
		BkaEntry   *e = bka_entry(bka_ring, i);
		int			len = strnlen(e->query, bka_ring->text_max);

		ok = fwrite(e, offsetof(BkaEntry, query), 1, file) == 1 &&
			fwrite(&len, sizeof(int), 1, file) == 1 &&
			fwrite(e->query, 1, len, file) == (size_t) len;
	}
	if (!ok || FreeFile(file) != 0)
		goto error;
	(void) durable_rename(BKA_DUMP_FILE ".tmp", BKA_DUMP_FILE, LOG);
	return;

error:
	ereport(LOG,
			(errcode_for_file_access(),
			 errmsg("could not write file \"%s\": %m", BKA_DUMP_FILE ".tmp")));
	if (file)
		FreeFile(file);
	unlink(BKA_DUMP_FILE ".tmp");
}

/*
 * Read one dumped entry into the ring (text clipped to the current limit at
 * a UTF-8 character boundary); false at the end of a damaged file.
 */
static bool
bka_load_entry(BkaRing *ring, FILE *file, BkaEntry *buf, char *text)
{
	BkaEntry   *e;
	int			len;

	if (fread(buf, offsetof(BkaEntry, query), 1, file) != 1 ||
		fread(&len, sizeof(int), 1, file) != 1 ||
		len < 0 || len > 65536 ||
		fread(text, 1, len, file) != (size_t) len)
		return false;
	if (len > ring->text_max)
	{
		len = ring->text_max;
		while (len > 0 && (text[len] & 0xC0) == 0x80)
			len--;
	}
	e = bka_new_slot(ring);
	memcpy(e, buf, offsetof(BkaEntry, query));
	e->state = BKA_READY;
	e->claimer_pid = 0;
	memcpy(e->query, text, len);
	e->query[len] = '\0';
	return true;
}

/*
 * At server start, put back the entries dumped at the last clean shutdown,
 * then remove the file so that a crash later cannot replay them twice.
 */
static void
bka_load_dump(BkaRing *ring)
{
	FILE	   *file = AllocateFile(BKA_DUMP_FILE, PG_BINARY_R);
	uint32		header[2];
	int			count;
	uint64		next_seq;
	BkaEntry   *buf = palloc(offsetof(BkaEntry, query));
	char	   *text = palloc(65536 + 1);
	int			i;

	if (file == NULL)
	{
		if (errno != ENOENT)
			ereport(LOG,
					(errcode_for_file_access(),
					 errmsg("could not read file \"%s\": %m", BKA_DUMP_FILE)));
		return;
	}
	if (fread(header, sizeof(header), 1, file) != 1 ||
		header[0] != BKA_DUMP_MAGIC || header[1] != BKA_DUMP_VERSION ||
		fread(&count, sizeof(int), 1, file) != 1 ||
		fread(&next_seq, sizeof(uint64), 1, file) != 1)
		count = 0;
	else
		ring->next_seq = next_seq;
	for (i = 0; i < count; i++)
		if (!bka_load_entry(ring, file, buf, text))
			break;
	if (i < count)
		ereport(LOG,
				(errmsg("ignoring the damaged end of file \"%s\"", BKA_DUMP_FILE)));
	ring->dropped = 0;
	FreeFile(file);
	unlink(BKA_DUMP_FILE);
	pfree(buf);
	pfree(text);
}

/*
 * shmem_startup_hook part: create the ring (postmaster) or attach to it.
 */
void
bkperf_alerts_shmem_startup(void)
{
	BkaRing    *ring;
	bool		found;

	bka_ring = NULL;
	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	ring = ShmemInitStruct("bkperf slow-query ring", bka_ring_size(), &found);
	if (!found)
	{
		ring->lock = &(GetNamedLWLockTranche("bkperf_alerts"))->lock;
		ring->capacity = bkperf_slow_query_max;
		ring->text_max = bkperf_slow_query_text_max;
		ring->entry_size = bka_entry_size(bkperf_slow_query_text_max);
		ring->head = 0;
		ring->count = 0;
		ring->next_seq = 1;
		ring->dropped = 0;
		ring->started_at = GetCurrentTimestamp();
		if (!IsUnderPostmaster)
			bka_load_dump(ring);
	}
	LWLockRelease(AddinShmemInitLock);
	bka_ring = ring;
	if (!IsUnderPostmaster)
		on_shmem_exit(bka_write_dump, (Datum) 0);
}

/*
 * Whether the statement being started or ended at the current nesting
 * level is one we time.
 */
static bool
bka_tracking(void)
{
	return bka_ring != NULL && bkperf_slow_query_ms >= 0 &&
		(bkperf_alerts_nesting_level == 0 || bkperf_slow_query_nested) &&
		!IsParallelWorker();
}

/*
 * ExecutorStart part: make sure the statement is timed (like auto_explain,
 * the timer is allocated in the query's context so it goes with it).
 */
void
bkperf_alerts_executor_start(QueryDesc *queryDesc)
{
	MemoryContext oldcxt;

	if (!bka_tracking() || queryDesc->totaltime != NULL)
		return;
	oldcxt = MemoryContextSwitchTo(queryDesc->estate->es_query_cxt);
	queryDesc->totaltime = InstrAlloc(1, INSTRUMENT_TIMER, false);
	MemoryContextSwitchTo(oldcxt);
}

/*
 * Executor time of a statement so far, in ms, whether or not its timer is
 * still running (after an error it is), without changing the timer.
 */
static double
bka_elapsed_ms(Instrumentation *instr)
{
	double		ms = instr->total * 1000.0 + INSTR_TIME_GET_MILLISEC(instr->counter);

	if (!INSTR_TIME_IS_ZERO(instr->starttime))
	{
		instr_time	now;

		INSTR_TIME_SET_CURRENT(now);
		INSTR_TIME_SUBTRACT(now, instr->starttime);
		ms += INSTR_TIME_GET_MILLISEC(now);
	}
	return ms;
}

/*
 * Text of this statement inside the source string (which may hold several
 * statements), without surrounding white space; sets *len.
 */
static const char *
bka_statement_text(QueryDesc *queryDesc, int *len)
{
	const char *text = queryDesc->sourceText ? queryDesc->sourceText : "";
	int			loc = queryDesc->plannedstmt->stmt_location;
	int			n = queryDesc->plannedstmt->stmt_len;
	int			total = strlen(text);

	if (loc < 0 || loc > total)
	{
		loc = 0;
		n = total;
	}
	else if (n <= 0 || loc + n > total)
		n = total - loc;
	text += loc;
	while (n > 0 && scanner_isspace(text[0]))
		text++, n--;
	while (n > 0 && scanner_isspace(text[n - 1]))
		n--;
	*len = n;
	return text;
}

/*
 * Append one slow statement to the ring, overwriting the oldest entry when
 * the ring is full.
 */
static void
bka_append(QueryDesc *queryDesc, double ms, uint64 rows, int sqlerrcode)
{
	BkaRing    *ring = bka_ring;
	BkaEntry   *e;
	const char *text;
	int			len;
	bool		critical;

	text = bka_statement_text(queryDesc, &len);
	len = pg_mbcliplen(text, len, ring->text_max);
	critical = bkperf_slow_query_critical_ms >= 0 &&
		ms >= bkperf_slow_query_critical_ms;

	LWLockAcquire(ring->lock, LW_EXCLUSIVE);
	e = bka_new_slot(ring);
	e->seq = ring->next_seq++;
	e->logged_at = GetCurrentTimestamp();
	e->dbid = MyDatabaseId;
	e->userid = GetUserId();
	e->pid = MyProcPid;
	e->sqlerrcode = sqlerrcode;
	e->queryid = queryDesc->plannedstmt->queryId;
	e->rows = rows;
	e->duration_ms = ms;
	e->severity = critical ? 'c' : 'w';
	strlcpy(e->appname, application_name ? application_name : "", NAMEDATALEN);
	strlcpy(e->tenant, bkperf_tenant_id ? bkperf_tenant_id : "",
			BKPERF_TENANT_TAG_MAX + 1);
	memcpy(e->query, text, len);
	e->query[len] = '\0';
	LWLockRelease(ring->lock);
}

/*
 * ExecutorEnd part: record the statement when its executor time reached the
 * threshold.
 */
void
bkperf_alerts_executor_end(QueryDesc *queryDesc)
{
	double		ms;

	if (!bka_tracking() || queryDesc->totaltime == NULL)
		return;
	ms = bka_elapsed_ms(queryDesc->totaltime);
	if (ms < bkperf_slow_query_ms)
		return;
	bka_append(queryDesc, ms, queryDesc->estate->es_processed, 0);
}

/*
 * Error path of ExecutorRun/ExecutorFinish: record a statement that failed
 * or was cancelled after running past the threshold, with its SQLSTATE.  The
 * error data is copied out of ErrorContext into the query's context.
 */
void
bkperf_alerts_executor_failed(QueryDesc *queryDesc)
{
	MemoryContext oldcxt;
	ErrorData  *edata;
	double		ms;
	int			code;

	if (!bka_tracking() || queryDesc->totaltime == NULL ||
		queryDesc->estate == NULL)
		return;
	ms = bka_elapsed_ms(queryDesc->totaltime);
	if (ms < bkperf_slow_query_ms)
		return;
	oldcxt = MemoryContextSwitchTo(queryDesc->estate->es_query_cxt);
	edata = CopyErrorData();
	MemoryContextSwitchTo(oldcxt);
	code = edata->sqlerrcode;
	FreeErrorData(edata);
	bka_append(queryDesc, ms, queryDesc->estate->es_processed,
			   code != 0 ? code : ERRCODE_INTERNAL_ERROR);
}

/*
 * Raise the error every SQL entry point gives when the ring is missing.
 */
static void
bka_require_ring(const char *function)
{
	if (bka_ring == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("%s requires bkperf to be loaded via shared_preload_libraries",
						function),
				 errdetail("The slow-query ring lives in shared memory, which is only set up at server start."),
				 errhint("Add bkperf to shared_preload_libraries in postgresql.conf and restart the server.")));
}

/*
 * Fill one output row of slow_queries() from an entry; query text only when
 * the caller may see it.
 */
static void
bka_entry_values(BkaEntry *e, bool show_text, Datum *values, bool *nulls)
{
	values[0] = Int64GetDatum((int64) e->seq);
	values[1] = TimestampTzGetDatum(e->logged_at);
	values[2] = ObjectIdGetDatum(e->dbid);
	values[3] = ObjectIdGetDatum(e->userid);
	values[4] = Int32GetDatum(e->pid);
	values[5] = CStringGetTextDatum(e->appname);
	values[6] = CStringGetTextDatum(e->tenant);
	nulls[6] = e->tenant[0] == '\0';
	values[7] = Int64GetDatum((int64) e->queryid);
	nulls[7] = e->queryid == 0;
	values[8] = Float8GetDatum(e->duration_ms);
	values[9] = Int64GetDatum((int64) e->rows);
	values[10] = CStringGetTextDatum(e->severity == 'c' ? "critical" : "warning");
	values[11] = CStringGetTextDatum(unpack_sql_state(e->sqlerrcode));
	nulls[11] = e->sqlerrcode == 0;
	values[12] = CStringGetTextDatum(show_text ? e->query : "<insufficient privilege>");
}

/*
 * bkperf.slow_queries(): every entry of the ring, oldest first.  Like
 * pg_stat_statements, the query text of other roles is shown only to
 * superusers and members of pg_read_all_stats.
 */
Datum
bkperf_slow_queries(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	Oid			me = GetUserId();
	bool		see_all;
	int			i;

	bka_require_ring("bkperf.slow_queries()");
	InitMaterializedSRF(fcinfo, 0);
	see_all = superuser() || has_privs_of_role(me, ROLE_PG_READ_ALL_STATS);

	LWLockAcquire(bka_ring->lock, LW_SHARED);
	for (i = 0; i < bka_ring->count; i++)
	{
		BkaEntry   *e = bka_entry(bka_ring, i);
		Datum		values[13];
		bool		nulls[13] = {0};

		bka_entry_values(e, see_all || e->userid == me, values, nulls);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	LWLockRelease(bka_ring->lock);
	return (Datum) 0;
}

/*
 * bkperf.slow_queries_info(): capacity, entries in use, entries dropped by
 * overflow, next sequence number, and when the ring was created (server
 * start), so monitoring can tell whether it flushes often enough.
 */
Datum
bkperf_slow_queries_info(PG_FUNCTION_ARGS)
{
	TupleDesc	tupdesc;
	Datum		values[5];
	bool		nulls[5] = {0};

	bka_require_ring("bkperf.slow_queries_info()");
	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	LWLockAcquire(bka_ring->lock, LW_SHARED);
	values[0] = Int32GetDatum(bka_ring->capacity);
	values[1] = Int32GetDatum(bka_ring->count);
	values[2] = Int64GetDatum((int64) bka_ring->dropped);
	values[3] = Int64GetDatum((int64) bka_ring->next_seq);
	values[4] = TimestampTzGetDatum(bka_ring->started_at);
	LWLockRelease(bka_ring->lock);
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(tupdesc, values, nulls)));
}

/*
 * Position of the entry with this sequence number, or -1 if it is gone
 * (entries are kept in sequence order, so binary search works).  Caller
 * holds the lock.
 */
static int
bka_find_seq(BkaRing *ring, uint64 seq)
{
	int			lo = 0;
	int			hi = ring->count - 1;

	while (lo <= hi)
	{
		int			mid = lo + (hi - lo) / 2;
		uint64		s = bka_entry(ring, mid)->seq;

		if (s == seq)
			return mid;
		if (s < seq)
			lo = mid + 1;
		else
			hi = mid - 1;
	}
	return -1;
}

/*
 * Commit: delete this backend's claimed entries and close the gaps, keeping
 * the remaining entries in sequence order.
 */
static void
bka_delete_claimed(BkaRing *ring)
{
	int			w = 0;
	int			i;

	for (i = 0; i < ring->count; i++)
	{
		BkaEntry   *e = bka_entry(ring, i);

		if (e->state == BKA_CLAIMED && e->claimer_pid == MyProcPid)
			continue;
		if (w != i)
			memcpy(bka_entry(ring, w), e, ring->entry_size);
		w++;
	}
	ring->count = w;
}

/*
 * Abort of the transaction (subid invalid) or of one subtransaction: make
 * the entries claimed there ready again.  A claimed entry that was
 * overwritten meanwhile is lost now, so it counts as dropped.
 */
static void
bka_unclaim(BkaRing *ring, SubTransactionId subid)
{
	int			keep = 0;
	int			i;

	for (i = 0; i < bka_nclaims; i++)
	{
		BkaClaim   *c = &bka_claims[i];
		int			pos;

		if (subid != InvalidSubTransactionId && c->subid != subid)
		{
			bka_claims[keep++] = *c;
			continue;
		}
		pos = bka_find_seq(ring, c->seq);
		if (pos >= 0 && bka_entry(ring, pos)->state == BKA_CLAIMED &&
			bka_entry(ring, pos)->claimer_pid == MyProcPid)
		{
			bka_entry(ring, pos)->state = BKA_READY;
			bka_entry(ring, pos)->claimer_pid = 0;
		}
		else
			ring->dropped++;
	}
	bka_nclaims = keep;
}

/*
 * Transaction callback: claims leave the ring at commit and return to it at
 * abort; PREPARE is refused because the outcome would be unknown here.
 */
static void
bka_xact_callback(XactEvent event, void *arg)
{
	if (bka_nclaims == 0 || bka_ring == NULL)
		return;
	switch (event)
	{
		case XACT_EVENT_PRE_PREPARE:
			ereport(ERROR,
					(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					 errmsg("cannot prepare a transaction that has called bkperf.flush_alerts()"),
					 errdetail("The slow queries it moved would stay claimed until the prepared transaction ends."),
					 errhint("Flush alerts in a transaction that commits directly.")));
			break;
		case XACT_EVENT_COMMIT:
		case XACT_EVENT_PARALLEL_COMMIT:
			LWLockAcquire(bka_ring->lock, LW_EXCLUSIVE);
			bka_delete_claimed(bka_ring);
			LWLockRelease(bka_ring->lock);
			bka_nclaims = 0;
			break;
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PARALLEL_ABORT:
			LWLockAcquire(bka_ring->lock, LW_EXCLUSIVE);
			bka_unclaim(bka_ring, InvalidSubTransactionId);
			LWLockRelease(bka_ring->lock);
			bka_nclaims = 0;
			break;
		default:
			break;
	}
}

/*
 * Subtransaction callback: claims made in an aborted subtransaction return
 * to the ring; those of a committed one now belong to its parent.
 */
static void
bka_subxact_callback(SubXactEvent event, SubTransactionId mySubid,
					 SubTransactionId parentSubid, void *arg)
{
	int			i;

	if (bka_nclaims == 0 || bka_ring == NULL)
		return;
	if (event == SUBXACT_EVENT_ABORT_SUB)
	{
		LWLockAcquire(bka_ring->lock, LW_EXCLUSIVE);
		bka_unclaim(bka_ring, mySubid);
		LWLockRelease(bka_ring->lock);
	}
	else if (event == SUBXACT_EVENT_COMMIT_SUB)
	{
		for (i = 0; i < bka_nclaims; i++)
			if (bka_claims[i].subid == mySubid)
				bka_claims[i].subid = parentSubid;
	}
}

/*
 * Make room for n more claims and register the callbacks, before anything
 * is marked in shared memory (so nothing can fail after marking).
 */
static void
bka_prepare_claims(int n)
{
	if (!bka_callbacks_registered)
	{
		RegisterXactCallback(bka_xact_callback, NULL);
		RegisterSubXactCallback(bka_subxact_callback, NULL);
		bka_callbacks_registered = true;
	}
	if (bka_nclaims + n <= bka_claims_size)
		return;
	bka_claims_size = Max(bka_nclaims + n, 2 * bka_claims_size);
	if (bka_claims == NULL)
		bka_claims = MemoryContextAlloc(TopMemoryContext,
										sizeof(BkaClaim) * bka_claims_size);
	else
		bka_claims = repalloc(bka_claims, sizeof(BkaClaim) * bka_claims_size);
}

/*
 * Claim this database's ready entries for the current (sub)transaction and
 * return copies of them, oldest first; *n is set to their number.  Memory
 * is allocated before the exclusive lock is taken (nothing may fail once
 * entries are marked); entries appended meanwhile wait for the next flush.
 */
static char *
bka_claim(int *n)
{
	BkaRing    *ring = bka_ring;
	char	   *copies;
	int			room = 0;
	int			i;

	LWLockAcquire(ring->lock, LW_SHARED);
	for (i = 0; i < ring->count; i++)
		if (bka_entry(ring, i)->state == BKA_READY &&
			bka_entry(ring, i)->dbid == MyDatabaseId)
			room++;
	LWLockRelease(ring->lock);
	copies = palloc(Max(room, 1) * ring->entry_size);
	bka_prepare_claims(room);

	*n = 0;
	LWLockAcquire(ring->lock, LW_EXCLUSIVE);
	for (i = 0; i < ring->count && *n < room; i++)
	{
		BkaEntry   *e = bka_entry(ring, i);

		if (e->state != BKA_READY || e->dbid != MyDatabaseId)
			continue;
		e->state = BKA_CLAIMED;
		e->claimer_pid = MyProcPid;
		memcpy(copies + (Size) (*n) * ring->entry_size, e, ring->entry_size);
		bka_claims[bka_nclaims].seq = e->seq;
		bka_claims[bka_nclaims].subid = GetCurrentSubTransactionId();
		bka_nclaims++;
		(*n)++;
	}
	LWLockRelease(ring->lock);
	return copies;
}

/*
 * Query text with literals replaced by '?' and white space collapsed: what
 * identifies a statement when no queryid was computed, and what the alert
 * message shows.
 */
static char *
bka_normalise(const char *q)
{
	StringInfoData buf;
	const char *p = q;

	initStringInfo(&buf);
	while (*p)
	{
		char		prev = buf.len > 0 ? buf.data[buf.len - 1] : ' ';

		if (scanner_isspace(*p))
		{
			while (scanner_isspace(*p))
				p++;
			if (*p && buf.len > 0)
				appendStringInfoChar(&buf, ' ');
		}
		else if (*p == '\'')
		{
			for (p++; *p; p++)
				if (*p == '\'' && *(++p) != '\'')
					break;
			appendStringInfoChar(&buf, '?');
		}
		else if (isdigit((unsigned char) *p) &&
				 !(isalnum((unsigned char) prev) || prev == '_' || prev == '$'))
		{
			while (isalnum((unsigned char) *p) || *p == '.')
				p++;
			appendStringInfoChar(&buf, '?');
		}
		else
			appendStringInfoChar(&buf, *p++);
	}
	return buf.data;
}

/*
 * Alert details of one slow statement as JSON text: what folding merges
 * (max_ms, total_ms, errors) and what describes its latest occurrence.
 */
static char *
bka_details_json(BkaEntry *e)
{
	StringInfoData buf;
	char	   *user = GetUserNameFromId(e->userid, true);

	initStringInfo(&buf);
	appendStringInfo(&buf, "{\"max_ms\": %.3f, \"total_ms\": %.3f, \"errors\": %d",
					 e->duration_ms, e->duration_ms, e->sqlerrcode != 0 ? 1 : 0);
	appendStringInfo(&buf, ", \"rows\": " UINT64_FORMAT ", \"pid\": %d, \"seq\": " UINT64_FORMAT,
					 e->rows, e->pid, e->seq);
	if (e->queryid != 0)
		appendStringInfo(&buf, ", \"queryid\": " INT64_FORMAT, (int64) e->queryid);
	appendStringInfoString(&buf, ", \"last_sqlstate\": ");
	if (e->sqlerrcode != 0)
		escape_json(&buf, unpack_sql_state(e->sqlerrcode));
	else
		appendStringInfoString(&buf, "null");
	appendStringInfoString(&buf, ", \"database\": ");
	escape_json(&buf, get_database_name(e->dbid));
	appendStringInfoString(&buf, ", \"user\": ");
	escape_json(&buf, user ? user : "");
	appendStringInfoString(&buf, ", \"application_name\": ");
	escape_json(&buf, e->appname);
	appendStringInfoString(&buf, ", \"query\": ");
	escape_json(&buf, e->query);
	appendStringInfoChar(&buf, '}');
	return buf.data;
}

/*
 * Fold one claimed entry into bkperf.system_alerts.  Its fingerprint key is
 * database, role and queryid (or normalised text); record_alert adds source,
 * severity and tenant.
 */
static void
bka_flush_entry(BkaEntry *e)
{
	char	   *norm = bka_normalise(e->query);
	char	   *key;
	char	   *message;

	if (e->queryid != 0)
		key = psprintf("%u|%u|q:" INT64_FORMAT, e->dbid, e->userid,
					   (int64) e->queryid);
	else
		key = psprintf("%u|%u|t:%s", e->dbid, e->userid, norm);
	norm[pg_mbcliplen(norm, strlen(norm), 200)] = '\0';
	message = psprintf("slow statement: %s", norm);
	bkperf_alerts_record("slow_query", e->severity == 'c' ? "critical" : "warning",
						 e->tenant[0] ? e->tenant : NULL, key, message, 1,
						 e->logged_at, e->logged_at, bka_details_json(e));
}

/*
 * bkperf.flush_alerts(): move this database's slow queries from the ring into
 * bkperf.system_alerts in the caller's transaction; returns how many entries
 * were moved.  On a standby nothing can be written: it says so and returns 0.
 */
Datum
bkperf_flush_alerts(PG_FUNCTION_ARGS)
{
	MemoryContext entrycxt;
	char	   *copies;
	int			n;
	int			i;

	bka_require_ring("bkperf.flush_alerts()");
	if (RecoveryInProgress())
	{
		ereport(NOTICE,
				(errmsg("alerts were not flushed because the server is in recovery"),
				 errdetail("A standby cannot write bkperf.system_alerts; its slow queries stay in its own ring."),
				 errhint("Read them with bkperf.slow_queries() on the standby.")));
		PG_RETURN_INT64(0);
	}
	copies = bka_claim(&n);
	entrycxt = AllocSetContextCreate(CurrentMemoryContext, "bkperf flush entry",
									 ALLOCSET_DEFAULT_SIZES);
	for (i = 0; i < n; i++)
	{
		MemoryContext oldcxt = MemoryContextSwitchTo(entrycxt);

		bka_flush_entry((BkaEntry *) (copies + (Size) i * bka_ring->entry_size));
		MemoryContextSwitchTo(oldcxt);
		MemoryContextReset(entrycxt);
	}
	MemoryContextDelete(entrycxt);
	PG_RETURN_INT64(n);
}

/*
 * OID of bkperf.record_alert(text, text, text, text, text, bigint,
 * timestamptz, timestamptz, interval, jsonb).
 */
static Oid
bka_record_alert_oid(void)
{
	Oid			argtypes[10] = {TEXTOID, TEXTOID, TEXTOID, TEXTOID, TEXTOID,
	INT8OID, TIMESTAMPTZOID, TIMESTAMPTZOID, INTERVALOID, JSONBOID};
	List	   *name = list_make2(makeString("bkperf"), makeString("record_alert"));

	return LookupFuncName(name, 10, argtypes, false);
}

/*
 * Fold one alert (occurrences seen between first_seen and last_seen) into
 * bkperf.system_alerts through bkperf.record_alert, and return its id.
 * Called directly through fmgr, so the caller needs no EXECUTE privilege on
 * record_alert (which runs as the extension owner): this is how the metrics
 * trigger writes alerts for roles that may only insert metrics.
 */
int64
bkperf_alerts_record(const char *source, const char *severity,
					 const char *tenant, const char *key, const char *message,
					 int64 occurrences, TimestampTz first_seen,
					 TimestampTz last_seen, const char *details_json)
{
	FmgrInfo	flinfo;
	Interval   *window = palloc0(sizeof(Interval));
	Datum		result;

	LOCAL_FCINFO(fcinfo, 10);

	window->time = (int64) bkperf_alert_fold_window_ms * INT64CONST(1000);
	fmgr_info(bka_record_alert_oid(), &flinfo);
	InitFunctionCallInfoData(*fcinfo, &flinfo, 10, InvalidOid, NULL, NULL);
	fcinfo->args[0].value = CStringGetTextDatum(source);
	fcinfo->args[1].value = CStringGetTextDatum(severity);
	fcinfo->args[2].value = tenant ? CStringGetTextDatum(tenant) : (Datum) 0;
	fcinfo->args[3].value = CStringGetTextDatum(key);
	fcinfo->args[4].value = CStringGetTextDatum(message);
	fcinfo->args[5].value = Int64GetDatum(occurrences);
	fcinfo->args[6].value = TimestampTzGetDatum(first_seen);
	fcinfo->args[7].value = TimestampTzGetDatum(last_seen);
	fcinfo->args[8].value = IntervalPGetDatum(window);
	fcinfo->args[9].value = DirectFunctionCall1(jsonb_in, CStringGetDatum(details_json));
	for (int i = 0; i < 10; i++)
		fcinfo->args[i].isnull = (i == 2 && tenant == NULL);
	result = FunctionCallInvoke(fcinfo);
	if (fcinfo->isnull)
		elog(ERROR, "bkperf.record_alert returned NULL");
	return DatumGetInt64(result);
}
