/*-------------------------------------------------------------------------
 * bkperf.h
 *		Declarations shared between the files of the bkperf extension.
 *
 * Only what crosses files belongs here: GUC variables read elsewhere and
 * helpers used by more than one concern.
 *-------------------------------------------------------------------------
 */
#ifndef BKPERF_H
#define BKPERF_H

#include "postgres.h"

/*
 * bkperf's advisory locks: database, BKPERF_LOCK_SPACE, an object key (a view
 * OID, a tenant hash) and a lock kind.  The kinds start at 16 so they never
 * equal the 1 and 2 that pg_advisory_lock() uses in the same tag field: no
 * user advisory lock can collide with ours.  pg_locks shows them as
 * locktype 'advisory' with classid BKPERF_LOCK_SPACE and objsubid the kind.
 */
#define BKPERF_LOCK_SPACE	0x626B7066	/* "bkpf" */
#define BKPERF_LOCK_REFRESH		16	/* view OID: one refresh per view */
#define BKPERF_LOCK_RETENTION	17	/* tenant hash: one retention run per tenant */
#define BKPERF_LOCK_MAINTENANCE	18	/* task number: one maintenance task at a time */

/* util.c: helpers shared by the SPI-based functions. */
#include "executor/spi.h"
#include "utils/timestamp.h"

extern SPIPlanPtr bkperf_saved_plan(SPIPlanPtr *cache, const char *sql,
									int nargs, Oid *argtypes);
extern double bkperf_interval_seconds(const Interval *iv);
extern Datum bkperf_jsonb_from_cstring(const char *json);
extern bool bkperf_xact_lock(uint32 key, uint16 kind, bool wait);
extern uint32 bkperf_tenant_key(const char *tenant);
extern bool bkperf_view_is_populated(const char *relname);
extern Oid	bkperf_relid(const char *relname);
extern void bkperf_require_arg(FunctionCallInfo fcinfo, int argno,
							   const char *argname);

#endif							/* BKPERF_H */
