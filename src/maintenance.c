/*-------------------------------------------------------------------------
 * maintenance.c
 *		The overlap guard of run_maintenance(): pg_cron starts a job again
 *		while the previous run is still going, so each task takes a
 *		transaction-level lock of its own without waiting and is skipped
 *		when another session holds it.  The rest of maintenance is SQL
 *		(sql/parts/61_maintenance.sql).
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fmgr.h"
#include "utils/builtins.h"

#include "bkperf.h"

PG_FUNCTION_INFO_V1(bkperf_try_maintenance_lock);

/*
 * bkperf.try_maintenance_lock(task text) -> boolean
 */
Datum
bkperf_try_maintenance_lock(PG_FUNCTION_ARGS)
{
	char	   *task = text_to_cstring(PG_GETARG_TEXT_PP(0));

	PG_RETURN_BOOL(bkperf_xact_lock(bkperf_name_key(task), BKPERF_LOCK_MAINTENANCE, false));
}
