/*-------------------------------------------------------------------------
 * health.c
 *		Backup health score of a tenant: calculate_health_score() from live
 *		data and health_report() for every tenant from the materialized view.
 *
 * Both feed the same scoring code with the same inputs (the columns of
 * bkperf.backup_health_inputs, which mv_backup_health_summary materializes)
 * and the same policy (bkperf.health_policy overlaid with the tenant's row
 * of bkperf.health_policy_tenant).  The formula is documented in README.md:
 * eight components, each 0..1 or not applicable, weighted by the policy and
 * scaled to 0..100, then capped by three hard rules.
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/numeric.h"
#include "utils/lsyscache.h"
#include "utils/timestamp.h"

#include "bkperf.h"

PG_FUNCTION_INFO_V1(bkperf_calculate_health_score);
PG_FUNCTION_INFO_V1(bkperf_health_report);

typedef enum HealthComponent
{
	HC_RECENCY,
	HC_FULL_RECENCY,
	HC_CHANGE_LOG,
	HC_SUCCESS_RATIO,
	HC_REDUNDANCY,
	HC_RECOVERY_WINDOW,
	HC_VERIFICATION,
	HC_DURATION,
	HC_COUNT
} HealthComponent;

static const char *const hl_component_names[HC_COUNT] = {
	"recency", "full_recency", "change_log", "success_ratio",
	"redundancy", "recovery_window", "verification", "duration"
};

/* The policy in force for one tenant, intervals in seconds. */
typedef struct HealthPolicy
{
	double		rpo_target;
	double		rpo_grace;
	double		full_max_age;
	int			min_redundancy;
	double		recovery_window;
	double		duration_tolerance;
	double		weight[HC_COUNT];
} HealthPolicy;

/* What the score is computed from (one row of backup_health_inputs). */
typedef struct HealthInputs
{
	bool		known;			/* tenant appears anywhere in bkperf */
	bool		has_restorable;
	TimestampTz last_restorable;
	TimestampTz last_restorable_start;
	TimestampTz oldest_restorable;
	bool		has_full;
	TimestampTz last_full;
	int64		valid_fulls;
	int64		completed_30d;
	int64		failed_30d;
	int64		verified_30d;
	bool		latest_failed;
	bool		has_last_duration;
	double		last_duration;
	bool		has_median;
	double		median_duration;
	bool		has_floor;
	TimestampTz log_floor;
} HealthInputs;

typedef struct HealthResult
{
	bool		score_null;
	double		score;
	const char *band;
	Datum		components;		/* jsonb */
} HealthResult;

/*
 * The select list shared by both queries: inputs, default policy, override
 * policy, change-log floor, "known".  Column positions below depend on it.
 */
#define HL_POLICY_COLS(p) \
	p ".rpo_target, " p ".rpo_grace, " p ".full_max_age, " p ".min_redundancy, " \
	p ".recovery_window, " p ".duration_tolerance, " p ".w_recency, " \
	p ".w_full_recency, " p ".w_change_log, " p ".w_success_ratio, " \
	p ".w_redundancy, " p ".w_recovery_window, " p ".w_verification, " p ".w_duration"
#define HL_POLICY_NCOLS 14
#define HL_INPUT_COLS(i) \
	i ".last_restorable_at, " i ".last_restorable_started_at, " \
	i ".oldest_restorable_at, " i ".last_full_at, " i ".valid_fulls, " \
	i ".completed_30d, " i ".failed_30d, " i ".verified_30d, " \
	i ".latest_finished_status, " i ".last_duration_s, " i ".median_duration_30d_s"
#define HL_INPUT_NCOLS 11
#define HL_COL_DEFAULT_POLICY (HL_INPUT_NCOLS + 1)
#define HL_COL_OVERRIDE_POLICY (HL_COL_DEFAULT_POLICY + HL_POLICY_NCOLS)
#define HL_COL_FLOOR (HL_COL_OVERRIDE_POLICY + HL_POLICY_NCOLS)
#define HL_COL_KNOWN (HL_COL_FLOOR + 1)
#define HL_NCOLS_COMMON HL_COL_KNOWN

static const char hl_tenant_sql[] =
"SELECT " HL_INPUT_COLS("i") ", " HL_POLICY_COLS("d") ", " HL_POLICY_COLS("o") ","
"       $2::pg_catalog.timestamptz, $3::pg_catalog.bool"
"  FROM bkperf.health_policy d"
"  LEFT JOIN bkperf.health_policy_tenant o ON o.tenant_id = $1"
"  LEFT JOIN bkperf.backup_health_inputs i ON i.tenant_id = $1";

/* The floor is computed once (MATERIALIZED), not once per tenant. */
static const char hl_report_sql[] =
"WITH f AS MATERIALIZED (SELECT bkperf.change_log_floor() AS log_floor) "
"SELECT " HL_INPUT_COLS("m") ", " HL_POLICY_COLS("d") ", " HL_POLICY_COLS("o") ","
"       f.log_floor, true,"
"       m.tenant_id, m.total_jobs, m.successful_jobs, m.failed_jobs,"
"       m.last_backup_at, m.last_success_at, s.total_size_bytes,"
"       s.backups_last_7_days, m.computed_at"
"  FROM bkperf.mv_backup_health_summary m"
"  CROSS JOIN bkperf.health_policy d"
"  CROSS JOIN f"
"  LEFT JOIN bkperf.health_policy_tenant o ON o.tenant_id = m.tenant_id"
"  LEFT JOIN bkperf.mv_tenant_backup_summary s ON s.tenant_id = m.tenant_id"
" ORDER BY m.tenant_id";

/*
 * The floor and "known" of one tenant, computed before hl_tenant_sql and
 * passed to it: on Citus that query runs on the tenant's worker, where
 * these functions (reading other tables) cannot run inside it.
 */
static const char hl_floor_sql[] =
"SELECT bkperf.change_log_floor(), bkperf.tenant_known($1)";

static SPIPlanPtr hl_tenant_plan = NULL;
static SPIPlanPtr hl_floor_plan = NULL;
static SPIPlanPtr hl_report_plan = NULL;

/* One query row, deformed once: columns are read by 1-based number. */
typedef struct HlRow
{
	TupleDesc	td;
	Datum	   *values;
	bool	   *nulls;
} HlRow;

/* Deform an SPI row (into the current memory context). */
static void
hl_deform(HeapTuple tup, TupleDesc td, HlRow *row)
{
	row->td = td;
	row->values = palloc(sizeof(Datum) * td->natts);
	row->nulls = palloc(sizeof(bool) * td->natts);
	heap_deform_tuple(tup, td, row->values, row->nulls);
}

/* Column col (1-based); false when NULL. */
static bool
hl_col(const HlRow *row, int col, Datum *value)
{
	*value = row->values[col - 1];
	return !row->nulls[col - 1];
}

/* A timestamptz column; false when NULL. */
static bool
hl_ts(const HlRow *row, int col, TimestampTz *out)
{
	Datum		d;

	if (!hl_col(row, col, &d))
		return false;
	*out = DatumGetTimestampTz(d);
	return true;
}

/* A bigint column, NULL counting as 0. */
static int64
hl_int8(const HlRow *row, int col)
{
	Datum		d;

	return hl_col(row, col, &d) ? DatumGetInt64(d) : 0;
}

/* A double precision column; false when NULL. */
static bool
hl_float8(const HlRow *row, int col, double *out)
{
	Datum		d;

	if (!hl_col(row, col, &d))
		return false;
	*out = DatumGetFloat8(d);
	return true;
}

/*
 * Read the policy: the default row's column, unless the tenant's override
 * row has a non-NULL value for it.
 */
static void
hl_read_policy(const HlRow *row, HealthPolicy *p)
{
	double		val[HL_POLICY_NCOLS];

	for (int i = 0; i < HL_POLICY_NCOLS; i++)
	{
		int			col = HL_COL_OVERRIDE_POLICY + i;
		Datum		d;

		Oid			type;

		if (!hl_col(row, col, &d))
		{
			col = HL_COL_DEFAULT_POLICY + i;
			if (!hl_col(row, col, &d))
				elog(ERROR, "health policy column %d is null", i);
		}
		type = TupleDescAttr(row->td, col - 1)->atttypid;
		if (type == INTERVALOID)
			val[i] = bkperf_interval_seconds(DatumGetIntervalP(d));
		else if (type == INT4OID)
			val[i] = DatumGetInt32(d);
		else
			val[i] = DatumGetFloat8(d);
	}
	p->rpo_target = val[0];
	p->rpo_grace = val[1];
	p->full_max_age = val[2];
	p->min_redundancy = (int) val[3];
	p->recovery_window = val[4];
	p->duration_tolerance = val[5];
	for (int c = 0; c < HC_COUNT; c++)
		p->weight[c] = val[6 + c];
}

/* Read the score inputs from the common leading columns of either query. */
static void
hl_read_inputs(const HlRow *row, HealthInputs *in)
{
	Datum		d;

	memset(in, 0, sizeof(*in));
	in->has_restorable = hl_ts(row, 1, &in->last_restorable);
	hl_ts(row, 2, &in->last_restorable_start);
	hl_ts(row, 3, &in->oldest_restorable);
	in->has_full = hl_ts(row, 4, &in->last_full);
	in->valid_fulls = hl_int8(row, 5);
	in->completed_30d = hl_int8(row, 6);
	in->failed_30d = hl_int8(row, 7);
	in->verified_30d = hl_int8(row, 8);
	in->latest_failed = hl_col(row, 9, &d) &&
		strcmp(TextDatumGetCString(d), "failed") == 0;
	in->has_last_duration = hl_float8(row, 10, &in->last_duration);
	in->has_median = hl_float8(row, 11, &in->median_duration);
	in->has_floor = hl_ts(row, HL_COL_FLOOR, &in->log_floor);
	in->known = hl_col(row, HL_COL_KNOWN, &d) && DatumGetBool(d);
}

/*
 * 1 up to ok_until, falling linearly to 0 at zero_at (and 0 beyond).
 */
static double
hl_decay(double x, double ok_until, double zero_at)
{
	if (x <= ok_until)
		return 1.0;
	if (x >= zero_at)
		return 0.0;
	return 1.0 - (x - ok_until) / (zero_at - ok_until);
}

/* Seconds from t to now. */
static double
hl_age(TimestampTz now, TimestampTz t)
{
	return (double) (now - t) / USECS_PER_SEC;
}

/*
 * Each component's value in 0..1, or NaN where it does not apply (it then
 * takes no weight).  See README.md "Health score" for the rules.
 */
static void
hl_components(const HealthInputs *in, const HealthPolicy *p, TimestampTz now,
			  double value[HC_COUNT])
{
	double		limit = p->rpo_target + p->rpo_grace;
	int64		finished = in->completed_30d + in->failed_30d;

	value[HC_RECENCY] = in->has_restorable ?
		hl_decay(hl_age(now, in->last_restorable), limit, 2 * limit) : 0.0;
	value[HC_FULL_RECENCY] = in->has_full ?
		hl_decay(hl_age(now, in->last_full), p->full_max_age, 2 * p->full_max_age) : 0.0;
	if (!in->has_floor)
		value[HC_CHANGE_LOG] = NAN;
	else if (!in->has_restorable)
		value[HC_CHANGE_LOG] = 0.0;
	else
		value[HC_CHANGE_LOG] =
			hl_decay((double) (in->log_floor - in->last_restorable_start) / USECS_PER_SEC,
					 0.0, p->rpo_target);
	value[HC_SUCCESS_RATIO] = finished > 0 ?
		(double) in->completed_30d / finished : NAN;
	value[HC_REDUNDANCY] = p->min_redundancy == 0 ? 1.0 :
		Min(1.0, (double) in->valid_fulls / p->min_redundancy);
	if (p->recovery_window <= 0)
		value[HC_RECOVERY_WINDOW] = 1.0;
	else
		value[HC_RECOVERY_WINDOW] = in->has_restorable ?
			Min(1.0, hl_age(now, in->oldest_restorable) / p->recovery_window) : 0.0;
	value[HC_VERIFICATION] = in->completed_30d > 0 ?
		(double) in->verified_30d / in->completed_30d : NAN;
	if (in->has_last_duration && in->has_median && in->median_duration > 0 &&
		in->completed_30d >= 3)
		value[HC_DURATION] = hl_decay(in->last_duration / in->median_duration,
									  p->duration_tolerance, 2 * p->duration_tolerance);
	else
		value[HC_DURATION] = NAN;
}

/* A jsonb numeric of x rounded to 3 decimals (integers stay integers). */
static JsonbValue *
hl_jnum(JsonbValue *v, double x)
{
	v->type = jbvNumeric;
	if (x == rint(x) && fabs(x) < 1e15)
		v->val.numeric = int64_to_numeric((int64) x);
	else
		v->val.numeric = int64_div_fast_to_numeric((int64) rint(x * 1000), 3);
	return v;
}

/* A jsonb string value of a C string. */
static JsonbValue *
hl_jstr(JsonbValue *v, const char *str)
{
	v->type = jbvString;
	v->val.string.val = (char *) str;
	v->val.string.len = strlen(str);
	return v;
}

/*
 * The components object: {"<name>": {"value": v|null, "weight": w}, ...,
 * "caps": [...]}, built directly (no JSON text to parse: the report builds
 * one per tenant).
 */
static Datum
hl_components_jsonb(const double value[HC_COUNT], const HealthPolicy *p,
					const char *const *caps, int ncaps)
{
	JsonbParseState *st = NULL;
	JsonbValue	v;
	JsonbValue *res;

	pushJsonbValue(&st, WJB_BEGIN_OBJECT, NULL);
	for (int c = 0; c < HC_COUNT; c++)
	{
		pushJsonbValue(&st, WJB_KEY, hl_jstr(&v, hl_component_names[c]));
		pushJsonbValue(&st, WJB_BEGIN_OBJECT, NULL);
		pushJsonbValue(&st, WJB_KEY, hl_jstr(&v, "value"));
		if (isnan(value[c]))
		{
			v.type = jbvNull;
			pushJsonbValue(&st, WJB_VALUE, &v);
		}
		else
			pushJsonbValue(&st, WJB_VALUE, hl_jnum(&v, value[c]));
		pushJsonbValue(&st, WJB_KEY, hl_jstr(&v, "weight"));
		pushJsonbValue(&st, WJB_VALUE, hl_jnum(&v, p->weight[c]));
		pushJsonbValue(&st, WJB_END_OBJECT, NULL);
	}
	pushJsonbValue(&st, WJB_KEY, hl_jstr(&v, "caps"));
	pushJsonbValue(&st, WJB_BEGIN_ARRAY, NULL);
	for (int i = 0; i < ncaps; i++)
		pushJsonbValue(&st, WJB_ELEM, hl_jstr(&v, caps[i]));
	pushJsonbValue(&st, WJB_END_ARRAY, NULL);
	res = pushJsonbValue(&st, WJB_END_OBJECT, NULL);
	return JsonbPGetDatum(JsonbValueToJsonb(res));
}

/*
 * Score one tenant: weighted mean of the applicable components, scaled to
 * 0..100, then the hard caps: no restorable backup -> 0; latest finished
 * backup failed -> at most 79; fewer valid fulls than min_redundancy -> at
 * most 69.  Every cap whose condition holds is listed, even where the score
 * was already below it.
 */
static void
hl_score(const HealthInputs *in, const HealthPolicy *p, TimestampTz now,
		 HealthResult *out)
{
	double		value[HC_COUNT];
	double		sum = 0,
				weights = 0;
	const char *caps[3];
	int			ncaps = 0;

	if (!in->known)
	{
		out->score_null = true;
		out->band = "unknown";
		out->components = DirectFunctionCall1(jsonb_in, CStringGetDatum(
			"{\"reason\": \"no backup jobs, snapshots or change-log rows for this tenant\"}"));
		return;
	}
	hl_components(in, p, now, value);
	for (int c = 0; c < HC_COUNT; c++)
	{
		if (isnan(value[c]))
			continue;
		sum += value[c] * p->weight[c];
		weights += p->weight[c];
	}
	out->score_null = false;
	out->score = weights > 0 ? 100.0 * sum / weights : 0.0;

	if (!in->has_restorable)
	{
		out->score = 0;
		caps[ncaps++] = "no valid backup";
	}
	if (in->latest_failed)
	{
		out->score = Min(out->score, 79);
		caps[ncaps++] = "latest backup failed";
	}
	if (in->valid_fulls < p->min_redundancy)
	{
		out->score = Min(out->score, 69);
		caps[ncaps++] = "minimum redundancy not met";
	}
	out->score = rint(out->score * 10) / 10;
	out->band = out->score >= 90 ? "ok" : out->score >= 70 ? "warning" : "critical";
	out->components = hl_components_jsonb(value, p, caps, ncaps);
}

/* Score a deformed row of either query. */
static void
hl_score_row(const HlRow *row, TimestampTz now, HealthResult *res)
{
	HealthInputs in;
	HealthPolicy policy;

	hl_read_inputs(row, &in);
	hl_read_policy(row, &policy);
	hl_score(&in, &policy, now, res);
}

/*
 * bkperf.calculate_health_score(tenant text) -> (score, band, components)
 *
 * From live data: one indexed aggregate over the tenant's backup jobs.
 */
Datum
bkperf_calculate_health_score(PG_FUNCTION_ARGS)
{
	Oid			argtypes[3] = {TEXTOID, TIMESTAMPTZOID, BOOLOID};
	Datum		args[3];
	char		argnulls[3] = {' ', ' ', ' '};
	bool		isnull;
	TupleDesc	resultdesc;
	HealthResult res;
	HlRow		row;
	Datum		values[3];
	bool		nulls[3] = {false, false, false};
	MemoryContext callcxt = CurrentMemoryContext;
	MemoryContext oldcxt;

	bkperf_require_arg(fcinfo, 0, "tenant");
	if (get_call_result_type(fcinfo, NULL, &resultdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "return type must be a row type");
	args[0] = PG_GETARG_DATUM(0);

	SPI_connect();
	if (SPI_execute_plan(bkperf_saved_plan(&hl_floor_plan, hl_floor_sql, 1, argtypes),
						 args, NULL, true, 1) != SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "change-log floor query returned no row");
	args[1] = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
	argnulls[1] = isnull ? 'n' : ' ';
	args[2] = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull);
	if (SPI_execute_plan(bkperf_saved_plan(&hl_tenant_plan, hl_tenant_sql, 3, argtypes),
						 args, argnulls, true, 1) != SPI_OK_SELECT || SPI_processed != 1)
		elog(ERROR, "health inputs query returned no row");
	oldcxt = MemoryContextSwitchTo(callcxt);
	hl_deform(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, &row);
	hl_score_row(&row, GetCurrentTransactionStartTimestamp(), &res);
	MemoryContextSwitchTo(oldcxt);
	SPI_finish();

	values[0] = Float8GetDatum(res.score);
	nulls[0] = res.score_null;
	values[1] = CStringGetTextDatum(res.band);
	values[2] = res.components;
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(BlessTupleDesc(resultdesc),
													  values, nulls)));
}

/* Report columns after the common ones, in the order of the result type. */
#define HL_REPORT_NCOLS 12

/*
 * Build one health_report() output row from the current SPI row.
 */
static void
hl_report_row(HeapTuple tup, TupleDesc td, TimestampTz now,
			  Datum values[HL_REPORT_NCOLS], bool nulls[HL_REPORT_NCOLS])
{
	HealthResult res;
	HlRow		row;
	/* result column -> query column (0 = computed) */
	static const int map[HL_REPORT_NCOLS] = {
		HL_NCOLS_COMMON + 1, 0, 0, HL_NCOLS_COMMON + 2, HL_NCOLS_COMMON + 3,
		HL_NCOLS_COMMON + 4, HL_NCOLS_COMMON + 5, HL_NCOLS_COMMON + 6,
		HL_NCOLS_COMMON + 7, HL_NCOLS_COMMON + 8, 0, HL_NCOLS_COMMON + 9
	};

	hl_deform(tup, td, &row);
	hl_score_row(&row, now, &res);
	for (int i = 0; i < HL_REPORT_NCOLS; i++)
		if (map[i] != 0)
			nulls[i] = !hl_col(&row, map[i], &values[i]);
	values[1] = Float8GetDatum(res.score);
	nulls[1] = res.score_null;
	values[2] = CStringGetTextDatum(res.band);
	nulls[2] = false;
	values[10] = res.components;
	nulls[10] = false;
}

/*
 * bkperf.health_report(): every tenant of mv_backup_health_summary with its
 * score.  Counts are as of the view's last refresh; ages use the current time.
 */
Datum
bkperf_health_report(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	TimestampTz now = GetCurrentTransactionStartTimestamp();
	MemoryContext rowcxt;

	if (!bkperf_view_is_populated(bkperf_relid("mv_backup_health_summary")))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("materialized view \"bkperf.mv_backup_health_summary\" has not been populated"),
				 errhint("Run SELECT * FROM bkperf.refresh_backup_summaries(false).")));
	InitMaterializedSRF(fcinfo, 0);
	rowcxt = AllocSetContextCreate(CurrentMemoryContext, "health_report row",
								   ALLOCSET_SMALL_SIZES);

	SPI_connect();
	if (SPI_execute_plan(bkperf_saved_plan(&hl_report_plan, hl_report_sql, 0, NULL),
						 NULL, NULL, true, 0) != SPI_OK_SELECT)
		elog(ERROR, "health report query failed");
	for (uint64 r = 0; r < SPI_processed; r++)
	{
		Datum		values[HL_REPORT_NCOLS];
		bool		nulls[HL_REPORT_NCOLS];
		MemoryContext oldcxt = MemoryContextSwitchTo(rowcxt);

		hl_report_row(SPI_tuptable->vals[r], SPI_tuptable->tupdesc, now, values, nulls);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
		MemoryContextSwitchTo(oldcxt);
		MemoryContextReset(rowcxt);
	}
	SPI_finish();
	return (Datum) 0;
}
