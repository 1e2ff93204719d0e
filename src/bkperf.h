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

/* An advisory-lock key space of our own (first key of the pair). */
#define BKPERF_LOCK_SPACE	0x626B7066	/* "bkpf" */

/* Second advisory-lock keys, one per kind of exclusive work. */
#define BKPERF_LOCK_REFRESH		1	/* + view OID: one refresh per view */



/* util.c: helpers shared by the SPI-based functions. */
#include "executor/spi.h"
#include "utils/timestamp.h"

extern SPIPlanPtr bkperf_saved_plan(SPIPlanPtr *cache, const char *sql,
									int nargs, Oid *argtypes);
extern double bkperf_interval_seconds(const Interval *iv);
extern Datum bkperf_jsonb_from_cstring(const char *json);
extern bool bkperf_view_is_populated(const char *relname);
extern Oid	bkperf_relid(const char *relname);
extern void bkperf_require_arg(FunctionCallInfo fcinfo, int argno,
							   const char *argname);

#endif							/* BKPERF_H */
