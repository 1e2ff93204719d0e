/*-------------------------------------------------------------------------
 * rollback_unlogged.c
 *		Rollbacks that do not log their own changes, and the targets they
 *		make unusable.
 *
 * rollback_to_snapshot_unlogged() and rollback_to_time_unlogged() write
 * like the logged rollbacks, with capture switched off for the apply's own
 * statements (capture.c, bkperf_capture_suppress), as E-Maj's default
 * emaj_rollback_group does.  What that costs, and how it stays exact:
 *
 * A later rollback L to a target s takes, per key, the old image of the
 * earliest logged change after s.  Let U be an unlogged rollback to T_U.
 * Every key U changed has a logged change after T_U and before U (the one
 * U undid).  If U is not after s (s sees it), U's result is part of the
 * state at s and everything after s is logged.  If U is after s, and each
 * of those changes is after s too, the earliest change after s of every
 * key U changed is logged and comes before U's unlogged one.  Otherwise
 * the earliest logged change may come after U and hold U's result, not the
 * state at s: L is refused, for the tables U changed (so later targets
 * become unusable, as E-Maj deletes later marks).  Decided from U's history
 * row (its "unlogged" record) and the log rows U's plan read:
 *
 *	- U after s: the same predicate L applies to log rows, on a row with
 *	  U's transaction id and start time: what U's rows would have been.  U
 *	  from a cluster outside this database's lineage (a restore from a
 *	  dump) ran before the restore: before every snapshot taken here, after
 *	  a time only by its start time, or, with commit timestamps (which
 *	  belong to that cluster), always counted after; and it is refused then,
 *	  its log rows' transaction ids meaning nothing here.
 *	- a change before s among those after T_U: a log row of U's tables
 *	  from U's scan start up to its table locks (its history row's
 *	  started_at, after them) that U's rule counted after T_U
 *	  and L's counts before s (or that precedes L's own scan).  Rows written
 *	  after U may be among them only when they started before U: that can
 *	  only refuse more, never less.  A U that counted by commit time, when
 *	  commit timestamps are off now, counts every row after T_U.
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/fmgrprotos.h"
#include "utils/timestamp.h"

#include "bkperf.h"

/*
 * Refuse a target inside the window of an unlogged rollback of the tenant
 * that changed a table of the scope (see the file header).  target is the
 * pg_snapshot (is_snapshot) or the time, by_commit_ts the rollback's rule
 * for times, scan_from where the rollback's own log scan starts.
 */
void
bkperf_rb_unlogged_check(const char *tenant, bool is_snapshot, Datum target,
						 TimestampTz scan_from, bool by_commit_ts,
						 const int64 *table_ids, int ntables)
{
	Datum	   *ids = palloc(sizeof(Datum) * Max(ntables, 1));
	Oid			types[5] = {TEXTOID, INT8ARRAYOID, BOOLOID,
	is_snapshot ? PG_SNAPSHOTOID : TIMESTAMPTZOID, TIMESTAMPTZOID};
	Datum		values[5];
	/* Ours: "l is after this target"; U's, by U's rule, to its target. */
	const char *after = bkperf_rb_after_sql(is_snapshot, by_commit_ts, true,
											is_snapshot ? "$4::pg_catalog.pg_snapshot"
											: "$4::pg_catalog.timestamptz");
	char	   *sql;

	for (int i = 0; i < ntables; i++)
		ids[i] = Int64GetDatum(table_ids[i]);
	values[0] = CStringGetTextDatum(tenant);
	values[1] = PointerGetDatum(construct_array(ids, ntables, INT8OID, sizeof(int64),
												FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
	values[2] = BoolGetDatum(by_commit_ts);
	values[3] = target;
	values[4] = TimestampTzGetDatum(scan_from);

	/*
	 * u: U's record; l (first): a log row as U's own would have been, for
	 * "U after the target"; l (in EXISTS): the log rows U's plan read,
	 * those after U's target (by U's rule) and not after this target (by
	 * ours; rows before our scan count as before it).
	 */
	sql = psprintf("SELECT h.rollback_id, h.target_time, h.finished_at,"
				   "       pg_catalog.array_to_string(ARRAY(SELECT t.table_name"
				   "           FROM bkperf.tracked_tables t"
				   "          WHERE t.table_id OPERATOR(pg_catalog.=) ANY (u.table_ids)"
				   "            AND t.table_id OPERATOR(pg_catalog.=) ANY ($2)"
				   "          ORDER BY t.table_name), ', ')"
				   "  FROM bkperf.backup_pitr_rollback_history h,"
				   "       LATERAL (SELECT (h.unlogged OPERATOR(pg_catalog.->>) 'txid')::pg_catalog.xid8 AS txid,"
				   "               (h.unlogged OPERATOR(pg_catalog.->>) 'xact_start')::pg_catalog.timestamptz AS xact_start,"
				   "               (h.unlogged OPERATOR(pg_catalog.->>) 'scan_from')::pg_catalog.timestamptz AS scan_from,"
				   "               (h.unlogged OPERATOR(pg_catalog.->>) 'by_commit_ts')::pg_catalog.bool AS by_commit_ts,"
				   "               bkperf.xids_comparable((h.unlogged OPERATOR(pg_catalog.->>) 'origin')::pg_catalog.int8) AS here,"
				   "               ARRAY(SELECT pg_catalog.jsonb_array_elements_text(h.unlogged OPERATOR(pg_catalog.->) 'table_ids')"
				   "                     )::pg_catalog.int8[] AS table_ids) u,"
				   "       LATERAL (SELECT u.txid, u.xact_start AS changed_at) l"
				   " WHERE h.tenant_id OPERATOR(pg_catalog.=) $1"
				   "   AND h.unlogged IS NOT NULL"
				   "   AND u.table_ids OPERATOR(pg_catalog.&&) $2"
				   "   AND CASE WHEN u.here THEN %s ELSE %s END"
				   "   AND (NOT u.here OR EXISTS (SELECT FROM bkperf.backup_transaction_logs l"
				   "         WHERE l.tenant_id OPERATOR(pg_catalog.=) $1"
				   "           AND l.table_id OPERATOR(pg_catalog.=) ANY (u.table_ids)"
				   "           AND l.table_id OPERATOR(pg_catalog.=) ANY ($2)"
				   "           AND l.changed_at OPERATOR(pg_catalog.>=) u.scan_from"
				   "           AND l.changed_at OPERATOR(pg_catalog.<=) h.started_at"
				   "           AND CASE WHEN h.target_snapshot IS NOT NULL THEN %s"
				   "                    WHEN u.by_commit_ts AND NOT $3 THEN true"
				   "                    WHEN u.by_commit_ts THEN %s"
				   "                    ELSE %s END"
				   "           AND (l.changed_at OPERATOR(pg_catalog.<) $5 OR NOT (%s))))"
				   " ORDER BY h.rollback_id DESC LIMIT 1",
				   after,
				   is_snapshot ? "false" :
				   by_commit_ts ? "true" : bkperf_rb_after_sql(false, false, true,
															   "$4::pg_catalog.timestamptz"),
				   bkperf_rb_after_sql(true, false, false, "h.target_snapshot"),
				   bkperf_rb_after_sql(false, true, false, "h.target_time"),
				   bkperf_rb_after_sql(false, false, false, "h.target_time"),
				   after);
	bkperf_spi_exec(sql, 5, types, values, NULL, SPI_OK_SELECT);
	if (SPI_processed == 0)
		return;
	ereport(ERROR,
			(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
			 errmsg("rollback target lies between an unlogged rollback and its target"),
			 errdetail("Rollback %s of tenant \"%s\" restored %s to %s without logging its own changes (finished %s): the change log cannot tell those tables' state at a target after %s and before that rollback.",
					   SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1),
					   tenant,
					   SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 4),
					   SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2),
					   SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 3),
					   SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2)),
			 errhint("Choose a target at or before that rollback's target, or one taken after it; or leave those tables out with an explicit table list.")));
}

/*
 * Record in history row rollback_id that it did not log its changes to the
 * given tables (the completed, unlogged, non-dry-run case), with where its
 * log scan started.
 */
void
bkperf_rb_unlogged_record(const char *tenant, int64 rollback_id, TimestampTz scan_from,
						  bool by_commit_ts, const int64 *table_ids, int ntables)
{
	Datum	   *ids = palloc(sizeof(Datum) * Max(ntables, 1));
	Oid			types[6] = {TEXTOID, INT8OID, BOOLOID, INT8ARRAYOID, TIMESTAMPTZOID, XID8OID};
	Datum		values[6];

	for (int i = 0; i < ntables; i++)
		ids[i] = Int64GetDatum(table_ids[i]);
	values[0] = CStringGetTextDatum(tenant);
	values[1] = Int64GetDatum(rollback_id);
	values[2] = BoolGetDatum(by_commit_ts);
	values[3] = PointerGetDatum(construct_array(ids, ntables, INT8OID, sizeof(int64),
												FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
	values[4] = TimestampTzGetDatum(scan_from);
	/* The transaction id as a parameter: Citus refuses volatile functions here. */
	values[5] = DirectFunctionCall1(pg_current_xact_id, (Datum) 0);
	bkperf_spi_exec("UPDATE bkperf.backup_pitr_rollback_history"
					"   SET unlogged = pg_catalog.jsonb_build_object("
					"         'txid', $6::pg_catalog.text,"
					"         'xact_start', pg_catalog.now(),"
					"         'by_commit_ts', $3,"
					"         'scan_from', $5,"
					"         'origin', bkperf.cluster_identity(),"
					"         'table_ids', $4)"
					" WHERE tenant_id OPERATOR(pg_catalog.=) $1"
					"   AND rollback_id OPERATOR(pg_catalog.=) $2",
					6, types, values, NULL, SPI_OK_UPDATE);
}
