/*-------------------------------------------------------------------------
 * capture_json.c
 *		Row and key images as jsonb for the change capture triggers.
 *
 * The images must equal to_jsonb(row) (and to_jsonb of the key columns), so
 * that jsonb_populate_record() rebuilds the row.  to_jsonb looks the type
 * category and output function of every value up again for every row; here
 * that work is done once per statement (capture_json_shape_create), and each
 * row only converts its values.  Objects whose values are all scalars (the
 * common case) are built as one JsonbValue with the keys already in jsonb's
 * storage order, so no key sorting happens per row; columns of array,
 * composite, json or cast-to-json types go through to_jsonb itself.
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "catalog/pg_cast.h"
#include "catalog/pg_type.h"
#include "fmgr.h"
#include "nodes/makefuncs.h"
#include "parser/parse_coerce.h"
#include "utils/builtins.h"
#include "utils/date.h"
#include "utils/fmgroids.h"
#include "utils/json.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/numeric.h"
#include "utils/typcache.h"

#include "bkperf.h"

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
 * Prepare a column whose values nest (arrays, composites, json, jsonb, types
 * with a cast to json): such values are converted by calling to_jsonb itself,
 * through an FmgrInfo whose expression tells it the argument type.
 */
static void
cj_init_nested(CaptureJsonColumn *col, Oid typid, int32 typmod)
{
	Const	   *arg = makeNullConst(typid, typmod, InvalidOid);

	col->kind = CJ_NESTED;
	fmgr_info(F_TO_JSONB, &col->tojsonb);
	col->tojsonb.fn_expr = (Node *) makeFuncExpr(F_TO_JSONB, JSONBOID,
												 list_make1(arg), InvalidOid,
												 InvalidOid,
												 COERCE_EXPLICIT_CALL);
}

/*
 * Decide how values of one column become jsonb, as to_jsonb would
 * (jsonb_categorize_type): domains by their base type, then a fixed kind.
 */
static void
cj_categorize(CaptureJsonColumn *col, Oid typid, int32 typmod)
{
	Oid			base = getBaseType(typid);
	Oid			outfn;
	bool		varlena;
	Oid			castfunc;

	getTypeOutputInfo(base, &outfn, &varlena);
	fmgr_info(outfn, &col->outfn);
	col->typid = base;
	switch (base)
	{
		case BOOLOID:
			col->kind = CJ_BOOL;
			return;
		case INT2OID:
		case INT4OID:
		case INT8OID:
			col->kind = CJ_INT;
			return;
		case NUMERICOID:
			col->kind = CJ_NUMERIC;
			return;
		case FLOAT4OID:
		case FLOAT8OID:
			col->kind = CJ_FLOAT;
			return;
		case DATEOID:
		case TIMESTAMPOID:
		case TIMESTAMPTZOID:
			col->kind = CJ_DATETIME;
			return;
		case TEXTOID:
		case VARCHAROID:
		case BPCHAROID:
			col->kind = CJ_TEXT;
			return;
		default:
			break;
	}
	if (base == JSONOID || base == JSONBOID ||
		OidIsValid(get_element_type(base)) || type_is_rowtype(base) ||
		(base >= FirstNormalObjectId &&
		 find_coercion_pathway(JSONOID, base, COERCION_EXPLICIT,
							   &castfunc) == COERCION_PATH_FUNC))
		cj_init_nested(col, typid, typmod);
	else
		col->kind = CJ_STRING;
}

/*
 * Type information for every column of a relation, looked up once for a
 * statement.  Dropped columns get kind CJ_DROPPED and are never imaged.
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
		cj_categorize(col, att->atttypid, att->atttypmod);
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
		shape->nested |= (col->kind == CJ_NESTED);
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
 * A number as to_jsonb stores it: NaN and infinities become strings.
 */
static void
cj_set_number(JsonbValue *v, CaptureJsonColumn *col, Datum value)
{
	Numeric		num;

	if (col->kind == CJ_INT)
	{
		int64		i = col->typid == INT8OID ? DatumGetInt64(value) :
		col->typid == INT4OID ? DatumGetInt32(value) : DatumGetInt16(value);

		v->type = jbvNumeric;
		v->val.numeric = int64_to_numeric(i);
		return;
	}
	if (col->kind == CJ_NUMERIC)
		num = DatumGetNumeric(value);
	else
	{
		char	   *str = OutputFunctionCall(&col->outfn, value);

		if (strchr(str, 'N') || strchr(str, 'n'))
		{
			cj_set_string(v, str, strlen(str));
			return;
		}
		num = DatumGetNumeric(DirectFunctionCall3(numeric_in, CStringGetDatum(str),
												  ObjectIdGetDatum(InvalidOid),
												  Int32GetDatum(-1)));
	}
	if (numeric_is_nan(num) || numeric_is_inf(num))
	{
		char	   *str = OutputFunctionCall(&col->outfn, value);

		cj_set_string(v, str, strlen(str));
		return;
	}
	v->type = jbvNumeric;
	v->val.numeric = num;
}

/*
 * One scalar column value as a JsonbValue (never for CJ_NESTED).
 */
static void
cj_scalar(JsonbValue *v, CaptureJsonColumn *col, Datum value, bool isnull)
{
	if (isnull)
	{
		v->type = jbvNull;
		return;
	}
	switch (col->kind)
	{
		case CJ_BOOL:
			v->type = jbvBool;
			v->val.boolean = DatumGetBool(value);
			break;
		case CJ_INT:
		case CJ_NUMERIC:
		case CJ_FLOAT:
			cj_set_number(v, col, value);
			break;
		case CJ_DATETIME:
			{
				char	   *str = JsonEncodeDateTime(NULL, value, col->typid, NULL);

				cj_set_string(v, str, strlen(str));
				break;
			}
		case CJ_TEXT:
			{
				text	   *t = DatumGetTextPP(value);

				cj_set_string(v, VARDATA_ANY(t), VARSIZE_ANY_EXHDR(t));
				break;
			}
		default:
			{
				char	   *str = OutputFunctionCall(&col->outfn, value);

				cj_set_string(v, str, strlen(str));
				break;
			}
	}
}

/*
 * Push one nested value (to_jsonb of it) into an object being built.
 */
static void
cj_push_nested(JsonbParseState **state, CaptureJsonColumn *col, Datum value)
{
	Jsonb	   *jb = DatumGetJsonbP(FunctionCall1(&col->tojsonb, value));
	JsonbValue	v;

	if (JB_ROOT_IS_SCALAR(jb))
	{
		JsonbExtractScalar(&jb->root, &v);
		pushJsonbValue(state, WJB_VALUE, &v);
		return;
	}
	v.type = jbvBinary;
	v.val.binary.data = &jb->root;
	v.val.binary.len = VARSIZE(jb) - VARHDRSZ;
	pushJsonbValue(state, WJB_VALUE, &v);
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
		JsonbValue	v;

		pushJsonbValue(&state, WJB_KEY, &shape->pairs[i].key);
		if (col->kind == CJ_NESTED && !slot->tts_isnull[a])
			cj_push_nested(&state, col, slot->tts_values[a]);
		else
		{
			cj_scalar(&v, col, slot->tts_values[a], slot->tts_isnull[a]);
			pushJsonbValue(&state, WJB_VALUE, &v);
		}
	}
	res = pushJsonbValue(&state, WJB_END_OBJECT, NULL);
	return JsonbValueToJsonb(res);
}

/*
 * The jsonb object of a shape's columns for the row in slot (all attributes
 * already deformed).  Equal to to_jsonb of the same columns.
 */
Jsonb *
capture_json_build(CaptureJsonShape *shape, TupleTableSlot *slot)
{
	JsonbValue	obj;

	if (shape->nested)
		return cj_build_pushed(shape, slot);
	for (int i = 0; i < shape->ncols; i++)
	{
		CaptureJsonColumn *col = shape->cols[i];
		int			a = col->attnum - 1;

		cj_scalar(&shape->pairs[i].value, col,
				  slot->tts_values[a], slot->tts_isnull[a]);
	}
	obj.type = jbvObject;
	obj.val.object.nPairs = shape->ncols;
	obj.val.object.pairs = shape->pairs;
	return JsonbValueToJsonb(&obj);
}

/*
 * The text output of one column value (the tenant of a log row), in memory
 * of its own: the slot it came from is reused for the next row.
 */
Datum
capture_json_text(CaptureJsonColumn *col, Datum value)
{
	if (col->kind == CJ_TEXT)
		return PointerGetDatum(DatumGetTextPCopy(value));
	return CStringGetTextDatum(OutputFunctionCall(&col->outfn, value));
}
