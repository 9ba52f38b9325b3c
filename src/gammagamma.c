/*
 * gammagamma.c: the Gamma-Gamma spend model (Fader, Hardie & Lee 2005,
 * "RFM and CLV: Using Iso-Value Curves", JMR 42(4); Fader & Hardie's note
 * 025), the gamma_gamma_fit aggregate, expected spend, and the CLV that
 * combines it with the BG/NBD.
 *
 * A repeat customer is (x, m): x repeat purchases with mean value m.
 */
#include "segtier.h"

#include <math.h>

#include "funcapi.h"
#include "miscadmin.h"

#define GG_NKEYS 2

static void
gg_check_frequency(float8 x)
{
	segtier_check_finite("frequency", x);
	if (x < 0.0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("frequency must not be negative"),
				 errdetail("Got frequency %g.", x)));
}

/* A histogram key holds only fitted customers: x > 0 and m > 0. */
static void
gg_state_check(float8 *key)
{
	gg_check_frequency(key[0]);
	segtier_check_finite("monetary", key[1]);
	if (key[0] == 0.0 || key[1] <= 0.0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("gamma_gamma_state entries need frequency > 0 and monetary > 0"),
				 errdetail("Got frequency %g and monetary %g.", key[0], key[1])));
}

/* Reads p, q, v from a segtier.gamma_gamma value. */
void
gg_get_params(HeapTupleHeader rec, float8 *th)
{
	static const char *const names[] = {"p", "q", "v"};

	for (int i = 0; i < 3; i++)
	{
		bool		isnull;

		th[i] = DatumGetFloat8(GetAttributeByNum(rec, i + 1, &isnull));
		if (isnull)
			ereport(ERROR,
					(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
					 errmsg("Gamma-Gamma parameter %s is NULL", names[i])));
		if (!(th[i] > 0.0 && th[i] < HUGE_VAL))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("Gamma-Gamma parameter %s must be a finite number > 0",
							names[i]),
					 errdetail("Got %s = %g.", names[i], th[i])));
	}
}

PG_FUNCTION_INFO_V1(gamma_gamma_state_in);
Datum
gamma_gamma_state_in(PG_FUNCTION_ARGS)
{
	PG_RETURN_POINTER(hist_from_cstring(PG_GETARG_CSTRING(0), GG_NKEYS,
										gg_state_check, "gamma_gamma_state"));
}

PG_FUNCTION_INFO_V1(gamma_gamma_state_out);
Datum
gamma_gamma_state_out(PG_FUNCTION_ARGS)
{
	PG_RETURN_CSTRING(hist_to_cstring(PG_GETARG_HIST_P(0)));
}

PG_FUNCTION_INFO_V1(gamma_gamma_state_recv);
Datum
gamma_gamma_state_recv(PG_FUNCTION_ARGS)
{
	PG_RETURN_POINTER(hist_from_buf((StringInfo) PG_GETARG_POINTER(0),
									GG_NKEYS, gg_state_check));
}

PG_FUNCTION_INFO_V1(gamma_gamma_state_send);
Datum
gamma_gamma_state_send(PG_FUNCTION_ARGS)
{
	PG_RETURN_BYTEA_P(hist_to_bytea(PG_GETARG_HIST_P(0)));
}

/*
 * Transition of gamma_gamma_fit: NULL rows are ignored; customers without
 * repeat purchases or with monetary <= 0 are skipped and counted.
 */
static bool
gamma_gamma_row(float8 *key)
{
	gg_check_frequency(key[0]);
	segtier_check_finite("monetary", key[1]);
	return key[0] == 0.0 || key[1] <= 0.0;
}

PG_FUNCTION_INFO_V1(gamma_gamma_accum);
Datum
gamma_gamma_accum(PG_FUNCTION_ARGS)
{
	return hist_accumulate(fcinfo, GG_NKEYS, gamma_gamma_row);
}

PG_FUNCTION_INFO_V1(gamma_gamma_combine);
Datum
gamma_gamma_combine(PG_FUNCTION_ARGS)
{
	return hist_combine(fcinfo);
}

typedef struct GgData
{
	int			m;
	const HistEntry *e;			/* (x, m) entries sorted by x */
	float8	   *lm;				/* log m per entry */
	float8		penalty;		/* penalizer times customers */
} GgData;

/* psi(a + b) - psi(a), the difference taken where it is small */
static float8
digamma_from(float8 a, float8 b)
{
	return a >= b ? segtier_digamma_step(a, b) :
		segtier_digamma(b) - segtier_digamma(a) + segtier_digamma_step(b, a);
}

/*
 * The penalised log-likelihood with gradient and Hessian in (p, q, v).  Per
 * customer (note 025, eq. 3, the density of the mean of x spends):
 *   LL = lnG(px + q) - lnG(px) - lnG(q) + q ln v + (px - 1) ln m + px ln x
 *        - (px + q) ln(x m + v)
 *      = -ln B(px, q) - ln m - px ln(1 + v/(x m)) - q ln(1 + x m/v),
 * the second form without the cancellation of terms that grow with p or q
 * (which made the log-likelihood of a fit near a boundary wrong by tens).
 * The gamma-function terms are computed once per distinct x.  The penalty
 * is penalizer * customers * (p^2 + q^2 + v^2), as lifetimes' penalizer_coef.
 */
static float8
gg_objective(const float8 *th, float8 *g, float8 *H, void *arg)
{
	GgData	   *d = arg;
	float8		p = th[0],
				q = th[1],
				v = th[2];
	float8		lgq = lgamma(q),
				p1q = segtier_trigamma(q);
	float8		f = 0.0;
	float8		x = -1.0,
				px = 0.0,
				lg = 0.0,
				dpx = 0.0,
				dq = 0.0,
				tr1 = 0.0,
				tr2 = 0.0;

	memset(g, 0, sizeof(float8) * 3);
	memset(H, 0, sizeof(float8) * 9);
	for (int i = 0; i < d->m; i++)
	{
		float8		n = (float8) d->e[i].n;
		float8		xm,
					w,
					l_v,
					l_xm;

		if (d->e[i].key[0] != x)
		{
			x = d->e[i].key[0];
			px = p * x;
			lg = px >= q ? segtier_lgamma_step(px, q) - lgq : segtier_lgamma_step(q, px) - lgamma(px);
			dpx = digamma_from(px, q);
			dq = digamma_from(q, px);
			tr1 = segtier_trigamma(px + q);
			tr2 = segtier_trigamma(px);
		}
		xm = x * d->e[i].key[1];
		w = xm + v;
		l_v = log1p(v / xm);	/* ln w - ln(x m) */
		l_xm = log1p(xm / v);	/* ln w - ln v */
		f += n * (lg - d->lm[i] - px * l_v - q * l_xm);
		g[0] += n * x * (dpx - l_v);
		g[1] += n * (dq - l_xm);
		g[2] += n * (q / v - (px + q) / w);
		H[0] += n * x * x * (tr1 - tr2);
		H[1] += n * x * tr1;
		H[2] -= n * x / w;
		H[4] += n * (tr1 - p1q);
		H[5] += n * (1.0 / v - 1.0 / w);
		H[8] += n * (-q / (v * v) + (px + q) / (w * w));
	}
	for (int k = 0; k < 3; k++)
	{
		f -= d->penalty * th[k] * th[k];
		g[k] -= 2.0 * d->penalty * th[k];
		H[k * 3 + k] -= 2.0 * d->penalty;
	}
	H[3] = H[1];
	H[6] = H[2];
	H[7] = H[5];
	return f;
}

/* Final function of gamma_gamma_fit: the maximum-likelihood (p, q, v). */
PG_FUNCTION_INFO_V1(gamma_gamma_final);
Datum
gamma_gamma_final(PG_FUNCTION_ARGS)
{
	const Hist *h = PG_GETARG_HIST_P(0);
	TupleDesc	tupdesc;
	GgData		d;
	HistEntry  *e;
	int			m;
	float8		meanm = 0.0,
				customers = 0.0;
	float8		best[3] = {0},
				bestf = -HUGE_VAL;
	bool		converged = false;
	Datum		values[6];
	bool		nulls[6] = {0};
	int64		count = 0;

	if (get_call_result_type(fcinfo, NULL, &tupdesc) != TYPEFUNC_COMPOSITE)
		elog(ERROR, "gamma_gamma_final must return a composite type");
	e = hist_sorted(h, &m);
	if (m == 0)
		PG_RETURN_NULL();
	d.m = m;
	d.e = e;
	d.lm = palloc(sizeof(float8) * m);
	for (int i = 0; i < m; i++)
	{
		d.lm[i] = log(e[i].key[1]);
		meanm += e[i].key[1] * (float8) e[i].n;
		customers += (float8) e[i].n;
		count += e[i].n;
	}
	meanm /= customers;
	d.penalty = h->penalizer * customers;

	{
		const float8 starts[3][3] = {
			{1.0, 2.0, meanm},
			{1.0, 1.0, 1.0},
			{10.0, 10.0, 10.0 * meanm},
		};

		for (int s = 0; s < 3 && !converged; s++)
		{
			float8		th[3];
			float8		fx;

			memcpy(th, starts[s], sizeof(th));
			converged = segtier_maximize(3, th, gg_objective, &d, &fx);
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
				 errmsg("values are too large for the Gamma-Gamma fit"),
				 errhint("Measure spend in a larger currency unit.")));
	if (!converged)
		ereport(WARNING,
				(errmsg("Gamma-Gamma fit did not converge"),
				 errdetail("The data may not identify the parameters (for example, all spends equal)."),
				 errhint("A small penalizer, e.g. 0.001, keeps the parameters finite.")));

	for (int i = 0; i < 3; i++)
		values[i] = Float8GetDatum(best[i]);
	/* the log-likelihood without the penalty (0 * inf would make it NaN) */
	values[3] = Float8GetDatum(d.penalty == 0.0 ? bestf :
							   bestf + d.penalty * (best[0] * best[0] + best[1] * best[1] +
													best[2] * best[2]));
	values[4] = Int64GetDatum(count);
	values[5] = Int64GetDatum(h->skipped);
	tupdesc = BlessTupleDesc(tupdesc);
	PG_RETURN_DATUM(HeapTupleGetDatum(heap_form_tuple(tupdesc, values, nulls)));
}

/*
 * E[M | x, m] (note 025, eq. 5): the weighted mean of the population mean
 * p v / (q - 1) and the customer's own mean m, with weight p x / (p x + q - 1)
 * on m.  For x = 0 it is the population mean and m is not used.
 */
static float8
gg_expected_spend(const float8 *th, float8 x, float8 m)
{
	float8		p = th[0],
				q = th[1],
				v = th[2];
	float8		den = p * x + q - 1.0;
	float8		e;

	gg_check_frequency(x);
	segtier_check_finite("monetary", m);
	if (x > 0.0 && m <= 0.0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("monetary must be positive for a customer with repeat purchases"),
				 errdetail("Got frequency %g and monetary %g.", x, m)));
	if (den <= 0.0)
		ereport(ERROR,
				(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
				 errmsg("expected spend is infinite"),
				 errdetail("p * frequency + q - 1 = %g is not positive.", den)));
	e = (p * (v + x * m)) / den;
	if (!isfinite(e))
	{
		/* an intermediate overflowed; the weighted mean itself may not */
		float8		dp = x + (q - 1.0) / p;

		e = v / dp + (x / dp) * m;
	}
	if (!isfinite(e))
		ereport(ERROR,
				(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
				 errmsg("expected spend is out of range for type double precision")));
	return e;
}

PG_FUNCTION_INFO_V1(gamma_gamma_expected_spend);
Datum
gamma_gamma_expected_spend(PG_FUNCTION_ARGS)
{
	float8		th[3];

	gg_get_params(PG_GETARG_HEAPTUPLEHEADER(0), th);
	PG_RETURN_FLOAT8(gg_expected_spend(th, PG_GETARG_FLOAT8(1),
									   PG_GETARG_FLOAT8(2)));
}

static float8
clv_argument(const char *what, float8 v, float8 above, bool inclusive)
{
	segtier_check_finite(what, v);
	if (inclusive ? v < above : v <= above)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s must be %s %g", what, inclusive ? ">=" : ">", above),
				 errdetail("Got %s %g.", what, v)));
	return v;
}

/*
 * Discounted CLV as lifetimes' customer_lifetime_value: month i = 1..horizon
 * contributes E[spend] * (E[Y(i u)] - E[Y((i-1) u)]) / (1 + rate)^i, u time
 * units a month, times the margin.  A fractional last month runs to the
 * horizon and is discounted at (1 + rate)^horizon.
 */
/* a thousand years: each month costs a hypergeometric series */
#define CLV_MAX_MONTHS 12000

/*
 * The discounted expected purchases of a CLV given the customer is alive:
 * the sum over months of (E[Y(i u)] - E[Y((i-1) u)]) / (1 + rate)^i without
 * the factor P(alive) every month's expectation carries.  It depends on the
 * customer's x and T only, so the refresh computes it once per distinct
 * (x, T).  Argument checks here, so the refresh and segtier.clv reject the
 * same values.
 */
float8
segtier_clv_purchases_alive(const BgnbdParams *bg, const float8 *key, float8 horizon,
							float8 rate, float8 unit)
{
	float8		prev = 0.0,
				total = 0.0;

	clv_argument("horizon", horizon, 0.0, true);
	if (horizon > CLV_MAX_MONTHS)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("horizon must be at most %d months", CLV_MAX_MONTHS),
				 errdetail("Got horizon %g.", horizon)));
	clv_argument("discount_rate", rate, -1.0, false);
	clv_argument("time_units_per_month", unit, 0.0, false);

	for (int32 i = 1; i < horizon + 1.0; i++)
	{
		float8		month = Min((float8) i, horizon);
		float8		cum = bgnbd_expected_alive(bg, month * unit, key);

		CHECK_FOR_INTERRUPTS();
		total += (cum - prev) / pow(1.0 + rate, month);
		prev = cum;
	}
	return total;
}

/* CLV from the discounted expected purchases: margin * E[spend] * purchases. */
float8
segtier_clv_from(const float8 *gg, float8 x, float8 monetary, float8 margin, float8 purchases)
{
	float8		spend = gg_expected_spend(gg, x, monetary);
	float8		clv;

	segtier_check_finite("margin", margin);
	clv = margin * spend * purchases;
	if (!isfinite(clv))
		ereport(ERROR,
				(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
				 errmsg("CLV is out of range for type double precision")));
	return clv;
}

PG_FUNCTION_INFO_V1(segtier_clv);
Datum
segtier_clv(PG_FUNCTION_ARGS)
{
	BgnbdParams bg;
	float8		gg[3];
	float8		key[3];
	float8		purchases;

	bgnbd_get_params(PG_GETARG_HEAPTUPLEHEADER(0), &bg);
	gg_get_params(PG_GETARG_HEAPTUPLEHEADER(1), gg);
	key[0] = PG_GETARG_FLOAT8(2);
	key[1] = PG_GETARG_FLOAT8(3);
	key[2] = PG_GETARG_FLOAT8(4);
	bgnbd_check_customer(key);
	purchases = segtier_clv_purchases_alive(&bg, key, PG_GETARG_FLOAT8(6), PG_GETARG_FLOAT8(7),
											PG_GETARG_FLOAT8(9)) * bgnbd_p_alive_key(&bg, key);
	PG_RETURN_FLOAT8(segtier_clv_from(gg, key[0], PG_GETARG_FLOAT8(5), PG_GETARG_FLOAT8(8),
									  purchases));
}
