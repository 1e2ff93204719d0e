/*-------------------------------------------------------------------------
 * rollback_image.c
 *		Decoder of logged row images into rows of a table: the mirror of
 *		capture_json.c, with the per-type rules in one place.
 *
 * Rules, per JSON value and target type (domains: the base type's rule,
 * then the domain's constraints, also for NULL):
 *
 *	JSON null					  NULL
 *	jsonb column				  a string holding JSON: that JSON (1.1 logs
 *								  JSON null and string scalars so); anything
 *								  else: the value itself
 *	json column					  a string: json_in of its text (1.1 logs the
 *								  exact text); anything else, or a string
 *								  that is not JSON: its jsonb text (1.0
 *								  logged to_jsonb: best effort)
 *	money column				  a number: the amount, times 100 (1.1); a
 *								  string: cash_in (1.0 logged its output)
 *	xml column					  a string: parsed as content, or as a
 *								  document when it has a DOCTYPE, whatever
 *								  xmloption says
 *	array column				  a JSON array: nested arrays are dimensions
 *								  (lower bounds 1), elements by these rules; a
 *								  string: array_in of the array's text
 *	composite column			  an object: attributes by name (absent: NULL),
 *								  by these rules; a string: record_in
 *	anything else				  the type's input function on the string, the
 *								  number's or bool's text (or, best effort, an
 *								  array's or object's jsonb text)
 *
 * Typmods are applied (to array elements too).  Input functions run with
 * IntervalStyle and xmloption fixed (bkperf_settings_fix); 1.1 images hold
 * dates and times in ISO form with explicit offsets, which read the same in
 * every DateStyle and TimeZone, so an image decodes the same in every
 * session.  A value that does not convert is an
 * error with the input function's SQLSTATE and a context line naming the
 * column and its type.
 *-------------------------------------------------------------------------
 */
#include "postgres.h"

#include "access/htup_details.h"
#include "catalog/pg_type.h"
#include "fmgr.h"
#include "funcapi.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/cash.h"
#include "utils/json.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/numeric.h"
#include "utils/typcache.h"
#include "utils/xml.h"

#include "bkperf.h"
#include "compat.h"

PG_FUNCTION_INFO_V1(bkperf_image_record);

/* How a JSON value becomes a value of one type (see the header). */
typedef enum RiKind
{
	RI_INPUT,					/* the type's input function */
	RI_JSON,
	RI_JSONB,
	RI_MONEY,
	RI_XML,
	RI_ARRAY,
	RI_RECORD
} RiKind;

/* The decoding rules of one type: a column's, or nested in one. */
typedef struct RiType
{
	RiKind		kind;
	Oid			typid;			/* declared type: a domain or the base */
	int32		typmod;			/* applied by the input function */
	bool		isdomain;
	void	   *domextra;		/* domain_check's cache */
	FmgrInfo	infn;			/* input function of the base type */
	Oid			ioparam;
	/* RI_ARRAY */
	struct RiType *elem;
	Oid			elemtype;
	int16		elmlen;
	bool		elmbyval;
	char		elmalign;
	bool		flat;			/* elements nest as JSON: one dimension */
	/* RI_RECORD */
	TupleDesc	tupdesc;
	struct RiType **atts;		/* NULL for dropped attributes */
	MemoryContext cxt;
} RiType;

struct BkperfImageDecoder
{
	TupleDesc	desc;
	RiType	  **cols;			/* NULL for dropped attributes */
	char	  **context;		/* "column "x" of type y", for errcontext */
};

static RiType *ri_type(Oid typid, int32 typmod, MemoryContext cxt);
static Datum ri_value(RiType *t, JsonbValue *jv, bool *isnull);

/* The kind of a base type that is neither an array nor a composite. */
static RiKind
ri_scalar_kind(Oid base)
{
	switch (base)
	{
		case JSONOID:
			return RI_JSON;
		case JSONBOID:
			return RI_JSONB;
		case CASHOID:
			return RI_MONEY;
		case XMLOID:
			return RI_XML;
		default:
			return RI_INPUT;
	}
}

/*
 * The attribute rules of composite type base, for its current row type.
 */
static void
ri_record_init(RiType *t, Oid base)
{
	t->kind = RI_RECORD;
	t->tupdesc = lookup_rowtype_tupdesc_copy(base, -1);
	t->atts = palloc0(sizeof(RiType *) * Max(t->tupdesc->natts, 1));
	for (int i = 0; i < t->tupdesc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(t->tupdesc, i);

		if (!att->attisdropped)
			t->atts[i] = ri_type(att->atttypid, att->atttypmod, t->cxt);
	}
}

/*
 * The decoding rules of a type with a typmod, decided once (in cxt).
 */
static RiType *
ri_type(Oid typid, int32 typmod, MemoryContext cxt)
{
	MemoryContext old = MemoryContextSwitchTo(cxt);
	RiType	   *t = palloc0(sizeof(RiType));
	int32		basemod = typmod;
	Oid			base = getBaseTypeAndTypmod(typid, &basemod);
	Oid			infn;

	t->cxt = cxt;
	t->typid = typid;
	t->typmod = basemod;
	t->isdomain = base != typid;
	getTypeInputInfo(base, &infn, &t->ioparam);
	fmgr_info_cxt(infn, &t->infn, cxt);
	t->elemtype = get_element_type(base);
	if (OidIsValid(t->elemtype))
	{
		Oid			elbase = getBaseType(t->elemtype);

		t->kind = RI_ARRAY;
		t->elem = ri_type(t->elemtype, basemod, cxt);
		get_typlenbyvalalign(t->elemtype, &t->elmlen, &t->elmbyval, &t->elmalign);
		t->flat = elbase == JSONOID || elbase == JSONBOID ||
			OidIsValid(get_element_type(elbase));
	}
	else if (type_is_rowtype(base))
		ri_record_init(t, base);
	else
		t->kind = ri_scalar_kind(base);
	MemoryContextSwitchTo(old);
	return t;
}

/*
 * The text of a JSON scalar (a string's content, a number's or bool's
 * text) or of a nested container (its jsonb text).
 */
static char *
ri_json_text(JsonbValue *jv)
{
	switch (jv->type)
	{
		case jbvString:
			return pnstrdup(jv->val.string.val, jv->val.string.len);
		case jbvNumeric:
			return DatumGetCString(DirectFunctionCall1(numeric_out,
													   NumericGetDatum(jv->val.numeric)));
		case jbvBool:
			return pstrdup(jv->val.boolean ? "true" : "false");
		case jbvBinary:
			return JsonbToCString(NULL, jv->val.binary.data, jv->val.binary.len);
		default:
			elog(ERROR, "unexpected jsonb value type %d in an image", (int) jv->type);
			return NULL;		/* keep compiler quiet */
	}
}

/*
 * A value of t's base type from its text: the input function (typmod
 * applied), or for xml a parse that does not depend on xmloption.
 */
static Datum
ri_from_text(RiType *t, char *str)
{
	if (t->kind == RI_XML)
	{
		bool		doc = strstr(str, "<!DOCTYPE") != NULL;

		return PointerGetDatum(xmlparse(cstring_to_text(str),
										doc ? XMLOPTION_DOCUMENT : XMLOPTION_CONTENT,
										true));
	}
	return InputFunctionCall(&t->infn, str, t->ioparam, t->typmod);
}

/*
 * json from its image: a string holding JSON text is that text (1.1); any
 * other value is taken as 1.0 logged it, as to_jsonb of the json.
 */
static Datum
ri_json(RiType *t, JsonbValue *jv)
{
	StringInfoData buf;

	if (jv->type != jbvString ||
		bkperf_json_is_valid(jv->val.string.val, jv->val.string.len))
		return ri_from_text(t, ri_json_text(jv));
	/* a 1.0 image of a json string scalar: its content, unquoted */
	initStringInfo(&buf);
	escape_json(&buf, ri_json_text(jv));
	return ri_from_text(t, buf.data);
}

/*
 * Refuse a JSON value whose kind cannot hold a value of t.
 */
static void
ri_refuse(RiType *t, const char *what)
{
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_TEXT_REPRESENTATION),
			 errmsg("a JSON %s is not an image of type %s", what,
					format_type_be(t->typid)),
			 errdetail("An array is logged as a JSON array or as its text, a composite value as a JSON object or as its text.")));
}

/*
 * Fill values/nulls (from *pos on) with the elements of dimension dim of a
 * JSON array, checking that it is rectangular.
 */
static void
ri_array_fill(RiType *t, JsonbContainer *c, int dim, int ndim, const int *dims,
			  Datum *values, bool *nulls, int *pos)
{
	if ((int) JsonContainerSize(c) != dims[dim])
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_TEXT_REPRESENTATION),
				 errmsg("multidimensional arrays must have sub-arrays with matching dimensions")));
	for (int i = 0; i < dims[dim]; i++)
	{
		JsonbValue *jv = getIthJsonbValueFromContainer(c, i);

		if (dim + 1 < ndim)
		{
			if (jv->type != jbvBinary || !JsonContainerIsArray(jv->val.binary.data))
				ereport(ERROR,
						(errcode(ERRCODE_INVALID_TEXT_REPRESENTATION),
						 errmsg("multidimensional arrays must have sub-arrays with matching dimensions")));
			ri_array_fill(t, jv->val.binary.data, dim + 1, ndim, dims,
						  values, nulls, pos);
			continue;
		}
		values[*pos] = ri_value(t->elem, jv, &nulls[*pos]);
		(*pos)++;
	}
}

/*
 * An array from nested JSON arrays: the dimensions are the lengths met
 * along the first elements (one dimension for elements that nest).
 */
static Datum
ri_array(RiType *t, JsonbContainer *c)
{
	int			ndim = 0;
	int			dims[MAXDIM];
	int			lbs[MAXDIM];
	JsonbContainer *cur = c;
	int			n;
	int			pos = 0;
	Datum	   *values;
	bool	   *nulls;

	for (;;)
	{
		JsonbValue *first;

		if (ndim == MAXDIM)
			ereport(ERROR,
					(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
					 errmsg("number of array dimensions exceeds the maximum allowed (%d)", MAXDIM)));
		dims[ndim] = JsonContainerSize(cur);
		lbs[ndim++] = 1;
		if (dims[ndim - 1] == 0 || t->flat)
			break;
		first = getIthJsonbValueFromContainer(cur, 0);
		if (first->type != jbvBinary || !JsonContainerIsArray(first->val.binary.data))
			break;
		cur = first->val.binary.data;
	}
	if (dims[0] == 0)
		return PointerGetDatum(construct_empty_array(t->elemtype));
	n = ArrayGetNItems(ndim, dims);
	values = palloc(sizeof(Datum) * Max(n, 1));
	nulls = palloc(sizeof(bool) * Max(n, 1));
	ri_array_fill(t, c, 0, ndim, dims, values, nulls, &pos);
	return PointerGetDatum(construct_md_array(values, nulls, ndim, dims, lbs,
											  t->elemtype, t->elmlen,
											  t->elmbyval, t->elmalign));
}

/*
 * A composite value from a JSON object: attributes by name, absent NULL.
 */
static Datum
ri_record(RiType *t, JsonbContainer *c)
{
	int			natts = t->tupdesc->natts;
	Datum	   *values = palloc0(sizeof(Datum) * Max(natts, 1));
	bool	   *nulls = palloc(sizeof(bool) * Max(natts, 1));

	for (int i = 0; i < natts; i++)
	{
		char	   *name = NameStr(TupleDescAttr(t->tupdesc, i)->attname);
		JsonbValue	buf;
		JsonbValue *jv = NULL;

		if (t->atts[i] != NULL)
			jv = getKeyJsonValueFromContainer(c, name, strlen(name), &buf);
		nulls[i] = true;
		if (jv != NULL)
			values[i] = ri_value(t->atts[i], jv, &nulls[i]);
	}
	return HeapTupleGetDatum(heap_form_tuple(t->tupdesc, values, nulls));
}

/*
 * money from its image: a number is the amount (exact, whatever
 * lc_monetary says), a string the output of 1.0 logs.
 */
static Datum
ri_money(RiType *t, JsonbValue *jv)
{
	Datum		cents;

	if (jv->type != jbvNumeric)
		return ri_from_text(t, ri_json_text(jv));
	cents = DirectFunctionCall2(numeric_mul, NumericGetDatum(jv->val.numeric),
								NumericGetDatum(int64_to_numeric(100)));
	return CashGetDatum(DatumGetInt64(DirectFunctionCall1(numeric_int8, cents)));
}

/*
 * A non-null JSON value as a value of t's base type (see the header).
 */
static Datum
ri_base(RiType *t, JsonbValue *jv)
{
	bool		container = jv->type == jbvBinary;

	switch (t->kind)
	{
		case RI_JSONB:
			if (jv->type == jbvString &&
				bkperf_json_is_valid(jv->val.string.val, jv->val.string.len))
				return ri_from_text(t, ri_json_text(jv));
			/* else the value itself, or a 1.0 image of a string scalar */
			return JsonbPGetDatum(JsonbValueToJsonb(jv));
		case RI_MONEY:
			return ri_money(t, jv);
		case RI_JSON:
			return ri_json(t, jv);
		case RI_ARRAY:
			if (container && JsonContainerIsArray(jv->val.binary.data))
				return ri_array(t, jv->val.binary.data);
			if (jv->type != jbvString)
				ri_refuse(t, container ? "object" : "scalar");
			break;
		case RI_RECORD:
			if (container && JsonContainerIsObject(jv->val.binary.data))
				return ri_record(t, jv->val.binary.data);
			if (jv->type != jbvString)
				ri_refuse(t, container ? "array" : "scalar");
			break;
		default:
			break;
	}
	return ri_from_text(t, ri_json_text(jv));
}

/*
 * A JSON value as a value of t (NULL for JSON null), domain checked.
 */
static Datum
ri_value(RiType *t, JsonbValue *jv, bool *isnull)
{
	Datum		value = (Datum) 0;

	*isnull = jv->type == jbvNull;
	if (!*isnull)
		value = ri_base(t, jv);
	if (t->isdomain)
		domain_check(value, *isnull, t->typid, &t->domextra, t->cxt);
	return value;
}

/*
 * Error context of a decode: the column being decoded.
 */
static void
ri_error_context(void *arg)
{
	errcontext("%s", (const char *) arg);
}

/*
 * Decoder of logged images into rows of desc, allocated in
 * CurrentMemoryContext (which must outlive its use).
 */
BkperfImageDecoder *
bkperf_image_decoder(TupleDesc desc)
{
	BkperfImageDecoder *d = palloc0(sizeof(BkperfImageDecoder));

	d->desc = desc;
	d->cols = palloc0(sizeof(RiType *) * Max(desc->natts, 1));
	d->context = palloc0(sizeof(char *) * Max(desc->natts, 1));
	for (int i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i);

		if (att->attisdropped)
			continue;
		d->cols[i] = ri_type(att->atttypid, att->atttypmod, CurrentMemoryContext);
		d->context[i] = psprintf("column \"%s\" of type %s", NameStr(att->attname),
								 format_type_with_typemod(att->atttypid,
														  att->atttypmod));
	}
	return d;
}

/*
 * The work of bkperf_image_decode, under fixed settings.
 */
static bool
ri_decode_all(BkperfImageDecoder *d, Jsonb *image, const char *const *keys,
			  Datum *values, bool *nulls, bool *absent)
{
	ErrorContextCallback errcb;
	bool		anyabsent = false;

	errcb.callback = ri_error_context;
	errcb.previous = error_context_stack;
	for (int i = 0; i < d->desc->natts; i++)
	{
		JsonbValue	buf;
		JsonbValue *jv;

		values[i] = (Datum) 0;
		nulls[i] = true;
		absent[i] = false;
		if (keys[i] == NULL || d->cols[i] == NULL)
			continue;
		jv = getKeyJsonValueFromContainer(&image->root, keys[i], strlen(keys[i]), &buf);
		if (jv == NULL)
		{
			absent[i] = anyabsent = true;
			continue;
		}
		errcb.arg = d->context[i];
		error_context_stack = &errcb;
		values[i] = ri_value(d->cols[i], jv, &nulls[i]);
		error_context_stack = errcb.previous;
	}
	return anyabsent;
}

/*
 * Decode image into values/nulls (desc order); see bkperf.h.
 */
bool
bkperf_image_decode(BkperfImageDecoder *d, Jsonb *image, const char *const *keys,
					Datum *values, bool *nulls, bool *absent)
{
	BkperfSettings saved;
	volatile bool anyabsent = false;

	if (!JB_ROOT_IS_OBJECT(image) || JB_ROOT_IS_SCALAR(image))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("a row image must be a JSON object")));
	bkperf_settings_fix(&saved, false);
	PG_TRY();
	{
		anyabsent = ri_decode_all(d, image, keys, values, nulls, absent);
	}
	PG_FINALLY();
	{
		bkperf_settings_restore(&saved);
	}
	PG_END_TRY();
	return anyabsent;
}

/*
 * The value of attribute i from its text form (type input function, typmod
 * applied, domain checked), under fixed settings.
 */
Datum
bkperf_image_decode_text(BkperfImageDecoder *d, int i, const char *text)
{
	BkperfSettings saved;
	ErrorContextCallback errcb;
	volatile Datum value = (Datum) 0;
	RiType	   *t = d->cols[i];

	if (t == NULL)
		elog(ERROR, "attribute %d is dropped", i + 1);
	errcb.callback = ri_error_context;
	errcb.arg = d->context[i];
	errcb.previous = error_context_stack;
	bkperf_settings_fix(&saved, false);
	PG_TRY();
	{
		error_context_stack = &errcb;
		value = ri_from_text(t, pstrdup(text));
		if (t->isdomain)
			domain_check(value, false, t->typid, &t->domextra, t->cxt);
		error_context_stack = errcb.previous;
	}
	PG_FINALLY();
	{
		bkperf_settings_restore(&saved);
	}
	PG_END_TRY();
	return value;
}

/* What bkperf.image_record keeps between calls of one call site. */
typedef struct RiRecordCache
{
	Oid			typid;
	uint64		tupdesc_id;
	TupleDesc	desc;
	BkperfImageDecoder *decoder;
	const char **keys;
	Datum	   *values;
	bool	   *nulls;
	bool	   *absent;
} RiRecordCache;

/*
 * The cache of image_record for composite type typid, (re)built when the
 * type's row type changed.
 */
static RiRecordCache *
ri_record_cache(FunctionCallInfo fcinfo, Oid typid)
{
	RiRecordCache *c = fcinfo->flinfo->fn_extra;
	TypeCacheEntry *tce = lookup_type_cache(typid, TYPECACHE_TUPDESC);
	MemoryContext old;

	if (c != NULL && c->typid == typid && c->tupdesc_id == tce->tupDesc_identifier)
		return c;
	old = MemoryContextSwitchTo(fcinfo->flinfo->fn_mcxt);
	c = palloc0(sizeof(RiRecordCache));
	c->typid = typid;
	c->tupdesc_id = tce->tupDesc_identifier;
	c->desc = lookup_rowtype_tupdesc_copy(typid, -1);
	c->decoder = bkperf_image_decoder(c->desc);
	c->keys = palloc0(sizeof(char *) * Max(c->desc->natts, 1));
	for (int i = 0; i < c->desc->natts; i++)
		if (!TupleDescAttr(c->desc, i)->attisdropped)
			c->keys[i] = NameStr(TupleDescAttr(c->desc, i)->attname);
	c->values = palloc(sizeof(Datum) * Max(c->desc->natts, 1));
	c->nulls = palloc(sizeof(bool) * Max(c->desc->natts, 1));
	c->absent = palloc(sizeof(bool) * Max(c->desc->natts, 1));
	MemoryContextSwitchTo(old);
	fcinfo->flinfo->fn_extra = c;
	return c;
}

/*
 * bkperf.image_record(image jsonb, proto anyelement) RETURNS anyelement:
 * a logged row image decoded into proto's row type by its current column
 * names (absent keys give NULL), exactly as a rollback restores it.
 */
Datum
bkperf_image_record(PG_FUNCTION_ARGS)
{
	Oid			typid = get_fn_expr_argtype(fcinfo->flinfo, 1);
	RiRecordCache *c;

	bkperf_require_arg(fcinfo, 0, "image");
	if (!OidIsValid(typid) || get_typtype(typid) != TYPTYPE_COMPOSITE)
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("proto must be of a composite type, not %s",
						format_type_be(typid)),
				 errhint("Pass a row of the table the image was logged for, as NULL::table_name.")));
	c = ri_record_cache(fcinfo, typid);
	bkperf_image_decode(c->decoder, PG_GETARG_JSONB_P(0), c->keys,
						c->values, c->nulls, c->absent);
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(c->desc, c->values,
													  c->nulls)));
}
