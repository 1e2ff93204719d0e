/*-------------------------------------------------------------------------
 * util.c
 *		Small helpers shared by bkperf's SQL functions: saved plans,
 *		interval arithmetic, catalog look-ups, advisory locks, argument checks.
 *-------------------------------------------------------------------------
 */
#include "postgres.h"
#include "utils/typcache.h"
#include "utils/syscache.h"
#include "catalog/pg_operator.h"

#include "datatype/timestamp.h"
#include "fmgr.h"
#include "lib/stringinfo.h"
#include "access/table.h"
#include "catalog/namespace.h"
#include "common/hashfn.h"
#include "miscadmin.h"
#include "storage/lock.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"

#include "bkperf.h"

/*
 * Prepare a query once per backend and keep its plan; later calls return the
 * cached plan.  Must be called inside SPI_connect().  Plans are revalidated by
 * the plan cache when the catalog changes, so caching is safe across DDL.
 */
SPIPlanPtr
bkperf_saved_plan(SPIPlanPtr *cache, const char *sql, int nargs, Oid *argtypes)
{
	SPIPlanPtr	plan;

	if (*cache != NULL)
		return *cache;
	plan = SPI_prepare(sql, nargs, argtypes);
	if (plan == NULL)
		elog(ERROR, "SPI_prepare failed for \"%s\": %s",
			 sql, SPI_result_code_string(SPI_result));
	if (SPI_keepplan(plan) != 0)
		elog(ERROR, "SPI_keepplan failed");
	*cache = plan;
	return plan;
}

/*
 * Length of an interval in seconds, counting a month as 30 days (as
 * justify_days does), so policy intervals compare with timestamp differences.
 */
double
bkperf_interval_seconds(const Interval *iv)
{
	return (double) iv->time / USECS_PER_SEC +
		(double) iv->day * SECS_PER_DAY +
		(double) iv->month * DAYS_PER_MONTH * SECS_PER_DAY;
}

/*
 * Reject a NULL argument with a clear error naming it.  Our functions are not
 * STRICT on purpose: a NULL tenant or interval is a caller bug that should be
 * reported, not silently answered with NULL.
 */
void
bkperf_require_arg(FunctionCallInfo fcinfo, int argno, const char *argname)
{
	if (PG_ARGISNULL(argno))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("argument \"%s\" must not be null", argname)));
}

/* OID of a relation of the bkperf schema; errors if it is missing. */
Oid
bkperf_relid(const char *relname)
{
	Oid			relid = get_relname_relid(relname,
										  get_namespace_oid("bkperf", false));

	if (!OidIsValid(relid))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("relation \"bkperf.%s\" does not exist", relname),
				 errhint("Reinstall the extension with DROP EXTENSION bkperf; CREATE EXTENSION bkperf.")));
	return relid;
}

/*
 * Whether a materialized view of the bkperf schema holds data (an unpopulated
 * one cannot be read or refreshed concurrently).
 */
bool
bkperf_view_is_populated(Oid relid)
{
	Relation	rel = table_open(relid, AccessShareLock);
	bool		populated = RelationIsPopulated(rel);

	table_close(rel, AccessShareLock);
	return populated;
}

/*
 * Take one of bkperf's transaction-level advisory locks (see bkperf.h).  With
 * wait = false, return false at once if another transaction holds it.
 */
bool
bkperf_xact_lock(uint32 key, uint16 kind, bool wait)
{
	LOCKTAG		tag;

	SET_LOCKTAG_ADVISORY(tag, MyDatabaseId, BKPERF_LOCK_SPACE, key, kind);
	return LockAcquire(&tag, ExclusiveLock, false, !wait) != LOCKACQUIRE_NOT_AVAIL;
}

/* The advisory-lock key of a tenant or task name (a hash of it). */
uint32
bkperf_name_key(const char *name)
{
	return hash_bytes((const unsigned char *) name, strlen(name));
}

/*
 * Reject a value that is not one of the allowed words, naming what it is
 * ("job type", "snapshot type") and listing the allowed words in the hint.
 */
void
bkperf_require_one_of(const char *value, const char *const *allowed, int nallowed,
					  const char *what)
{
	StringInfoData words;

	for (int i = 0; i < nallowed; i++)
		if (strcmp(value, allowed[i]) == 0)
			return;
	initStringInfo(&words);
	for (int i = 0; i < nallowed; i++)
		appendStringInfo(&words, "%s%s", i == 0 ? "" : (i == nallowed - 1 ? " or " : ", "),
						 allowed[i]);
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("invalid %s \"%s\"", what, value),
			 errhint("Use %s.", words.data)));
}

/*
 * Run one SPI statement with parameters (nulls as SPI takes them, or NULL)
 * and check that it returned the expected result code.
 */
void
bkperf_spi_exec(const char *sql, int nargs, Oid *types, Datum *values,
				const char *nulls, int expect)
{
	int			ret = SPI_execute_with_args(sql, nargs, types, values, nulls,
											false, 0);

	if (ret != expect)
		elog(ERROR, "SPI statement failed (%s): %s",
			 SPI_result_code_string(ret), sql);
}

/*
 * Column col of the last SPI result's first row as int64 (0 when there is
 * no row or the value is NULL).
 */
int64
bkperf_spi_int64(int col)
{
	bool		isnull;
	Datum		d;

	if (SPI_processed == 0)
		return 0;
	d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, col, &isnull);
	return isnull ? 0 : DatumGetInt64(d);
}

/*
 * "OPERATOR(schema.name)" of the equality operator of a type's default
 * btree or hash opclass, as ri_triggers.c qualifies its operators: no
 * search_path can capture it.
 */
char *
bkperf_eq_operator(Oid typid)
{
	TypeCacheEntry *tc = lookup_type_cache(typid, TYPECACHE_EQ_OPR);

	if (!OidIsValid(tc->eq_opr))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_FUNCTION),
				 errmsg("could not identify an equality operator for type %s",
						format_type_be(typid)),
				 errdetail("A rollback matches rows by their key columns.")));
	return bkperf_operator_sql(tc->eq_opr);
}

/*
 * Operator opno as OPERATOR(schema.name), for generated SQL.
 */
char *
bkperf_operator_sql(Oid opno)
{
	HeapTuple	tup;
	Form_pg_operator op;
	char	   *result;

	tup = SearchSysCache1(OPEROID, ObjectIdGetDatum(opno));
	if (!HeapTupleIsValid(tup))
		elog(ERROR, "cache lookup failed for operator %u", opno);
	op = (Form_pg_operator) GETSTRUCT(tup);
	result = psprintf("OPERATOR(%s.%s)",
					  quote_identifier(get_namespace_name(op->oprnamespace)),
					  NameStr(op->oprname));
	ReleaseSysCache(tup);
	return result;
}

