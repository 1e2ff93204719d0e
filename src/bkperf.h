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

/*
 * bkperf's advisory locks: database, BKPERF_LOCK_SPACE, an object key (a view
 * OID, a tenant hash) and a lock kind.  The kinds start at 16 so they never
 * equal the 1 and 2 that pg_advisory_lock() uses in the same tag field: no
 * user advisory lock can collide with ours.  pg_locks shows them as
 * locktype 'advisory' with classid BKPERF_LOCK_SPACE and objsubid the kind.
 */
#define BKPERF_LOCK_SPACE	0x626B7066	/* "bkpf" */
#define BKPERF_LOCK_REFRESH		16	/* view OID: one refresh per view */
#define BKPERF_LOCK_RETENTION	17	/* tenant hash: one retention run per tenant */
#define BKPERF_LOCK_MAINTENANCE	18	/* task number: one maintenance task at a time */
#define BKPERF_LOCK_ROLLBACK	19	/* tenant hash: one rollback per tenant */

/* util.c: helpers shared by the SPI-based functions. */
#include "executor/spi.h"
#include "utils/timestamp.h"

extern SPIPlanPtr bkperf_saved_plan(SPIPlanPtr *cache, const char *sql,
									int nargs, Oid *argtypes);
extern double bkperf_interval_seconds(const Interval *iv);
extern bool bkperf_xact_lock(uint32 key, uint16 kind, bool wait);
extern uint32 bkperf_name_key(const char *name);
extern bool bkperf_view_is_populated(Oid relid);
extern Oid	bkperf_relid(const char *relname);
extern void bkperf_require_one_of(const char *value, const char *const *allowed,
								  int nallowed, const char *what);
extern void bkperf_require_arg(FunctionCallInfo fcinfo, int argno,
							   const char *argname);

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

/*
 * snapshot_origin.c: refuse rollback targets whose transaction ids belong to
 * another cluster (a restore from a dump); start the log scan after log rows
 * written in another cluster that all precede the target.  Need SPI.
 */
extern void bkperf_snapshot_origin_check(const char *tenant, int64 snapshot_id,
										 TimestampTz created_at,
										 TimestampTz *scan_from);
extern void bkperf_time_origin_check(TimestampTz target, TimestampTz *scan_from,
									 bool xid_based);

/* rollback_plan.c: the net-change plan of a rollback. */
typedef struct BkperfRbPlan BkperfRbPlan;
extern BkperfRbPlan *bkperf_rb_plan_build(const char *sql, int nargs, Oid *types,
										  Datum *values, char *const *names,
										  int ntables);
extern void bkperf_rb_plan_counts(BkperfRbPlan *plan, int i, int64 *present,
								  int64 *absent);
extern BkperfRbPlan *bkperf_rb_plan_activate(BkperfRbPlan *plan);
extern void bkperf_rb_plan_free(BkperfRbPlan *plan);

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
