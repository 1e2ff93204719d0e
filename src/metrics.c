/*-------------------------------------------------------------------------
 * metrics.c
 *		The endpoint-alert trigger on bkperf.performance_metrics.
 *
 * bkperf.check_performance_alerts() is an AFTER INSERT ... FOR EACH
 * STATEMENT trigger with a transition table.  It reads the inserted rows
 * straight from the transition tuplestore (no SPI, no per-row allocation
 * for rows under the threshold), collects the rows at or above
 * bkperf.endpoint_alert_ms (warning) or bkperf.endpoint_critical_ms
 * (critical), groups them by tenant, endpoint and severity, and folds each
 * group into bkperf.system_alerts through bkperf.record_alert: one call per
 * group and statement, never per row.
 *
 * The summary, acknowledge and prune functions are plain SQL (see
 * sql/parts/50_alerts.sql).
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/xact.h"
#include "catalog/pg_type_d.h"
#include "commands/trigger.h"
#include "executor/executor.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "lib/stringinfo.h"
#include "utils/builtins.h"
#include "utils/json.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/tuplestore.h"

#include "bkperf.h"

/* One inserted row at or above a threshold. */
typedef struct BkmSlowRow
{
	char	   *tenant;
	char	   *endpoint;
	double		ms;
	TimestampTz at;
	bool		critical;
} BkmSlowRow;

/* Attribute numbers of the columns the trigger reads. */
typedef struct BkmColumns
{
	int			tenant;
	int			endpoint;
	int			ms;
	int			at;
} BkmColumns;

PG_FUNCTION_INFO_V1(bkperf_check_performance_alerts);

/*
 * Refuse to run other than as the statement-level AFTER trigger with a NEW
 * transition table that the install script creates.
 */
static TriggerData *
bkm_check_trigger_context(FunctionCallInfo fcinfo)
{
	TriggerData *trigdata;

	if (!CALLED_AS_TRIGGER(fcinfo))
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("bkperf.check_performance_alerts() must be called as a trigger")));
	trigdata = (TriggerData *) fcinfo->context;
	if (!TRIGGER_FIRED_AFTER(trigdata->tg_event) ||
		!TRIGGER_FIRED_FOR_STATEMENT(trigdata->tg_event) ||
		trigdata->tg_newtable == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_E_R_I_E_TRIGGER_PROTOCOL_VIOLATED),
				 errmsg("bkperf.check_performance_alerts() must be an AFTER ... FOR EACH STATEMENT trigger with REFERENCING NEW TABLE")));
	return trigdata;
}

/*
 * Attribute number of a column the trigger needs, or an error naming it.
 */
static int
bkm_column(TupleDesc tupdesc, const char *name, Oid type)
{
	int			attno = SPI_fnumber(tupdesc, name);

	if (attno <= 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_COLUMN),
				 errmsg("column \"%s\" required by bkperf.check_performance_alerts() does not exist",
						name)));
	if (TupleDescAttr(tupdesc, attno - 1)->atttypid != type)
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("column \"%s\" must be of type %s for bkperf.check_performance_alerts()",
						name, format_type_be(type))));
	return attno;
}

/*
 * Text value of a column as a C string; NULL reads as an empty string.
 */
static char *
bkm_text(TupleTableSlot *slot, int attno)
{
	bool		isnull;
	Datum		d = slot_getattr(slot, attno, &isnull);

	return isnull ? pstrdup("") : TextDatumGetCString(d);
}

/*
 * Read the transition table and return the rows at or above the warning
 * (or critical) threshold; *n is set to their number.
 */
static BkmSlowRow *
bkm_collect(Tuplestorestate *ts, TupleDesc tupdesc, BkmColumns *col, int *n)
{
	TupleTableSlot *slot = MakeSingleTupleTableSlot(tupdesc, &TTSOpsMinimalTuple);
	double		warn = bkperf_endpoint_alert_ms;
	double		crit = bkperf_endpoint_critical_ms;
	BkmSlowRow *rows = NULL;
	int			size = 0;
	int			ptr = tuplestore_alloc_read_pointer(ts, EXEC_FLAG_REWIND);

	*n = 0;
	tuplestore_select_read_pointer(ts, ptr);
	tuplestore_rescan(ts);
	while (tuplestore_gettupleslot(ts, true, false, slot))
	{
		bool		isnull;
		double		ms = DatumGetFloat8(slot_getattr(slot, col->ms, &isnull));
		bool		critical = crit >= 0 && ms >= crit;

		if (isnull || (!critical && (warn < 0 || ms < warn)))
			continue;
		if (*n == size)
		{
			size = size == 0 ? 16 : size * 2;
			rows = rows ? repalloc(rows, size * sizeof(BkmSlowRow)) :
				palloc(size * sizeof(BkmSlowRow));
		}
		rows[*n].ms = ms;
		rows[*n].critical = critical;
		rows[*n].tenant = bkm_text(slot, col->tenant);
		rows[*n].endpoint = bkm_text(slot, col->endpoint);
		rows[*n].at = DatumGetTimestampTz(slot_getattr(slot, col->at, &isnull));
		if (isnull)
			rows[*n].at = GetCurrentTransactionStartTimestamp();
		(*n)++;
	}
	ExecDropSingleTupleTableSlot(slot);
	return rows;
}

/*
 * Order slow rows by tenant, endpoint and severity, so a group is a run.
 */
static int
bkm_compare(const void *a, const void *b)
{
	const BkmSlowRow *x = a;
	const BkmSlowRow *y = b;
	int			c = strcmp(x->tenant, y->tenant);

	if (c == 0)
		c = strcmp(x->endpoint, y->endpoint);
	if (c == 0)
		c = (int) x->critical - (int) y->critical;
	return c;
}

/*
 * Fold one group (rows[0..n-1], same tenant, endpoint and severity) into
 * bkperf.system_alerts.
 */
static void
bkm_record_group(BkmSlowRow *rows, int n)
{
	int			threshold = rows[0].critical ? bkperf_endpoint_critical_ms :
		bkperf_endpoint_alert_ms;
	double		max = 0,
				total = 0;
	TimestampTz first = rows[0].at,
				last = rows[0].at;
	StringInfoData details;
	int			i;

	for (i = 0; i < n; i++)
	{
		max = Max(max, rows[i].ms);
		total += rows[i].ms;
		first = Min(first, rows[i].at);
		last = Max(last, rows[i].at);
	}
	initStringInfo(&details);
	appendStringInfo(&details, "{\"max_ms\": %.3f, \"total_ms\": %.3f, \"errors\": 0, \"threshold_ms\": %d, \"endpoint\": ",
					 max, total, threshold);
	escape_json(&details, rows[0].endpoint);
	appendStringInfoChar(&details, '}');
	bkperf_alerts_record("endpoint", rows[0].critical ? "critical" : "warning",
						 rows[0].tenant, rows[0].endpoint,
						 psprintf("endpoint %s responded in %d ms or more",
								  rows[0].endpoint, threshold),
						 n, first, last, details.data);
}

/*
 * bkperf.check_performance_alerts(): raise folded warning/critical alerts
 * for the slow endpoint timings one statement inserted.
 */
Datum
bkperf_check_performance_alerts(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = bkm_check_trigger_context(fcinfo);
	TupleDesc	tupdesc = RelationGetDescr(trigdata->tg_relation);
	BkmColumns	col;
	MemoryContext groupcxt;
	BkmSlowRow *rows;
	int			n,
				start,
				i;

	if (bkperf_endpoint_alert_ms < 0 && bkperf_endpoint_critical_ms < 0)
		return PointerGetDatum(NULL);
	col.tenant = bkm_column(tupdesc, "tenant_id", TEXTOID);
	col.endpoint = bkm_column(tupdesc, "endpoint", TEXTOID);
	col.ms = bkm_column(tupdesc, "response_time_ms", FLOAT8OID);
	col.at = bkm_column(tupdesc, "recorded_at", TIMESTAMPTZOID);
	rows = bkm_collect(trigdata->tg_newtable, tupdesc, &col, &n);
	if (n == 0)
		return PointerGetDatum(NULL);
	qsort(rows, n, sizeof(BkmSlowRow), bkm_compare);
	groupcxt = AllocSetContextCreate(CurrentMemoryContext, "bkperf endpoint alert",
									 ALLOCSET_DEFAULT_SIZES);
	for (start = 0, i = 1; i <= n; i++)
	{
		MemoryContext oldcxt;

		if (i < n && bkm_compare(&rows[start], &rows[i]) == 0)
			continue;
		oldcxt = MemoryContextSwitchTo(groupcxt);
		bkm_record_group(&rows[start], i - start);
		MemoryContextSwitchTo(oldcxt);
		MemoryContextReset(groupcxt);
		start = i;
	}
	MemoryContextDelete(groupcxt);
	return PointerGetDatum(NULL);
}
