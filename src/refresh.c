/*-------------------------------------------------------------------------
 * refresh.c
 *		refresh_backup_summaries(): refresh the materialized health views
 *		without ever queueing behind another refresh.
 *
 * pg_cron starts a job again even if the previous run is still going, and
 * REFRESH MATERIALIZED VIEW waits for the lock of a refresh in progress, so
 * overlapping runs would pile up.  Before refreshing a view we take a
 * transaction-level advisory lock (kind BKPERF_LOCK_REFRESH, view OID) without
 * waiting; a call that cannot get it returns at once with note 'already
 * running'.  The lock is released when the refreshing transaction ends.
 * An unpopulated view cannot be refreshed concurrently, so it gets a plain
 * refresh.  Every refresh and every skip is recorded in bkperf.refresh_log.
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"

#include "bkperf.h"

PG_FUNCTION_INFO_V1(bkperf_refresh_backup_summaries);

/* The views, in refresh order. */
static const char *const rf_views[] = {
	"mv_backup_health_summary",
	"mv_tenant_backup_summary"
};

typedef struct RefreshOutcome
{
	bool		refreshed;
	double		duration_ms;
	const char *mode;			/* 'concurrent', 'plain' or 'skipped' */
	const char *note;			/* NULL when there is nothing to say */
} RefreshOutcome;

static const char rf_log_sql[] =
"INSERT INTO bkperf.refresh_log (view_name, started_at, duration_ms, mode, note)"
" VALUES ($1, $2, $3, $4, $5)";

static SPIPlanPtr rf_log_plan = NULL;

/* Record one outcome in bkperf.refresh_log (inside SPI). */
static void
rf_record(const char *view, TimestampTz started, const RefreshOutcome *out)
{
	Oid			argtypes[5] = {TEXTOID, TIMESTAMPTZOID, FLOAT8OID, TEXTOID, TEXTOID};
	Datum		args[5];
	char		nulls[5] = {' ', ' ', ' ', ' ', out->note ? ' ' : 'n'};

	args[0] = CStringGetTextDatum(view);
	args[1] = TimestampTzGetDatum(started);
	args[2] = Float8GetDatum(out->duration_ms);
	args[3] = CStringGetTextDatum(out->mode);
	args[4] = out->note ? CStringGetTextDatum(out->note) : (Datum) 0;
	if (SPI_execute_plan(bkperf_saved_plan(&rf_log_plan, rf_log_sql, 5, argtypes),
						 args, nulls, false, 0) != SPI_OK_INSERT)
		elog(ERROR, "could not record refresh of \"%s\"", view);
}

/*
 * Refresh one view unless another refresh of it is running (inside SPI).
 */
static void
rf_refresh_one(const char *view, bool concurrently, RefreshOutcome *out)
{
	TimestampTz started = GetCurrentTimestamp();
	Oid			viewid = bkperf_relid(view);
	bool		populated;

	memset(out, 0, sizeof(*out));
	if (!bkperf_xact_lock(viewid, BKPERF_LOCK_REFRESH, false))
	{
		out->mode = "skipped";
		out->note = "already running";
	}
	else
	{
		populated = bkperf_view_is_populated(viewid);
		if (concurrently && !populated)
			out->note = "not populated: plain refresh";
		concurrently = concurrently && populated;
		out->mode = concurrently ? "concurrent" : "plain";
		if (SPI_execute(psprintf("REFRESH MATERIALIZED VIEW %sbkperf.%s",
								 concurrently ? "CONCURRENTLY " : "", view),
						false, 0) != SPI_OK_UTILITY)
			elog(ERROR, "refresh of \"%s\" failed", view);
		out->refreshed = true;
	}
	out->duration_ms = (double) (GetCurrentTimestamp() - started) / 1000.0;
	rf_record(view, started, out);
}

/*
 * bkperf.refresh_backup_summaries(concurrently boolean DEFAULT true):
 * one row per view (view_name, refreshed, duration_ms, note).
 */
Datum
bkperf_refresh_backup_summaries(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	bool		concurrently;

	bkperf_require_arg(fcinfo, 0, "concurrently");
	concurrently = PG_GETARG_BOOL(0);
	InitMaterializedSRF(fcinfo, 0);

	SPI_connect();
	for (size_t i = 0; i < lengthof(rf_views); i++)
	{
		RefreshOutcome out;
		Datum		values[4];
		bool		nulls[4] = {false, false, false, false};

		rf_refresh_one(rf_views[i], concurrently, &out);
		values[0] = CStringGetTextDatum(psprintf("bkperf.%s", rf_views[i]));
		values[1] = BoolGetDatum(out.refreshed);
		values[2] = Float8GetDatum(out.duration_ms);
		values[3] = out.note ? CStringGetTextDatum(out.note) : (Datum) 0;
		nulls[3] = out.note == NULL;
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	SPI_finish();
	return (Datum) 0;
}
