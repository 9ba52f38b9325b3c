/*
 * kmeans.c: the segtier.kmeans aggregate (deterministic k-means++ and Lloyd)
 * and segtier.nearest_centroid.
 */
#include "segtier.h"

#include <math.h>

#include "catalog/pg_type.h"
#include "miscadmin.h"
#include "utils/array.h"

#define KMEANS_MAX_ITERATIONS 300

/* Parameters of the state: k, seed and the dimension d (0 until known). */
#define KM_K 0
#define KM_SEED 1
#define KM_D 2

/* Distances need finite coordinates. */
static void
kmeans_check_finite(const float8 *x, int64 n, const char *what)
{
	for (int64 i = 0; i < n; i++)
		if (!isfinite(x[i]))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("%s must not contain NaN or infinity", what),
					 errdetail("Element %lld is %g.", (long long) i + 1, x[i])));
}

/* Finite features whose squares or sums do not fit in a float8. */
static void
kmeans_too_large(const char *detail)
{
	ereport(ERROR,
			(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
			 errmsg("feature values are too large for k-means"),
			 errdetail("%s", detail),
			 errhint("Standardize the features first.")));
}

/* k = 0 clusters has no answer; large k is capped by the distinct points. */
static void
kmeans_check_k(int32 k)
{
	if (k < 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("k must be at least 1"),
				 errdetail("k is %d.", k)));
}

/* What kmeans_state input must satisfy (the aggregate never makes anything else). */
static void
kmeans_check(const int32 *param, int64 nvalues, const float8 *values)
{
	kmeans_check_k(param[KM_K]);
	if (param[KM_D] < 0 || (param[KM_D] == 0 && nvalues > 0) ||
		(param[KM_D] > 0 && nvalues % param[KM_D] != 0))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("kmeans state has %lld values, which is not a number of points of dimension %d",
						(long long) nvalues, param[KM_D])));
	kmeans_check_finite(values, nvalues, "kmeans state");
}

static const char *const kmeans_names[] = {"k", "seed", "d"};
static const FloatBagKind kmeans_kind = {"kmeans_state", 3, kmeans_names, kmeans_check};

/* Text and binary I/O of kmeans_state, so Citus can ship it. */
PG_FUNCTION_INFO_V1(kmeans_state_in);
Datum
kmeans_state_in(PG_FUNCTION_ARGS)
{
	PG_RETURN_DATUM(floatbag_in(PG_GETARG_CSTRING(0), &kmeans_kind));
}

PG_FUNCTION_INFO_V1(kmeans_state_out);
Datum
kmeans_state_out(PG_FUNCTION_ARGS)
{
	PG_RETURN_CSTRING(floatbag_out(PG_GETARG_DATUM(0), &kmeans_kind));
}

PG_FUNCTION_INFO_V1(kmeans_state_recv);
Datum
kmeans_state_recv(PG_FUNCTION_ARGS)
{
	PG_RETURN_DATUM(floatbag_recv((StringInfo) PG_GETARG_POINTER(0), &kmeans_kind));
}

PG_FUNCTION_INFO_V1(kmeans_state_send);
Datum
kmeans_state_send(PG_FUNCTION_ARGS)
{
	PG_RETURN_BYTEA_P(floatbag_send(PG_GETARG_DATUM(0), &kmeans_kind));
}

/* Validates a feature vector; returns its dimension and elements. */
static int
kmeans_features(ArrayType *arr, const float8 **x)
{
	int			d;

	if (ARR_ELEMTYPE(arr) != FLOAT8OID)
		elog(ERROR, "features must be float8[]");
	if (ARR_NDIM(arr) == 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("features must not be empty")));
	if (ARR_NDIM(arr) != 1)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("features must be a one-dimensional array")));
	if (array_contains_nulls(arr))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("features must not contain NULLs")));
	d = ARR_DIMS(arr)[0];
	*x = (const float8 *) ARR_DATA_PTR(arr);
	kmeans_check_finite(*x, d, "features");
	return d;
}

/* One aggregate, one k and one seed. */
static void
kmeans_same(const char *what, int32 have, int32 got)
{
	if (have != got)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s must be the same in every row", what),
				 errdetail("Rows have %s = %d and %s = %d.", what, have, what, got)));
}

/* Dimension 0 means no point seen yet. */
static void
kmeans_same_d(FloatBag *bag, int32 d)
{
	if (bag->param[KM_D] == 0)
		bag->param[KM_D] = d;
	else if (d != 0 && bag->param[KM_D] != d)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("all feature arrays must have the same length"),
				 errdetail("Rows have %d and %d features.", bag->param[KM_D], d)));
}

/* Collects one point (seed 0 when not given); NULL points are skipped. */
PG_FUNCTION_INFO_V1(kmeans_trans);
Datum
kmeans_trans(PG_FUNCTION_ARGS)
{
	int32		param[FLOATBAG_NPARAMS] = {0};
	const float8 *x = NULL;
	int			d = 0;
	FloatBag   *bag;

	if (PG_ARGISNULL(2) || (PG_NARGS() > 3 && PG_ARGISNULL(3)))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("k and seed must not be NULL")));
	param[KM_K] = PG_GETARG_INT32(2);
	param[KM_SEED] = PG_NARGS() > 3 ? PG_GETARG_INT32(3) : 0;
	kmeans_check_k(param[KM_K]);
	if (!PG_ARGISNULL(1))
		d = kmeans_features(PG_GETARG_ARRAYTYPE_P(1), &x);
	bag = floatbag_own(fcinfo, 0, param);
	kmeans_same("k", bag->param[KM_K], param[KM_K]);
	kmeans_same("seed", bag->param[KM_SEED], param[KM_SEED]);
	if (x != NULL)
	{
		kmeans_same_d(bag, d);
		floatbag_append(bag, x, d);
	}
	PG_RETURN_DATUM(EOHPGetRWDatum(&bag->hdr));
}

/* Concatenates two partial states. */
PG_FUNCTION_INFO_V1(kmeans_combine);
Datum
kmeans_combine(PG_FUNCTION_ARGS)
{
	const FloatBag *other = floatbag_peek(PG_GETARG_DATUM(1));
	FloatBag   *bag = floatbag_own(fcinfo, 0, NULL);

	kmeans_same("k", bag->param[KM_K], other->param[KM_K]);
	kmeans_same("seed", bag->param[KM_SEED], other->param[KM_SEED]);
	kmeans_same_d(bag, other->param[KM_D]);
	floatbag_append(bag, other->values, other->nvalues);
	PG_RETURN_DATUM(EOHPGetRWDatum(&bag->hdr));
}

/* Whether two points are the same (the sorted points' duplicates merge). */
static bool
kmeans_same_point(const float8 *x, const float8 *y, int d)
{
	for (int j = 0; j < d; j++)
		if (x[j] != y[j])
			return false;
	return true;
}

/* Squared Euclidean distance. */
static inline double
kmeans_dist2(const float8 *x, const float8 *y, int d)
{
	double		s = 0;

	for (int j = 0; j < d; j++)
		s += (x[j] - y[j]) * (x[j] - y[j]);
	return s;
}

/* splitmix64 (Steele, Lea & Flood 2014): a uniform double in [0, 1). */
static double
kmeans_random(uint64 *state)
{
	uint64		z = (*state += UINT64CONST(0x9E3779B97F4A7C15));

	z = (z ^ (z >> 30)) * UINT64CONST(0xBF58476D1CE4E5B9);
	z = (z ^ (z >> 27)) * UINT64CONST(0x94D049BB133111EB);
	z ^= z >> 31;
	return (z >> 11) * (1.0 / (UINT64CONST(1) << 53));
}

/* Index drawn with probability w[i] * f[i] (f NULL: w[i] alone). */
static int64
kmeans_draw(const double *w, const double *f, int64 m, uint64 *rng)
{
	double		total = 0,
				u,
				acc = 0;
	int64		last = 0;

	for (int64 i = 0; i < m; i++)
		total += f ? w[i] * f[i] : w[i];
	if (!isfinite(total))
		kmeans_too_large("Squared distances between points overflow.");
	u = kmeans_random(rng) * total;
	for (int64 i = 0; i < m; i++)
	{
		double		p = f ? w[i] * f[i] : w[i];

		if (p <= 0)
			continue;
		acc += p;
		last = i;
		if (u < acc)
			return i;
	}
	return last;
}

/*
 * k-means++ seeding (Arthur & Vassilvitskii 2007, "k-means++: the advantages
 * of careful seeding", section 2.2): the first centre is a point drawn with
 * probability proportional to its multiplicity, each next one with
 * probability proportional to multiplicity * D(x)^2, D(x) the distance to the
 * nearest centre chosen so far.  Needs m > k distinct points, so D^2 > 0
 * somewhere at every step.
 */
static void
kmeans_seed(const float8 *const *pt, const double *w, int64 m, int d,
			int k, int32 seed, float8 *cent)
{
	uint64		rng = (uint64) (int64) seed;
	double	   *d2 = palloc(m * sizeof(double));
	int64		i = kmeans_draw(w, NULL, m, &rng);

	memcpy(cent, pt[i], d * sizeof(float8));
	for (int64 p = 0; p < m; p++)
		d2[p] = kmeans_dist2(pt[p], cent, d);
	for (int c = 1; c < k; c++)
	{
		CHECK_FOR_INTERRUPTS();
		i = kmeans_draw(w, d2, m, &rng);
		memcpy(cent + (int64) c * d, pt[i], d * sizeof(float8));
		for (int64 p = 0; p < m; p++)
			d2[p] = Min(d2[p], kmeans_dist2(pt[p], cent + (int64) c * d, d));
	}
	pfree(d2);
}

/*
 * The state of Lloyd's iterations: each point's assigned centre with Hamerly's
 * bounds (Hamerly 2010, "Making k-means even faster", SDM), an upper bound
 * on the distance to that centre and a lower bound on the distance to every
 * other, so that most points skip the k distances once the centres settle.
 * A point skips only when its assigned centre is provably nearer than all
 * others by more than rounding (slack), where the full scan would keep it
 * too: the iterations are those of plain Lloyd.
 */
typedef struct KmeansAssignment
{
	int			k;
	int			d;
	int		   *assign;			/* -1 before the first assignment */
	double	   *upper;
	double	   *lower;
	double	   *moved;			/* how far each centre moved in the last step */
	double	   *half_gap;		/* half the distance to the nearest other centre */
	double		slack;
} KmeansAssignment;

/* The nearest centre (lowest index on ties) and the distances to it and to the next nearest. */
static int
kmeans_nearest(const float8 *x, int d, const float8 *cent, int k, double *best2,
			   double *second2)
{
	int			best = 0;
	double		bestd = kmeans_dist2(x, cent, d);
	double		second = HUGE_VAL;

	for (int c = 1; c < k; c++)
	{
		double		dc = kmeans_dist2(x, cent + (int64) c * d, d);

		if (dc < bestd)
		{
			second = bestd;
			best = c;
			bestd = dc;
		}
		else if (dc < second)
			second = dc;
	}
	*best2 = bestd;
	*second2 = second;
	return best;
}

/*
 * Assigns each point to its nearest centre (lowest index on ties), given how
 * far the centres moved since the last call; returns the changes.
 */
static int64
kmeans_assign(const float8 *const *pt, int64 m, const float8 *cent, KmeansAssignment *a)
{
	int			k = a->k,
				d = a->d;
	double		max1 = 0,
				max2 = 0;
	int			far = -1;
	int64		changes = 0;

	for (int c = 0; c < k; c++)
	{
		if (a->moved[c] > max1)
		{
			max2 = max1;
			max1 = a->moved[c];
			far = c;
		}
		else if (a->moved[c] > max2)
			max2 = a->moved[c];
		a->half_gap[c] = HUGE_VAL;
	}
	for (int c = 0; c < k; c++)
	{
		CHECK_FOR_INTERRUPTS();
		for (int o = c + 1; o < k; o++)
		{
			double		half = sqrt(kmeans_dist2(cent + (int64) c * d, cent + (int64) o * d, d)) / 2;

			a->half_gap[c] = Min(a->half_gap[c], half);
			a->half_gap[o] = Min(a->half_gap[o], half);
		}
	}
	for (int64 p = 0; p < m; p++)
	{
		int			was = a->assign[p];
		int			best;
		double		best2,
					second2;

		if (p % 1024 == 0)
			CHECK_FOR_INTERRUPTS();
		if (was >= 0)
		{
			double		z;

			a->upper[p] += a->moved[was];
			a->lower[p] -= (was == far) ? max2 : max1;
			/* an infinite bound is an overflowed distance, not a bound */
			z = Max(a->lower[p], a->half_gap[was]) - a->slack;
			if (isfinite(z) && a->upper[p] < z)
				continue;
			a->upper[p] = sqrt(kmeans_dist2(pt[p], cent + (int64) was * d, d));
			if (isfinite(z) && a->upper[p] < z)
				continue;
		}
		best = kmeans_nearest(pt[p], d, cent, k, &best2, &second2);
		a->upper[p] = sqrt(best2);
		a->lower[p] = sqrt(second2);
		if (was != best)
		{
			a->assign[p] = best;
			changes++;
		}
	}
	return changes;
}

/*
 * Lloyd's iterations (Lloyd 1982): move each centre to the weighted mean of
 * its points, reassign, until no assignment changes or the iteration cap.  A
 * centre that loses all its points stays where it is.
 */
static void
kmeans_lloyd(const float8 *const *pt, const double *w, int64 m, int d,
			 int k, float8 *cent)
{
	KmeansAssignment a = {k, d};
	double	   *sum = palloc(sizeof(double) * k * d);
	double	   *weight = palloc(sizeof(double) * k);
	float8	   *before = palloc(sizeof(float8) * k * d);
	double		scale = 0;

	a.assign = palloc(m * sizeof(int));
	a.upper = palloc(m * sizeof(double));
	a.lower = palloc(m * sizeof(double));
	a.moved = palloc0(k * sizeof(double));
	a.half_gap = palloc(k * sizeof(double));
	for (int64 p = 0; p < m; p++)
	{
		a.assign[p] = -1;
		for (int j = 0; j < d; j++)
			scale = Max(scale, fabs(pt[p][j]));
	}
	/*
	 * Far above the bounds' rounding (a distance is off by about d ulps, the
	 * bounds add up to KMEANS_MAX_ITERATIONS moves), far below real gaps.
	 */
	a.slack = 1e-9 * d * (1 + scale);
	kmeans_assign(pt, m, cent, &a);
	for (int iter = 0; iter < KMEANS_MAX_ITERATIONS; iter++)
	{
		CHECK_FOR_INTERRUPTS();
		memset(sum, 0, sizeof(double) * k * d);
		memset(weight, 0, sizeof(double) * k);
		for (int64 p = 0; p < m; p++)
		{
			double	   *s = sum + (int64) a.assign[p] * d;

			if (p % 16384 == 0)
				CHECK_FOR_INTERRUPTS();

			for (int j = 0; j < d; j++)
				s[j] += w[p] * pt[p][j];
			weight[a.assign[p]] += w[p];
		}
		memcpy(before, cent, sizeof(float8) * k * d);
		for (int c = 0; c < k; c++)
		{
			if (weight[c] == 0)
				continue;
			for (int j = 0; j < d; j++)
				cent[(int64) c * d + j] = sum[(int64) c * d + j] / weight[c];
		}
		for (int64 i = 0; i < (int64) k * d; i++)
			if (!isfinite(cent[i]))
				kmeans_too_large("Sums of the points in a cluster overflow.");
		for (int c = 0; c < k; c++)
			a.moved[c] = sqrt(kmeans_dist2(before + (int64) c * d, cent + (int64) c * d, d));
		if (kmeans_assign(pt, m, cent, &a) == 0)
			break;
	}
	pfree(a.assign);
	pfree(a.upper);
	pfree(a.lower);
	pfree(a.moved);
	pfree(a.half_gap);
	pfree(before);
	pfree(sum);
	pfree(weight);
}

/*
 * Sorts the points, merges duplicates into weights, seeds and iterates; the
 * sort makes every step independent of input order and parallel splitting.
 * Returns min(k, distinct points) centroids in lexicographic order.
 */
PG_FUNCTION_INFO_V1(kmeans_final);
Datum
kmeans_final(PG_FUNCTION_ARGS)
{
	FloatBag   *bag = floatbag_own(fcinfo, 0, NULL);
	int			d = bag->param[KM_D];
	int64		n = d > 0 ? bag->nvalues / d : 0;
	const float8 **pt;
	double	   *w;
	int64		m = 0;
	int			k;
	float8	   *cent;
	Datum	   *elems;
	int			dims[2];
	int			lbs[2] = {1, 1};

	if (n == 0)
		PG_RETURN_NULL();
	floatbag_normalize_zeros(bag);
	segtier_sort_rows(bag->values, n, d, d);
	pt = palloc(n * sizeof(float8 *));
	w = palloc(n * sizeof(double));
	for (int64 i = 0; i < n; i++)
	{
		const float8 *x = bag->values + i * d;

		if (m > 0 && kmeans_same_point(pt[m - 1], x, d))
			w[m - 1] += 1;
		else
		{
			pt[m] = x;
			w[m++] = 1;
		}
	}
	k = (int) Min((int64) bag->param[KM_K], m);
	cent = palloc(sizeof(float8) * k * d);
	if (m == k)
	{
		for (int c = 0; c < k; c++)
			memcpy(cent + (int64) c * d, pt[c], d * sizeof(float8));
	}
	else
	{
		kmeans_seed(pt, w, m, d, k, bag->param[KM_SEED], cent);
		kmeans_lloyd(pt, w, m, d, k, cent);
		segtier_sort_rows(cent, k, d, d);
	}
	elems = palloc(sizeof(Datum) * k * d);
	for (int64 i = 0; i < (int64) k * d; i++)
		elems[i] = Float8GetDatum(cent[i]);
	dims[0] = k;
	dims[1] = d;
	PG_RETURN_ARRAYTYPE_P(construct_md_array(elems, NULL, 2, dims, lbs, FLOAT8OID,
											 sizeof(float8), FLOAT8PASSBYVAL,
											 TYPALIGN_DOUBLE));
}

/* 1-based index of the nearest of k finite centroids (ties: lowest). */
int
segtier_nearest_centroid(const float8 *x, int d, const float8 *cent, int k)
{
	double		best2,
				second2;
	int			best = kmeans_nearest(x, d, cent, k, &best2, &second2);

	/* every distance overflowed: the first centroid is not the answer */
	if (isinf(best2))
		kmeans_too_large("A squared distance to every centroid overflows.");
	return best + 1;
}

/* 1-based index of the nearest centroid row (squared Euclidean; ties: lowest). */
PG_FUNCTION_INFO_V1(nearest_centroid);
Datum
nearest_centroid(PG_FUNCTION_ARGS)
{
	const float8 *x;
	int			d = kmeans_features(PG_GETARG_ARRAYTYPE_P(0), &x);
	ArrayType  *carr = PG_GETARG_ARRAYTYPE_P(1);
	const float8 *cent;
	int			k;

	if (ARR_ELEMTYPE(carr) != FLOAT8OID)
		elog(ERROR, "centroids must be float8[]");
	if (ARR_NDIM(carr) != 2)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("centroids must be a two-dimensional array"),
				 errdetail("One row per centroid, one column per feature.")));
	if (array_contains_nulls(carr))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("centroids must not contain NULLs")));
	if (ARR_DIMS(carr)[1] != d)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("dimension mismatch between features and centroids"),
				 errdetail("There are %d features and %d centroid columns.",
						   d, ARR_DIMS(carr)[1])));
	k = ARR_DIMS(carr)[0];
	cent = (const float8 *) ARR_DATA_PTR(carr);
	kmeans_check_finite(cent, (int64) k * d, "centroids");
	PG_RETURN_INT32(segtier_nearest_centroid(x, d, cent, k));
}

/*
 * The refresh's k-means point of a customer: log(1 + x) of recency,
 * frequency and monetary (negative monetary as 0), standardized with the
 * (mean, sd) pairs of stdz.  A feature that is the same for every buyer (sd
 * 0: the statistics query makes it exactly 0) carries no information and is 0.
 */
void
segtier_cluster_point(float8 recency, float8 frequency, float8 monetary,
					  const float8 *stdz, float8 *x)
{
	float8		raw[3] = {recency, frequency, Max(monetary, 0.0)};

	for (int i = 0; i < 3; i++)
	{
		float8		mean = stdz[2 * i];
		float8		sd = stdz[2 * i + 1];

		x[i] = sd > 0.0 ? (log(1.0 + raw[i]) - mean) / sd : 0.0;
	}
	kmeans_check_finite(x, 3, "features");
}

/* segtier._cluster_features(recency, frequency, monetary, stdz) */
PG_FUNCTION_INFO_V1(cluster_features);
Datum
cluster_features(PG_FUNCTION_ARGS)
{
	ArrayType  *stdz = PG_GETARG_ARRAYTYPE_P(3);
	float8		x[3];
	Datum		d[3];

	if (ARR_ELEMTYPE(stdz) != FLOAT8OID || ARR_NDIM(stdz) != 1 || ARR_DIMS(stdz)[0] != 6 ||
		array_contains_nulls(stdz))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("standardization must be six numbers: the mean and sd of each feature")));
	segtier_cluster_point(PG_GETARG_FLOAT8(0), PG_GETARG_FLOAT8(1),
						  segtier_numeric_float8(PG_GETARG_DATUM(2)),
						  (const float8 *) ARR_DATA_PTR(stdz), x);
	for (int i = 0; i < 3; i++)
		d[i] = Float8GetDatum(x[i]);
	PG_RETURN_ARRAYTYPE_P(construct_array(d, 3, FLOAT8OID, sizeof(float8), FLOAT8PASSBYVAL, TYPALIGN_DOUBLE));
}
