/*-------------------------------------------------------------------------
 * rollback_unique.c
 *		The uniqueness a rollback's apply must check itself.
 *
 * The apply runs with session_replication_role = replica (rollback_apply.c):
 * no trigger fires but bkperf's capture triggers.  A DEFERRABLE unique,
 * primary-key or exclusion constraint is enforced by such a trigger: its
 * index insertion only notes a possible conflict, and unique_key_recheck
 * decides later.  In replica mode that trigger does not fire, so a
 * restored row could duplicate, silently, a row the rollback does not
 * touch (another tenant's, for example).  A constraint that is not
 * deferrable is enforced by its index during the statement and needs
 * nothing here.
 *
 * For each deferrable constraint of a table the rollback restores rows
 * into (declared on the table or on one of its partitions), one set-based
 * query after the table's upsert counts the restored rows that conflict
 * with any other row of the constraint's relation, under the constraint's
 * own operators (the index operator class's equality for unique keys, the
 * exclusion operators) and the index's collations; NULLs conflict only
 * under NULLS NOT DISTINCT.  A conflict fails the rollback, as the
 * recheck would have failed the statement.  An exclusion constraint over
 * expressions or with a WHERE clause cannot be checked this way: such a
 * table is refused before anything is written.
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/stratnum.h"
#include "catalog/pg_collation.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "lib/stringinfo.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/syscache.h"

#include "bkperf.h"

/*
 * The operator that compares column i of a constraint: its exclusion
 * operator, or the equality of the index's btree operator class.
 */
static Oid
ru_operator(const char *conname, Oid opclass, Oid exclop)
{
	Oid			family,
				intype,
				op;

	if (OidIsValid(exclop))
		return exclop;
	family = get_opclass_family(opclass);
	intype = get_opclass_input_type(opclass);
	op = get_opfamily_member(family, intype, intype, BTEqualStrategyNumber);
	if (!OidIsValid(op))
		elog(ERROR, "no equality operator in the operator class of constraint \"%s\"", conname);
	return op;
}

/*
 * The conflict condition of one column, between aliases o and t.
 */
static void
ru_qual(StringInfo buf, const char *col, const char *op, Oid collation,
		bool nulls_equal)
{
	char	   *coll = "";

	if (OidIsValid(collation))
	{
		HeapTuple	tup = SearchSysCache1(COLLOID, ObjectIdGetDatum(collation));
		Form_pg_collation c;

		if (!HeapTupleIsValid(tup))
			elog(ERROR, "cache lookup failed for collation %u", collation);
		c = (Form_pg_collation) GETSTRUCT(tup);
		coll = psprintf(" COLLATE %s",
						quote_qualified_identifier(get_namespace_name(c->collnamespace),
												   NameStr(c->collname)));
		ReleaseSysCache(tup);
	}
	if (buf->len > 0)
		appendStringInfoString(buf, " AND ");
	if (nulls_equal)
		appendStringInfo(buf, "(o.%s%s %s t.%s OR (o.%s IS NULL AND t.%s IS NULL))",
						 col, coll, op, col, col, col);
	else
		appendStringInfo(buf, "o.%s%s %s t.%s", col, coll, op, col);
}

/*
 * The checks of the deferrable constraints of t (a list of
 * BkperfRbUniqueCheck, empty for most tables).  Needs an SPI connection.
 */
List *
bkperf_rb_unique_checks(BkperfRbTable *t)
{
	MemoryContext cxt = CurrentMemoryContext;
	Oid			types[1] = {OIDOID};
	Datum		values[1] = {ObjectIdGetDatum(t->relid)};
	List	   *checks = NIL;

	/*
	 * Constraints declared on the table or on a partition of it; a
	 * partition's copy of its parent's constraint (conparentid) is the
	 * parent's, checked once.
	 */
	bkperf_spi_exec("SELECT c.conname::pg_catalog.text, c.contype, c.conrelid, c.conkey, c.conexclop,"
					"       i.indclass::pg_catalog.oid[], i.indcollation::pg_catalog.oid[],"
					"       i.indnullsnotdistinct, i.indexprs IS NOT NULL OR i.indpred IS NOT NULL"
					"  FROM pg_catalog.pg_constraint c"
					"  JOIN pg_catalog.pg_index i ON i.indexrelid OPERATOR(pg_catalog.=) c.conindid"
					" WHERE c.condeferrable"
					"   AND c.contype OPERATOR(pg_catalog.=) ANY ('{u,p,x}'::pg_catalog.\"char\"[])"
					"   AND c.conparentid OPERATOR(pg_catalog.=) 0"
					"   AND (c.conrelid OPERATOR(pg_catalog.=) $1"
					"        OR c.conrelid IN (SELECT p.relid FROM pg_catalog.pg_partition_tree($1) p))"
					" ORDER BY c.oid",
					1, types, values, NULL, SPI_OK_SELECT);
	MemoryContextSwitchTo(cxt);
	for (uint64 r = 0; r < SPI_processed; r++)
	{
		HeapTuple	tup = SPI_tuptable->vals[r];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		BkperfRbUniqueCheck *chk = palloc0(sizeof(BkperfRbUniqueCheck));
		bool		isnull,
					exclnull;
		Oid			conrel;
		Datum	   *keys,
				   *classes,
				   *colls,
				   *exclops = NULL;
		int			nkeys,
					n;
		bool		nulls_equal;
		StringInfoData quals;
		char	   *relname;

		chk->name = SPI_getvalue(tup, desc, 1);
		chk->exclusion = DatumGetChar(SPI_getbinval(tup, desc, 2, &isnull)) == 'x';
		conrel = DatumGetObjectId(SPI_getbinval(tup, desc, 3, &isnull));
		relname = quote_qualified_identifier(get_namespace_name(get_rel_namespace(conrel)),
											 get_rel_name(conrel));
		if (DatumGetBool(SPI_getbinval(tup, desc, 9, &isnull)))
			ereport(ERROR,
					(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
					 errmsg("cannot roll back table %s: its deferrable constraint \"%s\" uses expressions or a WHERE clause",
							t->qname, chk->name),
					 errdetail("The rollback writes with triggers off, and checks deferrable constraints itself, column by column."),
					 errhint("Make the constraint NOT DEFERRABLE, or leave the table out with an explicit table list.")));
		deconstruct_array(DatumGetArrayTypeP(SPI_getbinval(tup, desc, 4, &isnull)),
						  INT2OID, 2, true, TYPALIGN_SHORT, &keys, NULL, &nkeys);
		deconstruct_array(DatumGetArrayTypeP(SPI_getbinval(tup, desc, 6, &isnull)),
						  OIDOID, sizeof(Oid), true, TYPALIGN_INT, &classes, NULL, &n);
		deconstruct_array(DatumGetArrayTypeP(SPI_getbinval(tup, desc, 7, &isnull)),
						  OIDOID, sizeof(Oid), true, TYPALIGN_INT, &colls, NULL, &n);
		{
			Datum		d = SPI_getbinval(tup, desc, 5, &exclnull);

			if (!exclnull)
				deconstruct_array(DatumGetArrayTypeP(d), OIDOID, sizeof(Oid), true,
								  TYPALIGN_INT, &exclops, NULL, &n);
		}
		nulls_equal = DatumGetBool(SPI_getbinval(tup, desc, 8, &isnull));
		initStringInfo(&quals);
		for (int i = 0; i < nkeys; i++)
		{
			AttrNumber	attnum = DatumGetInt16(keys[i]);
			Oid			op = ru_operator(chk->name, DatumGetObjectId(classes[i]),
										 exclops ? DatumGetObjectId(exclops[i]) : InvalidOid);

			ru_qual(&quals, quote_identifier(get_attname(conrel, attnum, false)),
					bkperf_operator_sql(op), DatumGetObjectId(colls[i]),
					nulls_equal && !chk->exclusion);
		}
		/* Result: restored rows that conflict with another row. */
		chk->sql = psprintf("SELECT pg_catalog.count(*) FROM bkperf.rollback_plan_rows($1, true, NULL::%s) k"
							"  JOIN %s t ON %s"
							" WHERE EXISTS (SELECT 1 FROM %s o WHERE %s"
							"   AND NOT (o.tableoid OPERATOR(pg_catalog.=) t.tableoid"
							"            AND o.ctid OPERATOR(pg_catalog.=) t.ctid))",
							t->qname, relname, t->key_join, relname, quals.data);
		checks = lappend(checks, chk);
	}
	return checks;
}
