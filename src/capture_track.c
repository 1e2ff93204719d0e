/*-------------------------------------------------------------------------
 * capture_track.c
 *		bkperf.track_table() and bkperf.untrack_table(): who may track.
 *
 * Tracking a table is allowed to its owner, who has no privilege on
 * bkperf's catalog.  These entry points check ownership as the calling role,
 * then run the PL/pgSQL part (bkperf.track_table_apply and
 * bkperf.untrack_table_apply, which check the rest and do the work) as the
 * owner of the extension's catalog, the way a SECURITY DEFINER function
 * would, but knowing who called.
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/syscache.h"

#include "bkperf.h"
#include "compat.h"

PG_FUNCTION_INFO_V1(bkperf_track_table);
PG_FUNCTION_INFO_V1(bkperf_untrack_table);

/*
 * Refuse NULL arguments with the name of the parameter.
 */
static void
ct_not_null(FunctionCallInfo fcinfo, int argno, const char *name)
{
	if (PG_ARGISNULL(argno))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("%s must not be null", name)));
}

/*
 * Check that rel exists and that the calling role owns it.
 */
static void
ct_check_owner(Oid relid)
{
	if (!SearchSysCacheExists1(RELOID, ObjectIdGetDatum(relid)))
		ereport(ERROR,
				(errcode(ERRCODE_UNDEFINED_TABLE),
				 errmsg("relation with OID %u does not exist", relid)));
	if (!bkperf_rel_ownercheck(relid, GetUserId()))
		ereport(ERROR,
				(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
				 errmsg("must be owner of table %s", get_rel_name(relid)),
				 errdetail("Only the owner of a table can start or stop its change capture.")));
}

/*
 * Call a bkperf function (by regprocedure text) as the owner of
 * bkperf.tracked_tables, with the caller's name as last argument.
 */
static void
ct_call_as_owner(const char *proc, Datum a1, Datum a2, Datum a3, int nargs)
{
	Oid			nsp = get_namespace_oid("bkperf", false);
	Oid			catalog = get_relname_relid("tracked_tables", nsp);
	Oid			fn = DatumGetObjectId(DirectFunctionCall1(regprocedurein,
														  CStringGetDatum(proc)));
	Datum		caller = CStringGetTextDatum(GetUserNameFromId(GetUserId(), false));
	Oid			save_userid;
	int			save_sec;
	HeapTuple	tup = SearchSysCache1(RELOID, ObjectIdGetDatum(catalog));
	Oid			owner;

	if (!HeapTupleIsValid(tup))
		elog(ERROR, "relation bkperf.tracked_tables does not exist");
	owner = ((Form_pg_class) GETSTRUCT(tup))->relowner;
	ReleaseSysCache(tup);
	GetUserIdAndSecContext(&save_userid, &save_sec);
	SetUserIdAndSecContext(owner, save_sec | SECURITY_LOCAL_USERID_CHANGE |
						   SECURITY_RESTRICTED_OPERATION);
	if (nargs == 4)
		OidFunctionCall4(fn, a1, a2, a3, caller);
	else
		OidFunctionCall2(fn, a1, caller);
	SetUserIdAndSecContext(save_userid, save_sec);
}

/*
 * bkperf.track_table(rel, tenant_column, capture): start (or change) the
 * change capture of a table owned by the caller.
 */
Datum
bkperf_track_table(PG_FUNCTION_ARGS)
{
	ct_not_null(fcinfo, 0, "rel");
	ct_not_null(fcinfo, 1, "tenant_column");
	ct_not_null(fcinfo, 2, "capture");
	ct_check_owner(PG_GETARG_OID(0));
	ct_call_as_owner("bkperf.track_table_apply(pg_catalog.regclass,pg_catalog.name,pg_catalog.text,pg_catalog.text)",
					 PG_GETARG_DATUM(0), PG_GETARG_DATUM(1), PG_GETARG_DATUM(2), 4);
	PG_RETURN_VOID();
}

/*
 * bkperf.untrack_table(rel): stop the change capture of a table owned by
 * the caller.
 */
Datum
bkperf_untrack_table(PG_FUNCTION_ARGS)
{
	ct_not_null(fcinfo, 0, "rel");
	ct_check_owner(PG_GETARG_OID(0));
	ct_call_as_owner("bkperf.untrack_table_apply(pg_catalog.regclass,pg_catalog.text)",
					 PG_GETARG_DATUM(0), (Datum) 0, (Datum) 0, 2);
	PG_RETURN_VOID();
}

/*
 * Every tracked table, in OID order (the rollback's lock order), with the
 * identity its log rows carry (0 in a 1.0 catalog).  Needs an SPI connection; the result is
 * allocated in the caller's context.
 */
BkperfTracked *
bkperf_tracked_tables(int *ntables)
{
	BkperfTracked *result;
	MemoryContext cxt = CurrentMemoryContext;

	/* A 1.0 catalog (new library before ALTER EXTENSION UPDATE) has no table_id. */
	bool		has_id = get_attnum(bkperf_relid("tracked_tables"), "table_id") != InvalidAttrNumber;

	/* On a Citus worker relid is the coordinator's OID: go by name (citus.c). */
	bkperf_spi_exec(psprintf("SELECT %s, %s, tenant_column::pg_catalog.text,"
							 "       key_columns::pg_catalog.text[], tracked_at"
							 "  FROM bkperf.tracked_tables ORDER BY 1",
							 bkperf_citus_on_worker() ?
							 "pg_catalog.to_regclass(table_name)::pg_catalog.oid" :
							 "relid::pg_catalog.oid",
							 has_id ? "table_id" : "0::pg_catalog.int8"),
					0, NULL, NULL, NULL, SPI_OK_SELECT);
	result = MemoryContextAllocZero(cxt, sizeof(BkperfTracked) * Max(SPI_processed, 1));
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		HeapTuple	tup = SPI_tuptable->vals[i];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		BkperfTracked *t = &result[i];
		bool		isnull;
		Datum	   *keys;
		MemoryContext old;

		t->relid = DatumGetObjectId(SPI_getbinval(tup, desc, 1, &isnull));
		t->table_id = DatumGetInt64(SPI_getbinval(tup, desc, 2, &isnull));
		t->tracked_at = DatumGetTimestampTz(SPI_getbinval(tup, desc, 5, &isnull));
		old = MemoryContextSwitchTo(cxt);
		t->tenant_column = TextDatumGetCString(SPI_getbinval(tup, desc, 3, &isnull));
		deconstruct_array(DatumGetArrayTypeP(SPI_getbinval(tup, desc, 4, &isnull)),
						  TEXTOID, -1, false, TYPALIGN_INT, &keys, NULL, &t->nkeys);
		t->key_columns = palloc(sizeof(char *) * t->nkeys);
		for (int k = 0; k < t->nkeys; k++)
			t->key_columns[k] = TextDatumGetCString(keys[k]);
		MemoryContextSwitchTo(old);
	}
	*ntables = (int) SPI_processed;
	return result;
}
