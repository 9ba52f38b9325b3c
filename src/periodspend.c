/*
 * periodspend.c: segtier.period_spend(ts, amount, bounds), the amounts of
 * each period [bounds[i], bounds[i+1]) in one pass (the monthly spend of the
 * churn rule).  Sums are exact: int128 at the amounts' scale, with a numeric
 * part for what does not fit.
 */
#include "segtier.h"

#include "catalog/pg_type.h"
#include "libpq/pqformat.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/timestamp.h"

/*
 * One allocation per group, as small as it goes (hash aggregation keeps a
 * state per customer): int64 sums at the amounts' scale, the bounds after
 * them, and numeric parts only for a sum that ever outgrew int64.
 */
typedef struct SpendSum
{
	int64		value;			/* the sum times 10^scale */
	int32		scale;
} SpendSum;

typedef struct SpendState
{
	int32		nbuckets;
	Numeric    *slow;			/* NULL, or per period NULL or the overflow */
	TimestampTz *bounds;		/* nbuckets + 1, strictly increasing */
	SpendSum	fast[FLEXIBLE_ARRAY_MEMBER];
} SpendState;

static SpendState *
spend_new(MemoryContext cxt, int32 nbuckets)
{
	SpendState *st = MemoryContextAllocZero(cxt, offsetof(SpendState, fast) +
											sizeof(SpendSum) * nbuckets +
											sizeof(TimestampTz) * (nbuckets + 1));

	st->nbuckets = nbuckets;
	st->bounds = (TimestampTz *) &st->fast[nbuckets];
	return st;
}

/* sum += value / 10^scale at the larger scale; false when int64 will not do. */
static bool
spend_sum_add(SpendSum *sum, int128 value, int32 scale)
{
	PurchaseSum wide = {.value = sum->value, .scale = sum->scale};

	if (!SumAdd(&wide, value, scale) || wide.value > PG_INT64_MAX || wide.value < PG_INT64_MIN)
		return false;
	sum->value = (int64) wide.value;
	sum->scale = wide.scale;
	return true;
}

static Numeric
spend_fast_numeric(const SpendSum *sum)
{
	PurchaseSum wide = {.value = sum->value, .scale = sum->scale};

	return SumToNumeric(&wide);
}

static SpendState *
spend_from_bounds(MemoryContext cxt, ArrayType *arr)
{
	Datum	   *e;
	bool	   *n;
	int			ne;
	SpendState *st;

	if (ARR_NDIM(arr) > 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("period bounds must be a one-dimensional array")));
	deconstruct_array(arr, TIMESTAMPTZOID, sizeof(TimestampTz), true, TYPALIGN_DOUBLE,
					  &e, &n, &ne);
	if (ne < 2)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("period bounds need at least two times"),
				 errdetail("Period i runs from bounds[i] up to bounds[i + 1], excluded.")));
	st = spend_new(cxt, ne - 1);
	for (int i = 0; i < ne; i++)
	{
		if (n[i])
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("period bounds must not contain NULLs")));
		st->bounds[i] = DatumGetTimestampTz(e[i]);
		if (TIMESTAMP_NOT_FINITE(st->bounds[i]) || (i > 0 && st->bounds[i] <= st->bounds[i - 1]))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("period bounds must be finite and strictly increasing")));
	}
	return st;
}

/* Adds an exact amount to period i (fast, or numeric when int128 will not do). */
static void
spend_add(SpendState *st, int i, MemoryContext cxt, bool fast, int128 value, int32 scale,
		  Numeric num)
{
	MemoryContext old;

	if (fast && spend_sum_add(&st->fast[i], value, scale))
		return;
	old = MemoryContextSwitchTo(cxt);
	if (st->slow == NULL)
		st->slow = palloc0(sizeof(Numeric) * st->nbuckets);
	st->slow[i] = st->slow[i] == NULL ? DatumGetNumeric(datumCopy(NumericGetDatum(num), false, -1)) :
		numeric_add_opt_error(st->slow[i], num, NULL);
	MemoryContextSwitchTo(old);
}

/* The sum of period i. */
static Numeric
spend_sum(const SpendState *st, int i)
{
	Numeric		n = spend_fast_numeric(&st->fast[i]);

	if (st->slow != NULL && st->slow[i] != NULL)
		n = numeric_add_opt_error(n, st->slow[i], NULL);
	return n;
}

PG_FUNCTION_INFO_V1(period_spend_add);
Datum
period_spend_add(PG_FUNCTION_ARGS)
{
	MemoryContext aggcxt;
	SpendState *st;
	TimestampTz ts;
	int			lo,
				hi;
	Amount		a;

	if (!AggCheckCallContext(fcinfo, &aggcxt))
		elog(ERROR, "period_spend_add called in non-aggregate context");
	if (PG_ARGISNULL(0))
	{
		if (PG_ARGISNULL(3))
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("period bounds must not be null")));
		st = spend_from_bounds(aggcxt, PG_GETARG_ARRAYTYPE_P(3));
	}
	else
		st = (SpendState *) PG_GETARG_POINTER(0);
	if (PG_ARGISNULL(1) || PG_ARGISNULL(2))
		PG_RETURN_POINTER(st);
	ts = PG_GETARG_TIMESTAMPTZ(1);
	if (ts < st->bounds[0] || ts >= st->bounds[st->nbuckets])
		PG_RETURN_POINTER(st);
	/* the last bound <= ts */
	lo = 0;
	hi = st->nbuckets - 1;
	while (lo < hi)
	{
		int			mid = (lo + hi + 1) / 2;

		if (st->bounds[mid] <= ts)
			lo = mid;
		else
			hi = mid - 1;
	}
	AmountRead(PG_GETARG_DATUM(2), &a);
	spend_add(st, lo, aggcxt, a.fast, a.value, a.scale, DatumGetNumeric(a.datum));
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
	{
		a = spend_new(aggcxt, b->nbuckets);
		memcpy(a->bounds, b->bounds, sizeof(TimestampTz) * (b->nbuckets + 1));
	}
	if (a->nbuckets != b->nbuckets ||
		memcmp(a->bounds, b->bounds, sizeof(TimestampTz) * (a->nbuckets + 1)) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("period bounds differ between rows of one group")));
	for (int i = 0; i < a->nbuckets; i++)
	{
		spend_add(a, i, aggcxt, true, b->fast[i].value, b->fast[i].scale,
				  spend_fast_numeric(&b->fast[i]));
		if (b->slow != NULL && b->slow[i] != NULL)
			spend_add(a, i, aggcxt, false, 0, 0, b->slow[i]);
	}
	PG_RETURN_POINTER(a);
}

/* numeric[] of the period sums; a period without rows is 0. */
PG_FUNCTION_INFO_V1(period_spend_final);
Datum
period_spend_final(PG_FUNCTION_ARGS)
{
	SpendState *st;
	Datum	   *sums;

	if (PG_ARGISNULL(0))
		PG_RETURN_NULL();
	st = (SpendState *) PG_GETARG_POINTER(0);
	sums = palloc(sizeof(Datum) * st->nbuckets);
	for (int i = 0; i < st->nbuckets; i++)
		sums[i] = NumericGetDatum(spend_sum(st, i));
	PG_RETURN_ARRAYTYPE_P(construct_array(sums, st->nbuckets, NUMERICOID, -1, false, TYPALIGN_INT));
}

/* Wire form: nbuckets, the bounds, then per period its sum as numeric text. */
PG_FUNCTION_INFO_V1(period_spend_serialize);
Datum
period_spend_serialize(PG_FUNCTION_ARGS)
{
	SpendState *st = (SpendState *) PG_GETARG_POINTER(0);
	StringInfoData buf;

	pq_begintypsend(&buf);
	pq_sendint32(&buf, st->nbuckets);
	for (int i = 0; i <= st->nbuckets; i++)
		pq_sendint64(&buf, st->bounds[i]);
	for (int i = 0; i < st->nbuckets; i++)
		pq_sendstring(&buf, DatumGetCString(DirectFunctionCall1(numeric_out,
																NumericGetDatum(spend_sum(st, i)))));
	PG_RETURN_BYTEA_P(pq_endtypsend(&buf));
}

PG_FUNCTION_INFO_V1(period_spend_deserialize);
Datum
period_spend_deserialize(PG_FUNCTION_ARGS)
{
	bytea	   *b = PG_GETARG_BYTEA_PP(0);
	MemoryContext aggcxt;
	StringInfoData buf;
	SpendState *st;
	int32		n;

	if (!AggCheckCallContext(fcinfo, &aggcxt))
		elog(ERROR, "period_spend_deserialize called in non-aggregate context");
	buf.data = VARDATA_ANY(b);
	buf.len = VARSIZE_ANY_EXHDR(b);
	buf.maxlen = buf.len;
	buf.cursor = 0;
	n = pq_getmsgint(&buf, 4);
	if (n < 1 || n > buf.len)
		elog(ERROR, "invalid period_spend state");
	st = spend_new(aggcxt, n);
	for (int i = 0; i <= n; i++)
		st->bounds[i] = pq_getmsgint64(&buf);
	for (int i = 0; i < n; i++)
	{
		Datum		num = DirectFunctionCall3(numeric_in, CStringGetDatum(pq_getmsgstring(&buf)),
											  ObjectIdGetDatum(InvalidOid), Int32GetDatum(-1));
		Amount		a;

		AmountRead(num, &a);
		spend_add(st, i, aggcxt, a.fast, a.value, a.scale, DatumGetNumeric(num));
	}
	pq_getmsgend(&buf);
	PG_RETURN_POINTER(st);
}
