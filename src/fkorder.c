/*-------------------------------------------------------------------------
 * fkorder.c
 *		Foreign-key restore order of a set of tables: levels and cycle groups.
 *
 * The graph has an edge from each referencing (child) table to the table it
 * references (parent), for every foreign key of pg_constraint whose both ends
 * are in the set.  Its strongly connected components are found with Tarjan's
 * algorithm, which visits every edge once and so cannot loop on a cycle the
 * way a recursive query can.  Tarjan emits a component only after every
 * component it references, so levels are assigned in one pass: a component
 * that references nothing in the set is level 0, any other is one more than
 * the highest level it references.  Parents first means ascending level,
 * children first descending.
 *
 * A component of two or more tables is a cycle group: its rows can only be
 * restored with the foreign keys inside it deferred.  A table referencing
 * itself is not a cycle group: one statement inserts or deletes all its rows
 * and the checks run at the end of the statement.
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"

#include "bkperf.h"

PG_FUNCTION_INFO_V1(bkperf_table_restore_order);

/* Working state of Tarjan's algorithm over the tables of one order. */
typedef struct FkoState
{
	BkperfFkOrder *order;
	int		   *index;			/* DFS number per table, -1 = unvisited */
	int		   *lowlink;
	bool	   *onstack;
	int		   *stack;
	int			sp;
	int			counter;
	int			ncomponents;
	int		   *comp_level;		/* level per component, in emit order */
	int		   *comp_size;
} FkoState;

/*
 * Position of a relation in the order's table array, or -1.
 */
static int
fko_table_pos(BkperfFkOrder *order, Oid relid)
{
	for (int i = 0; i < order->ntables; i++)
		if (order->tables[i].relid == relid)
			return i;
	return -1;
}

/*
 * Read every foreign key whose both ends are tables of the order.
 * Partition clones (conparentid <> 0) are skipped: the partitioned table's
 * own constraint stands for them.
 */
static void
fko_load_edges(BkperfFkOrder *order)
{
	Datum	   *elems = palloc(sizeof(Datum) * Max(order->ntables, 1));
	Datum		arg;
	Oid			argtype = OIDARRAYOID;
	int			ret;

	for (int i = 0; i < order->ntables; i++)
		elems[i] = ObjectIdGetDatum(order->tables[i].relid);
	arg = PointerGetDatum(construct_array(elems, order->ntables, OIDOID,
										  sizeof(Oid), true, TYPALIGN_INT));
	ret = SPI_execute_with_args(
								"SELECT c.conrelid, c.confrelid, c.condeferrable,"
								"       pg_catalog.quote_ident(n.nspname) OPERATOR(pg_catalog.||) '.'"
								"       OPERATOR(pg_catalog.||) pg_catalog.quote_ident(c.conname)"
								"  FROM pg_catalog.pg_constraint c"
								"  JOIN pg_catalog.pg_namespace n ON n.oid = c.connamespace"
								" WHERE c.contype = 'f' AND c.conparentid = 0"
								"   AND c.conrelid OPERATOR(pg_catalog.=) ANY ($1)"
								"   AND c.confrelid OPERATOR(pg_catalog.=) ANY ($1)"
								" ORDER BY c.conrelid, c.confrelid, c.conname",
								1, &argtype, &arg, NULL, true, 0);
	if (ret != SPI_OK_SELECT)
		elog(ERROR, "reading foreign keys failed: %s", SPI_result_code_string(ret));

	order->nedges = (int) SPI_processed;
	order->edges = palloc0(sizeof(BkperfFkEdge) * Max(order->nedges, 1));
	for (uint64 r = 0; r < SPI_processed; r++)
	{
		HeapTuple	tup = SPI_tuptable->vals[r];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		BkperfFkEdge *e = &order->edges[r];
		bool		isnull;

		e->child = fko_table_pos(order, DatumGetObjectId(SPI_getbinval(tup, desc, 1, &isnull)));
		e->parent = fko_table_pos(order, DatumGetObjectId(SPI_getbinval(tup, desc, 2, &isnull)));
		e->deferrable = DatumGetBool(SPI_getbinval(tup, desc, 3, &isnull));
		e->name = SPI_getvalue(tup, desc, 4);
	}
}

/*
 * Give every table of the component on top of the stack (rooted at v) its
 * component number and level.  Called when Tarjan closes a component, which
 * is after every component it references has been closed.
 */
static void
fko_close_component(FkoState *st, int v)
{
	BkperfFkOrder *order = st->order;
	int			comp = st->ncomponents++;
	int			level = 0;
	int			w;

	st->comp_size[comp] = 0;
	do
	{
		w = st->stack[--st->sp];
		st->onstack[w] = false;
		order->tables[w].component = comp;
		st->comp_size[comp]++;
	} while (w != v);

	/* The level is one more than that of any other component referenced. */
	for (int e = 0; e < order->nedges; e++)
	{
		BkperfFkEdge *edge = &order->edges[e];
		int			pc = order->tables[edge->parent].component;

		if (order->tables[edge->child].component == comp && pc != comp)
			level = Max(level, st->comp_level[pc] + 1);
	}
	st->comp_level[comp] = level;
}

/*
 * Tarjan's depth-first visit of table v.  Recursion depth is bounded by the
 * number of tables; check_stack_depth guards against absurd sets.
 */
static void
fko_visit(FkoState *st, int v)
{
	BkperfFkOrder *order = st->order;

	check_stack_depth();
	st->index[v] = st->lowlink[v] = st->counter++;
	st->stack[st->sp++] = v;
	st->onstack[v] = true;

	for (int e = 0; e < order->nedges; e++)
	{
		int			w = order->edges[e].parent;

		if (order->edges[e].child != v)
			continue;
		if (st->index[w] < 0)
		{
			fko_visit(st, w);
			st->lowlink[v] = Min(st->lowlink[v], st->lowlink[w]);
		}
		else if (st->onstack[w])
			st->lowlink[v] = Min(st->lowlink[v], st->index[w]);
	}
	if (st->lowlink[v] == st->index[v])
		fko_close_component(st, v);
}

/*
 * Number the cycle groups (components of two or more tables) 1, 2, ... in
 * order of level, and copy levels to the tables.
 */
static void
fko_assign_groups(FkoState *st)
{
	BkperfFkOrder *order = st->order;
	int		   *group = palloc0(sizeof(int) * Max(st->ncomponents, 1));
	int			next = 1;

	/* Components were emitted parents first; keep that order for groups. */
	for (int c = 0; c < st->ncomponents; c++)
		if (st->comp_size[c] > 1)
			group[c] = next++;
	for (int i = 0; i < order->ntables; i++)
	{
		BkperfFkTable *t = &order->tables[i];

		t->level = st->comp_level[t->component];
		t->cycle_group = group[t->component];
	}
	order->ngroups = next - 1;
}

/*
 * Compute the restore order of the given tables (called inside an SPI
 * connection).  The result is allocated in the current memory context.
 */
BkperfFkOrder *
bkperf_fk_order(const Oid *relids, int ntables)
{
	BkperfFkOrder *order = palloc0(sizeof(BkperfFkOrder));
	FkoState	st;
	int			n = Max(ntables, 1);

	order->ntables = ntables;
	order->tables = palloc0(sizeof(BkperfFkTable) * n);
	for (int i = 0; i < ntables; i++)
		order->tables[i].relid = relids[i];
	fko_load_edges(order);

	memset(&st, 0, sizeof(st));
	st.order = order;
	st.index = palloc(sizeof(int) * n);
	st.lowlink = palloc(sizeof(int) * n);
	st.onstack = palloc0(sizeof(bool) * n);
	st.stack = palloc(sizeof(int) * n);
	st.comp_level = palloc0(sizeof(int) * n);
	st.comp_size = palloc0(sizeof(int) * n);
	for (int i = 0; i < ntables; i++)
		st.index[i] = -1;
	for (int i = 0; i < ntables; i++)
		if (st.index[i] < 0)
			fko_visit(&st, i);
	fko_assign_groups(&st);
	return order;
}

/*
 * The foreign keys inside cycle group g (both ends in it), as a text array
 * of qualified names, or NULL for no group.  With only_rigid, only the
 * constraints that are not deferrable.
 */
ArrayType *
bkperf_fk_group_constraints(BkperfFkOrder *order, int g, bool only_rigid)
{
	Datum	   *names = palloc(sizeof(Datum) * Max(order->nedges, 1));
	int			n = 0;

	if (g == 0)
		return NULL;
	for (int e = 0; e < order->nedges; e++)
	{
		BkperfFkEdge *edge = &order->edges[e];

		if (order->tables[edge->child].cycle_group != g ||
			order->tables[edge->parent].cycle_group != g)
			continue;
		if (only_rigid && edge->deferrable)
			continue;
		names[n++] = CStringGetTextDatum(edge->name);
	}
	return construct_array(names, n, TEXTOID, -1, false, TYPALIGN_INT);
}

/*
 * The relations of the regclass[] argument, or every tracked table when it
 * is NULL.  Duplicates and NULL elements are dropped.
 */
static Oid *
fko_argument_tables(FunctionCallInfo fcinfo, int *ntables)
{
	Oid		   *relids;
	int			n = 0;

	if (PG_ARGISNULL(0))
	{
		BkperfTracked *tracked = bkperf_tracked_tables(ntables);

		relids = palloc(sizeof(Oid) * Max(*ntables, 1));
		for (int i = 0; i < *ntables; i++)
			relids[i] = tracked[i].relid;
		return relids;
	}
	else
	{
		ArrayType  *arr = PG_GETARG_ARRAYTYPE_P(0);
		Datum	   *elems;
		bool	   *nulls;
		int			nelems;

		deconstruct_array(arr, REGCLASSOID, sizeof(Oid), true, TYPALIGN_INT,
						  &elems, &nulls, &nelems);
		relids = palloc(sizeof(Oid) * Max(nelems, 1));
		for (int i = 0; i < nelems; i++)
		{
			Oid			relid = DatumGetObjectId(elems[i]);
			bool		dup = false;

			if (nulls[i])
				continue;
			if (get_rel_relkind(relid) == '\0')
				ereport(ERROR,
						(errcode(ERRCODE_UNDEFINED_TABLE),
						 errmsg("relation with OID %u does not exist", relid)));
			for (int j = 0; j < n; j++)
				dup |= relids[j] == relid;
			if (!dup)
				relids[n++] = relid;
		}
	}
	*ntables = n;
	return relids;
}

/*
 * bkperf.table_restore_order(tables regclass[] DEFAULT NULL): one row per
 * table with its level (parents first = ascending), its cycle group (NULL
 * outside cycles), the foreign keys inside that group and whether all of
 * them are deferrable.  NULL means every tracked table.
 */
Datum
bkperf_table_restore_order(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	BkperfFkOrder *order;
	Oid		   *relids;
	int			ntables;

	InitMaterializedSRF(fcinfo, 0);
	SPI_connect();
	relids = fko_argument_tables(fcinfo, &ntables);
	order = bkperf_fk_order(relids, ntables);
	for (int i = 0; i < order->ntables; i++)
	{
		BkperfFkTable *t = &order->tables[i];
		Datum		values[5];
		bool		nulls[5] = {false, false, false, false, false};
		ArrayType  *rigid = bkperf_fk_group_constraints(order, t->cycle_group, true);

		values[0] = ObjectIdGetDatum(t->relid);
		values[1] = Int32GetDatum(t->level);
		values[2] = Int32GetDatum(t->cycle_group);
		nulls[2] = t->cycle_group == 0;
		if (t->cycle_group != 0)
		{
			values[3] = PointerGetDatum(bkperf_fk_group_constraints(order, t->cycle_group, false));
			values[4] = BoolGetDatum(ArrayGetNItems(ARR_NDIM(rigid), ARR_DIMS(rigid)) == 0);
		}
		nulls[3] = nulls[4] = t->cycle_group == 0;
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	SPI_finish();
	PG_RETURN_NULL();
}
