/*-------------------------------------------------------------------------
 * bkperf.c
 *		Module magic, _PG_init, every GUC and hook installation.
 *
 * Each feature lives in its own file (health.c, refresh.c, capture.c, ...);
 * this file only wires the module into the server.  The extension works
 * with or without shared_preload_libraries; features that need shared memory
 * (the slow-query ring of alerts.c) check for it at their SQL entry points,
 * and their hooks are only installed when the library is preloaded.
 *
 * The executor hooks below only keep the nesting level right and chain to
 * the previous hook; what they record is decided in alerts.c.
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <limits.h>

#include "executor/executor.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "storage/ipc.h"
#include "utils/guc.h"

#include "bkperf.h"
#include "compat.h"

PG_MODULE_MAGIC;

void		_PG_init(void);

/* Alert settings; see bkp_define_gucs for their meaning. */
int			bkperf_slow_query_ms = 1000;
int			bkperf_slow_query_critical_ms = 10000;
int			bkperf_slow_query_max = 1000;
int			bkperf_slow_query_text_max = 1024;
bool		bkperf_slow_query_nested = false;
char	   *bkperf_tenant_id = NULL;
int			bkperf_alert_fold_window_ms = 3600 * 1000;
int			bkperf_endpoint_alert_ms = 2000;
int			bkperf_endpoint_critical_ms = 10000;

/* Hooks we chain to. */
static shmem_request_hook_type prev_shmem_request_hook = NULL;
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;
static ExecutorStart_hook_type prev_ExecutorStart = NULL;
static ExecutorRun_hook_type prev_ExecutorRun = NULL;
static ExecutorFinish_hook_type prev_ExecutorFinish = NULL;
static ExecutorEnd_hook_type prev_ExecutorEnd = NULL;

/*
 * Accept a tenant tag only when it fits the ring entry and is printable, so
 * that what is recorded is exactly what the application set.
 */
static bool
bkp_check_tenant_id(char **newval, void **extra, GucSource source)
{
	const unsigned char *p;

	if (*newval == NULL)
		return true;
	if (strlen(*newval) > BKPERF_TENANT_TAG_MAX)
	{
		GUC_check_errdetail("A tenant tag is at most %d bytes long.",
							BKPERF_TENANT_TAG_MAX);
		return false;
	}
	for (p = (const unsigned char *) *newval; *p; p++)
	{
		if (*p < 0x20 || *p == 0x7f)
		{
			GUC_check_errdetail("A tenant tag cannot contain control characters.");
			return false;
		}
	}
	return true;
}

/*
 * Define the slow-query GUCs (thresholds, nesting, tenant tag).
 */
static void
bkp_define_slow_query_gucs(void)
{
	DefineCustomIntVariable("bkperf.slow_query_ms",
							"Executor time at or above which a statement is recorded as a slow query (-1 disables).",
							NULL, &bkperf_slow_query_ms, 1000, -1, INT_MAX,
							PGC_SUSET, GUC_UNIT_MS, NULL, NULL, NULL);
	DefineCustomIntVariable("bkperf.slow_query_critical_ms",
							"Executor time at or above which a slow query is critical instead of a warning (-1: never).",
							NULL, &bkperf_slow_query_critical_ms, 10000, -1, INT_MAX,
							PGC_SUSET, GUC_UNIT_MS, NULL, NULL, NULL);
	DefineCustomBoolVariable("bkperf.slow_query_nested",
							 "Also record slow statements nested inside functions.",
							 NULL, &bkperf_slow_query_nested, false,
							 PGC_SUSET, 0, NULL, NULL, NULL);
	DefineCustomStringVariable("bkperf.tenant_id",
							   "Tenant tag recorded with each slow query of this session.",
							   NULL, &bkperf_tenant_id, "",
							   PGC_USERSET, 0, bkp_check_tenant_id, NULL, NULL);
}

/*
 * Define the GUCs that size the slow-query ring.  They are PGC_POSTMASTER,
 * which can only be defined while preloading: without preload there is no
 * ring and they do not exist.
 */
static void
bkp_define_ring_gucs(void)
{
	if (!process_shared_preload_libraries_in_progress)
		return;
	DefineCustomIntVariable("bkperf.slow_query_max",
							"Number of slow queries the shared-memory ring holds before the oldest are overwritten.",
							NULL, &bkperf_slow_query_max, 1000, 10, 1000000,
							PGC_POSTMASTER, 0, NULL, NULL, NULL);
	DefineCustomIntVariable("bkperf.slow_query_text_max",
							"Bytes of query text kept with each slow query.",
							NULL, &bkperf_slow_query_text_max, 1024, 64, 65536,
							PGC_POSTMASTER, GUC_UNIT_BYTE, NULL, NULL, NULL);
}

/*
 * Define the alert-folding and endpoint-threshold GUCs.
 */
static void
bkp_define_alert_gucs(void)
{
	DefineCustomIntVariable("bkperf.alert_fold_window",
							"Repeats of one alert within this time after its first occurrence are folded into it.",
							NULL, &bkperf_alert_fold_window_ms, 3600 * 1000, 0, INT_MAX,
							PGC_SUSET, GUC_UNIT_MS, NULL, NULL, NULL);
	DefineCustomIntVariable("bkperf.endpoint_alert_ms",
							"Reported endpoint response time at or above which a warning alert is raised (-1 disables).",
							NULL, &bkperf_endpoint_alert_ms, 2000, -1, INT_MAX,
							PGC_SUSET, GUC_UNIT_MS, NULL, NULL, NULL);
	DefineCustomIntVariable("bkperf.endpoint_critical_ms",
							"Reported endpoint response time at or above which a critical alert is raised (-1: never).",
							NULL, &bkperf_endpoint_critical_ms, 10000, -1, INT_MAX,
							PGC_SUSET, GUC_UNIT_MS, NULL, NULL, NULL);
}

/*
 * Ask for the shared memory and lock of the slow-query ring (PG 15+).
 */
static void
bkp_shmem_request(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
	bkperf_alerts_shmem_request();
}

/*
 * Attach to (or create) the slow-query ring.
 */
static void
bkp_shmem_startup(void)
{
	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();
	bkperf_alerts_shmem_startup();
}

/*
 * ExecutorStart: chain, then let alerts.c ask for a timer on the statement.
 */
static void
bkp_ExecutorStart(QueryDesc *queryDesc, int eflags)
{
	if (prev_ExecutorStart)
		prev_ExecutorStart(queryDesc, eflags);
	else
		standard_ExecutorStart(queryDesc, eflags);
	bkperf_alerts_executor_start(queryDesc);
}

/*
 * ExecutorRun: keep the nesting level right; a statement that fails here is
 * offered to alerts.c before the error propagates.
 */
static void
bkp_ExecutorRun(BKPERF_EXECUTOR_RUN_PARAMS)
{
	bkperf_alerts_nesting_level++;
	PG_TRY();
	{
		if (prev_ExecutorRun)
			prev_ExecutorRun(BKPERF_EXECUTOR_RUN_ARGS);
		else
			standard_ExecutorRun(BKPERF_EXECUTOR_RUN_ARGS);
	}
	PG_CATCH();
	{
		bkperf_alerts_nesting_level--;
		bkperf_alerts_executor_failed(queryDesc);
		PG_RE_THROW();
	}
	PG_END_TRY();
	bkperf_alerts_nesting_level--;
}

/*
 * ExecutorFinish: same as ExecutorRun (AFTER triggers can be slow or fail).
 */
static void
bkp_ExecutorFinish(QueryDesc *queryDesc)
{
	bkperf_alerts_nesting_level++;
	PG_TRY();
	{
		if (prev_ExecutorFinish)
			prev_ExecutorFinish(queryDesc);
		else
			standard_ExecutorFinish(queryDesc);
	}
	PG_CATCH();
	{
		bkperf_alerts_nesting_level--;
		bkperf_alerts_executor_failed(queryDesc);
		PG_RE_THROW();
	}
	PG_END_TRY();
	bkperf_alerts_nesting_level--;
}

/*
 * ExecutorEnd: record the statement if it was slow, then chain.
 */
static void
bkp_ExecutorEnd(QueryDesc *queryDesc)
{
	bkperf_alerts_executor_end(queryDesc);
	if (prev_ExecutorEnd)
		prev_ExecutorEnd(queryDesc);
	else
		standard_ExecutorEnd(queryDesc);
}

/*
 * Install the shared-memory and executor hooks; only when preloaded, since
 * the ring cannot be created later.  Without preload this returns quietly.
 */
static void
bkp_install_hooks(void)
{
	if (!process_shared_preload_libraries_in_progress)
		return;

	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = bkp_shmem_request;
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = bkp_shmem_startup;

	prev_ExecutorStart = ExecutorStart_hook;
	ExecutorStart_hook = bkp_ExecutorStart;
	prev_ExecutorRun = ExecutorRun_hook;
	ExecutorRun_hook = bkp_ExecutorRun;
	prev_ExecutorFinish = ExecutorFinish_hook;
	ExecutorFinish_hook = bkp_ExecutorFinish;
	prev_ExecutorEnd = ExecutorEnd_hook;
	ExecutorEnd_hook = bkp_ExecutorEnd;
}

/*
 * Module load: define the GUCs, reserve the bkperf.* prefix, install hooks.
 */
void
_PG_init(void)
{
	bkp_define_slow_query_gucs();
	bkp_define_ring_gucs();
	bkp_define_alert_gucs();
	MarkGUCPrefixReserved("bkperf");
	bkp_install_hooks();
}
