/*-------------------------------------------------------------------------
 * retention.c
 *		apply_retention(): grandfather-father-son retention of backups.
 *
 * Per tenant, over its completed jobs, newest first, each job gets exactly
 * one decision and reason, by precedence:
 *   pinned      pinned = true
 *   redundancy  one of the newest min_redundancy valid fulls
 *   window      finished inside the recovery window, or the newest valid
 *               full finished before it (needed to restore to its start)
 *   gfs:<level>:<bucket>  newest valid backup of one of the newest
 *               keep_<level> buckets with a backup (days, ISO weeks, months,
 *               years of finished_at in UTC); empty periods use no slot
 *   dependency  the parent chain of any kept incremental or differential
 *   invalid     completed but not valid (error recorded or verification
 *               failed): never counted, never expired by retention
 *   unretained  everything else: expired
 * Only job_status is changed ('completed' -> 'expired'); nothing is deleted.
 * A per-tenant advisory lock keeps two retention runs of one tenant apart.
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"

#include "bkperf.h"

PG_FUNCTION_INFO_V1(bkperf_apply_retention);

#define RT_LEVELS 4
static const char *const rt_level_names[RT_LEVELS] = {"daily", "weekly", "monthly", "yearly"};

typedef struct RetentionArgs
{
	int			keep[RT_LEVELS];
	int			min_redundancy;
	double		window_s;
	bool		dry_run;
} RetentionArgs;

typedef struct RetJob
{
	int64		job_id;
	bool		is_full;
	bool		valid;
	bool		pinned;
	bool		has_parent;
	int64		parent_id;
	TimestampTz finished_at;
	char	   *bucket[RT_LEVELS];
	const char *reason;			/* NULL until decided */
	bool		keep;
} RetJob;

/* Completed jobs of one tenant (or all), newest first, with their buckets. */
static const char rt_jobs_sql[] =
"SELECT j.tenant_id, j.job_id, j.job_type = 'full', "
"       j.error_message IS NULL AND j.verify_status <> 'failed', j.pinned, j.parent_job_id, "
"       j.finished_at, "
"       pg_catalog.to_char(j.finished_at AT TIME ZONE 'UTC', 'YYYY-MM-DD'), "
"       pg_catalog.to_char(j.finished_at AT TIME ZONE 'UTC', 'IYYY-\"W\"IW'), "
"       pg_catalog.to_char(j.finished_at AT TIME ZONE 'UTC', 'YYYY-MM'), "
"       pg_catalog.to_char(j.finished_at AT TIME ZONE 'UTC', 'YYYY') "
"  FROM bkperf.backup_jobs j "
" WHERE j.job_status = 'completed' AND ($1 IS NULL OR j.tenant_id = $1) "
" ORDER BY j.tenant_id, j.finished_at DESC, j.job_id DESC";

static const char rt_expire_sql[] =
"UPDATE bkperf.backup_jobs SET job_status = 'expired' "
" WHERE tenant_id = $1 AND job_id = ANY ($2) AND job_status = 'completed'";

static SPIPlanPtr rt_jobs_plan = NULL;
static SPIPlanPtr rt_expire_plan = NULL;

/* Decide a job once: the first reason given wins. */
static void
rt_mark(RetJob *job, bool keep, const char *reason)
{
	if (job->reason != NULL)
		return;
	job->keep = keep;
	job->reason = reason;
}

/* Keep the newest min_redundancy valid fulls, and the recovery window. */
static void
rt_redundancy_and_window(RetJob *jobs, int n, const RetentionArgs *a, TimestampTz now)
{
	int			fulls = 0;
	bool		before_window_full = false;
	TimestampTz window_start = now - (TimestampTz) (a->window_s * USECS_PER_SEC);

	for (int i = 0; i < n; i++)
		if (jobs[i].valid && jobs[i].is_full && fulls < a->min_redundancy)
		{
			rt_mark(&jobs[i], true, "redundancy");
			fulls++;
		}
	for (int i = 0; i < n; i++)
	{
		if (!jobs[i].valid)
			continue;
		if (jobs[i].finished_at >= window_start)
			rt_mark(&jobs[i], true, "window");
		else if (jobs[i].is_full && !before_window_full && a->window_s > 0)
		{
			rt_mark(&jobs[i], true, "window");
			before_window_full = true;
		}
	}
}

/* Keep the newest valid backup of each of the newest keep_N buckets. */
static void
rt_gfs(RetJob *jobs, int n, const RetentionArgs *a)
{
	for (int level = 0; level < RT_LEVELS; level++)
	{
		int			buckets = 0;
		const char *last = NULL;

		for (int i = 0; i < n && buckets < a->keep[level]; i++)
		{
			if (!jobs[i].valid)
				continue;
			if (last != NULL && strcmp(last, jobs[i].bucket[level]) == 0)
				continue;		/* an older backup of a bucket already kept */
			last = jobs[i].bucket[level];
			buckets++;
			rt_mark(&jobs[i], true, psprintf("gfs:%s:%s", rt_level_names[level], last));
		}
	}
}

/* Find a job by id among this tenant's completed jobs; NULL if absent. */
static RetJob *
rt_find(RetJob *jobs, int n, int64 job_id)
{
	for (int i = 0; i < n; i++)
		if (jobs[i].job_id == job_id)
			return &jobs[i];
	return NULL;
}

/*
 * A kept job keeps its whole parent chain.  Walking each chain from every
 * kept job reaches the fixpoint in one pass; the step bound stops a cycle.
 */
static void
rt_dependencies(RetJob *jobs, int n)
{
	for (int i = 0; i < n; i++)
	{
		RetJob	   *job = &jobs[i];

		for (int steps = 0; job->keep && job->has_parent && steps < n; steps++)
		{
			RetJob	   *parent = rt_find(jobs, n, job->parent_id);

			if (parent == NULL)
				break;
			if (!parent->keep)
			{
				parent->reason = "dependency";
				parent->keep = true;
			}
			job = parent;
		}
	}
}

/* Decide every job of one tenant. */
static void
rt_decide(RetJob *jobs, int n, const RetentionArgs *a, TimestampTz now)
{
	for (int i = 0; i < n; i++)
		if (jobs[i].pinned)
			rt_mark(&jobs[i], true, "pinned");
	rt_redundancy_and_window(jobs, n, a, now);
	rt_gfs(jobs, n, a);
	for (int i = 0; i < n; i++)
		if (!jobs[i].valid)
			rt_mark(&jobs[i], true, "invalid");
	for (int i = 0; i < n; i++)
		rt_mark(&jobs[i], false, "unretained");
	rt_dependencies(jobs, n);
}

/* Read row r of the jobs query into job (strings copied to the current context). */
static void
rt_read_job(int r, RetJob *job)
{
	HeapTuple	tup = SPI_tuptable->vals[r];
	TupleDesc	td = SPI_tuptable->tupdesc;
	bool		isnull;

	memset(job, 0, sizeof(*job));
	job->job_id = DatumGetInt64(SPI_getbinval(tup, td, 2, &isnull));
	job->is_full = DatumGetBool(SPI_getbinval(tup, td, 3, &isnull));
	job->valid = DatumGetBool(SPI_getbinval(tup, td, 4, &isnull));
	job->pinned = DatumGetBool(SPI_getbinval(tup, td, 5, &isnull));
	job->parent_id = DatumGetInt64(SPI_getbinval(tup, td, 6, &isnull));
	job->has_parent = !isnull;
	job->finished_at = DatumGetTimestampTz(SPI_getbinval(tup, td, 7, &isnull));
	for (int level = 0; level < RT_LEVELS; level++)
		job->bucket[level] = SPI_getvalue(tup, td, 8 + level);
}

/* Take the tenant's retention lock, waiting for another run to finish. */
static void
rt_lock_tenant(const char *tenant)
{
	(void) bkperf_xact_lock(bkperf_name_key(tenant), BKPERF_LOCK_RETENTION, true);
}

/* Expire the tenant's unretained jobs in one statement. */
static void
rt_expire(Datum tenant, RetJob *jobs, int n)
{
	Oid			argtypes[2] = {TEXTOID, INT8ARRAYOID};
	Datum		args[2];
	Datum	   *ids = palloc(sizeof(Datum) * n);
	int			nids = 0;

	for (int i = 0; i < n; i++)
		if (!jobs[i].keep)
			ids[nids++] = Int64GetDatum(jobs[i].job_id);
	if (nids == 0)
		return;
	args[0] = tenant;
	args[1] = PointerGetDatum(construct_array(ids, nids, INT8OID, 8, FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
	if (SPI_execute_plan(bkperf_saved_plan(&rt_expire_plan, rt_expire_sql, 2, argtypes),
						 args, NULL, false, 0) != SPI_OK_UPDATE)
		elog(ERROR, "could not expire backup jobs");
}

/* Emit the decisions of one tenant, and expire unless this is a dry run. */
static void
rt_finish_tenant(ReturnSetInfo *rsinfo, Datum tenant, RetJob *jobs, int n,
				 const RetentionArgs *a, TimestampTz now)
{
	rt_decide(jobs, n, a, now);
	for (int i = 0; i < n; i++)
	{
		Datum		values[4];
		bool		nulls[4] = {false, false, false, false};

		values[0] = tenant;
		values[1] = Int64GetDatum(jobs[i].job_id);
		values[2] = CStringGetTextDatum(jobs[i].keep ? "keep" : "expire");
		values[3] = CStringGetTextDatum(jobs[i].reason);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	if (!a->dry_run)
		rt_expire(tenant, jobs, n);
}

/* Check and collect the arguments. */
static void
rt_read_args(FunctionCallInfo fcinfo, RetentionArgs *a)
{
	static const char *const names[] = {"tenant", "keep_daily", "keep_weekly", "keep_monthly",
		"keep_yearly", "min_redundancy", "recovery_window", "dry_run"};

	for (int i = 1; i < 8; i++)
		bkperf_require_arg(fcinfo, i, names[i]);
	for (int i = 1; i <= 5; i++)
		if (PG_GETARG_INT32(i) < 0)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("argument \"%s\" must not be negative", names[i])));
	for (int level = 0; level < RT_LEVELS; level++)
		a->keep[level] = PG_GETARG_INT32(1 + level);
	a->min_redundancy = PG_GETARG_INT32(5);
	a->window_s = bkperf_interval_seconds(PG_GETARG_INTERVAL_P(6));
	if (a->window_s < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("argument \"recovery_window\" must not be negative")));
	a->dry_run = PG_GETARG_BOOL(7);
}

/*
 * bkperf.apply_retention(tenant, keep_daily, keep_weekly, keep_monthly,
 * keep_yearly, min_redundancy, recovery_window, dry_run): one row per
 * completed job of the tenant (every tenant when NULL).
 */
Datum
bkperf_apply_retention(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	RetentionArgs a;
	Oid			argtypes[1] = {TEXTOID};
	Datum		arg = PG_ARGISNULL(0) ? (Datum) 0 : PG_GETARG_DATUM(0);
	char		argnull = PG_ARGISNULL(0) ? 'n' : ' ';
	TimestampTz now = GetCurrentTransactionStartTimestamp();
	RetJob	   *jobs;
	int			n = 0;

	rt_read_args(fcinfo, &a);
	InitMaterializedSRF(fcinfo, 0);
	SPI_connect();
	if (!PG_ARGISNULL(0))
		rt_lock_tenant(TextDatumGetCString(arg));
	if (SPI_execute_plan(bkperf_saved_plan(&rt_jobs_plan, rt_jobs_sql, 1, argtypes),
						 &arg, &argnull, false, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read backup jobs");
	{
		SPITupleTable *tab = SPI_tuptable;
		uint64		rows = SPI_processed;
		char	   *tenant = NULL;

		jobs = palloc(sizeof(RetJob) * Max(rows, 1));
		for (uint64 r = 0; r <= rows; r++)
		{
			char	   *t = r < rows ? SPI_getvalue(tab->vals[r], tab->tupdesc, 1) : NULL;

			if (tenant != NULL && (t == NULL || strcmp(t, tenant) != 0))
			{
				rt_finish_tenant(rsinfo, CStringGetTextDatum(tenant), jobs, n, &a, now);
				n = 0;
			}
			if (t == NULL)
				break;
			if (PG_ARGISNULL(0) && (tenant == NULL || strcmp(t, tenant) != 0))
				rt_lock_tenant(t);
			tenant = t;
			SPI_tuptable = tab;
			rt_read_job((int) r, &jobs[n++]);
		}
	}
	SPI_finish();
	return (Datum) 0;
}
