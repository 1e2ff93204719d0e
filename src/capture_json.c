/*-------------------------------------------------------------------------
 * capture_json.c
 *		Row and key images as jsonb for the change capture triggers, and the
 *		tenant's logged text form.
 *
 * An image must restore exactly: decoding it (rollback_image.c, the mirror
 * of this file) under any session settings gives a value whose text output
 * equals the original's.  The rules, per type (domains by their base type):
 *
 *	bool, int2/4/8, numeric	  JSON bool / number (numeric NaN, +-Infinity:
 *							  its text as a string)
 *	float4, float8			  the shortest decimal that reads back to the same
 *							  float, as a number, whatever extra_float_digits
 *							  says; as a string when that decimal has an
 *							  exponent (1e-320, 1e+300: jsonb would print all
 *							  their digits), and -0, NaN, +-Infinity
 *	money					  a number: the amount / 100, whatever lc_monetary
 *	text, varchar, char(n)	  the string
 *	json					  its exact text as a string (key order, duplicate
 *							  keys and whitespace kept)
 *	jsonb					  the value itself; a JSON null or string as its
 *							  jsonb text in a string (null is SQL NULL)
 *	arrays					  JSON arrays (nested per dimension) of the
 *							  element images; an array whose lower bounds are
 *							  not all 1, or whose elements are json, jsonb or
 *							  arrays (ambiguous as JSON), as its text
 *	composites				  an object by attribute name
 *	anything else			  its text output under fixed settings (ISO
 *							  DateStyle, TimeZone UTC, IntervalStyle postgres,
 *							  extra_float_digits 1, bytea_output hex) as a
 *							  string: dates, times, intervals, bytea,
 *							  geometry, ranges, multiranges, uuid, inet, ...;
 *							  the reg* types that name schema objects
 *							  (regclass, regtype, regproc, ...), also in
 *							  arrays kept as text, with search_path =
 *							  pg_catalog, pg_temp, so every name outside
 *							  pg_catalog is schema-qualified, whatever the
 *							  writer's path
 *
 * Type information is looked up once per column (capture_json_columns, kept
 * in the capture trigger's cache); each row only converts its values.
 * Objects whose values are all scalars (the common case) are built as one
 * JsonbValue with the keys already in jsonb's storage order.  The fixed
 * settings are set, for the duration of one image, only when a column's
 * output depends on them: never for ints, numerics, floats, text or jsonb.
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include <math.h>

#include "access/htup_details.h"
#include "catalog/pg_type.h"
#include "common/shortest_dec.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "pgtime.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/bytea.h"
#include "utils/cash.h"
#include "utils/float.h"
#include "utils/guc.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/numeric.h"
#include "utils/typcache.h"
#include "utils/xml.h"

#include "bkperf.h"

PG_FUNCTION_INFO_V1(bkperf_tenant_text);

static CaptureJsonType *cj_type(Oid typid, MemoryContext cxt);
static void cj_push(JsonbParseState **state, CaptureJsonType *t, Datum value,
					bool isnull, JsonbIteratorToken tok);

/* bkperf.tenant_text's per-call-site cache: the argument type's rules. */
typedef struct CjTenantCache
{
	Oid			typid;			/* declared argument type */
	CaptureJsonColumn col;
} CjTenantCache;

/* The UTC zone, looked up once (pg_tzset caches zones for the session). */
static pg_tz *cj_utc = NULL;

/*
 * Hold the settings that change built-in types' text forms at fixed values
 * (saving the session's in saved): all of them for output; for input only
 * IntervalStyle and xmloption, so that text in any DateStyle the session
 * reads (as 1.0 logged it) is still read, while ISO dates with explicit
 * offsets, as 1.1 logs them, read the same in every DateStyle and TimeZone.
 * The variables are set directly, without the GUC machinery: only built-in
 * output and input functions run until bkperf_settings_restore, which
 * callers run in PG_FINALLY.
 */
void
bkperf_settings_fix(BkperfSettings *saved, bool output)
{
	if (cj_utc == NULL)
		cj_utc = pg_tzset("UTC");
	if (cj_utc == NULL)
		elog(ERROR, "time zone \"UTC\" not found");
	saved->datestyle = DateStyle;
	saved->dateorder = DateOrder;
	saved->intervalstyle = IntervalStyle;
	saved->extra_float_digits = extra_float_digits;
	saved->bytea_output = bytea_output;
	saved->xmloption = xmloption;
	saved->timezone = session_timezone;
	IntervalStyle = INTSTYLE_POSTGRES;
	xmloption = XMLOPTION_CONTENT;
	if (!output)
		return;
	DateStyle = USE_ISO_DATES;
	DateOrder = DATEORDER_YMD;
	extra_float_digits = 1;
	bytea_output = BYTEA_OUTPUT_HEX;
	session_timezone = cj_utc;
}

/* Give the session its own settings back (see bkperf_settings_fix). */
void
bkperf_settings_restore(const BkperfSettings *saved)
{
	DateStyle = saved->datestyle;
	DateOrder = saved->dateorder;
	IntervalStyle = saved->intervalstyle;
	extra_float_digits = saved->extra_float_digits;
	bytea_output = saved->bytea_output;
	xmloption = saved->xmloption;
	session_timezone = saved->timezone;
}

/*
 * Sort pairs the way jsonb stores object keys: shorter keys first, then by
 * bytes.  Column names are unique, so the order is total.
 */
static int
cj_key_cmp(const void *a, const void *b)
{
	const CaptureJsonColumn *ca = *(CaptureJsonColumn *const *) a;
	const CaptureJsonColumn *cb = *(CaptureJsonColumn *const *) b;

	if (ca->namelen != cb->namelen)
		return ca->namelen < cb->namelen ? -1 : 1;
	return memcmp(ca->name, cb->name, ca->namelen);
}

/*
 * The attribute types of a composite type t, (re)built for the composite's
 * current row type (an ALTER TYPE changes it under a cached column).
 */
static void
cj_record_init(CaptureJsonType *t, TypeCacheEntry *tce)
{
	MemoryContext old = MemoryContextSwitchTo(t->cxt);

	t->tupdesc = CreateTupleDescCopy(tce->tupDesc);
	t->tupdesc_id = tce->tupDesc_identifier;
	t->atts = palloc0(sizeof(CaptureJsonType *) * Max(t->tupdesc->natts, 1));
	for (int i = 0; i < t->tupdesc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(t->tupdesc, i);

		if (!att->attisdropped)
			t->atts[i] = cj_type(att->atttypid, t->cxt);
	}
	MemoryContextSwitchTo(old);
}

/*
 * Whether the text of a base type's values names schema objects, resolved by
 * search_path (regnamespace and regrole name global objects: they do not).
 */
static bool
cj_names_schema_objects(Oid base)
{
	switch (base)
	{
		case REGCLASSOID:
		case REGTYPEOID:
		case REGPROCOID:
		case REGPROCEDUREOID:
		case REGOPEROID:
		case REGOPERATOROID:
		case REGCONFIGOID:
		case REGDICTIONARYOID:
		case REGCOLLATIONOID:
			return true;
		default:
			return false;
	}
}

/*
 * Whether a type's values (domains by their base) would nest as JSON arrays
 * or be ambiguous inside one: arrays, json and jsonb.
 */
static bool
cj_nests_as_array(Oid typid)
{
	Oid			base = getBaseType(typid);

	return base == JSONOID || base == JSONBOID ||
		OidIsValid(get_element_type(base));
}

/* The kind of a base type that is neither an array nor a composite. */
static CaptureJsonKind
cj_scalar_kind(Oid base)
{
	switch (base)
	{
		case BOOLOID:
			return CJ_BOOL;
		case INT2OID:
		case INT4OID:
		case INT8OID:
			return CJ_INT;
		case NUMERICOID:
			return CJ_NUMERIC;
		case FLOAT4OID:
		case FLOAT8OID:
			return CJ_FLOAT;
		case CASHOID:
			return CJ_MONEY;
		case TEXTOID:
		case VARCHAROID:
		case BPCHAROID:
			return CJ_TEXT;
		case JSONOID:
			return CJ_JSON;
		case JSONBOID:
			return CJ_JSONB;
		default:
			return CJ_STRING;
	}
}

/*
 * How values of a type are imaged, decided once (in cxt, which must live as
 * long as the result): domains by their base type, arrays and composites
 * with the types of what they hold.
 */
static CaptureJsonType *
cj_type(Oid typid, MemoryContext cxt)
{
	CaptureJsonType *t = MemoryContextAllocZero(cxt, sizeof(CaptureJsonType));
	Oid			base = getBaseType(typid);
	Oid			elem = get_element_type(base);
	Oid			outfn;
	bool		varlena;

	t->cxt = cxt;
	t->typid = base;
	getTypeOutputInfo(base, &outfn, &varlena);
	fmgr_info_cxt(outfn, &t->outfn, cxt);
	if (OidIsValid(elem))
	{
		t->kind = CJ_ARRAY;
		t->elem = cj_type(elem, cxt);
		get_typlenbyvalalign(elem, &t->elmlen, &t->elmbyval, &t->elmalign);
		t->astext = cj_nests_as_array(elem);
		t->catalog_names = t->elem->catalog_names;
	}
	else if (type_is_rowtype(base))
	{
		t->kind = CJ_RECORD;
		cj_record_init(t, lookup_type_cache(base, TYPECACHE_TUPDESC));
		/*
		 * Output as a whole only as a tenant or inside an array kept as text:
		 * pinned always, since an ALTER TYPE may add such an attribute under
		 * this cached type.
		 */
		t->catalog_names = true;
	}
	else
	{
		t->kind = cj_scalar_kind(base);
		t->catalog_names = cj_names_schema_objects(base);
	}
	return t;
}

/*
 * Whether images of values of t need bkperf_settings_fix (its output, or
 * that of something it holds, depends on session settings).
 */
static bool
cj_needs_fixed(CaptureJsonType *t)
{
	return t->kind == CJ_STRING || t->kind == CJ_ARRAY || t->kind == CJ_RECORD;
}

/*
 * Type information for every column of a relation, looked up once for a
 * statement (in CurrentMemoryContext).  Dropped columns get kind CJ_DROPPED
 * and are never imaged.
 */
CaptureJsonColumn *
capture_json_columns(TupleDesc desc)
{
	CaptureJsonColumn *cols = palloc0(sizeof(CaptureJsonColumn) * Max(desc->natts, 1));

	for (int i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i);
		CaptureJsonColumn *col = &cols[i];

		col->attnum = att->attnum;
		if (att->attisdropped)
		{
			col->kind = CJ_DROPPED;
			continue;
		}
		col->name = NameStr(att->attname);
		col->namelen = strlen(col->name);
		col->type = cj_type(att->atttypid, CurrentMemoryContext);
		col->kind = col->type->kind;
	}
	return cols;
}

/*
 * An object image of the given columns (attnums, or every live column when
 * attnums is NULL), with its pairs laid out in jsonb key order once.
 */
CaptureJsonShape *
capture_json_shape(CaptureJsonColumn *cols, int natts,
				   const AttrNumber *attnums, int nattnums)
{
	CaptureJsonShape *shape = palloc0(sizeof(CaptureJsonShape));
	int			n = 0;

	shape->cols = palloc(sizeof(CaptureJsonColumn *) * Max(natts, 1));
	for (int i = 0; i < (attnums ? nattnums : natts); i++)
	{
		CaptureJsonColumn *col = &cols[attnums ? attnums[i] - 1 : i];

		if (col->kind == CJ_DROPPED)
			continue;
		shape->cols[n++] = col;
		shape->nested |= (col->kind == CJ_JSONB || col->kind == CJ_ARRAY ||
						  col->kind == CJ_RECORD);
		shape->fixed |= cj_needs_fixed(col->type);
	}
	shape->ncols = n;
	qsort(shape->cols, n, sizeof(CaptureJsonColumn *), cj_key_cmp);
	shape->pairs = palloc0(sizeof(JsonbPair) * Max(n, 1));
	for (int i = 0; i < n; i++)
	{
		shape->pairs[i].key.type = jbvString;
		shape->pairs[i].key.val.string.val = (char *) shape->cols[i]->name;
		shape->pairs[i].key.val.string.len = shape->cols[i]->namelen;
		shape->pairs[i].order = i;
	}
	return shape;
}

/*
 * A string scalar, refusing what jsonb cannot store (as to_jsonb does).
 */
static void
cj_set_string(JsonbValue *v, char *str, int len)
{
	if (len > JENTRY_OFFLENMASK)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("string too long to represent as jsonb string"),
				 errdetail("Due to an implementation restriction, jsonb strings cannot exceed %d bytes.",
						   JENTRY_OFFLENMASK)));
	v->type = jbvString;
	v->val.string.val = str;
	v->val.string.len = len;
}

/*
 * The shortest text that reads back as the same float4/float8, whatever
 * extra_float_digits says ("-0", "NaN", "Infinity", "-Infinity" included).
 */
static char *
cj_float_text(CaptureJsonType *t, Datum value)
{
	char	   *buf = palloc(32);

	if (t->typid == FLOAT4OID)
		float_to_shortest_decimal_buf(DatumGetFloat4(value), buf);
	else
		double_to_shortest_decimal_buf(DatumGetFloat8(value), buf);
	return buf;
}

/* Whether a float4/float8 value has no exact JSON number (-0, NaN, inf). */
static bool
cj_float_special(CaptureJsonType *t, Datum value)
{
	double		f = t->typid == FLOAT4OID ? DatumGetFloat4(value) :
	DatumGetFloat8(value);

	return isnan(f) || isinf(f) || (f == 0 && signbit(f));
}

/* A numeric from its text (a float's shortest text or an amount). */
static Numeric
cj_numeric(const char *str)
{
	return DatumGetNumeric(DirectFunctionCall3(numeric_in, CStringGetDatum(str),
											   ObjectIdGetDatum(InvalidOid),
											   Int32GetDatum(-1)));
}

/*
 * A number (int, numeric, float, money) as its image: a JSON number where
 * one holds it exactly, otherwise its text as a string.
 */
static void
cj_set_number(JsonbValue *v, CaptureJsonType *t, Datum value)
{
	Numeric		num;

	v->type = jbvNumeric;
	switch (t->typid)
	{
		case INT2OID:
			v->val.numeric = int64_to_numeric(DatumGetInt16(value));
			return;
		case INT4OID:
			v->val.numeric = int64_to_numeric(DatumGetInt32(value));
			return;
		case INT8OID:
			v->val.numeric = int64_to_numeric(DatumGetInt64(value));
			return;
		case CASHOID:
			v->val.numeric = int64_div_fast_to_numeric(DatumGetCash(value), 2);
			return;
		case FLOAT4OID:
		case FLOAT8OID:
			{
				char	   *str = cj_float_text(t, value);

				/* jsonb would print 1e-320 with 320 digits: keep it short */
				if (cj_float_special(t, value) || strchr(str, 'e'))
					cj_set_string(v, str, strlen(str));
				else
					v->val.numeric = cj_numeric(str);
				return;
			}
		default:
			break;
	}
	num = DatumGetNumeric(value);
	if (numeric_is_nan(num) || numeric_is_inf(num))
	{
		char	   *str = OutputFunctionCall(&t->outfn, value);

		cj_set_string(v, str, strlen(str));
		return;
	}
	v->val.numeric = num;
}

/*
 * The output of a value of type t.  When that text names schema objects
 * (t->catalog_names), search_path is pinned to pg_catalog, pg_temp (the
 * rollback's path) meanwhile, so that each name outside pg_catalog is
 * schema-qualified and reads back under the rollback's search_path; an
 * error unwinds the GUC nest level with the (sub)transaction.
 */
static char *
cj_output(CaptureJsonType *t, Datum value)
{
	int			nest;
	char	   *str;

	if (!t->catalog_names)
		return OutputFunctionCall(&t->outfn, value);
	nest = NewGUCNestLevel();
	(void) set_config_option("search_path", "pg_catalog, pg_temp", PGC_USERSET,
							 PGC_S_SESSION, GUC_ACTION_SAVE, true, 0, false);
	str = OutputFunctionCall(&t->outfn, value);
	AtEOXact_GUC(false, nest);
	return str;
}

/*
 * One non-null scalar value (not jsonb, array or composite) as a
 * JsonbValue.  Output functions run under the caller's fixed settings.
 */
static void
cj_scalar(JsonbValue *v, CaptureJsonType *t, Datum value)
{
	switch (t->kind)
	{
		case CJ_BOOL:
			v->type = jbvBool;
			v->val.boolean = DatumGetBool(value);
			break;
		case CJ_INT:
		case CJ_NUMERIC:
		case CJ_FLOAT:
		case CJ_MONEY:
			cj_set_number(v, t, value);
			break;
		case CJ_TEXT:
		case CJ_JSON:
			{
				text	   *txt = DatumGetTextPP(value);

				cj_set_string(v, VARDATA_ANY(txt), VARSIZE_ANY_EXHDR(txt));
				break;
			}
		default:
			{
				char	   *str = cj_output(t, value);

				cj_set_string(v, str, strlen(str));
				break;
			}
	}
}

/*
 * Push a jsonb value (a column or attribute of type jsonb) as it is, except
 * a JSON null or string: as the image of SQL NULL is null, those are logged
 * as their jsonb text in a string ('null' as "null", '"a"' as "\"a\"").
 */
static void
cj_push_jsonb(JsonbParseState **state, Datum value, JsonbIteratorToken tok)
{
	Jsonb	   *jb = DatumGetJsonbP(value);
	JsonbValue	v;

	if (JB_ROOT_IS_SCALAR(jb))
	{
		JsonbExtractScalar(&jb->root, &v);
		if (v.type == jbvNull || v.type == jbvString)
		{
			char	   *str = JsonbToCString(NULL, &jb->root, VARSIZE(jb));

			cj_set_string(&v, str, strlen(str));
		}
	}
	else
	{
		v.type = jbvBinary;
		v.val.binary.data = &jb->root;
		v.val.binary.len = VARSIZE(jb) - VARHDRSZ;
	}
	pushJsonbValue(state, tok, &v);
}

/*
 * Push the elements of dimension dim of an array (from *pos on in the
 * deconstructed elements) as nested JSON arrays.
 */
static void
cj_push_dim(JsonbParseState **state, CaptureJsonType *t, int ndim,
			const int *dims, int dim, Datum *elems, bool *nulls, int *pos)
{
	pushJsonbValue(state, WJB_BEGIN_ARRAY, NULL);
	for (int i = 0; i < dims[dim]; i++)
	{
		if (dim + 1 < ndim)
			cj_push_dim(state, t, ndim, dims, dim + 1, elems, nulls, pos);
		else
		{
			cj_push(state, t->elem, elems[*pos], nulls[*pos], WJB_ELEM);
			(*pos)++;
		}
	}
	pushJsonbValue(state, WJB_END_ARRAY, NULL);
}

/*
 * Push an array: nested JSON arrays when every lower bound is 1 and the
 * elements do not nest themselves, else its text as a string.
 */
static void
cj_push_array(JsonbParseState **state, CaptureJsonType *t, Datum value,
			  JsonbIteratorToken tok)
{
	ArrayType  *a = DatumGetArrayTypeP(value);
	int			ndim = ARR_NDIM(a);
	bool		astext = t->astext;
	Datum	   *elems;
	bool	   *nulls;
	int			n;
	int			pos = 0;

	for (int i = 0; i < ndim && !astext; i++)
		astext = ARR_LBOUND(a)[i] != 1;
	if (astext)
	{
		JsonbValue	v;
		char	   *str = cj_output(t, PointerGetDatum(a));

		cj_set_string(&v, str, strlen(str));
		pushJsonbValue(state, tok, &v);
		return;
	}
	if (ndim == 0)
	{
		pushJsonbValue(state, WJB_BEGIN_ARRAY, NULL);
		pushJsonbValue(state, WJB_END_ARRAY, NULL);
		return;
	}
	deconstruct_array(a, ARR_ELEMTYPE(a), t->elmlen, t->elmbyval, t->elmalign,
					  &elems, &nulls, &n);
	cj_push_dim(state, t, ndim, ARR_DIMS(a), 0, elems, nulls, &pos);
}

/*
 * Push a composite value as an object of its live attributes.
 */
static void
cj_push_record(JsonbParseState **state, CaptureJsonType *t, Datum value)
{
	HeapTupleHeader td = DatumGetHeapTupleHeader(value);
	TypeCacheEntry *tce = lookup_type_cache(t->typid, TYPECACHE_TUPDESC);
	HeapTupleData tuple;
	Datum	   *values;
	bool	   *nulls;

	if (tce->tupDesc_identifier != t->tupdesc_id)
		cj_record_init(t, tce);
	tuple.t_len = HeapTupleHeaderGetDatumLength(td);
	ItemPointerSetInvalid(&tuple.t_self);
	tuple.t_tableOid = InvalidOid;
	tuple.t_data = td;
	values = palloc(sizeof(Datum) * Max(t->tupdesc->natts, 1));
	nulls = palloc(sizeof(bool) * Max(t->tupdesc->natts, 1));
	heap_deform_tuple(&tuple, t->tupdesc, values, nulls);
	pushJsonbValue(state, WJB_BEGIN_OBJECT, NULL);
	for (int i = 0; i < t->tupdesc->natts; i++)
	{
		char	   *name = NameStr(TupleDescAttr(t->tupdesc, i)->attname);
		JsonbValue	k;

		if (t->atts[i] == NULL)
			continue;
		cj_set_string(&k, name, strlen(name));
		pushJsonbValue(state, WJB_KEY, &k);
		cj_push(state, t->atts[i], values[i], nulls[i], WJB_VALUE);
	}
	pushJsonbValue(state, WJB_END_OBJECT, NULL);
}

/*
 * Push one value of any type as a key's value (tok WJB_VALUE) or an
 * array element (WJB_ELEM).
 */
static void
cj_push(JsonbParseState **state, CaptureJsonType *t, Datum value, bool isnull,
		JsonbIteratorToken tok)
{
	JsonbValue	v;

	if (isnull)
	{
		v.type = jbvNull;
		pushJsonbValue(state, tok, &v);
		return;
	}
	switch (t->kind)
	{
		case CJ_JSONB:
			cj_push_jsonb(state, value, tok);
			return;
		case CJ_ARRAY:
			cj_push_array(state, t, value, tok);
			return;
		case CJ_RECORD:
			cj_push_record(state, t, value);
			return;
		default:
			cj_scalar(&v, t, value);
			pushJsonbValue(state, tok, &v);
			return;
	}
}

/*
 * The general builder, for shapes with nested values: push every pair.
 */
static Jsonb *
cj_build_pushed(CaptureJsonShape *shape, TupleTableSlot *slot)
{
	JsonbParseState *state = NULL;
	JsonbValue *res;

	pushJsonbValue(&state, WJB_BEGIN_OBJECT, NULL);
	for (int i = 0; i < shape->ncols; i++)
	{
		CaptureJsonColumn *col = shape->cols[i];
		int			a = col->attnum - 1;

		pushJsonbValue(&state, WJB_KEY, &shape->pairs[i].key);
		cj_push(&state, col->type, slot->tts_values[a], slot->tts_isnull[a],
				WJB_VALUE);
	}
	res = pushJsonbValue(&state, WJB_END_OBJECT, NULL);
	return JsonbValueToJsonb(res);
}

/*
 * The flat builder, for shapes whose values are all scalars: one JsonbValue
 * with the pairs already in key order.
 */
static Jsonb *
cj_build_flat(CaptureJsonShape *shape, TupleTableSlot *slot)
{
	JsonbValue	obj;

	for (int i = 0; i < shape->ncols; i++)
	{
		CaptureJsonColumn *col = shape->cols[i];
		int			a = col->attnum - 1;

		if (slot->tts_isnull[a])
			shape->pairs[i].value.type = jbvNull;
		else
			cj_scalar(&shape->pairs[i].value, col->type, slot->tts_values[a]);
	}
	obj.type = jbvObject;
	obj.val.object.nPairs = shape->ncols;
	obj.val.object.pairs = shape->pairs;
	return JsonbValueToJsonb(&obj);
}

/*
 * The jsonb object of a shape's columns for the row in slot (all attributes
 * already deformed): the image decoded by rollback_image.c.
 */
Jsonb *
capture_json_build(CaptureJsonShape *shape, TupleTableSlot *slot)
{
	BkperfSettings saved;
	Jsonb	   *volatile res = NULL;

	if (!shape->fixed)
		return shape->nested ? cj_build_pushed(shape, slot) :
			cj_build_flat(shape, slot);
	bkperf_settings_fix(&saved, true);
	PG_TRY();
	{
		res = shape->nested ? cj_build_pushed(shape, slot) :
			cj_build_flat(shape, slot);
	}
	PG_FINALLY();
	{
		bkperf_settings_restore(&saved);
	}
	PG_END_TRY();
	return res;
}

/*
 * The text form of a non-null value of type t: its output under fixed
 * settings, floats shortest-exact, money as its amount.  Never depends on
 * the session's settings.
 */
static char *
cj_text(CaptureJsonType *t, Datum value)
{
	BkperfSettings saved;
	char	   *volatile str = NULL;

	if (t->kind == CJ_FLOAT)
		return cj_float_text(t, value);
	if (t->kind == CJ_MONEY)
		return DatumGetCString(DirectFunctionCall1(numeric_out,
												   NumericGetDatum(int64_div_fast_to_numeric(DatumGetCash(value), 2))));
	if (!cj_needs_fixed(t))
		return OutputFunctionCall(&t->outfn, value);
	bkperf_settings_fix(&saved, true);
	PG_TRY();
	{
		str = cj_output(t, value);
	}
	PG_FINALLY();
	{
		bkperf_settings_restore(&saved);
	}
	PG_END_TRY();
	return str;
}

/*
 * The text form of one column value (the tenant of a log row), in memory
 * of its own: the slot it came from is reused for the next row.  It does
 * not depend on session settings, so one tenant has one logged id.
 */
Datum
capture_json_text(CaptureJsonColumn *col, Datum value)
{
	if (col->kind == CJ_TEXT)
		return PointerGetDatum(DatumGetTextPCopy(value));
	return CStringGetTextDatum(cj_text(col->type, value));
}

/*
 * bkperf.tenant_text(anyelement) RETURNS text: exactly what capture logs
 * as tenant_id for a value of that type, so that generated SQL can compare
 * tenants by their logged text (numeric 1 and 1.0, float 0 and -0 differ).
 * The column information is cached per call site (CjTenantCache).
 */
Datum
bkperf_tenant_text(PG_FUNCTION_ARGS)
{
	Oid			typid = get_fn_expr_argtype(fcinfo->flinfo, 0);
	CjTenantCache *c = fcinfo->flinfo->fn_extra;

	if (c == NULL || c->typid != typid)
	{
		if (!OidIsValid(typid))
			elog(ERROR, "could not determine the argument type of bkperf.tenant_text");
		c = MemoryContextAllocZero(fcinfo->flinfo->fn_mcxt, sizeof(CjTenantCache));
		c->typid = typid;
		c->col.type = cj_type(typid, fcinfo->flinfo->fn_mcxt);
		c->col.kind = c->col.type->kind;
		fcinfo->flinfo->fn_extra = c;
	}
	PG_RETURN_DATUM(capture_json_text(&c->col, PG_GETARG_DATUM(0)));
}
