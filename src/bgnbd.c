/*
 * bgnbd.c: the BG/NBD purchase model of Fader, Hardie & Lee (2005),
 * "Counting Your Customers the Easy Way", Marketing Science 24(2): the
 * bgnbd_fit aggregate, P(alive), expected purchases and the log-likelihood.
 *
 * A customer's history is (x, t_x, T): x repeat purchases, the last at t_x,
 * observed for T, all in the user's time unit.
 */
#include "segtier.h"

#include <float.h>
#include <math.h>

#include "funcapi.h"
#include "miscadmin.h"
#include "utils/builtins.h"

#define BGNBD_NKEYS 3

/* Checks (x, t_x, T) and zeroes t_x when x = 0 (the model ignores it). */
void
bgnbd_check_customer(float8 *key)
{
	segtier_check_finite("frequency", key[0]);
	segtier_check_finite("recency", key[1]);
	segtier_check_finite("t", key[2]);
	if (key[0] < 0.0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("frequency must not be negative"),
				 errdetail("Got frequency %g.", key[0])));
	if (key[0] != floor(key[0]))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("frequency must be a whole number"),
				 errdetail("Got frequency %g; it counts repeat purchases.", key[0])));
	if (key[2] < 0.0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("t must not be negative"),
				 errdetail("Got t %g.", key[2])));
	if (key[1] < 0.0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("recency must not be negative"),
				 errdetail("Got recency %g.", key[1])));
	if (key[1] > key[2])
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("recency must not be greater than t"),
				 errdetail("Got recency %g and t %g.", key[1], key[2])));
	if (key[0] == 0.0)
		key[1] = 0.0;
}

/* A bgnbd_fit row: checked, never skipped. */
static bool
bgnbd_row(float8 *key)
{
	bgnbd_check_customer(key);
	return false;
}

/* Reads r, alpha, a, b from a segtier.bgnbd value. */
void
bgnbd_get_params(HeapTupleHeader rec, BgnbdParams *p)
{
	static const char *const names[] = {"r", "alpha", "a", "b"};
	float8		v[4];

	for (int i = 0; i < 4; i++)
	{
		bool		isnull;

		v[i] = DatumGetFloat8(GetAttributeByNum(rec, i + 1, &isnull));
		if (isnull)
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("BG/NBD parameter %s is NULL", names[i])));
		if (!(v[i] > 0.0 && v[i] < HUGE_VAL))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("BG/NBD parameter %s must be a finite number > 0",
							names[i]),
					 errdetail("Got %s = %g.", names[i], v[i])));
	}
	p->r = v[0];
	p->alpha = v[1];
	p->a = v[2];
	p->b = v[3];
}

static void
bgnbd_state_check(float8 *key)
{
	bgnbd_check_customer(key);
}

PG_FUNCTION_INFO_V1(bgnbd_state_in);
Datum
bgnbd_state_in(PG_FUNCTION_ARGS)
{
	PG_RETURN_POINTER(hist_from_cstring(PG_GETARG_CSTRING(0), BGNBD_NKEYS,
										bgnbd_state_check, "bgnbd_state"));
}

PG_FUNCTION_INFO_V1(bgnbd_state_out);
Datum
bgnbd_state_out(PG_FUNCTION_ARGS)
{
	PG_RETURN_CSTRING(hist_to_cstring(PG_GETARG_HIST_P(0)));
}

PG_FUNCTION_INFO_V1(bgnbd_state_recv);
Datum
bgnbd_state_recv(PG_FUNCTION_ARGS)
{
	PG_RETURN_POINTER(hist_from_buf((StringInfo) PG_GETARG_POINTER(0),
									BGNBD_NKEYS, bgnbd_state_check));
}

PG_FUNCTION_INFO_V1(bgnbd_state_send);
Datum
bgnbd_state_send(PG_FUNCTION_ARGS)
{
	PG_RETURN_BYTEA_P(hist_to_bytea(PG_GETARG_HIST_P(0)));
}

/* Transition of bgnbd_fit: rows with a NULL are skipped. */
PG_FUNCTION_INFO_V1(bgnbd_accum);
Datum
bgnbd_accum(PG_FUNCTION_ARGS)
{
	return hist_accumulate(fcinfo, BGNBD_NKEYS, bgnbd_row);
}

PG_FUNCTION_INFO_V1(bgnbd_combine);
Datum
bgnbd_combine(PG_FUNCTION_ARGS)
{
	return hist_combine(fcinfo);
}

/* Whole-day times below this bound index a table by value (at most 16 MB) */
#define BGNBD_SLOT_LIMIT 4194304.0

/* A repeat customer's history as indexes into the fit's tables. */
typedef struct BgnbdRepeat
{
	int32		xi;				/* index into xs */
	int32		ti;				/* index of t_x into times */
	int32		Ti;				/* index of T into times */
	float8		n;				/* customers with this history */
} BgnbdRepeat;

/*
 * The histogram rearranged for fast likelihood evaluations: the terms that
 * depend only on x are computed once per distinct x, the logarithms of
 * alpha + t once per distinct time value, leaving one exp and one log1p per
 * distinct repeat-customer history.
 */
typedef struct BgnbdData
{
	int			nx;
	float8	   *xs;				/* distinct x, ascending */
	float8	   *xcount;			/* customers per distinct x */
	int			ntimes;
	float8	   *times;			/* distinct t_x and T values, ascending */
	int32	   *slot;			/* whole days: index into times by value */
	float8	   *zero;			/* customers with x = 0, by T index */
	int			nrep;
	BgnbdRepeat *rep;			/* histories with x > 0 */
	float8		penalty;		/* penalizer times customers */
	float8		alpha_scale;	/* 10 / max T, as lifetimes scales alpha */
	/* scratch for one evaluation */
	float8	   *lu;				/* log(alpha + times[j]) */
	float8	   *inv;			/* 1 / (alpha + times[j]) */
	float8	   *lbx;			/* log(b + x - 1) per distinct x */
	float8	   *ibx;			/* 1 / (b + x - 1) per distinct x */
} BgnbdData;

static int
float8_cmp(const void *pa, const void *pb)
{
	float8		a = *(const float8 *) pa;
	float8		b = *(const float8 *) pb;

	return a < b ? -1 : (a > b ? 1 : 0);
}

static int
time_index(const BgnbdData *d, float8 t)
{
	float8	   *hit;

	if (d->slot != NULL)
		return d->slot[(int32) t];
	hit = bsearch(&t, d->times, d->ntimes, sizeof(float8), float8_cmp);
	if (hit == NULL)
		elog(ERROR, "time value %g missing from the BG/NBD time table", t);
	return hit - d->times;
}

/*
 * The distinct times, ascending.  Whole days (as the refresh fits) index a
 * table by value; other times are sorted and searched.
 */
static void
bgnbd_times(BgnbdData *d, const HistEntry *e, int m, float8 maxT)
{
	bool		whole = maxT < BGNBD_SLOT_LIMIT;
	int			nt = 0;

	for (int i = 0; i < m && whole; i++)
		whole = e[i].key[1] == floor(e[i].key[1]) && e[i].key[2] == floor(e[i].key[2]);
	if (whole)
	{
		int32		nslots = (int32) maxT + 1;

		d->slot = palloc(sizeof(int32) * nslots);
		memset(d->slot, 0xFF, sizeof(int32) * nslots);
		for (int i = 0; i < m; i++)
		{
			d->slot[(int32) e[i].key[2]] = 0;
			if (e[i].key[0] > 0.0)
				d->slot[(int32) e[i].key[1]] = 0;
		}
		d->times = palloc(sizeof(float8) * Min(nslots, 2 * m));
		for (int32 v = 0; v < nslots; v++)
		{
			if (d->slot[v] == 0)
			{
				d->times[d->ntimes] = v;
				d->slot[v] = d->ntimes++;
			}
		}
		return;
	}
	d->times = palloc(sizeof(float8) * 2 * m);
	for (int i = 0; i < m; i++)
	{
		d->times[nt++] = e[i].key[2];
		if (e[i].key[0] > 0.0)
			d->times[nt++] = e[i].key[1];
	}
	segtier_sort_float8(d->times, nt);
	for (int i = 0; i < nt; i++)
	{
		if (d->ntimes == 0 || d->times[d->ntimes - 1] != d->times[i])
			d->times[d->ntimes++] = d->times[i];
	}
}

/* Builds the tables from the sorted histogram entries. */
static void
bgnbd_prepare(BgnbdData *d, const HistEntry *e, int m, float8 penalizer)
{
	float8		customers = 0.0;
	float8		maxT = 0.0;

	memset(d, 0, sizeof(*d));
	d->xs = palloc(sizeof(float8) * m);
	d->xcount = palloc(sizeof(float8) * m);
	d->rep = palloc(sizeof(BgnbdRepeat) * m);
	for (int i = 0; i < m; i++)
	{
		if (d->nx == 0 || d->xs[d->nx - 1] != e[i].key[0])
		{
			d->xs[d->nx++] = e[i].key[0];
			d->xcount[d->nx - 1] = 0.0;
		}
		d->xcount[d->nx - 1] += (float8) e[i].n;
		customers += (float8) e[i].n;
		maxT = Max(maxT, e[i].key[2]);
	}
	bgnbd_times(d, e, m, maxT);
	d->zero = palloc0(sizeof(float8) * d->ntimes);
	for (int i = 0, xi = 0; i < m; i++)
	{
		while (d->xs[xi] != e[i].key[0])
			xi++;
		if (e[i].key[0] == 0.0)
			d->zero[time_index(d, e[i].key[2])] += (float8) e[i].n;
		else
		{
			BgnbdRepeat *r = &d->rep[d->nrep++];

			r->xi = xi;
			r->ti = time_index(d, e[i].key[1]);
			r->Ti = time_index(d, e[i].key[2]);
			r->n = (float8) e[i].n;
		}
	}
	d->penalty = penalizer * customers;
	d->alpha_scale = maxT > 0.0 ? 10.0 / maxT : 1.0;
	d->lu = palloc(sizeof(float8) * d->ntimes);
	d->inv = palloc(sizeof(float8) * d->ntimes);
	d->lbx = palloc(sizeof(float8) * d->nx);
	d->ibx = palloc(sizeof(float8) * d->nx);
}

/* A1 and A2 but for r ln(alpha), of x > 0 (both are 0 at x = 0) */
static inline float8
bgnbd_gamma_terms(float8 r, float8 a, float8 b, float8 x)
{
	return segtier_lgamma_step(r, x) + segtier_lgamma_step(b, x) - segtier_lgamma_step(a + b, x);
}

/*
 * The penalised log-likelihood of the histogram with gradient and Hessian in
 * (r, alpha, a, b).  Per customer (FHL 2005 eq. 6, in the form of Fader &
 * Hardie's note 027 that cannot overflow):
 *   LL = A1 + A2 + A3 + [x > 0] log(1 + exp(D)),
 *   A1 = lnG(r + x) - lnG(r) + r ln(alpha),
 *   A2 = lnG(a + b) + lnG(b + x) - lnG(b) - lnG(a + b + x),
 *   A3 = -(r + x) ln(alpha + T),
 *   D  = ln(a) - ln(b + x - 1) + (r + x) (ln(alpha + T) - ln(alpha + t_x)),
 * and log(1 + exp(D)) is evaluated as max(D, 0) + log1p(exp(-|D|)).  The
 * gamma-function differences of A1 and A2 are taken as such (see
 * segtier_lgamma_step): as differences of lgamma values they lose their
 * digits once r, a + b or b are large.  The penalty is penalizer *
 * customers * (r^2 + (alpha * 10 / max T)^2 + a^2 + b^2), lifetimes'
 * penalizer_coef on its time-scaled parameters.
 */
static float8
bgnbd_objective(const float8 *th, float8 *g, float8 *H, void *arg)
{
	BgnbdData  *d = arg;
	float8		r = th[0],
				al = th[1],
				a = th[2],
				b = th[3];
	float8		lal = log(al),
				la = log(a);
	float8		p1r = segtier_trigamma(r),
				p1ab = segtier_trigamma(a + b),
				p1b = segtier_trigamma(b);
	float8		f = 0.0;
	float8		c[4];

	memset(g, 0, sizeof(float8) * 4);
	memset(H, 0, sizeof(float8) * 16);
	for (int j = 0; j < d->ntimes; j++)
	{
		d->inv[j] = 1.0 / (al + d->times[j]);
		d->lu[j] = log(al + d->times[j]);
	}

	/* A1 and A2: once per distinct x */
	for (int i = 0; i < d->nx; i++)
	{
		float8		x = d->xs[i];
		float8		N = d->xcount[i];
		float8		psab;

		f += N * r * lal;
		g[0] += N * lal;
		g[1] += N * r / al;
		H[1] += N / al;
		H[5] -= N * r / (al * al);
		if (x == 0.0)
			continue;
		psab = segtier_digamma_step(a + b, x);
		f += N * bgnbd_gamma_terms(r, a, b, x);
		g[0] += N * segtier_digamma_step(r, x);
		g[2] -= N * psab;
		g[3] += N * (segtier_digamma_step(b, x) - psab);
		H[0] += N * (segtier_trigamma(r + x) - p1r);
		H[10] += N * (p1ab - segtier_trigamma(a + b + x));
		H[11] += N * (p1ab - segtier_trigamma(a + b + x));
		H[15] += N * (p1ab + segtier_trigamma(b + x) - p1b -
					  segtier_trigamma(a + b + x));
		d->lbx[i] = log(b + x - 1.0);
		d->ibx[i] = 1.0 / (b + x - 1.0);
	}

	/* A3 of the customers without repeat purchases, by T */
	for (int j = 0; j < d->ntimes; j++)
	{
		float8		n = d->zero[j];

		if (n == 0.0)
			continue;
		f -= n * r * d->lu[j];
		g[0] -= n * d->lu[j];
		g[1] -= n * r * d->inv[j];
		H[1] -= n * d->inv[j];
		H[5] += n * r * d->inv[j] * d->inv[j];
	}

	/* A3 and the log(1 + exp(D)) term of each repeat history */
	for (int i = 0; i < d->nrep; i++)
	{
		const BgnbdRepeat *e = &d->rep[i];
		float8		n = e->n;
		float8		rx = r + d->xs[e->xi];
		float8		uT = d->lu[e->Ti],
					iT = d->inv[e->Ti];
		float8		diff_u = uT - d->lu[e->ti];
		float8		diff_i = iT - d->inv[e->ti];
		float8		D = la - d->lbx[e->xi] + rx * diff_u;
		float8		q = exp(-fabs(D));
		float8		s = (D >= 0.0 ? 1.0 : q) / (1.0 + q);
		float8		ns = n * s,
					ns1 = n * q / ((1.0 + q) * (1.0 + q));
		float8		dD[4];

		f += n * (Max(D, 0.0) + log1p(q) - rx * uT);
		dD[0] = diff_u;
		dD[1] = rx * diff_i;
		dD[2] = 1.0 / a;
		dD[3] = -d->ibx[e->xi];
		g[0] += ns * dD[0] - n * uT;
		g[1] += ns * dD[1] - n * rx * iT;
		g[2] += ns * dD[2];
		g[3] += ns * dD[3];
		for (int p = 0; p < 4; p++)
			for (int k = p; k < 4; k++)
				H[p * 4 + k] += ns1 * dD[p] * dD[k];
		H[1] += ns * diff_i - n * iT;
		H[5] += ns * rx * (d->inv[e->ti] * d->inv[e->ti] - iT * iT) +
			n * rx * iT * iT;
		H[10] -= ns / (a * a);
		H[15] += ns * d->ibx[e->xi] * d->ibx[e->xi];
	}

	/* the L2 penalty */
	c[0] = 1.0;
	c[1] = d->alpha_scale;
	c[2] = 1.0;
	c[3] = 1.0;
	for (int p = 0; p < 4; p++)
	{
		float8		w = d->penalty * c[p] * c[p];

		f -= w * th[p] * th[p];
		g[p] -= 2.0 * w * th[p];
		H[p * 4 + p] -= 2.0 * w;
	}
	for (int p = 0; p < 4; p++)
		for (int k = 0; k < p; k++)
			H[p * 4 + k] = H[k * 4 + p];
	return f;
}

/*
 * Final function of bgnbd_fit: the maximum-likelihood (r, alpha, a, b).
 * Newton from a neutral start; two more starts only if that one fails.
 */
PG_FUNCTION_INFO_V1(bgnbd_final);
Datum
bgnbd_final(PG_FUNCTION_ARGS)
{
	const Hist *h = PG_GETARG_HIST_P(0);
	TupleDesc	tupdesc;
	BgnbdData	d;
	HistEntry  *e;
	int			m;
	float8		meanT = 0.0,
				customers = 0.0;
	float8		best[4] = {0},
				bestf = -HUGE_VAL,
				penalty = 0.0;
	bool		converged = false;
	Datum		values[6];
	bool		nulls[6] = {0};
	int64		count = 0;
	bool		repeats = false;

	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "bgnbd_final must return a composite type");
	e = hist_sorted(h, &m);
	if (m == 0)
		PG_RETURN_NULL();
	for (int i = 0; i < m; i++)
	{
		meanT += e[i].key[2] * (float8) e[i].n;
		customers += (float8) e[i].n;
		count += e[i].n;
		repeats |= e[i].key[0] > 0.0;
	}
	if (meanT == 0.0)
	{
		/* nobody watched for any time: every parameter gives likelihood 1 */
		ereport(WARNING,
				(errmsg("BG/NBD fit has no customer observed for any time"),
				 errdetail("Every t is 0, so the data do not identify the parameters; the fit is NULL.")));
		PG_RETURN_NULL();
	}
	if (!repeats)
	{
		/* the likelihood rises as r goes to 0 and does not depend on a and b */
		ereport(WARNING,
				(errmsg("BG/NBD fit has no repeat purchase"),
				 errdetail("Every frequency is 0, so the data do not identify the parameters; the fit is NULL.")));
		PG_RETURN_NULL();
	}
	meanT /= customers;
	bgnbd_prepare(&d, e, m, h->penalizer);

	{
		const float8 starts[3][4] = {
			{1.0, meanT, 1.0, 1.0},
			{0.1, meanT / 10.0, 0.5, 2.0},
			{3.0, meanT * 3.0, 3.0, 10.0},
		};

		for (int s = 0; s < 3 && !converged; s++)
		{
			float8		th[4];
			float8		fx;

			memcpy(th, starts[s], sizeof(th));
			converged = segtier_maximize(4, th, bgnbd_objective, &d, &fx);
			if (s == 0 || fx > bestf || converged)
			{
				memcpy(best, th, sizeof(best));
				bestf = fx;
			}
		}
	}
	/* only sums of huge inputs (the mean, the start) make the objective NaN */
	if (isnan(bestf))
		ereport(ERROR,
				(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
				 errmsg("values are too large for the BG/NBD fit"),
				 errhint("Measure recency and t in a larger time unit.")));
	if (!converged)
		ereport(WARNING,
				(errmsg("BG/NBD fit did not converge"),
				 errdetail("The data may not identify the parameters."),
				 errhint("A small penalizer, e.g. 0.001, keeps the parameters finite.")));

	penalty = d.penalty * (best[0] * best[0] +
						   pow(best[1] * d.alpha_scale, 2) +
						   best[2] * best[2] + best[3] * best[3]);
	for (int i = 0; i < 4; i++)
		values[i] = Float8GetDatum(best[i]);
	values[4] = Float8GetDatum(bestf + penalty);
	values[5] = Int64GetDatum(count);
	tupdesc = BlessTupleDesc(tupdesc);
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(tupdesc, values, nulls)));
}

/* Reads and checks the (x, t_x, T) arguments starting at argument i. */
static void
get_customer(FunctionCallInfo fcinfo, int i, float8 *key)
{
	key[0] = PG_GETARG_FLOAT8(i);
	key[1] = PG_GETARG_FLOAT8(i + 1);
	key[2] = PG_GETARG_FLOAT8(i + 2);
	bgnbd_check_customer(key);
}

/* D = ln(1/P(alive) - 1) of a repeat customer (see bgnbd_objective). */
static float8
bgnbd_log_odds_dead(const BgnbdParams *p, const float8 *key)
{
	float8		x = key[0];

	return log(p->a) - log(p->b + x - 1.0) +
		(p->r + x) * (log(p->alpha + key[2]) - log(p->alpha + key[1]));
}

/* P(alive | x, t_x, T) (FHL 2005 eq. 11 as a logistic function of D). */
float8
bgnbd_p_alive_key(const BgnbdParams *p, const float8 *key)
{
	float8		D;

	if (key[0] == 0.0)
		return 1.0;
	D = bgnbd_log_odds_dead(p, key);
	return D >= 0.0 ? exp(-D) / (1.0 + exp(-D)) : 1.0 / (1.0 + exp(D));
}

#define HYPERGEOMETRIC_MAX_TERMS 100000000

/* Past this (a-1) ln(1 + t/(alpha+T)), Q' would overflow (see bgnbd_expected_alive). */
#define EULER_MAX_EXPONENT 500.0

static void
hypergeometric_check(int k, float8 t, float8 w)
{
	if (k >= HYPERGEOMETRIC_MAX_TERMS)
		ereport(ERROR,
				(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
				 errmsg("hypergeometric series did not converge"),
				 errdetail("The horizon %g is too long for alpha + t = %g.", t, w)));
	if (k % 1000000 == 0)
		CHECK_FOR_INTERRUPTS();
}

/*
 * The numerator of eq. 10 (below) from the untransformed series, for a
 * large a: 1 - S with S = (1-z)^A 2F1(A, B; C; z), A = r+x, B = b+x,
 * C = a+b+x-1 > B.  The terms are positive and, once they fall, fall by at
 * most z max(1, (A+k)/(k+1)) each; they are rescaled as they grow, and
 * ln S = A ln(1-z) + ln 2F1.  1 - S loses about log10(C/(a-1)) digits.
 */
static float8
bgnbd_expected_direct(const BgnbdParams *p, float8 t, float8 w, float8 x, float8 z, float8 L)
{
	float8		A = p->r + x;
	float8		B = p->b + x;
	float8		C = p->a + p->b + x - 1.0;
	float8		term = 1.0;
	float8		G = 0.0;		/* the terms after the first, times exp(-shift) */
	float8		shift = 0.0;

	for (int k = 0;; k++)
	{
		float8		ratio = (A + k) * (B + k) / ((C + k) * (k + 1.0)) * z;
		float8		rho = z * Max(1.0, (A + k + 1.0) / (k + 2.0));

		term *= ratio;
		G += term;
		if (term == 0.0 || (rho < 1.0 && term * rho / (1.0 - rho) <= 1e-17 * G))
			break;
		if (G > 1e250)
		{
			G *= 1e-250;
			term *= 1e-250;
			shift += 250.0 * M_LN10;
		}
		hypergeometric_check(k + 1, t, w);
	}
	return C / (p->a - 1.0) * -expm1(A * L + (shift == 0.0 ? log1p(G) : shift + log(G)));
}

/*
 * The numerator of eq. 10 (below) when b is large: with C = a+b+x-1,
 * C' = C-r-x and sum_k (a-1)_k z^k / k! = (1-z)^(1-a), the bracket of the
 * Euler-transformed form is
 *   1 - (1-z)^(a-1) 2F1(C', a-1; C; z)
 *     = (1-z)^(a-1) sum_{k>=1} [1 - (C')_k / (C)_k] (a-1)_k z^k / k!,
 * so the numerator is (1-z)^(a-1) sum_{k>=1} v_k (a)_(k-1) z^k / k! with
 * v_k = C [1 - (C')_k / (C)_k]: about k (r+x) while k (r+x) << C, where the
 * Q' form below subtracts two numbers of the size of C.  v_k is built up
 * without a difference: v_1 = r+x, v_(k+1) = v_k + d_k (r+x) / (C+k),
 * d_k = C (C')_k / (C)_k.  The sum grows to about (1-z)^(1-a) and is
 * rescaled as it grows.
 */
static float8
bgnbd_expected_positive(const BgnbdParams *p, float8 t, float8 w, float8 x, float8 z, float8 L)
{
	float8		A = p->r + x;
	float8		C = p->a + p->b + x - 1.0;
	float8		Cp = C - A;
	float8		g = z;			/* (a)_(k-1) z^k / k! */
	float8		d = Cp;
	float8		v = A;
	float8		S = 0.0;
	float8		shift = 0.0;

	for (int k = 1;; k++)
	{
		float8		gratio = (p->a + k - 1.0) / (k + 1.0) * z;

		S += v * g;
		/*
		 * Past k > -C' the d_k keep one sign and fall in size, so each later
		 * v moves by at most |d_k| (r+x) / (C+k), and the g fall by at least
		 * rho a step.
		 */
		if (k > -Cp && gratio < 1.0)
		{
			float8		rho = Max(gratio, z);

			if (g * (fabs(v) + fabs(d) * A / (C + k) / (1.0 - rho)) * rho / (1.0 - rho) <= 1e-17 * fabs(S))
				break;
		}
		v += d * A / (C + k);
		d *= (Cp + k) / (C + k);
		g *= gratio;
		if (g == 0.0)
			break;
		if (fabs(S) > 1e250)
		{
			S *= 1e-250;
			g *= 1e-250;
			shift += 250.0 * M_LN10;
		}
		hypergeometric_check(k, t, w);
	}
	return exp((p->a - 1.0) * L + shift) * S;
}

/*
 * The numerator of eq. 10 (below) as b grows, for a large a, where neither
 * series is accurate: with C = a+b+x-1 and q = (b+x)/C, (b+x)_k / (C)_k
 * tends to q^k, so 2F1(r+x, b+x; C; z) tends to (1 - q z)^-(r+x) and the
 * numerator to C/(a-1) [1 - (1 + (a-1) t / (C w))^-(r+x)], w = alpha + T,
 * which sums nothing and loses no digits.  With m = (r+x) t/w, its relative
 * error is about (m + 1 + m/(r+x)) / (2 b): the second moment of the
 * series' terms, each off by about k^2 (a-1) / (2 b C), over 1 - S.  As b/a
 * grows it is the expectation of the NBD model, (r+x) t/w, of customers
 * who never drop out.
 */
static float8
bgnbd_expected_limit(const BgnbdParams *p, float8 t, float8 w, float8 x)
{
	float8		C = p->a + p->b + x - 1.0;

	return C / (p->a - 1.0) * -expm1(-(p->r + x) * log1p((p->a - 1.0) * t / (C * w)));
}

/*
 * E[Y(t) | x, t_x, T] (FHL 2005 eq. 10); with x = t_x = T = 0 it is E[X(t)]
 * (eq. 9).  The numerator of eq. 10 is
 *   (a+b+x-1)/(a-1) [1 - (1-z)^(r+x) 2F1(r+x, b+x; a+b+x-1; z)],
 *   z = t / (alpha + T + t).
 * Euler's transformation 2F1(A,B;C;z) = (1-z)^(C-A-B) 2F1(C-A,C-B;C;z)
 * turns it into
 *   (a+b+x-1)/(a-1) [1 - (1-z)^(a-1) 2F1(a+b-1-r, a-1; a+b+x-1; z)],
 * whose series has parameters that do not grow with x (no overflow for large
 * frequencies; the terms fall by about z each).  Every term of that series
 * after the first carries the factor (a-1) = (C-B), so with y = (a-1) ln(1-z)
 * the numerator is, without a division by a-1,
 *   (a+b+x-1) [-ln(1-z) expm1(y)/y] - (1-z)^(a-1) Q',
 *   Q' = (a+b+x-1) sum_{k>=1} (a+b-1-r)_k (a)_(k-1) / ((a+b+x-1)_k k!) z^k,
 * continuous through a = 1; summing Q' (the first factor of (a+b+x-1)_k
 * cancelled) keeps it finite when a+b+x-1 is 0 or near it.  Its terms fall
 * faster than those of bgnbd_expected_positive (like k^-(r+x) z^k), but
 * the difference loses about log10((a+b+x-1) / (r+x)) digits: past 3 that
 * function sums the numerator instead.  Q' grows to about exp(-y), so past
 * -y = EULER_MAX_EXPONENT (a large a, as a fit of customers who all drop out
 * alike gives) the untransformed series, which falls at once, is summed
 * instead, unless b is so much larger than a that its 1 - S would lose more
 * digits than the about (a-1) t / (alpha+T) terms of the positive series
 * add rounding.  While k < -(a+b-1-r) (r much larger than a+b, as a fit of
 * customers who all buy at one rate gives) the terms of Q' alternate in
 * sign and cancel by about exp(2 (r+1-a-b) z): the untransformed series,
 * whose terms are positive (for a+b+x-1 > 0), is summed instead where it
 * loses fewer digits.  For a large a, where the untransformed series loses
 * about C/(a-1) units of rounding and the positive one about (a-1) t/w, the
 * limit of bgnbd_expected_limit is taken instead when its error is smaller.
 * This is E[Y(t)] of a customer known to be alive; times P(alive) (the
 * denominator of eq. 10) it is eq. 10, which is what callers that need
 * several horizons of one customer multiply once.
 */
float8
bgnbd_expected_alive(const BgnbdParams *p, float8 t, const float8 *key)
{
	float8		x = key[0];
	float8		w = p->alpha + key[2];
	float8		z = t / (w + t);
	float8		L = -log1p(t / w);
	float8		y = (p->a - 1.0) * L;
	float8		Ap = p->a + p->b - 1.0 - p->r;
	float8		Cp = p->a + p->b + x - 1.0;
	float8		term = Ap * z;
	float8		Q = 0.0;

	if (t == 0.0)
		return 0.0;
	if (-y > EULER_MAX_EXPONENT)
	{
		float8		m = (p->r + x) * t / w;

		if ((m + 1.0 + m / (p->r + x)) / (2.0 * p->b * DBL_EPSILON) <
			Min(Cp / (p->a - 1.0), (p->a - 1.0) * t / w))
			return bgnbd_expected_limit(p, t, w, x);
	}
	if ((-y > EULER_MAX_EXPONENT && Cp / (p->a - 1.0) < (p->a - 1.0) * t / w) ||
		(Ap < 0.0 && Cp > 0.0 && -2.0 * Ap * z > log(fabs(Cp / (p->a - 1.0)))))
		return bgnbd_expected_direct(p, t, w, x, z, L);
	if (-y > EULER_MAX_EXPONENT || Cp > 1000.0 * (p->r + x))
		return bgnbd_expected_positive(p, t, w, x, z, L);
	for (int k = 1;; k++)
	{
		float8		ratio;

		Q += term;
		ratio = (Ap + k) * (p->a + k - 1.0) / ((Cp + k) * (k + 1.0)) * z;	/* Cp + k > 0 */
		term *= ratio;
		if (term == 0.0)
			break;
		/* past k > -Ap the terms keep one sign and the ratio stays below 1 */
		if (k > -Ap && ratio < 1.0)
		{
			float8		rho = Max(ratio, z);

			if (fabs(term) * rho / (1.0 - rho) <= 1e-17 * fabs(Q))
			{
				Q += term;
				break;
			}
		}
		hypergeometric_check(k, t, w);
	}
	return Cp * -L * (y == 0.0 ? 1.0 : expm1(y) / y) - exp(y) * Q;
}

static float8
bgnbd_expected(const BgnbdParams *p, float8 t, const float8 *key)
{
	return bgnbd_expected_alive(p, t, key) * bgnbd_p_alive_key(p, key);
}

/* The log-likelihood of one customer's history (see bgnbd_objective). */
PG_FUNCTION_INFO_V1(bgnbd_loglik);
Datum
bgnbd_loglik(PG_FUNCTION_ARGS)
{
	BgnbdParams p;
	float8		key[3];
	float8		x,
				ll;

	bgnbd_get_params(PG_GETARG_HEAPTUPLEHEADER(0), &p);
	get_customer(fcinfo, 1, key);
	x = key[0];
	ll = p.r * log(p.alpha) - (p.r + x) * log(p.alpha + key[2]);
	if (x > 0.0)
	{
		float8		D = bgnbd_log_odds_dead(&p, key);

		ll += bgnbd_gamma_terms(p.r, p.a, p.b, x) + Max(D, 0.0) + log1p(exp(-fabs(D)));
	}
	PG_RETURN_FLOAT8(ll);
}

PG_FUNCTION_INFO_V1(bgnbd_p_alive);
Datum
bgnbd_p_alive(PG_FUNCTION_ARGS)
{
	BgnbdParams p;
	float8		key[3];

	bgnbd_get_params(PG_GETARG_HEAPTUPLEHEADER(0), &p);
	get_customer(fcinfo, 1, key);
	PG_RETURN_FLOAT8(bgnbd_p_alive_key(&p, key));
}

static float8
get_horizon(FunctionCallInfo fcinfo, int i)
{
	float8		t = PG_GETARG_FLOAT8(i);

	segtier_check_finite("horizon", t);
	if (t < 0.0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("horizon must not be negative"),
				 errdetail("Got horizon %g.", t)));
	return t;
}

/* E[Y(horizon) | x, t_x, T] for one customer. */
PG_FUNCTION_INFO_V1(bgnbd_expected_purchases);
Datum
bgnbd_expected_purchases(PG_FUNCTION_ARGS)
{
	BgnbdParams p;
	float8		key[3];
	float8		t;

	bgnbd_get_params(PG_GETARG_HEAPTUPLEHEADER(0), &p);
	t = get_horizon(fcinfo, 1);
	get_customer(fcinfo, 2, key);
	PG_RETURN_FLOAT8(bgnbd_expected(&p, t, key));
}

/* E[X(horizon)] for a new customer. */
PG_FUNCTION_INFO_V1(bgnbd_expected_purchases_new);
Datum
bgnbd_expected_purchases_new(PG_FUNCTION_ARGS)
{
	BgnbdParams p;
	const float8 key[3] = {0.0, 0.0, 0.0};

	bgnbd_get_params(PG_GETARG_HEAPTUPLEHEADER(0), &p);
	PG_RETURN_FLOAT8(bgnbd_expected(&p, get_horizon(fcinfo, 1), key));
}
