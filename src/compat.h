/*-------------------------------------------------------------------------
 * compat.h
 *		What differs between the supported PostgreSQL versions (15, 17, 18),
 *		in one place.
 *-------------------------------------------------------------------------
 */
#ifndef BKPERF_COMPAT_H
#define BKPERF_COMPAT_H

#include "common/jsonapi.h"
#include "mb/pg_wchar.h"

/*
 * Whether str (len bytes) is valid JSON, without raising an error: the
 * lexer context's constructor changed its signature in PostgreSQL 17.
 */
static inline bool
bkperf_json_is_valid(char *str, int len)
{
#if PG_VERSION_NUM >= 170000
	JsonLexContext *lex = makeJsonLexContextCstringLen(NULL, str, len,
													   GetDatabaseEncoding(),
													   false);
#else
	JsonLexContext *lex = makeJsonLexContextCstringLen(str, len,
													   GetDatabaseEncoding(),
													   false);
#endif

	return pg_parse_json(lex, &nullSemAction) == JSON_SUCCESS;
}

#endif							/* BKPERF_COMPAT_H */
