/*
 * valueclass.c: classes by share of the population, for ABC / Pareto value
 * classes and the value pyramid.
 *
 * Customers are sorted by value, highest first.  Each starts at a share of
 * the population: the share of total positive value held by the customers
 * before it (basis 'value'), or the share of customers before it (basis
 * 'count').  Boundaries b_1 < ... < b_k (cumulative, from the top) make
 * k + 1 classes; a customer belongs to the class in which its start lies
 * (start < b_1: the top class), so a customer straddling a boundary stays in
 * the class where it starts.  Equal values are one block and take the class
 * of the block's start, so ties at a boundary go to the higher class.  A
 * value <= 0 always falls into the bottom class.
 *
 * The result is expressed as k ascending cut points for segtier.score():
 * cut j is the largest value in the bottom j classes (-Infinity when they
 * are empty), so score(v, cuts) is the class of v counted from the bottom.
 */
#include "segtier.h"

#include <math.h>

#include "catalog/pg_type.h"
#include "miscadmin.h"
#include "utils/array.h"
#include "utils/builtins.h"

#define SHARE_MAX_BOUNDS 8
#define SHARE_PPB 1000000000.0

/* share_state params: basis (0 value, 1 count), nbounds, bounds in 1e-9. */
enum
{
	SP_BASIS,
	SP_NBOUNDS,
	SP_BOUND
};

/*
 * Sorts values (in place, descending) and writes nbounds cut points to
 * cuts.  n must be > 0.
 */
static void
share_cuts(float8 *values, int64 n, const float8 *bounds, int nbounds,
		   bool by_value, float8 *cuts)
{
	float8		total = 0;
	float8		before = 0;
	float8		scale;
	int			nclasses = nbounds + 1;

	segtier_sort_float8(values, n);
	for (int64 i = 0, j = n - 1; i < j; i++, j--)
	{
		float8		v = values[i];

		values[i] = values[j];
		values[j] = v;
	}
	/* sums in units of the largest value, so they stay finite */
	scale = values[0] > 0 ? values[0] : 1.0;
	if (by_value)
		for (int64 i = 0; i < n && values[i] > 0; i++)
			total += values[i] / scale;

	for (int j = 0; j < nbounds; j++)
		cuts[j] = -INFINITY;

	for (int64 i = 0; i < n;)
	{
		int64		end = i;
		float8		start;
		int			from_top = 0;
		int			from_bottom;

		/* the tie block [i, end) */
		while (end < n && values[end] == values[i])
			end++;
		start = by_value ? (total > 0 ? before / total : 1.0) : (float8) i / n;
		while (from_top < nbounds && bounds[from_top] <= start)
			from_top++;
		from_bottom = (values[i] > 0) ? nclasses - from_top : 1;

		/* descending order: the first block seen in a class holds its max */
		for (int j = from_bottom; j <= nbounds; j++)
			if (cuts[j - 1] == -INFINITY)
				cuts[j - 1] = values[i];
		if (by_value && values[i] > 0)
			before += values[i] / scale * (end - i);
		i = end;
		CHECK_FOR_INTERRUPTS();
	}
}

/* What every share_state must satisfy. */
static void
share_check(const int32 *param, int64 nvalues, const float8 *values)
{
	int			nb = param[SP_NBOUNDS];

	if (param[SP_BASIS] != 0 && param[SP_BASIS] != 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("share basis must be 0 (value) or 1 (count), not %d", param[SP_BASIS])));
	if (nb < 1 || nb > SHARE_MAX_BOUNDS)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("share boundaries must have 1 to %d elements, not %d", SHARE_MAX_BOUNDS, nb)));
	for (int i = 0; i < nb; i++)
		if (param[SP_BOUND + i] <= (i > 0 ? param[SP_BOUND + i - 1] : 0) ||
			param[SP_BOUND + i] >= (int32) SHARE_PPB)
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("share boundaries must be strictly ascending and between 0 and 1"),
					 errdetail("Boundary %d is %g.", i + 1, param[SP_BOUND + i] / SHARE_PPB)));
	for (int64 i = 0; i < nvalues; i++)
		if (!isfinite(values[i]))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("cannot rank non-finite value %g by share", values[i])));
}

static const char *const share_names[] = {
	"basis", "nbounds", "b1", "b2", "b3", "b4", "b5", "b6", "b7", "b8"
};
static const FloatBagKind share_kind = {"share_state", 10, share_names, share_check};

PG_FUNCTION_INFO_V1(share_state_in);
Datum
share_state_in(PG_FUNCTION_ARGS)
{
	PG_RETURN_DATUM(floatbag_in(PG_GETARG_CSTRING(0), &share_kind));
}

PG_FUNCTION_INFO_V1(share_state_out);
Datum
share_state_out(PG_FUNCTION_ARGS)
{
	PG_RETURN_CSTRING(floatbag_out(PG_GETARG_DATUM(0), &share_kind));
}

PG_FUNCTION_INFO_V1(share_state_recv);
Datum
share_state_recv(PG_FUNCTION_ARGS)
{
	PG_RETURN_DATUM(floatbag_recv((StringInfo) PG_GETARG_POINTER(0), &share_kind));
}

PG_FUNCTION_INFO_V1(share_state_send);
Datum
share_state_send(PG_FUNCTION_ARGS)
{
	PG_RETURN_BYTEA_P(floatbag_send(PG_GETARG_DATUM(0), &share_kind));
}

/* The params of (bounds, basis), validated; the same in every row. */
static void
share_params(FunctionCallInfo fcinfo, int32 *param)
{
	ArrayType  *arr;
	const float8 *bounds;
	int			nb;
	char	   *basis;

	if (PG_ARGISNULL(2) || PG_ARGISNULL(3))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("share boundaries and basis must not be NULL")));
	arr = PG_GETARG_ARRAYTYPE_P(2);
	if (ARR_NDIM(arr) > 1 || (ARR_HASNULL(arr) && array_contains_nulls(arr)))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("share boundaries must be a one-dimensional array without NULLs")));
	nb = ArrayGetNItems(ARR_NDIM(arr), ARR_DIMS(arr));
	bounds = (const float8 *) ARR_DATA_PTR(arr);
	basis = text_to_cstring(PG_GETARG_TEXT_PP(3));
	if (strcmp(basis, "value") == 0)
		param[SP_BASIS] = 0;
	else if (strcmp(basis, "count") == 0)
		param[SP_BASIS] = 1;
	else
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("unknown share basis \"%s\"", basis),
				 errhint("Use 'value' or 'count'.")));
	if (nb < 1 || nb > SHARE_MAX_BOUNDS)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("share boundaries must have 1 to %d elements, not %d", SHARE_MAX_BOUNDS, nb)));
	param[SP_NBOUNDS] = nb;
	for (int i = 0; i < nb; i++)
	{
		if (!(bounds[i] > 0 && bounds[i] < 1) || (i > 0 && bounds[i] <= bounds[i - 1]))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("share boundaries must be strictly ascending and between 0 and 1"),
					 errdetail("Boundary %d is %g.", i + 1, bounds[i])));
		param[SP_BOUND + i] = (int32) rint(bounds[i] * SHARE_PPB);
	}
	share_check(param, 0, NULL);
}

/* Collects one value; NULLs are skipped. */
PG_FUNCTION_INFO_V1(share_trans);
Datum
share_trans(PG_FUNCTION_ARGS)
{
	int32		param[FLOATBAG_NPARAMS] = {0};
	FloatBag   *bag;

	share_params(fcinfo, param);
	bag = floatbag_own(fcinfo, 0, param);
	if (memcmp(bag->param, param, sizeof(param)) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("share boundaries and basis must be the same in every row")));
	if (!PG_ARGISNULL(1))
	{
		float8		v = PG_GETARG_FLOAT8(1);

		if (!isfinite(v))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("cannot rank non-finite value %g by share", v)));
		floatbag_append(bag, &v, 1);
	}
	PG_RETURN_DATUM(EOHPGetRWDatum(&bag->hdr));
}

PG_FUNCTION_INFO_V1(share_combine);
Datum
share_combine(PG_FUNCTION_ARGS)
{
	const FloatBag *other = floatbag_peek(PG_GETARG_DATUM(1));
	FloatBag   *bag = floatbag_own(fcinfo, 0, NULL);

	if (memcmp(bag->param, other->param, sizeof(bag->param)) != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("share boundaries and basis must be the same in every row")));
	floatbag_append(bag, other->values, other->nvalues);
	PG_RETURN_DATUM(EOHPGetRWDatum(&bag->hdr));
}

PG_FUNCTION_INFO_V1(share_final);
Datum
share_final(PG_FUNCTION_ARGS)
{
	FloatBag   *bag = floatbag_own(fcinfo, 0, NULL);
	int			nb = bag->param[SP_NBOUNDS];
	float8		bounds[SHARE_MAX_BOUNDS];
	Datum		out[SHARE_MAX_BOUNDS];
	float8		cuts[SHARE_MAX_BOUNDS];

	if (bag->nvalues == 0)
		PG_RETURN_NULL();
	for (int i = 0; i < nb; i++)
		bounds[i] = bag->param[SP_BOUND + i] / SHARE_PPB;
	share_cuts(bag->values, bag->nvalues, bounds, nb, bag->param[SP_BASIS] == 0, cuts);
	for (int i = 0; i < nb; i++)
		out[i] = Float8GetDatum(cuts[i]);
	PG_RETURN_ARRAYTYPE_P(construct_array(out, nb, FLOAT8OID, sizeof(float8),
										  FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
}
