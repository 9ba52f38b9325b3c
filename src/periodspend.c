/*
 * periodspend.c: segtier.period_spend(ts, amount, bounds), the amounts of
 * each period [bounds[i], bounds[i+1]) in one pass (the monthly spend of the
 * churn rule).  Sums are exact: int64 at the amounts' scale, and a numeric
 * from the first amount that does not fit on.
 */
#include "segtier.h"

#include "catalog/pg_type.h"
#include "libpq/pqformat.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/timestamp.h"

/*
 * Hash aggregation keeps one state per customer and touches it on every row,
 * so the state is small (125 bytes for 13 periods, in a 128-byte chunk): the
 * bounds are shared by every state built from the same argument, and each sum
 * is an int64 at its own scale (one byte), or for good a numeric once it
 * outgrew int64.
 */
struct SpendBounds
{
	int32		nbuckets;
	TimestampTz bound[FLEXIBLE_ARRAY_MEMBER];	/* nbuckets + 1, strictly increasing */
};

typedef union SpendSum
{
	int64		value;			/* the sum times 10^scale */
	Numeric		num;			/* when the scale is SPEND_NUMERIC */
} SpendSum;

struct SpendState
{
	const SpendBounds *bounds;
	SpendSum	sum[FLEXIBLE_ARRAY_MEMBER];	/* then the scales, a byte each */
};

#define SPEND_SCALES(st) ((uint8 *) &(st)->sum[(st)->bounds->nbuckets])
#define SPEND_NUMERIC	0xFF	/* above MAX_FAST_SCALE */

SpendState *
segtier_spend_new(MemoryContext cxt, const SpendBounds *bounds)
{
	SpendState *st = MemoryContextAllocZero(cxt, offsetof(SpendState, sum) +
											(sizeof(SpendSum) + 1) * bounds->nbuckets);

	st->bounds = bounds;
	return st;
}

/* The sum of period i. */
static Numeric
spend_sum(const SpendState *st, int i)
{
	uint8		scale = SPEND_SCALES(st)[i];
	PurchaseSum wide = {.value = st->sum[i].value, .scale = scale};

	return scale == SPEND_NUMERIC ? st->sum[i].num : SumToNumeric(&wide);
}

/*
 * Adds value/10^scale (fast) or num to period i; num may be NULL when fast.
 * A sum that leaves int64 becomes a numeric in cxt.
 */
static void
spend_add(SpendState *st, int i, MemoryContext cxt, bool fast, int128 value, int32 scale,
		  Numeric num)
{
	uint8	   *scales = SPEND_SCALES(st);
	MemoryContext old;
	Numeric		prev;

	if (scales[i] != SPEND_NUMERIC && fast)
	{
		PurchaseSum wide = {.value = st->sum[i].value, .scale = scales[i]};

		if (SumAdd(&wide, value, scale) && wide.value <= PG_INT64_MAX && wide.value >= PG_INT64_MIN)
		{
			st->sum[i].value = (int64) wide.value;
			scales[i] = (uint8) wide.scale;
			return;
		}
	}
	old = MemoryContextSwitchTo(cxt);
	prev = spend_sum(st, i);
	if (num == NULL)
	{
		PurchaseSum addend = {.value = value, .scale = scale};
		Numeric		made = SumToNumeric(&addend);

		st->sum[i].num = numeric_add_opt_error(prev, made, NULL);
		pfree(made);
	}
	else
		st->sum[i].num = numeric_add_opt_error(prev, num, NULL);
	pfree(prev);				/* the old numeric, or the int64 sum made one */
	scales[i] = SPEND_NUMERIC;
	MemoryContextSwitchTo(old);
}

static SpendBounds *
spend_bounds_copy(MemoryContext cxt, int32 nbuckets, const TimestampTz *bound)
{
	SpendBounds *b = MemoryContextAlloc(cxt, offsetof(SpendBounds, bound) +
										sizeof(TimestampTz) * (nbuckets + 1));

	b->nbuckets = nbuckets;
	memcpy(b->bound, bound, sizeof(TimestampTz) * (nbuckets + 1));
	return b;
}

/*
 * The bounds for a state in cxt.  The first bounds a function sees are kept
 * in fn_mcxt (the query's lifetime) and shared by every state with equal
 * bounds; others (bounds that vary by customer) are copied into cxt, to be
 * freed and counted with the state.
 */
static const SpendBounds *
spend_intern(FunctionCallInfo fcinfo, MemoryContext cxt, int32 nbuckets, const TimestampTz *bound)
{
	const SpendBounds *b = (const SpendBounds *) fcinfo->flinfo->fn_extra;
	size_t		len = sizeof(TimestampTz) * (nbuckets + 1);
	SpendBounds *copy;

	if (b != NULL && b->nbuckets == nbuckets && memcmp(b->bound, bound, len) == 0)
		return b;
	copy = spend_bounds_copy(b == NULL ? fcinfo->flinfo->fn_mcxt : cxt, nbuckets, bound);
	if (b == NULL)
		fcinfo->flinfo->fn_extra = copy;
	return copy;
}

/* The checked bounds of a timestamptz[]; returns their count. */
static int
spend_bounds_check(ArrayType *arr, const TimestampTz **bound)
{
	int			n = ArrayGetNItems(ARR_NDIM(arr), ARR_DIMS(arr));
	bits8	   *nulls = ARR_NULLBITMAP(arr);

	/* the elements before the first NULL are consecutive int64s */
	*bound = (const TimestampTz *) ARR_DATA_PTR(arr);
	if (ARR_NDIM(arr) > 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("period bounds must be a one-dimensional array")));
	if (n < 2)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("period bounds need at least two times"),
				 errdetail("Period i runs from bounds[i] up to bounds[i + 1], excluded.")));
	for (int i = 0; i < n; i++)
	{
		if (nulls != NULL && att_isnull(i, nulls))
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("period bounds must not contain NULLs")));
		if (TIMESTAMP_NOT_FINITE((*bound)[i]) || (i > 0 && (*bound)[i] <= (*bound)[i - 1]))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("period bounds must be finite and strictly increasing")));
	}
	return n;
}

/* The checked bounds of a timestamptz[] argument, for a state in cxt. */
static const SpendBounds *
spend_bounds_arg(FunctionCallInfo fcinfo, MemoryContext cxt, ArrayType *arr)
{
	const TimestampTz *bound;
	int			n = spend_bounds_check(arr, &bound);

	return spend_intern(fcinfo, cxt, n - 1, bound);
}

/* Checked bounds in cxt, for states that all share them (the aggregation pass). */
const SpendBounds *
segtier_spend_bounds(MemoryContext cxt, ArrayType *arr)
{
	const TimestampTz *bound;
	int			n = spend_bounds_check(arr, &bound);

	return spend_bounds_copy(cxt, n - 1, bound);
}

/* Adds a row's amount to its period, if any; numeric sums go in cxt. */
void
segtier_spend_add(SpendState *st, MemoryContext cxt, TimestampTz ts, Datum amount)
{
	const SpendBounds *b = st->bounds;
	int			lo,
				hi;
	Amount		a;

	if (ts < b->bound[0] || ts >= b->bound[b->nbuckets])
		return;
	/* the last bound <= ts */
	lo = 0;
	hi = b->nbuckets - 1;
	while (lo < hi)
	{
		int			mid = (lo + hi + 1) / 2;

		if (b->bound[mid] <= ts)
			lo = mid;
		else
			hi = mid - 1;
	}
	AmountRead(amount, &a);
	spend_add(st, lo, cxt, a.fast, a.value, a.scale, DatumGetNumeric(a.datum));
}

/* numeric[] of the period sums; a period without rows is 0. */
Datum
segtier_spend_sums(const SpendState *st)
{
	Datum	   *sums = palloc(sizeof(Datum) * st->bounds->nbuckets);

	for (int i = 0; i < st->bounds->nbuckets; i++)
		sums[i] = NumericGetDatum(spend_sum(st, i));
	return PointerGetDatum(construct_array(sums, st->bounds->nbuckets, NUMERICOID, -1, false, TYPALIGN_INT));
}

PG_FUNCTION_INFO_V1(period_spend_add);
Datum
period_spend_add(PG_FUNCTION_ARGS)
{
	MemoryContext aggcxt;
	SpendState *st;

	if (!AggCheckCallContext(fcinfo, &aggcxt))
		elog(ERROR, "period_spend_add called in non-aggregate context");
	if (PG_ARGISNULL(0))
	{
		if (PG_ARGISNULL(3))
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("period bounds must not be null")));
		st = segtier_spend_new(aggcxt, spend_bounds_arg(fcinfo, aggcxt, PG_GETARG_ARRAYTYPE_P(3)));
	}
	else
		st = (SpendState *) PG_GETARG_POINTER(0);
	if (!PG_ARGISNULL(1) && !PG_ARGISNULL(2))
		segtier_spend_add(st, aggcxt, PG_GETARG_TIMESTAMPTZ(1), PG_GETARG_DATUM(2));
	PG_RETURN_POINTER(st);
}

PG_FUNCTION_INFO_V1(period_spend_combine);
Datum
period_spend_combine(PG_FUNCTION_ARGS)
{
	MemoryContext aggcxt;
	SpendState *a = PG_ARGISNULL(0) ? NULL : (SpendState *) PG_GETARG_POINTER(0);
	SpendState *b = PG_ARGISNULL(1) ? NULL : (SpendState *) PG_GETARG_POINTER(1);

	if (!AggCheckCallContext(fcinfo, &aggcxt))
		elog(ERROR, "period_spend_combine called in non-aggregate context");
	if (b == NULL)
		PG_RETURN_POINTER(a);
	if (a == NULL)
		a = segtier_spend_new(aggcxt, spend_intern(fcinfo, aggcxt, b->bounds->nbuckets, b->bounds->bound));
	if (a->bounds != b->bounds &&
		(a->bounds->nbuckets != b->bounds->nbuckets ||
		 memcmp(a->bounds->bound, b->bounds->bound, sizeof(TimestampTz) * (a->bounds->nbuckets + 1)) != 0))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("period bounds differ between rows of one group")));
	for (int i = 0; i < a->bounds->nbuckets; i++)
	{
		uint8		scale = SPEND_SCALES(b)[i];

		if (scale == SPEND_NUMERIC)
			spend_add(a, i, aggcxt, false, 0, 0, b->sum[i].num);
		else
			spend_add(a, i, aggcxt, true, b->sum[i].value, scale, NULL);
	}
	PG_RETURN_POINTER(a);
}

/* numeric[] of the period sums; a period without rows is 0. */
PG_FUNCTION_INFO_V1(period_spend_final);
Datum
period_spend_final(PG_FUNCTION_ARGS)
{
	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	PG_RETURN_DATUM(segtier_spend_sums((SpendState *) PG_GETARG_POINTER(0)));
}

/* Wire form: nbuckets, the bounds, then per period its sum as numeric text. */
PG_FUNCTION_INFO_V1(period_spend_serialize);
Datum
period_spend_serialize(PG_FUNCTION_ARGS)
{
	SpendState *st = (SpendState *) PG_GETARG_POINTER(0);
	StringInfoData buf;

	pq_begintypsend(&buf);
	pq_sendint32(&buf, st->bounds->nbuckets);
	for (int i = 0; i <= st->bounds->nbuckets; i++)
		pq_sendint64(&buf, st->bounds->bound[i]);
	for (int i = 0; i < st->bounds->nbuckets; i++)
		pq_sendstring(&buf, DatumGetCString(DirectFunctionCall1(numeric_out,
																NumericGetDatum(spend_sum(st, i)))));
	PG_RETURN_BYTEA_P(pq_endtypsend(&buf));
}

PG_FUNCTION_INFO_V1(period_spend_deserialize);
Datum
period_spend_deserialize(PG_FUNCTION_ARGS)
{
	bytea	   *b = PG_GETARG_BYTEA_PP(0);
	StringInfoData buf;
	SpendState *st;
	SpendBounds *bounds;
	int32		n;

	if (!AggCheckCallContext(fcinfo, NULL))
		elog(ERROR, "period_spend_deserialize called in non-aggregate context");
	buf.data = VARDATA_ANY(b);
	buf.len = VARSIZE_ANY_EXHDR(b);
	buf.maxlen = buf.len;
	buf.cursor = 0;
	n = pq_getmsgint(&buf, 4);
	if (n < 1 || n > buf.len)
		elog(ERROR, "invalid period_spend state");
	/* in the current context: the combine function copies what it keeps */
	bounds = palloc(offsetof(SpendBounds, bound) + sizeof(TimestampTz) * (n + 1));
	bounds->nbuckets = n;
	for (int i = 0; i <= n; i++)
		bounds->bound[i] = pq_getmsgint64(&buf);
	st = segtier_spend_new(CurrentMemoryContext, bounds);
	for (int i = 0; i < n; i++)
	{
		Datum		num = DirectFunctionCall3(numeric_in, CStringGetDatum(pq_getmsgstring(&buf)),
											  ObjectIdGetDatum(InvalidOid), Int32GetDatum(-1));
		Amount		a;

		AmountRead(num, &a);
		spend_add(st, i, CurrentMemoryContext, a.fast, a.value, a.scale, DatumGetNumeric(num));
	}
	pq_getmsgend(&buf);
	PG_RETURN_POINTER(st);
}
