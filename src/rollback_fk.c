/*-------------------------------------------------------------------------
 * rollback_fk.c
 *		Which foreign keys a rollback must check, and the set-based checks.
 *
 * A rollback applies its statements with session_replication_role =
 * replica (rollback_apply.c): no trigger fires but bkperf's capture
 * triggers (ENABLE ALWAYS), so neither the tables' own triggers nor
 * PostgreSQL's per-row foreign-key checks run, as in E-Maj's rollbacks.
 * The restored rows are then consistent without any check when a foreign
 * key is covered:
 *	- both its tables are in the rollback's scope (their tenant's rows are
 *	  all put back exactly as the target saw them, and the target's state
 *	  satisfied the key), and
 *	- it maps tenant to tenant: the child's tenant column is compared with
 *	  the parent's, so a row of the tenant only ever references a row of
 *	  the same tenant, and
 *	- its tenant columns are of a type whose equality is text identity
 *	  (integers, uuid, text types under a deterministic collation): numeric
 *	  1 = 1.0 would let a row of tenant "1.0" reference one of tenant "1".
 * Every other foreign key that touches a changed table is checked once,
 * set-based, after the apply: the restored child rows must find their
 * parents, and no row may reference a key the rollback deleted.  A
 * violation fails the rollback (nothing is changed), as the trigger would
 * have.  Deleting rows whose key an uncovered table references with ON
 * DELETE CASCADE / SET NULL / SET DEFAULT is refused before the apply
 * (rollback.c): a rollback never writes outside its scope.
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_collation.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "lib/stringinfo.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"

#include "bkperf.h"

/* One foreign key touching the changed tables. */
typedef struct RfKey
{
	char	   *name;			/* constraint name */
	Oid			child;
	Oid			parent;
	int			nkeys;
	AttrNumber *conkey;
	AttrNumber *confkey;
} RfKey;

/*
 * Is typid (or its base type) one whose equality is text identity?
 */
static bool
rf_identity_type(Oid typid, Oid collid)
{
	switch (getBaseType(typid))
	{
		case INT2OID:
		case INT4OID:
		case INT8OID:
		case UUIDOID:
			return true;
		case TEXTOID:
		case VARCHAROID:
			return !OidIsValid(collid) || get_collation_isdeterministic(collid);
		default:
			return false;
	}
}

/*
 * Is column attnum of relid of such a type (and collation)?
 */
static bool
rf_identity_column(Oid relid, AttrNumber attnum)
{
	Oid			typid,
				collid;
	int32		typmod;

	get_atttypetypmodcoll(relid, attnum, &typid, &typmod, &collid);
	return rf_identity_type(typid, collid);
}

/*
 * The table in scope with relid, or NULL.
 */
static BkperfRbTable *
rf_table(BkperfRbTable *tables, int ntables, Oid relid)
{
	for (int i = 0; i < ntables; i++)
		if (tables[i].relid == relid)
			return &tables[i];
	return NULL;
}

/*
 * Does key k map the child's tenant column to the parent's, with identity
 * equality?  c and p are the two tables in scope.
 */
static bool
rf_maps_tenant(const RfKey *k, const BkperfRbTable *c, const BkperfRbTable *p)
{
	for (int i = 0; i < k->nkeys; i++)
	{
		if (k->conkey[i] != c->tenant_attnum || k->confkey[i] != p->tenant_attnum)
			continue;
		return rf_identity_column(k->child, k->conkey[i]) &&
			rf_identity_column(k->parent, k->confkey[i]);
	}
	return false;
}

/*
 * A quoted column name of relid.
 */
static const char *
rf_col(Oid relid, AttrNumber attnum)
{
	return quote_identifier(get_attname(relid, attnum, false));
}

/*
 * The quals of key k with the child's columns read from alias x and the
 * parent's from alias p: "x.a IS NOT NULL AND ..." into notnull (when not
 * NULL) and "p.ref OPERATOR(=) x.fk AND ..." into match.
 */
static void
rf_quals(const RfKey *k, const char *x, const char *p, StringInfo notnull,
		 StringInfo match)
{
	for (int i = 0; i < k->nkeys; i++)
	{
		const char *fk = rf_col(k->child, k->conkey[i]);

		if (notnull != NULL)
			appendStringInfo(notnull, "%s%s.%s IS NOT NULL", i ? " AND " : "", x, fk);
		appendStringInfo(match, "%s%s.%s %s %s.%s", i ? " AND " : "", p,
						 rf_col(k->parent, k->confkey[i]),
						 bkperf_eq_operator(get_atttype(k->child, k->conkey[i])), x, fk);
	}
}

/*
 * Are the referenced columns of k all key columns of the parent p (so the
 * keys the rollback deleted tell which parents are gone)?
 */
static bool
rf_refs_keys(const RfKey *k, const BkperfRbTable *p, bool *const *is_key,
			 int pidx)
{
	for (int i = 0; i < k->nkeys; i++)
		if (!is_key[pidx][k->confkey[i] - 1])
			return false;
	return true;
}

/*
 * The check of k after the apply, as a query returning one count (0: the
 * key holds for what the rollback wrote); $1 is the table key of the
 * rows read from the plan.  Sets *plan_table to the table whose plan rows
 * the query reads (-1: none).
 */
static char *
rf_check_sql(const RfKey *k, BkperfRbTable *tables, int ntables, bool **is_key,
			 bool child_side, int *plan_table)
{
	StringInfoData notnull,
				match,
				sql;
	BkperfRbTable *c = rf_table(tables, ntables, k->child);
	BkperfRbTable *p = rf_table(tables, ntables, k->parent);
	char	   *cname = c ? c->qname : format_type_be(get_rel_type_id(k->child));
	char	   *pname = p ? p->qname : format_type_be(get_rel_type_id(k->parent));

	initStringInfo(&notnull);
	initStringInfo(&match);
	initStringInfo(&sql);
	*plan_table = -1;
	if (child_side)
	{
		/* The restored rows of the child find their parents. */
		rf_quals(k, "x", "p", &notnull, &match);
		*plan_table = (int) (c - tables);
		appendStringInfo(&sql, "SELECT pg_catalog.count(*) FROM bkperf.rollback_plan_rows($1, true, NULL::%s) x"
						 " WHERE %s AND NOT EXISTS (SELECT 1 FROM %s p WHERE %s)",
						 cname, notnull.data, pname, match.data);
	}
	else if (rf_refs_keys(k, p, is_key, (int) (p - tables)))
	{
		/* No child row references a key the rollback deleted. */
		StringInfoData gone;

		initStringInfo(&gone);
		rf_quals(k, "x", "d", NULL, &gone);
		rf_quals(k, "x", "p", NULL, &match);
		*plan_table = (int) (p - tables);
		appendStringInfo(&sql, "SELECT pg_catalog.count(*) FROM bkperf.rollback_plan_rows($1, false, NULL::%s) d"
						 " JOIN %s x ON %s WHERE NOT EXISTS (SELECT 1 FROM %s p WHERE %s)",
						 pname, cname, gone.data, pname, match.data);
	}
	else
	{
		/* Referenced columns the rollback may have changed: the whole key. */
		rf_quals(k, "x", "p", &notnull, &match);
		appendStringInfo(&sql, "SELECT pg_catalog.count(*) FROM %s x"
						 " WHERE %s AND NOT EXISTS (SELECT 1 FROM %s p WHERE %s)",
						 cname, notnull.data, pname, match.data);
	}
	return sql.data;
}

/*
 * Load the foreign keys that touch a changed table of the scope.
 */
static List *
rf_load(BkperfRbTable *tables, int ntables)
{
	MemoryContext cxt = CurrentMemoryContext;
	Datum	   *changed = palloc(sizeof(Datum) * Max(ntables, 1));
	int			n = 0;
	Oid			types[1] = {OIDARRAYOID};
	Datum		values[1];
	List	   *keys = NIL;

	for (int i = 0; i < ntables; i++)
		if (tables[i].planned_present + tables[i].planned_absent > 0)
			changed[n++] = ObjectIdGetDatum(tables[i].relid);
	if (n == 0)
		return NIL;
	values[0] = PointerGetDatum(construct_array(changed, n, OIDOID, sizeof(Oid), true, TYPALIGN_INT));
	bkperf_spi_exec("SELECT c.conname::pg_catalog.text, c.conrelid, c.confrelid, c.conkey, c.confkey"
					"  FROM pg_catalog.pg_constraint c"
					" WHERE c.contype OPERATOR(pg_catalog.=) 'f'"
					"   AND (c.conrelid OPERATOR(pg_catalog.=) ANY ($1)"
					"        OR c.confrelid OPERATOR(pg_catalog.=) ANY ($1))"
					" ORDER BY c.oid",
					1, types, values, NULL, SPI_OK_SELECT);
	MemoryContextSwitchTo(cxt);
	for (uint64 r = 0; r < SPI_processed; r++)
	{
		HeapTuple	tup = SPI_tuptable->vals[r];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		RfKey	   *k = palloc0(sizeof(RfKey));
		bool		isnull;
		Datum	   *elems;
		int			nelems;

		k->name = SPI_getvalue(tup, desc, 1);
		k->child = DatumGetObjectId(SPI_getbinval(tup, desc, 2, &isnull));
		k->parent = DatumGetObjectId(SPI_getbinval(tup, desc, 3, &isnull));
		deconstruct_array(DatumGetArrayTypeP(SPI_getbinval(tup, desc, 4, &isnull)),
						  INT2OID, 2, true, TYPALIGN_SHORT, &elems, NULL, &nelems);
		k->nkeys = nelems;
		k->conkey = palloc(sizeof(AttrNumber) * nelems);
		for (int i = 0; i < nelems; i++)
			k->conkey[i] = DatumGetInt16(elems[i]);
		deconstruct_array(DatumGetArrayTypeP(SPI_getbinval(tup, desc, 5, &isnull)),
						  INT2OID, 2, true, TYPALIGN_SHORT, &elems, NULL, &nelems);
		k->confkey = palloc(sizeof(AttrNumber) * nelems);
		for (int i = 0; i < nelems; i++)
			k->confkey[i] = DatumGetInt16(elems[i]);
		keys = lappend(keys, k);
	}
	return keys;
}

/*
 * The checks the apply of this scope needs (see the file header): a list
 * of BkperfRbFkCheck.  Needs an SPI connection.
 */
List *
bkperf_rb_fk_checks(BkperfRbTable *tables, int ntables, bool **is_key)
{
	List	   *checks = NIL;
	ListCell   *lc;

	foreach(lc, rf_load(tables, ntables))
	{
		RfKey	   *k = lfirst(lc);
		BkperfRbTable *c = rf_table(tables, ntables, k->child);
		BkperfRbTable *p = rf_table(tables, ntables, k->parent);

		if (c != NULL && p != NULL && rf_maps_tenant(k, c, p))
			continue;			/* covered: consistent by construction */
		/* The restored rows of a changed child, and the deleted parents. */
		for (int side = 0; side < 2; side++)
		{
			BkperfRbTable *t = side == 0 ? c : p;
			BkperfRbFkCheck *chk;

			if (t == NULL || (side == 0 ? t->planned_present : t->planned_absent) == 0)
				continue;
			chk = palloc0(sizeof(BkperfRbFkCheck));
			chk->name = k->name;
			chk->child = k->child;
			chk->parent = k->parent;
			chk->sql = rf_check_sql(k, tables, ntables, is_key, side == 0, &chk->plan_table);
			checks = lappend(checks, chk);
		}
	}
	return checks;
}

/*
 * Run the checks; the first that finds rows fails the rollback with a
 * foreign-key violation.  plan_table_key gives a plan table's key.
 */
void
bkperf_rb_fk_run(List *checks, BkperfRbTable *tables, BkperfRbPlan *plan)
{
	ListCell   *lc;

	foreach(lc, checks)
	{
		BkperfRbFkCheck *chk = lfirst(lc);
		Oid			types[1] = {TEXTOID};
		Datum		values[1] = {CStringGetTextDatum(chk->plan_table >= 0 ?
													 tables[chk->plan_table].key : "")};
		int64		n;

		bkperf_rb_plan_set_active(plan, chk->plan_table, GetUserId());
		bkperf_spi_exec(chk->sql, 1, types, values, NULL, SPI_OK_SELECT);
		bkperf_rb_plan_set_active(plan, -1, InvalidOid);
		n = bkperf_spi_int64(1);
		if (n > 0)
			ereport(ERROR,
					(errcode(ERRCODE_FOREIGN_KEY_VIOLATION),
					 errmsg("rollback would violate foreign key \"%s\" of table %s",
							chk->name, format_type_be(get_rel_type_id(chk->child))),
					 errdetail_plural("%lld row of %s would reference a row of %s that the rollback leaves absent.",
									  "%lld rows of %s would reference rows of %s that the rollback leaves absent.",
									  n, (long long) n,
									  format_type_be(get_rel_type_id(chk->child)),
									  format_type_be(get_rel_type_id(chk->parent)))));
	}
}
