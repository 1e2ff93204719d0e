/*-------------------------------------------------------------------------
 * compat.h
 *		The PostgreSQL API differences between the server versions bkperf
 *		builds on (15, 16, 17, 18).  Every PG_VERSION_NUM test of bkperf
 *		lives here; feature code calls the names below and stays free of
 *		version conditionals.
 *
 *		15  tested (Debian packages and an assert-enabled build)
 *		16  built only, see the pgstat note below
 *		17  tested (Debian packages)
 *		18  tested (Debian packages and an assert-enabled build)
 *-------------------------------------------------------------------------
 */
#ifndef BKPERF_COMPAT_H
#define BKPERF_COMPAT_H

#include "postgres.h"

#include "catalog/pg_class.h"
#include "common/jsonapi.h"
#include "executor/executor.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "utils/acl.h"
#include "utils/backend_status.h"

#if PG_VERSION_NUM < 150000 || PG_VERSION_NUM >= 190000
#error "bkperf supports PostgreSQL 15 to 18"
#endif

/*
 * ExecutorRun and its hook: 18 removed the execute_once argument.  A hook is
 * declared with BKPERF_EXECUTOR_RUN_PARAMS and passes the call on with
 * BKPERF_EXECUTOR_RUN_ARGS.
 */
#if PG_VERSION_NUM >= 180000
#define BKPERF_EXECUTOR_RUN_PARAMS \
	QueryDesc *queryDesc, ScanDirection direction, uint64 count
#define BKPERF_EXECUTOR_RUN_ARGS queryDesc, direction, count
#else
#define BKPERF_EXECUTOR_RUN_PARAMS \
	QueryDesc *queryDesc, ScanDirection direction, uint64 count, bool execute_once
#define BKPERF_EXECUTOR_RUN_ARGS queryDesc, direction, count, execute_once
#endif

/*
 * Insert the index entries of a freshly inserted heap tuple (no update, no
 * ON CONFLICT): 16 added the onlySummarizing argument (false: every index).
 */
static inline List *
bkperf_insert_index_tuples(ResultRelInfo *rri, TupleTableSlot *slot, EState *estate)
{
#if PG_VERSION_NUM >= 160000
	return ExecInsertIndexTuples(rri, slot, estate, false, false, NULL, NIL, false);
#else
	return ExecInsertIndexTuples(rri, slot, estate, false, false, NULL, NIL);
#endif
}

/* Does role own relation relid?  16 replaced pg_class_ownercheck(). */
static inline bool
bkperf_rel_ownercheck(Oid relid, Oid roleid)
{
#if PG_VERSION_NUM >= 160000
	return object_ownercheck(RelationRelationId, relid, roleid);
#else
	return pg_class_ownercheck(relid, roleid);
#endif
}

/*
 * The backends of this backend's status snapshot, walked as
 *		for (int i = 1; i <= bkperf_local_beentry_count(); i++)
 *			if ((e = bkperf_local_beentry(i)) != NULL) ...
 *
 * 15 takes a 1-based index into the snapshot; 17 renamed that function to
 * pgstat_get_local_beentry_by_index().  16 kept the old name but made its
 * argument a backend ID (slots 1..MaxBackends; regular backends and
 * background workers all have one), so on 16 the walk covers every backend
 * ID and absent ones come back NULL.  Auxiliary processes may be missed on
 * 16; bkperf only reads client backends and background workers.
 */
static inline int
bkperf_local_beentry_count(void)
{
#if PG_VERSION_NUM >= 160000 && PG_VERSION_NUM < 170000
	return Max(pgstat_fetch_stat_numbackends(), MaxBackends);
#else
	return pgstat_fetch_stat_numbackends();
#endif
}

/* Entry i of the walk above, or NULL. */
static inline LocalPgBackendStatus *
bkperf_local_beentry(int i)
{
#if PG_VERSION_NUM >= 170000
	return pgstat_get_local_beentry_by_index(i);
#else
	return pgstat_fetch_stat_local_beentry(i);
#endif
}

/*
 * Whether str (len bytes) is valid JSON, without raising an error: the
 * lexer context's constructor changed its signature in PostgreSQL 17.
 */
static inline bool
bkperf_json_is_valid(char *str, int len)
{
#if PG_VERSION_NUM >= 170000
	JsonLexContext *lex = makeJsonLexContextCstringLen(NULL, str, len,
													   GetDatabaseEncoding(),
													   false);
#else
	JsonLexContext *lex = makeJsonLexContextCstringLen(str, len,
													   GetDatabaseEncoding(),
													   false);
#endif

	return pg_parse_json(lex, &nullSemAction) == JSON_SUCCESS;
}

#endif							/* BKPERF_COMPAT_H */
