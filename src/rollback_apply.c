/*-------------------------------------------------------------------------
 * rollback_apply.c
 *		The statements a rollback runs on one table, as that table's owner.
 *
 * Per table: one INSERT ... ON CONFLICT DO UPDATE of the target images of
 * the keys present at the target, one DELETE of the tenant's rows whose
 * keys were absent at it (rollback.c orders them by foreign keys).  The
 * rows come from bkperf.rollback_plan_rows(), decoded into rows of the
 * table.
 *
 * Safety, as PostgreSQL's own maintenance commands do it (REFRESH
 * MATERIALIZED VIEW, VACUUM): each table's statements run as the table's
 * owner under SECURITY_RESTRICTED_OPERATION, with search_path =
 * pg_catalog, pg_temp and row_security = off (a policy that would hide rows
 * from the owner makes the statement fail instead of restoring less), and
 * every operator is schema-qualified.  So a trigger, rule, default or
 * operator of the table's owner runs with the owner's rights, never with
 * the caller's.  The caller's own tables need no switch.  The statements run
 * with session_replication_role = replica: only bkperf's capture triggers
 * (ENABLE ALWAYS) and the table's own ENABLE ALWAYS triggers fire, and
 * foreign keys are kept as rollback_fk.c explains.  A deferred trigger
 * would fire at commit as the caller (PostgreSQL refuses to queue one in a
 * security-restricted operation): a table of another owner with a
 * deferrable ENABLE ALWAYS trigger is refused.
 *
 * Tenants compare by their logged text form, bkperf.tenant_text(), never
 * by the column type's equality (numeric 1 and 1.0 are two tenants).
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/guc.h"

#include "bkperf.h"

/* The saved state of the caller while statements run as a table's owner. */
typedef struct RaOwner
{
	Oid			save_userid;
	int			save_sec;
	int			save_nestlevel;
} RaOwner;

/*
 * Become the owner of t, restricted, with a safe search_path.  On error the
 * rollback's subtransaction restores the user and the settings.
 */
static void
ra_owner_begin(BkperfRbTable *t, RaOwner *s)
{
	GetUserIdAndSecContext(&s->save_userid, &s->save_sec);
	/* The caller's own table: nothing of another role runs. */
	if (t->owner != s->save_userid)
		SetUserIdAndSecContext(t->owner, s->save_sec | SECURITY_LOCAL_USERID_CHANGE |
							   SECURITY_RESTRICTED_OPERATION);
	s->save_nestlevel = NewGUCNestLevel();
	(void) set_config_option("search_path", "pg_catalog, pg_temp", PGC_USERSET,
							 PGC_S_SESSION, GUC_ACTION_SAVE, true, 0, false);
	(void) set_config_option("row_security", "off", PGC_USERSET,
							 PGC_S_SESSION, GUC_ACTION_SAVE, true, 0, false);
	/* No trigger fires but the capture's (ENABLE ALWAYS): rollback_fk.c. */
	(void) set_config_option("session_replication_role", "replica", PGC_SUSET,
							 PGC_S_SESSION, GUC_ACTION_SAVE, true, 0, false);
}

/*
 * Back to the caller.
 */
static void
ra_owner_end(RaOwner *s)
{
	AtEOXact_GUC(false, s->save_nestlevel);
	SetUserIdAndSecContext(s->save_userid, s->save_sec);
}

/*
 * Refuse a table of another owner with a deferrable trigger that fires even
 * in the apply's replica mode (ENABLE ALWAYS): PostgreSQL refuses to queue a
 * deferred trigger inside a security-restricted operation, and for good
 * reason (it would fire at commit with the caller's rights).
 */
void
bkperf_rb_check_owner_triggers(BkperfRbTable *t)
{
	Oid			types[1] = {OIDOID};
	Datum		values[1] = {ObjectIdGetDatum(t->relid)};
	char	   *what = NULL;

	if (t->owner == GetUserId())
		return;
	/* Result: the name of one such trigger, or NULL. */
	bkperf_spi_exec("SELECT pg_catalog.min(tgname::pg_catalog.text) FROM pg_catalog.pg_trigger"
					" WHERE tgrelid OPERATOR(pg_catalog.=) $1 AND tgdeferrable AND NOT tgisinternal"
					"   AND tgenabled OPERATOR(pg_catalog.=) 'A'",
					1, types, values, NULL, SPI_OK_SELECT);
	if (SPI_processed > 0)
		what = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
	if (what == NULL)
		return;
	ereport(ERROR,
			(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
			 errmsg("cannot roll back table %s of another owner: its changes would queue deferred trigger \"%s\"",
					t->qname, what),
			 errdetail("A deferred trigger would run at commit with your rights, not its owner's."),
			 errhint("Let the table's owner run the rollback, or leave the table out with an explicit table list.")));
}

/*
 * Does t (or a partition of it) have a trigger of its own that fires in
 * the apply's replica mode (ENABLE ALWAYS)?  Such a trigger could change,
 * skip or keep the rows the rollback writes, in t or in another table.
 */
bool
bkperf_rb_has_always_triggers(BkperfRbTable *t)
{
	Oid			types[1] = {OIDOID};
	Datum		values[1] = {ObjectIdGetDatum(t->relid)};

	/* Result: how many. */
	bkperf_spi_exec("SELECT pg_catalog.count(*) FROM pg_catalog.pg_trigger g"
					" WHERE (g.tgrelid OPERATOR(pg_catalog.=) $1"
					"        OR g.tgrelid IN (SELECT p.relid FROM pg_catalog.pg_partition_tree($1) p))"
					"   AND g.tgenabled OPERATOR(pg_catalog.=) 'A' AND NOT g.tgisinternal"
					"   AND g.tgname OPERATOR(pg_catalog.<>) ALL ('{bkperf_capture_insert,bkperf_capture_update,"
					"bkperf_capture_delete,bkperf_capture_truncate}'::pg_catalog.name[])",
					1, types, values, NULL, SPI_OK_SELECT);
	return bkperf_spi_int64(1) > 0;
}

/*
 * Fire now the events the apply queued for t's deferrable ENABLE ALWAYS
 * constraint triggers (its own or its partitions'), which would otherwise
 * fire at commit, after the checks of what triggers wrote:
 * SET CONSTRAINTS ... IMMEDIATE runs them retroactively, as the caller
 * (another owner's table with such a trigger was refused before the
 * apply).  They stay immediate for the rest of the caller's transaction;
 * a failed or dry run's subtransaction puts the setting back.
 */
void
bkperf_rb_fire_deferred_always(BkperfRbTable *t)
{
	Oid			types[1] = {OIDOID};
	Datum		values[1] = {ObjectIdGetDatum(t->relid)};
	char	   *names = NULL;

	/* Result: their constraints' qualified names, or NULL. */
	bkperf_spi_exec("SELECT pg_catalog.string_agg(DISTINCT pg_catalog.quote_ident(n.nspname)"
					"         OPERATOR(pg_catalog.||) '.' OPERATOR(pg_catalog.||)"
					"         pg_catalog.quote_ident(c.conname), ', ')"
					"  FROM pg_catalog.pg_trigger g"
					"  JOIN pg_catalog.pg_constraint c ON c.oid OPERATOR(pg_catalog.=) g.tgconstraint"
					"  JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) c.connamespace"
					" WHERE (g.tgrelid OPERATOR(pg_catalog.=) $1"
					"        OR g.tgrelid IN (SELECT p.relid FROM pg_catalog.pg_partition_tree($1) p))"
					"   AND g.tgdeferrable AND NOT g.tgisinternal"
					"   AND g.tgenabled OPERATOR(pg_catalog.=) 'A'",
					1, types, values, NULL, SPI_OK_SELECT);
	if (SPI_processed > 0)
		names = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
	if (names == NULL)
		return;
	bkperf_spi_exec(psprintf("SET CONSTRAINTS %s IMMEDIATE", names), 0, NULL, NULL, NULL,
					SPI_OK_UTILITY);
}

/*
 * Fail if triggers made t's rows differ from what the rollback wrote: n
 * rows it restored (deleted: it deleted) are not as it left them.
 */
static void
ra_triggers_changed(BkperfRbTable *t, int64 n, bool deleted)
{
	if (n > 0)
		ereport(ERROR,
				(errcode(ERRCODE_TRIGGERED_DATA_CHANGE_VIOLATION),
				 deleted ?
				 errmsg("an ENABLE ALWAYS trigger kept or put back %lld row(s) the rollback deleted from table %s",
						(long long) n, t->qname) :
				 errmsg("an ENABLE ALWAYS trigger changed or skipped %lld row(s) the rollback restored in table %s",
						(long long) n, t->qname),
				 errdetail("Triggers enabled ALWAYS fire during a rollback; the table would not be as the target saw it."),
				 errhint("Make the trigger ENABLE (not ALWAYS), have it leave rows alone when session_replication_role is replica, or leave the table out with an explicit table list.")));
}

/*
 * Run one statement returning one row of counts as t's owner.
 */
static void
ra_exec_as_owner(BkperfRbTable *t, const char *sql, int nargs, Oid *types,
				 Datum *values)
{
	RaOwner		s;

	ra_owner_begin(t, &s);
	bkperf_spi_exec(sql, nargs, types, values, NULL, SPI_OK_SELECT);
	ra_owner_end(&s);
}

/*
 * Refuse, after an upsert that skipped rows, when a key the tenant had at
 * the target now holds another tenant's row.
 */
static void
ra_check_key_owner(BkperfRbTable *t, const char *tenant)
{
	Oid			types[2] = {TEXTOID, TEXTOID};
	Datum		values[2] = {CStringGetTextDatum(t->key), CStringGetTextDatum(tenant)};
	int64		n;

	/* Result: count of such rows. */
	ra_exec_as_owner(t, psprintf("SELECT pg_catalog.count(*)"
								 "  FROM bkperf.rollback_plan_rows($1, true, NULL::%s) k"
								 "  JOIN %s t ON %s"
								 " WHERE bkperf.tenant_text(t.%s) OPERATOR(pg_catalog.<>) $2"
								 "    OR t.%s IS NULL",
								 t->qname, t->qname, t->key_join, t->tenant_col,
								 t->tenant_col),
					 2, types, values);
	n = bkperf_spi_int64(1);
	if (n > 0)
		ereport(ERROR,
				(errcode(ERRCODE_UNIQUE_VIOLATION),
				 errmsg_plural("cannot restore %lld row of table %s: its key now belongs to another tenant",
							   "cannot restore %lld rows of table %s: their keys now belong to another tenant",
							   n, (long long) n, t->qname),
				 errdetail("The rows moved to another tenant, or their keys were reused by one, after the rollback target.")));
}

/*
 * Upsert the target images of table t's keys present at the target.
 * Identical rows are left alone; rows of another tenant are not touched
 * (and make the rollback fail).
 */
void
bkperf_rb_apply_upsert(BkperfRbTable *t, const char *tenant)
{
	Oid			types[2] = {TEXTOID, TEXTOID};
	Datum		values[2] = {CStringGetTextDatum(t->key), CStringGetTextDatum(tenant)};
	char	   *conflict;

	if (t->planned_present == 0)
		return;
	conflict = t->sets == NULL ? pstrdup("DO NOTHING") :
		psprintf("DO UPDATE SET %s WHERE bkperf.tenant_text(t.%s) OPERATOR(pg_catalog.=) $2"
				 " AND t.* OPERATOR(pg_catalog.*<>) EXCLUDED.*",
				 t->sets, t->tenant_col);
	if (!t->partitioned)
	{
		/* Result: (rows inserted, rows updated). */
		ra_exec_as_owner(t, psprintf("WITH u AS (INSERT INTO %s AS t (%s) OVERRIDING SYSTEM VALUE"
									 " SELECT %s FROM bkperf.rollback_plan_rows($1, true, NULL::%s) r"
									 " ON CONFLICT (%s) %s RETURNING t.xmax OPERATOR(pg_catalog.=) '0'::pg_catalog.xid AS ins)"
									 " SELECT pg_catalog.count(*) FILTER (WHERE ins),"
									 "        pg_catalog.count(*) FILTER (WHERE NOT ins) FROM u",
									 t->qname, t->cols, t->rcols, t->qname, t->key_list, conflict),
						 2, types, values);
		t->inserted = bkperf_spi_int64(1);
		t->updated = bkperf_spi_int64(2);
	}
	else
	{
		/*
		 * A partitioned table cannot return xmax: count the keys that exist
		 * first (result: that count), then the rows the upsert wrote.
		 */
		int64		existing;

		ra_exec_as_owner(t, psprintf("SELECT pg_catalog.count(*) FROM bkperf.rollback_plan_rows($1, true, NULL::%s) k"
									 " JOIN %s t ON %s",
									 t->qname, t->qname, t->key_join),
						 1, types, values);
		existing = bkperf_spi_int64(1);
		/* Result: rows written. */
		ra_exec_as_owner(t, psprintf("WITH u AS (INSERT INTO %s AS t (%s) OVERRIDING SYSTEM VALUE"
									 " SELECT %s FROM bkperf.rollback_plan_rows($1, true, NULL::%s) r"
									 " ON CONFLICT (%s) %s RETURNING 1)"
									 " SELECT pg_catalog.count(*) FROM u",
									 t->qname, t->cols, t->rcols, t->qname, t->key_list, conflict),
						 2, types, values);
		t->inserted = t->planned_present - existing;
		t->updated = bkperf_spi_int64(1) - t->inserted;
	}
	if (t->inserted + t->updated < t->planned_present)
		ra_check_key_owner(t, tenant);
}

/*
 * Delete table t's rows of the tenant whose keys are absent at the target.
 */
void
bkperf_rb_apply_delete(BkperfRbTable *t, const char *tenant)
{
	Oid			types[2] = {TEXTOID, TEXTOID};
	Datum		values[2] = {CStringGetTextDatum(t->key), CStringGetTextDatum(tenant)};

	if (t->planned_absent == 0)
		return;
	/* Result: rows deleted. */
	ra_exec_as_owner(t, psprintf("WITH d AS (DELETE FROM %s%s t"
								 " USING bkperf.rollback_plan_rows($1, false, NULL::%s) k"
								 " WHERE %s AND bkperf.tenant_text(t.%s) OPERATOR(pg_catalog.=) $2"
								 " RETURNING 1)"
								 " SELECT pg_catalog.count(*) FROM d",
								 t->partitioned ? "" : "ONLY ", t->qname, t->qname,
								 t->key_join, t->tenant_col),
					 2, types, values);
	t->deleted = bkperf_spi_int64(1);
}

/*
 * After every statement of the apply: what no trigger enforced in replica
 * mode.  When rows is set (some table in scope has ENABLE ALWAYS triggers,
 * which may write any table), t's restored rows must equal their images
 * and its deleted keys must be gone; and t's deferrable unique and
 * exclusion constraints must hold for its restored rows
 * (rollback_unique.c).
 */
void
bkperf_rb_apply_verify(BkperfRbTable *t, const char *tenant, bool rows)
{
	Oid			types[2] = {TEXTOID, TEXTOID};
	Datum		values[2] = {CStringGetTextDatum(t->key), CStringGetTextDatum(tenant)};
	ListCell   *lc;

	if (rows && t->planned_present > 0)
	{
		/* Result: restored rows that a trigger changed or removed. */
		ra_exec_as_owner(t, psprintf("SELECT pg_catalog.count(*) FROM bkperf.rollback_plan_rows($1, true, NULL::%s) k"
									 " LEFT JOIN %s t ON %s"
									 " WHERE t.%s IS NULL OR NOT %s",
									 t->qname, t->qname, t->key_join, t->tenant_col, t->same_row),
						 1, types, values);
		ra_triggers_changed(t, bkperf_spi_int64(1), false);
	}
	if (rows && t->planned_absent > 0)
	{
		/* Result: deleted keys of the tenant that are back. */
		ra_exec_as_owner(t, psprintf("SELECT pg_catalog.count(*) FROM bkperf.rollback_plan_rows($1, false, NULL::%s) k"
									 " JOIN %s t ON %s WHERE bkperf.tenant_text(t.%s) OPERATOR(pg_catalog.=) $2",
									 t->qname, t->qname, t->key_join, t->tenant_col),
						 2, types, values);
		ra_triggers_changed(t, bkperf_spi_int64(1), true);
	}
	if (t->planned_present == 0)
		return;
	foreach(lc, bkperf_rb_unique_checks(t))
	{
		BkperfRbUniqueCheck *chk = lfirst(lc);
		int64		n;

		ra_exec_as_owner(t, chk->sql, 1, types, values);
		n = bkperf_spi_int64(1);
		if (n > 0)
			ereport(ERROR,
					(errcode(chk->exclusion ? ERRCODE_EXCLUSION_VIOLATION : ERRCODE_UNIQUE_VIOLATION),
					 errmsg_plural("rollback would violate constraint \"%s\" of table %s with %lld restored row",
								   "rollback would violate constraint \"%s\" of table %s with %lld restored rows",
								   n, chk->name, t->qname, (long long) n),
					 errdetail("Rows written after the rollback target conflict with rows the rollback restores.")));
	}
}
