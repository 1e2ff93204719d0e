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

/* ---- change capture (capture.c, capture_json.c, capture_log.c) ---- */

#include "access/heapam.h"
#include "access/tableam.h"
#include "executor/tuptable.h"
#include "nodes/execnodes.h"
#include "utils/jsonb.h"

/* How capture_json.c turns a column's values into jsonb (as to_jsonb does). */
typedef enum CaptureJsonKind
{
	CJ_DROPPED,					/* dropped column: never imaged */
	CJ_BOOL,					/* true/false */
	CJ_INT,						/* int2/int4/int8: a number */
	CJ_NUMERIC,					/* numeric: a number, NaN/Infinity a string */
	CJ_FLOAT,					/* float4/float8: via output, as to_jsonb */
	CJ_DATETIME,				/* date/timestamp/timestamptz: ISO string */
	CJ_TEXT,					/* text/varchar/bpchar: the bytes */
	CJ_STRING,					/* anything else scalar: its output */
	CJ_NESTED					/* array/composite/json/jsonb/cast: to_jsonb */
} CaptureJsonKind;

/* Per-statement type information of one column of a captured relation. */
typedef struct CaptureJsonColumn
{
	AttrNumber	attnum;
	const char *name;
	int			namelen;
	CaptureJsonKind kind;
	Oid			typid;			/* base type */
	FmgrInfo	outfn;			/* output function of the base type */
	FmgrInfo	tojsonb;		/* to_jsonb for CJ_NESTED */
} CaptureJsonColumn;

/* An object image (row or key): its columns in jsonb key order. */
typedef struct CaptureJsonShape
{
	int			ncols;
	CaptureJsonColumn **cols;
	bool		nested;			/* some column is CJ_NESTED */
	JsonbPair  *pairs;			/* keys filled in once, values per row */
} CaptureJsonShape;

extern CaptureJsonColumn *capture_json_columns(TupleDesc desc);
extern CaptureJsonShape *capture_json_shape(CaptureJsonColumn *cols, int natts,
											const AttrNumber *attnums,
											int nattnums);
extern Jsonb *capture_json_build(CaptureJsonShape *shape, TupleTableSlot *slot);
extern Datum capture_json_text(CaptureJsonColumn *col, Datum value);

/* Operations of log rows. */
typedef enum CaptureOp
{
	CAPTURE_OP_INSERT,
	CAPTURE_OP_UPDATE,
	CAPTURE_OP_DELETE
} CaptureOp;

/* The per-row part of a change log row. */
typedef struct CaptureLogRow
{
	CaptureOp	operation;
	Datum		tenant;			/* text */
	bool		tenant_isnull;
	Jsonb	   *record_id;
	Jsonb	   *old_data;		/* NULL for SQL NULL */
	Jsonb	   *new_data;		/* NULL for SQL NULL */
} CaptureLogRow;

#define CL_NCOLS 10

/* One statement's writer of log rows (capture_log.c). */
typedef struct CaptureLogWriter
{
	Relation	rel;			/* leaf partition written to */
	int			natts;
	int			attidx[CL_NCOLS];	/* log column -> index in rel */
	Oid			seqid;			/* log_id sequence */
	Datum		changed_at;
	Datum		txid;
	Datum		changed_by;
	Datum		table_name;
	Datum		opnames[3];
	EState	   *estate;
	ResultRelInfo *rri;
	BulkInsertState bistate;	/* from the first full batch on */
	CommandId	cid;
	TupleTableSlot **slots;
	int			nslots;			/* batch size: min(rows, 1000) */
	int			nused;
	MemoryContext cxt;			/* the statement's: slots and this struct */
	MemoryContext batchcxt;		/* row datums; reset after each batch */
} CaptureLogWriter;

extern CaptureLogWriter *capture_log_open(Datum table_name, int64 rows);
extern void capture_log_add(CaptureLogWriter *w, const CaptureLogRow *row);
extern void capture_log_close(CaptureLogWriter *w);

#endif							/* BKPERF_H */
