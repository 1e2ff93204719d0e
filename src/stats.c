/*-------------------------------------------------------------------------
 * stats.c
 *		Per-tenant statistics: get_backup_statistics() over the backup
 *		catalog and calculate_pitr_stats() over the change log.
 *
 * Each is one indexed aggregate run through a saved SPI plan, after the
 * arguments are checked: NULLs, negative intervals, reversed ranges and
 * tenants unknown to bkperf are reported as errors, not answered with zeros.
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

PG_FUNCTION_INFO_V1(bkperf_get_backup_statistics);
PG_FUNCTION_INFO_V1(bkperf_calculate_pitr_stats);

#define ST_BACKUP_SELECT \
	"SELECT pg_catalog.count(*) FILTER (WHERE j.job_status = 'completed')," \
	"       pg_catalog.count(*) FILTER (WHERE j.job_status = 'failed')," \
	"       pg_catalog.count(*) FILTER (WHERE j.job_status = 'running')," \
	"       pg_catalog.avg(j.backup_size_bytes) FILTER (WHERE j.job_status = 'completed')::float8," \
	"       pg_catalog.sum(j.backup_size_bytes) FILTER (WHERE j.job_status = 'completed')," \
	"       pg_catalog.max(j.finished_at) FILTER (WHERE j.job_status = 'completed')," \
	"       pg_catalog.avg(pg_catalog.date_part('epoch', j.finished_at - j.started_at))" \
	"           FILTER (WHERE j.job_status = 'completed')" \
	"  FROM bkperf.backup_jobs j" \
	" WHERE j.tenant_id = $1 AND j.created_at >= pg_catalog.now() - $2"

/* All job types: the (tenant_id, created_at) index. */
static const char st_backup_sql[] = ST_BACKUP_SELECT;

/* One job type: the (job_type, tenant_id, created_at) index. */
static const char st_backup_type_sql[] = ST_BACKUP_SELECT " AND j.job_type = $3";

static const char st_pitr_sql[] =
"SELECT pg_catalog.count(*) FILTER (WHERE l.operation = 'INSERT'),"
"       pg_catalog.count(*) FILTER (WHERE l.operation = 'UPDATE'),"
"       pg_catalog.count(*) FILTER (WHERE l.operation = 'DELETE'),"
"       pg_catalog.count(DISTINCT l.table_name),"
"       pg_catalog.min(l.changed_at), pg_catalog.max(l.changed_at),"
"       $4::pg_catalog.timestamptz,"
"       (SELECT pg_catalog.count(*) FROM bkperf.backup_pitr_snapshots s"
"         WHERE s.tenant_id = $1 AND s.created_at BETWEEN $2 AND $3)"
"  FROM bkperf.backup_transaction_logs l"
" WHERE l.tenant_id = $1 AND l.changed_at BETWEEN $2 AND $3";

static const char st_known_sql[] = "SELECT bkperf.tenant_known($1)";

/* Passed to st_pitr_sql, which on Citus runs on the tenant's worker. */
static const char st_floor_sql[] = "SELECT bkperf.change_log_floor()";
static SPIPlanPtr st_floor_plan = NULL;

static SPIPlanPtr st_backup_plan = NULL;
static SPIPlanPtr st_backup_type_plan = NULL;
static SPIPlanPtr st_pitr_plan = NULL;
static SPIPlanPtr st_known_plan = NULL;

/*
 * Refuse a tenant that bkperf has never seen (no job, snapshot or log row):
 * a typo in a tenant id should not look like an idle tenant.  Inside SPI.
 */
static void
st_require_known_tenant(Datum tenant)
{
	Oid			argtypes[1] = {TEXTOID};
	bool		isnull;

	if (SPI_execute_plan(bkperf_saved_plan(&st_known_plan, st_known_sql, 1, argtypes),
						 &tenant, NULL, true, 1) != SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "tenant lookup failed");
	if (!DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull)))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_OBJECT),
				 errmsg("tenant \"%s\" is unknown to bkperf", TextDatumGetCString(tenant)),
				 errdetail("It has no backup jobs, snapshots or change-log rows.")));
}

/*
 * Run a one-row aggregate plan, close the SPI connection and return the row
 * as the function's result (the query's columns match the OUT parameters one
 * to one).  The row is formed in SPI's memory and copied out with
 * SPI_returntuple() before SPI_finish() frees that memory; the copy lives in
 * the caller's context.
 */
static Datum
st_one_row(FunctionCallInfo fcinfo, SPIPlanPtr plan, Datum *args, const char *argnulls)
{
	TupleDesc	resultdesc;
	HeapTupleHeader result;
	Datum	   *values;
	bool	   *nulls;

	if (get_call_result_type(fcinfo, NULL, &resultdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	if (SPI_execute_plan(plan, args, argnulls, true, 1) != SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "statistics query returned no row");
	if (SPI_tuptable->tupdesc->natts != resultdesc->natts)
		elog(ERROR, "statistics query returned %d columns, expected %d",
			 SPI_tuptable->tupdesc->natts, resultdesc->natts);

	values = palloc(sizeof(Datum) * resultdesc->natts);
	nulls = palloc(sizeof(bool) * resultdesc->natts);
	for (int i = 0; i < resultdesc->natts; i++)
		values[i] = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, i + 1, &nulls[i]);
	resultdesc = BlessTupleDesc(resultdesc);
	result = SPI_returntuple(heap_form_tuple(resultdesc, values, nulls), resultdesc);
	SPI_finish();
	PG_RETURN_HEAPTUPLEHEADER(result);
}

/* Reject a negative interval argument. */
static void
st_require_nonnegative(const Interval *iv, const char *argname)
{
	if (bkperf_interval_seconds(iv) < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("argument \"%s\" must not be negative", argname),
				 errhint("Pass how far back to look, for example interval '30 days'.")));
}

/* Reject a job type the catalog does not know. */
static void
st_require_job_type(const char *job_type)
{
	static const char *const types[] = {"full", "incremental", "differential", "logical", "snapshot"};

	bkperf_require_one_of(job_type, types, lengthof(types), "job type");
}

/*
 * bkperf.get_backup_statistics(tenant, since, job_type): counts, sizes, last
 * success and mean duration of the tenant's jobs created within `since`.
 */
Datum
bkperf_get_backup_statistics(PG_FUNCTION_ARGS)
{
	Oid			argtypes[3] = {TEXTOID, INTERVALOID, TEXTOID};
	Datum		args[3];
	bool		by_type = !PG_ARGISNULL(2);

	bkperf_require_arg(fcinfo, 0, "tenant");
	bkperf_require_arg(fcinfo, 1, "since");
	st_require_nonnegative(PG_GETARG_INTERVAL_P(1), "since");
	if (by_type)
		st_require_job_type(text_to_cstring(PG_GETARG_TEXT_PP(2)));
	for (int i = 0; i < 3; i++)
		args[i] = PG_ARGISNULL(i) ? (Datum) 0 : PG_GETARG_DATUM(i);

	SPI_connect();
	st_require_known_tenant(args[0]);
	return st_one_row(fcinfo,
					  by_type ?
					  bkperf_saved_plan(&st_backup_type_plan, st_backup_type_sql, 3, argtypes) :
					  bkperf_saved_plan(&st_backup_plan, st_backup_sql, 2, argtypes),
					  args, NULL);
}

/*
 * bkperf.calculate_pitr_stats(tenant, from_ts, to_ts): the tenant's logged
 * changes in [from_ts, to_ts] by kind, tables touched, first and last change,
 * the earliest time rollback can reach, and snapshots taken in the range.
 */
Datum
bkperf_calculate_pitr_stats(PG_FUNCTION_ARGS)
{
	Oid			argtypes[4] = {TEXTOID, TIMESTAMPTZOID, TIMESTAMPTZOID, TIMESTAMPTZOID};
	Datum		args[4];
	char		argnulls[4] = {' ', ' ', ' ', ' '};
	bool		isnull;

	bkperf_require_arg(fcinfo, 0, "tenant");
	bkperf_require_arg(fcinfo, 1, "from_ts");
	bkperf_require_arg(fcinfo, 2, "to_ts");
	if (PG_GETARG_TIMESTAMPTZ(1) > PG_GETARG_TIMESTAMPTZ(2))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("from_ts must not be later than to_ts")));
	for (int i = 0; i < 3; i++)
		args[i] = PG_GETARG_DATUM(i);

	SPI_connect();
	st_require_known_tenant(args[0]);
	if (SPI_execute_plan(bkperf_saved_plan(&st_floor_plan, st_floor_sql, 0, NULL),
						 NULL, NULL, true, 1) != SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "change-log floor query returned no row");
	args[3] = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	argnulls[3] = isnull ? 'n' : ' ';
	return st_one_row(fcinfo,
					  bkperf_saved_plan(&st_pitr_plan, st_pitr_sql, 4, argtypes),
					  args, argnulls);
}
