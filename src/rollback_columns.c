/*-------------------------------------------------------------------------
 * rollback_columns.c
 *		Which key of a logged row image holds each column of a tracked
 *		table today.
 *
 * A log image names columns as they were called when it was logged.  The
 * partition event trigger records every rename and added column of a
 * tracked table in bkperf.tracked_column_changes, each with a log_mark: a
 * log_id drawn under the DDL's ACCESS EXCLUSIVE lock, so every image of an
 * older change has a smaller log_id and every image of a newer one a larger
 * (the log_id sequence is not cached per backend).  The marks cut the log
 * into epochs; for each epoch this file works out, from today's columns
 * backwards through the later changes:
 *	- a rename old -> new: the column now called new was logged as old;
 *	- an added column: absent from older images, and restored with the value
 *	  ADD COLUMN gave existing rows (unknown after a table rewrite).
 * Dropped and generated columns are never read from images.
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "utils/builtins.h"

#include "bkperf.h"

/* One recorded column change. */
typedef struct RcChange
{
	int64		mark;
	bool		add;
	char	   *old_name;
	char	   *new_name;
	char	   *added;			/* NULL: SQL NULL */
	bool		known;
} RcChange;

struct BkperfRbColumns
{
	int			natts;
	int			nmarks;
	int64	   *marks;			/* distinct, ascending */
	BkperfRbEpoch *epochs;		/* nmarks + 1: before marks[0] .. after the last */
};

/*
 * Load the changes of table_id, oldest first.  Needs an SPI connection;
 * the result lives in the caller's context.
 */
static RcChange *
rc_load(int64 table_id, int *nchanges)
{
	MemoryContext cxt = CurrentMemoryContext;
	Oid			types[1] = {INT8OID};
	Datum		values[1] = {Int64GetDatum(table_id)};
	RcChange   *result;

	bkperf_spi_exec("SELECT log_mark, change OPERATOR(pg_catalog.=) 'add', old_name::pg_catalog.text,"
					"       new_name::pg_catalog.text, added_value, added_value_known"
					"  FROM bkperf.tracked_column_changes WHERE table_id OPERATOR(pg_catalog.=) $1"
					" ORDER BY log_mark, new_name",
					1, types, values, NULL, SPI_OK_SELECT);
	result = MemoryContextAllocZero(cxt, sizeof(RcChange) * Max(SPI_processed, 1));
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		HeapTuple	tup = SPI_tuptable->vals[i];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		MemoryContext old = MemoryContextSwitchTo(cxt);
		bool		isnull;

		result[i].mark = DatumGetInt64(SPI_getbinval(tup, desc, 1, &isnull));
		result[i].add = DatumGetBool(SPI_getbinval(tup, desc, 2, &isnull));
		result[i].old_name = SPI_getvalue(tup, desc, 3);
		result[i].new_name = SPI_getvalue(tup, desc, 4);
		result[i].added = SPI_getvalue(tup, desc, 5);
		result[i].known = DatumGetBool(SPI_getbinval(tup, desc, 6, &isnull));
		MemoryContextSwitchTo(old);
	}
	*nchanges = (int) SPI_processed;
	return result;
}

/*
 * Undo one change on the epoch e (which starts as a copy of the next newer
 * epoch): the column that change named new_name had the old name, or was
 * absent, in older images.
 */
static void
rc_undo(BkperfRbEpoch *e, int natts, const RcChange *ch)
{
	for (int i = 0; i < natts; i++)
	{
		if (e->kind[i] != 'k' || strcmp(e->keys[i], ch->new_name) != 0)
			continue;
		if (!ch->add)
		{
			e->keys[i] = ch->old_name;
			continue;
		}
		e->keys[i] = NULL;
		e->kind[i] = ch->known ? 'a' : 'u';
		e->added[i] = ch->added;
	}
}

/*
 * A copy of epoch src (or today's columns when src is NULL).
 */
static void
rc_epoch_init(BkperfRbEpoch *e, const BkperfRbEpoch *src, TupleDesc desc)
{
	int			n = Max(desc->natts, 1);

	e->keys = palloc0(sizeof(char *) * n);
	e->key_keys = palloc0(sizeof(char *) * n);
	e->added = palloc0(sizeof(char *) * n);
	e->kind = palloc0(n);
	for (int i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i);

		if (src != NULL)
		{
			e->keys[i] = src->keys[i];
			e->added[i] = src->added[i];
			e->kind[i] = src->kind[i];
		}
		else if (att->attisdropped || att->attgenerated != '\0')
			e->kind[i] = 's';
		else
		{
			e->keys[i] = pstrdup(NameStr(att->attname));
			e->kind[i] = 'k';
		}
	}
}

/*
 * The epochs of table_id's images for a table whose row type is desc today
 * (is_key marks its key columns), in the current memory context.  Needs an
 * SPI connection.
 */
BkperfRbColumns *
bkperf_rb_columns(int64 table_id, TupleDesc desc, const bool *is_key)
{
	MemoryContext cxt = CurrentMemoryContext;
	BkperfRbColumns *c = palloc0(sizeof(BkperfRbColumns));
	int			nchanges;
	RcChange   *ch = rc_load(table_id, &nchanges);
	int			ch_i = nchanges - 1;

	/* SPI calls return to SPI's context: allocate the rest in the caller's. */
	MemoryContextSwitchTo(cxt);

	c->natts = desc->natts;
	c->marks = palloc(sizeof(int64) * Max(nchanges, 1));
	for (int i = 0; i < nchanges; i++)
		if (c->nmarks == 0 || c->marks[c->nmarks - 1] != ch[i].mark)
			c->marks[c->nmarks++] = ch[i].mark;
	c->epochs = palloc0(sizeof(BkperfRbEpoch) * (c->nmarks + 1));
	rc_epoch_init(&c->epochs[c->nmarks], NULL, desc);
	for (int e = c->nmarks - 1; e >= 0; e--)
	{
		rc_epoch_init(&c->epochs[e], &c->epochs[e + 1], desc);
		for (; ch_i >= 0 && ch[ch_i].mark == c->marks[e]; ch_i--)
			rc_undo(&c->epochs[e], desc->natts, &ch[ch_i]);
	}
	for (int e = 0; e <= c->nmarks; e++)
		for (int i = 0; i < desc->natts; i++)
			c->epochs[e].key_keys[i] = is_key[i] ? c->epochs[e].keys[i] : NULL;
	return c;
}

/*
 * The epoch of an image logged with log_id: the one after every mark
 * below it.
 */
BkperfRbEpoch *
bkperf_rb_columns_epoch(BkperfRbColumns *c, int64 log_id)
{
	int			lo = 0,
				hi = c->nmarks;

	/* First mark greater than log_id (marks are never log_ids of images). */
	while (lo < hi)
	{
		int			mid = (lo + hi) / 2;

		if (c->marks[mid] < log_id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return &c->epochs[lo];
}
