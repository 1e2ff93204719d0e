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
#define BKPERF_LOCK_ROLLBACK	2	/* combined with a tenant hash: one
									 * rollback per tenant */

/* One table of a foreign-key restore order (fkorder.c). */
typedef struct BkperfFkTable
{
	Oid			relid;
	int			component;		/* strongly connected component number */
	int			level;			/* 0 = references nothing in the set */
	int			cycle_group;	/* 0 = not in a cycle of 2+ tables */
} BkperfFkTable;

/* One foreign key between two tables of the set (indexes into tables). */
typedef struct BkperfFkEdge
{
	int			child;
	int			parent;
	bool		deferrable;
	bool		initially_deferred;
	char	   *name;			/* quoted, schema-qualified */
} BkperfFkEdge;

/* The restore order of a set of tables. */
typedef struct BkperfFkOrder
{
	int			ntables;
	BkperfFkTable *tables;
	int			nedges;
	BkperfFkEdge *edges;
	int			ngroups;
} BkperfFkOrder;

/* fkorder.c: both need an SPI connection. */
extern BkperfFkOrder *bkperf_fk_order(const Oid *relids, int ntables);
extern struct ArrayType *bkperf_fk_group_constraints(BkperfFkOrder *order,
													 int group, bool only_rigid);

/* rollback.c: OIDs of every tracked table (needs an SPI connection). */
extern Oid *bkperf_tracked_relids(int *ntables);

#endif							/* BKPERF_H */
