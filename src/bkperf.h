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
#include "utils/jsonb.h"
#include "utils/relcache.h"
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
extern void bkperf_spi_exec(const char *sql, int nargs, Oid *types,
							Datum *values, const char *nulls, int expect);
extern int64 bkperf_spi_int64(int col);
extern char *bkperf_eq_operator(Oid typid);
extern char *bkperf_operator_sql(Oid opno);

/* capture_track.c: the tracked tables, under their identity. */
typedef struct BkperfTracked
{
	Oid			relid;
	int64		table_id;		/* the identity log rows carry */
	char	   *tenant_column;
	int			nkeys;
	char	  **key_columns;
	TimestampTz tracked_at;		/* the table's log floor */
} BkperfTracked;

extern BkperfTracked *bkperf_tracked_tables(int *ntables);

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


/* rollback_snapshot.c: snapshots, argument checks and the log floor. */
extern char *bkperf_rb_required_text(FunctionCallInfo fcinfo, int argno,
									 const char *what);
extern void bkperf_rb_require_tracked(void);
extern TimestampTz bkperf_rb_log_floor(void);
extern char *bkperf_rb_after_sql(bool by_snapshot, bool by_commit_ts, bool own_after,
								 const char *target);
extern void bkperf_rb_snapshot_lookup(int64 id, const char *tenant,
									  Datum *snapshot, TimestampTz *created,
									  TimestampTz *scan_from);

/*
 * One tracked table in a rollback's scope, with the SQL fragments its apply
 * statements need (rollback.c fills it, rollback_apply.c runs them).
 */
typedef struct BkperfRbTable
{
	Oid			relid;
	Oid			owner;			/* statements run as this role */
	int64		table_id;
	char	   *key;			/* table_id as text: the plan's table key */
	char	   *qname;			/* quoted schema.table, current name */
	char	   *tenant_col;		/* quoted */
	AttrNumber	tenant_attnum;
	bool		partitioned;	/* a partitioned table (no system columns) */
	char	   *key_list;		/* quoted key columns, comma separated */
	char	   *key_join;		/* t.k OPERATOR(nsp.=) k.k AND ... */
	char	   *cols;			/* insertable columns */
	char	   *rcols;			/* the same, prefixed r. */
	char	   *sets;			/* non-key col = EXCLUDED.col, or NULL */
	char	   *same_row;		/* ROW(t.cols) *= ROW(k.cols): a row as restored */
	int64		planned_present;	/* net keys present at the target */
	int64		planned_absent; /* net keys absent at the target */
	int64		deleted;
	int64		updated;
	int64		inserted;
} BkperfRbTable;

/*
 * rollback_unique.c: a deferrable unique, primary-key or exclusion
 * constraint of a table the rollback restores rows into, as a query
 * counting the restored rows that conflict with another row ($1: the
 * table's plan key; aliases k, t as in key_join).
 */
typedef struct BkperfRbUniqueCheck
{
	char	   *name;			/* constraint name */
	bool		exclusion;
	char	   *sql;
} BkperfRbUniqueCheck;

extern List *bkperf_rb_unique_checks(BkperfRbTable *t);

/* rollback_apply.c: the statements of one table, as its owner. */
extern void bkperf_rb_apply_upsert(BkperfRbTable *t, const char *tenant);
extern void bkperf_rb_apply_delete(BkperfRbTable *t, const char *tenant);
extern bool bkperf_rb_has_always_triggers(BkperfRbTable *t);
extern void bkperf_rb_fire_deferred_always(BkperfRbTable *t);
extern void bkperf_rb_apply_verify(BkperfRbTable *t, const char *tenant, bool rows);
extern void bkperf_rb_check_owner_triggers(BkperfRbTable *t);

/* rollback_unlogged.c: rollbacks that do not log their own changes. */
extern void bkperf_rb_unlogged_check(const char *tenant, bool is_snapshot, Datum target,
									 TimestampTz scan_from, bool by_commit_ts,
									 const int64 *table_ids, int ntables);
extern void bkperf_rb_unlogged_record(const char *tenant, int64 rollback_id,
									  TimestampTz scan_from, bool by_commit_ts,
									  const int64 *table_ids, int ntables);

/*
 * rollback_columns.c: how log images of one tracked table map onto its
 * columns today, for the images logged between two column changes (an
 * epoch; see tracked_column_changes).  Per attribute of the table's row:
 * kind 'k' read from image key keys[i], 'a' absent from such images and
 * restored as added[i] (NULL: SQL NULL), 'u' absent with an unknown value,
 * 's' skipped (dropped or generated).  key_keys[i] is keys[i] for key
 * columns and NULL for the others.
 */
typedef struct BkperfRbEpoch
{
	const char **keys;
	const char **key_keys;
	const char **added;
	char	   *kind;
} BkperfRbEpoch;

typedef struct BkperfRbColumns BkperfRbColumns;
extern BkperfRbColumns *bkperf_rb_columns(int64 table_id, TupleDesc desc,
										  const bool *is_key);
extern BkperfRbEpoch *bkperf_rb_columns_epoch(BkperfRbColumns *c, int64 log_id);

/* rollback_fk.c: the foreign keys an apply must check, set-based. */
typedef struct BkperfRbPlan BkperfRbPlan;
typedef struct BkperfRbFkCheck
{
	char	   *name;			/* the constraint */
	Oid			child;
	Oid			parent;
	int			plan_table;		/* index of the table whose plan rows it reads, or -1 */
	char	   *sql;			/* returns one count: rows violating the key */
} BkperfRbFkCheck;
extern List *bkperf_rb_fk_checks(BkperfRbTable *tables, int ntables, bool **is_key);
extern void bkperf_rb_fk_run(List *checks, BkperfRbTable *tables, BkperfRbPlan *plan);

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
extern BkperfRbPlan *bkperf_rb_plan_build(const char *sql, int nargs, Oid *types,
										  Datum *values, BkperfRbTable *tables,
										  bool **is_key, int ntables);
extern void bkperf_rb_plan_set_active(BkperfRbPlan *plan, int i, Oid owner);
extern void bkperf_rb_plan_prepare(BkperfRbPlan *plan);
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

/*
 * How capture_json.c turns a value into a jsonb image.  The image is exact:
 * decoding it (rollback_image.c) under any session settings gives a value
 * with the same text output.  Where jsonb holds a value exactly it is
 * readable jsonb; otherwise it is the type's text output under fixed
 * settings (bkperf_settings_fix) as a JSON string.
 */
typedef enum CaptureJsonKind
{
	CJ_DROPPED,					/* dropped column: never imaged */
	CJ_BOOL,					/* true/false */
	CJ_INT,						/* int2/int4/int8: a number */
	CJ_NUMERIC,					/* numeric: a number, NaN/Infinity a string */
	CJ_FLOAT,					/* float4/float8: shortest exact number;
								 * -0, NaN, Infinity a string */
	CJ_MONEY,					/* money: a number, amount / 100 */
	CJ_TEXT,					/* text/varchar/bpchar: the bytes */
	CJ_JSON,					/* json: its exact text as a string */
	CJ_STRING,					/* anything else scalar: fixed-settings output */
	CJ_JSONB,					/* jsonb: the value (null, strings: text) */
	CJ_ARRAY,					/* array: a JSON array, or its text when its
								 * bounds are not 1 or its elements nest */
	CJ_RECORD					/* composite: an object by attribute name */
} CaptureJsonKind;

/* How values of one type (a column's, or nested in one) are imaged. */
typedef struct CaptureJsonType
{
	CaptureJsonKind kind;
	Oid			typid;			/* base type */
	FmgrInfo	outfn;			/* output function of the base type */
	/* CJ_ARRAY */
	struct CaptureJsonType *elem;
	int16		elmlen;
	bool		elmbyval;
	char		elmalign;
	bool		astext;			/* elements are arrays or json: always text */
	bool		catalog_names;	/* its output may name schema objects
								 * (reg* types, in arrays or composites):
								 * depends on search_path */
	/* CJ_RECORD: attribute types of the composite, rebuilt when it changes */
	uint64		tupdesc_id;
	TupleDesc	tupdesc;
	struct CaptureJsonType **atts;	/* NULL for dropped attributes */
	MemoryContext cxt;			/* where this lives */
} CaptureJsonType;

/* Per-statement type information of one column of a captured relation. */
typedef struct CaptureJsonColumn
{
	AttrNumber	attnum;
	const char *name;
	int			namelen;
	CaptureJsonKind kind;		/* type->kind, or CJ_DROPPED */
	CaptureJsonType *type;
} CaptureJsonColumn;

/* An object image (row or key): its columns in jsonb key order. */
typedef struct CaptureJsonShape
{
	int			ncols;
	CaptureJsonColumn **cols;
	bool		nested;			/* some column is pushed, not a scalar */
	bool		fixed;			/* some column needs bkperf_settings_fix */
	JsonbPair  *pairs;			/* keys filled in once, values per row */
} CaptureJsonShape;

extern CaptureJsonColumn *capture_json_columns(TupleDesc desc);
extern CaptureJsonShape *capture_json_shape(CaptureJsonColumn *cols, int natts,
											const AttrNumber *attnums,
											int nattnums);
extern Jsonb *capture_json_build(CaptureJsonShape *shape, TupleTableSlot *slot);
extern Datum capture_json_text(CaptureJsonColumn *col, Datum value);

/*
 * The session settings that change built-in types' text input or output
 * (DateStyle, IntervalStyle, TimeZone, extra_float_digits, bytea_output,
 * xmloption), saved while bkperf_settings_fix holds them at fixed values
 * (for output: all; for input: IntervalStyle and xmloption).  Restore in
 * PG_FINALLY.
 */
typedef struct BkperfSettings
{
	int			datestyle;
	int			dateorder;
	int			intervalstyle;
	int			extra_float_digits;
	int			bytea_output;
	int			xmloption;
	struct pg_tz *timezone;
} BkperfSettings;

extern void bkperf_settings_fix(BkperfSettings *saved, bool output);
extern void bkperf_settings_restore(const BkperfSettings *saved);

/* ---- decoder of logged images (rollback_image.c) ---- */

typedef struct BkperfImageDecoder BkperfImageDecoder;

/* Decoder of logged images into rows of desc (a table's row type), allocated in CurrentMemoryContext. */
extern BkperfImageDecoder *bkperf_image_decoder(TupleDesc desc);

/* Decode image into values/nulls (desc order). keys[i] is the image key attribute i is read from
   (NULL: skip attribute i, leaving it null). absent[i] is set when keys[i] is not in the image
   (values/nulls then null). Returns true when any attribute was absent. */
extern bool bkperf_image_decode(BkperfImageDecoder *d, Jsonb *image, const char *const *keys,
								Datum *values, bool *nulls, bool *absent);

/* The value of attribute i from its text form (type input function, typmod applied). */
extern Datum bkperf_image_decode_text(BkperfImageDecoder *d, int i, const char *text);

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

#define CL_NCOLS 11

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
	int64		table_id;		/* 0: unknown (a 1.0 trigger) */
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

/*
 * capture.c: while an unlogged rollback writes a table, that table's
 * capture triggers log nothing (0: capture everything).
 */
extern void bkperf_capture_suppress(int64 table_id);

extern CaptureLogWriter *capture_log_open(Datum table_name, int64 table_id,
										   int64 rows, Oid log_rel);
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

/* citus.c: where capture writes on a Citus node (InvalidOid: the log). */
extern Oid	bkperf_citus_log_target(Oid relid, Oid *logical);
extern bool bkperf_citus_on_worker(void);
extern void bkperf_citus_refuse_on_coordinator(const char *what);

#endif							/* BKPERF_H */
