/*
 * cuts.c: the segtier.cuts aggregate (quantile cut points that never split
 * equal values) and FloatBag, the growable float8 multiset that is its state
 * and the state of segtier.kmeans.
 */
#include "segtier.h"

#include <ctype.h>
#include <math.h>

#include "catalog/pg_type.h"
#include "common/shortest_dec.h"
#include "libpq/pqformat.h"
#include "utils/array.h"
#include "utils/float.h"
#include "utils/memutils.h"

/* The flat (on-disk, text, parallel transfer) form of a FloatBag. */
typedef struct FloatBagFlat
{
	int32		vl_len_;
	int32		version;		/* 0; a future layout sets it */
	int32		param[FLOATBAG_NPARAMS];
	int64		nvalues;
	float8		values[FLEXIBLE_ARRAY_MEMBER];
} FloatBagFlat;

#define FLOATBAG_FLAT_SIZE(n) (offsetof(FloatBagFlat, values) + (n) * sizeof(float8))
#define FLOATBAG_MAX_FLAT ((int64) ((MaxAllocSize - offsetof(FloatBagFlat, values)) / sizeof(float8)))

/* Flat size; a state too large for one varlena cannot leave its backend. */
static Size
floatbag_get_flat_size(ExpandedObjectHeader *eohptr)
{
	FloatBag   *bag = (FloatBag *) eohptr;

	if (bag->nvalues > FLOATBAG_MAX_FLAT)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("aggregate state of %lld values is too large to pass on",
						(long long) bag->nvalues),
				 errdetail("A state can hold at most %lld values outside the aggregate that builds it.",
						   (long long) FLOATBAG_MAX_FLAT),
				 errhint("Disable parallel query or aggregate fewer rows per group.")));
	return FLOATBAG_FLAT_SIZE(bag->nvalues);
}

/* Writes the flat form into space sized by floatbag_get_flat_size. */
static void
floatbag_flatten_into(ExpandedObjectHeader *eohptr, void *result, Size allocated_size)
{
	FloatBag   *bag = (FloatBag *) eohptr;
	FloatBagFlat *flat = (FloatBagFlat *) result;

	Assert(allocated_size == FLOATBAG_FLAT_SIZE(bag->nvalues));
	memset(flat, 0, offsetof(FloatBagFlat, values));
	SET_VARSIZE(flat, allocated_size);
	memcpy(flat->param, bag->param, sizeof(flat->param));
	flat->nvalues = bag->nvalues;
	memcpy(flat->values, bag->values, bag->nvalues * sizeof(float8));
}

static const ExpandedObjectMethods floatbag_methods = {
	floatbag_get_flat_size,
	floatbag_flatten_into
};

/* A new empty bag in cxt (segtier_state_context). */
static FloatBag *
floatbag_create(MemoryContext cxt, const int32 *param, int64 capacity)
{
	FloatBag   *bag = MemoryContextAllocZero(cxt, sizeof(FloatBag));

	EOH_init_header(&bag->hdr, &floatbag_methods, cxt);
	memcpy(bag->param, param, sizeof(bag->param));
	bag->capacity = Max(capacity, 16);
	bag->values = MemoryContextAllocHuge(cxt, bag->capacity * sizeof(float8));
	return bag;
}

/* Read access to a state, expanded or flat, without copying its values. */
const FloatBag *
floatbag_peek(Datum d)
{
	FloatBagFlat *flat;
	FloatBag   *view;

	if (VARATT_IS_EXTERNAL_EXPANDED(DatumGetPointer(d)))
		return (const FloatBag *) DatumGetEOHP(d);
	flat = (FloatBagFlat *) PG_DETOAST_DATUM(d);
	view = palloc0(sizeof(FloatBag));
	memcpy(view->param, flat->param, sizeof(view->param));
	view->nvalues = flat->nvalues;
	view->values = flat->values;
	return view;
}

/*
 * A bag the caller may extend or reorder.  In aggregate context that is the
 * argument itself when it is an expanded bag this aggregate owns (a final
 * function gets it read-only, but only sorts it and writes -0 as 0, which
 * leaves the multiset unchanged); otherwise a copy, or a new bag with param
 * when the argument is NULL.
 */
FloatBag *
floatbag_own(FunctionCallInfo fcinfo, int argno, const int32 *param)
{
	MemoryContext aggcxt;
	const FloatBag *src;
	FloatBag   *bag;

	if (PG_ARGISNULL(argno))
		return floatbag_create(segtier_state_context(fcinfo), param, 0);
	if (AggCheckCallContext(fcinfo, &aggcxt) &&
		VARATT_IS_EXTERNAL_EXPANDED(DatumGetPointer(PG_GETARG_DATUM(argno))))
	{
		bag = (FloatBag *) DatumGetEOHP(PG_GETARG_DATUM(argno));
		if (MemoryContextGetParent(bag->hdr.eoh_context) == aggcxt)
			return bag;
	}
	src = floatbag_peek(PG_GETARG_DATUM(argno));
	bag = floatbag_create(segtier_state_context(fcinfo), src->param, src->nvalues);
	floatbag_append(bag, src->values, src->nvalues);
	return bag;
}

/* Appends in place, doubling the capacity when full. */
void
floatbag_append(FloatBag *bag, const float8 *values, int64 n)
{
	if (bag->nvalues + n > bag->capacity)
	{
		int64		newcap = Max(bag->capacity * 2, bag->nvalues + n);

		if (newcap > (int64) (MaxAllocHugeSize / sizeof(float8)))
			ereport(ERROR,
					(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
					 errmsg("aggregate state is too large"),
					 errdetail("It would hold %lld values.",
							   (long long) (bag->nvalues + n))));
		bag->values = repalloc_huge(bag->values, newcap * sizeof(float8));
		bag->capacity = newcap;
	}
	memcpy(bag->values + bag->nvalues, values, n * sizeof(float8));
	bag->nvalues += n;
}

/* -0 and 0 compare equal; one spelling keeps results independent of order. */
void
floatbag_normalize_zeros(FloatBag *bag)
{
	for (int64 i = 0; i < bag->nvalues; i++)
		if (bag->values[i] == 0)
			bag->values[i] = 0.0;
}

/* Builds a flat state; the kind's check has already passed. */
static Datum
floatbag_make_flat(const int32 *param, int64 nvalues, const float8 *values)
{
	Size		size;
	FloatBagFlat *flat;

	if (nvalues > FLOATBAG_MAX_FLAT)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("aggregate state of %lld values is too large",
						(long long) nvalues)));
	size = FLOATBAG_FLAT_SIZE(nvalues);
	flat = palloc0(size);
	SET_VARSIZE(flat, size);
	memcpy(flat->param, param, sizeof(flat->param));
	flat->nvalues = nvalues;
	memcpy(flat->values, values, nvalues * sizeof(float8));
	return PointerGetDatum(flat);
}

/* Names the expected form, which depends on the kind. */
static void
floatbag_syntax_error(const char *str, const FloatBagKind *kind)
{
	StringInfoData form;

	initStringInfo(&form);
	for (int i = 0; i < kind->nparams; i++)
		appendStringInfo(&form, "%s=<int> ", kind->names[i]);
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_TEXT_REPRESENTATION),
			 errmsg("invalid input syntax for type %s: \"%s\"", kind->typname, str),
			 errdetail("The form is \"%s{v1,v2,...}\".", form.data)));
}

/* Text form: the named parameters, then the values, e.g. n=5 {1,2.5,3}. */
Datum
floatbag_in(char *str, const FloatBagKind *kind)
{
	int32		param[FLOATBAG_NPARAMS] = {0};
	int64		n = 0,
				cap = 16;
	float8	   *values = palloc(cap * sizeof(float8));
	char	   *p = str;

	for (int i = 0; i < kind->nparams; i++)
	{
		size_t		len = strlen(kind->names[i]);
		char	   *end;
		long		v;

		while (isspace((unsigned char) *p))
			p++;
		if (strncmp(p, kind->names[i], len) != 0 || p[len] != '=')
			floatbag_syntax_error(str, kind);
		p += len + 1;
		errno = 0;
		v = strtol(p, &end, 10);
		if (end == p || errno != 0 || v < PG_INT32_MIN || v > PG_INT32_MAX)
			floatbag_syntax_error(str, kind);
		param[i] = (int32) v;
		p = end;
	}
	while (isspace((unsigned char) *p))
		p++;
	if (*p++ != '{')
		floatbag_syntax_error(str, kind);
	while (isspace((unsigned char) *p))
		p++;
	if (*p == '}')
		p++;
	else
	{
		for (;;)
		{
			if (n == cap)
			{
				cap *= 2;
				values = repalloc_huge(values, cap * sizeof(float8));
			}
			values[n++] = float8in_internal(p, &p, kind->typname, str);
			if (*p == '}')
			{
				p++;
				break;
			}
			if (*p++ != ',')
				floatbag_syntax_error(str, kind);
		}
	}
	while (isspace((unsigned char) *p))
		p++;
	if (*p != '\0')
		floatbag_syntax_error(str, kind);
	kind->check(param, n, values);
	return floatbag_make_flat(param, n, values);
}

/* Writes the text form, each value in its shortest exact spelling. */
char *
floatbag_out(Datum d, const FloatBagKind *kind)
{
	const FloatBag *bag = floatbag_peek(d);
	StringInfoData buf;
	char		num[DOUBLE_SHORTEST_DECIMAL_LEN];

	initStringInfo(&buf);
	for (int i = 0; i < kind->nparams; i++)
		appendStringInfo(&buf, "%s=%d ", kind->names[i], bag->param[i]);
	appendStringInfoChar(&buf, '{');
	for (int64 i = 0; i < bag->nvalues; i++)
	{
		if (i > 0)
			appendStringInfoChar(&buf, ',');
		double_to_shortest_decimal_buf(bag->values[i], num);
		appendStringInfoString(&buf, num);
	}
	appendStringInfoChar(&buf, '}');
	return buf.data;
}

/* Binary form: version, the named parameters, the count, the values. */
Datum
floatbag_recv(StringInfo buf, const FloatBagKind *kind)
{
	int32		param[FLOATBAG_NPARAMS] = {0};
	int32		version = pq_getmsgint(buf, 4);
	int64		n;
	float8	   *values;

	if (version != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_BINARY_REPRESENTATION),
				 errmsg("unsupported %s version %d", kind->typname, version)));
	for (int i = 0; i < kind->nparams; i++)
		param[i] = pq_getmsgint(buf, 4);
	n = pq_getmsgint64(buf);
	if (n < 0 || n > (buf->len - buf->cursor) / (int64) sizeof(float8))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_BINARY_REPRESENTATION),
				 errmsg("invalid value count %lld in external %s value",
						(long long) n, kind->typname)));
	values = palloc(Max(n, 1) * sizeof(float8));
	for (int64 i = 0; i < n; i++)
		values[i] = pq_getmsgfloat8(buf);
	kind->check(param, n, values);
	return floatbag_make_flat(param, n, values);
}

/* The binary form read by floatbag_recv. */
bytea *
floatbag_send(Datum d, const FloatBagKind *kind)
{
	const FloatBag *bag = floatbag_peek(d);
	StringInfoData buf;

	pq_begintypsend(&buf);
	pq_sendint32(&buf, 0);
	for (int i = 0; i < kind->nparams; i++)
		pq_sendint32(&buf, bag->param[i]);
	pq_sendint64(&buf, bag->nvalues);
	for (int64 i = 0; i < bag->nvalues; i++)
		pq_sendfloat8(&buf, bag->values[i]);
	return pq_endtypsend(&buf);
}

/* ---- segtier.cuts ---- */

#define CUTS_MIN_N 2
#define CUTS_MAX_N 9

/* score() and rfm scales stop at 9 groups. */
static void
cuts_check_n(int32 n)
{
	if (n < CUTS_MIN_N || n > CUTS_MAX_N)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("number of groups %d is out of range", n),
				 errdetail("The number of groups must be between %d and %d.",
						   CUTS_MIN_N, CUTS_MAX_N)));
}

/* One aggregate, one n: mixed n has no meaning. */
static void
cuts_same_n(int32 have, int32 got)
{
	if (have != got)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("number of groups must be the same in every row"),
				 errdetail("Rows ask for %d and for %d groups.", have, got)));
}

/* What cuts_state input must satisfy (the aggregate never makes anything else). */
static void
cuts_check(const int32 *param, int64 nvalues, const float8 *values)
{
	cuts_check_n(param[0]);
	for (int64 i = 0; i < nvalues; i++)
		if (isnan(values[i]))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("cuts state must not contain NaN")));
}

static const char *const cuts_names[] = {"n"};
static const FloatBagKind cuts_kind = {"cuts_state", 1, cuts_names, cuts_check};

/* Text and binary I/O of cuts_state, so Citus can ship it. */
PG_FUNCTION_INFO_V1(cuts_state_in);
Datum
cuts_state_in(PG_FUNCTION_ARGS)
{
	PG_RETURN_DATUM(floatbag_in(PG_GETARG_CSTRING(0), &cuts_kind));
}

PG_FUNCTION_INFO_V1(cuts_state_out);
Datum
cuts_state_out(PG_FUNCTION_ARGS)
{
	PG_RETURN_CSTRING(floatbag_out(PG_GETARG_DATUM(0), &cuts_kind));
}

PG_FUNCTION_INFO_V1(cuts_state_recv);
Datum
cuts_state_recv(PG_FUNCTION_ARGS)
{
	PG_RETURN_DATUM(floatbag_recv((StringInfo) PG_GETARG_POINTER(0), &cuts_kind));
}

PG_FUNCTION_INFO_V1(cuts_state_send);
Datum
cuts_state_send(PG_FUNCTION_ARGS)
{
	PG_RETURN_BYTEA_P(floatbag_send(PG_GETARG_DATUM(0), &cuts_kind));
}

/* Collects one value; NULL values are skipped but n is checked on every row. */
PG_FUNCTION_INFO_V1(cuts_trans);
Datum
cuts_trans(PG_FUNCTION_ARGS)
{
	int32		param[FLOATBAG_NPARAMS] = {0};
	FloatBag   *bag;

	if (PG_ARGISNULL(2))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("number of groups must not be NULL")));
	param[0] = PG_GETARG_INT32(2);
	cuts_check_n(param[0]);
	if (!PG_ARGISNULL(1) && isnan(PG_GETARG_FLOAT8(1)))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("cannot compute cut points of NaN"),
				 errdetail("NaN has no place among ordered values.")));
	bag = floatbag_own(fcinfo, 0, param);
	cuts_same_n(bag->param[0], param[0]);
	if (!PG_ARGISNULL(1))
	{
		float8		v = PG_GETARG_FLOAT8(1);

		floatbag_append(bag, &v, 1);
	}
	PG_RETURN_DATUM(EOHPGetRWDatum(&bag->hdr));
}

/* Concatenates two partial states. */
PG_FUNCTION_INFO_V1(cuts_combine);
Datum
cuts_combine(PG_FUNCTION_ARGS)
{
	const FloatBag *other = floatbag_peek(PG_GETARG_DATUM(1));
	FloatBag   *bag = floatbag_own(fcinfo, 0, NULL);

	cuts_same_n(bag->param[0], other->param[0]);
	floatbag_append(bag, other->values, other->nvalues);
	PG_RETURN_DATUM(EOHPGetRWDatum(&bag->hdr));
}

/*
 * Sorts x[0..N-1] and picks the cut points.  A boundary b (0..N) splits the
 * sorted values into x[0..b-1] and x[b..]; only boundaries between two tie
 * blocks (b = 0, b = N or x[b-1] < x[b]) keep equal values together.  For
 * k = 1..n-1 the ideal boundary k*N/n moves to the nearest such boundary,
 * the lower one when both are equally near.  Boundaries at 0, at N or equal
 * to the previous one are dropped; each other gives the cut x[b-1], so that
 * score(v, cuts) = 1 + #{cuts < v} numbers the groups 1, 2, ...
 */
PG_FUNCTION_INFO_V1(cuts_final);
Datum
cuts_final(PG_FUNCTION_ARGS)
{
	FloatBag   *bag = floatbag_own(fcinfo, 0, NULL);
	int32		n = bag->param[0];
	int64		N = bag->nvalues;
	float8	   *x = bag->values;
	Datum		cuts[CUTS_MAX_N - 1];
	int			ncuts = 0;
	int64		last = 0;

	if (N == 0)
		PG_RETURN_NULL();
	segtier_sort_float8(x, N);
	for (int k = 1; k < n; k++)
	{
		int64		target = k * N; /* the ideal boundary, times n */
		int64		q = target / n; /* x[q] is in the tie block around it */
		int64		lo = 0,
					hi = q,
					b;

		/* lo = start of x[q]'s tie block */
		while (lo < hi)
		{
			int64		mid = lo + (hi - lo) / 2;

			if (x[mid] < x[q])
				lo = mid + 1;
			else
				hi = mid;
		}
		/* hi = end of x[q]'s tie block */
		hi = N;
		for (int64 l = q + 1; l < hi;)
		{
			int64		mid = l + (hi - l) / 2;

			if (x[mid] > x[q])
				hi = mid;
			else
				l = mid + 1;
		}
		b = (target - n * lo <= n * hi - target) ? lo : hi;
		if (b > last && b < N)
		{
			cuts[ncuts++] = Float8GetDatum(x[b - 1]);
			last = b;
		}
	}
	PG_RETURN_ARRAYTYPE_P(construct_array(cuts, ncuts, FLOAT8OID, sizeof(float8),
										  FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
}
