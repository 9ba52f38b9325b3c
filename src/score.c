/*
 * score.c: segtier.score, the placing of a value among ascending cut points.
 */
#include "segtier.h"

#include <math.h>

#include "catalog/pg_type.h"
#include "utils/array.h"

/*
 * Reads a float8[] of cut points: no NULLs, ascending (equal neighbours are
 * allowed: they make an empty group).  Returns the count; *cuts points into
 * the array or a copy.
 */
int
segtier_get_cuts(ArrayType *arr, const float8 **cuts)
{
	int			n;

	if (ARR_NDIM(arr) > 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("cut points must be a one-dimensional array")));
	if (ARR_ELEMTYPE(arr) != FLOAT8OID)
		elog(ERROR, "cut points must be float8[]");
	if (ARR_HASNULL(arr) && array_contains_nulls(arr))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("cut points must not contain NULLs")));
	n = ArrayGetNItems(ARR_NDIM(arr), ARR_DIMS(arr));
	*cuts = (const float8 *) ARR_DATA_PTR(arr);
	for (int i = 0; i < n; i++)
	{
		if (isnan((*cuts)[i]))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("cut points must not contain NaN")));
		if (i > 0 && (*cuts)[i] < (*cuts)[i - 1])
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("cut points must be in ascending order"),
					 errdetail("Cut point %d (%g) is below cut point %d (%g).",
							   i + 1, (*cuts)[i], i, (*cuts)[i - 1])));
	}
	return n;
}

/* 1 + the number of cut points strictly below the value. */
int
segtier_score(float8 value, const float8 *cuts, int ncuts, bool higher_is_better)
{
	int			lo = 0,
				hi = ncuts;

	if (isnan(value))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("cannot score NaN")));
	/* binary search for the number of cuts < value */
	while (lo < hi)
	{
		int			mid = (lo + hi) / 2;

		if (cuts[mid] < value)
			lo = mid + 1;
		else
			hi = mid;
	}
	return higher_is_better ? 1 + lo : ncuts + 1 - lo;
}

PG_FUNCTION_INFO_V1(score);
Datum
score(PG_FUNCTION_ARGS)
{
	const float8 *cuts;
	int			n = segtier_get_cuts(PG_GETARG_ARRAYTYPE_P(1), &cuts);

	PG_RETURN_INT32(segtier_score(PG_GETARG_FLOAT8(0), cuts, n, PG_GETARG_BOOL(2)));
}
