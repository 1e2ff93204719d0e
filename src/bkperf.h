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

#include "executor/execdesc.h"
#include "utils/timestamp.h"

/* An advisory-lock key space of our own (first key of the pair). */
#define BKPERF_LOCK_SPACE	0x626B7066	/* "bkpf" */

/* Second advisory-lock keys, one per kind of exclusive work. */
#define BKPERF_LOCK_REFRESH		1	/* + view OID: one refresh per view */

/*
 * First advisory-lock key used while folding an alert into
 * bkperf.system_alerts; the second key is hashtext(fingerprint).
 */
#define BKPERF_LOCK_SPACE_ALERTS	0x626B7061	/* "bkpa" */

/* Longest tenant tag (bytes) that bkperf.tenant_id accepts. */
#define BKPERF_TENANT_TAG_MAX	63

/* Alert GUCs (defined in bkperf.c, read by alerts.c and metrics.c). */
extern int	bkperf_slow_query_ms;
extern int	bkperf_slow_query_critical_ms;
extern int	bkperf_slow_query_max;
extern int	bkperf_slow_query_text_max;
extern bool bkperf_slow_query_nested;
extern char *bkperf_tenant_id;
extern int	bkperf_alert_fold_window_ms;
extern int	bkperf_endpoint_alert_ms;
extern int	bkperf_endpoint_critical_ms;

/* alerts.c: shared-memory ring of slow statements, fed by executor hooks. */
extern int	bkperf_alerts_nesting_level;
extern void bkperf_alerts_shmem_request(void);
extern void bkperf_alerts_shmem_startup(void);
extern void bkperf_alerts_executor_start(QueryDesc *queryDesc);
extern void bkperf_alerts_executor_end(QueryDesc *queryDesc);
extern void bkperf_alerts_executor_failed(QueryDesc *queryDesc);

/* alerts.c: fold one alert into bkperf.system_alerts (see record_alert). */
extern int64 bkperf_alerts_record(const char *source, const char *severity,
								  const char *tenant, const char *key,
								  const char *message, int64 occurrences,
								  TimestampTz first_seen,
								  TimestampTz last_seen,
								  const char *details_json);

#endif							/* BKPERF_H */
