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

#endif							/* BKPERF_H */
