/*-------------------------------------------------------------------------
 * bkperf.c
 *		Module magic, _PG_init, every GUC and hook installation.
 *
 * Each feature lives in its own file (health.c, refresh.c, capture.c, ...);
 * this file only wires the module into the server.  The extension works
 * with or without shared_preload_libraries; features that need shared memory
 * check for it at their SQL entry points.
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "fmgr.h"
#include "utils/guc.h"

#include "bkperf.h"

PG_MODULE_MAGIC;

void		_PG_init(void);

/*
 * Module load: define the GUCs and reserve the bkperf.* prefix.
 */
void
_PG_init(void)
{
	MarkGUCPrefixReserved("bkperf");
}
