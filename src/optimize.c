/*
 * optimize.c: what the model fits share: the histogram aggregate state,
 * digamma and trigamma, and a damped Newton maximiser in log parameters.
 */
#include "segtier.h"

#include "common/int.h"
#include "utils/float.h"

#include <math.h>

#include "common/shortest_dec.h"
#include "libpq/pqformat.h"
#include "miscadmin.h"
#include "utils/memutils.h"

#define HIST_MIN_CAPACITY 64
#define HIST_MAX_CAPACITY ((int32) ((MaxAllocSize - offsetof(Hist, slots)) / sizeof(HistEntry)))

/* Spreads the bits of the keys over the table (splitmix64 finaliser). */
static uint64
hist_hash(const float8 *key, int nkeys)
{
	uint64		h = UINT64CONST(0x9E3779B97F4A7C15);

	for (int i = 0; i < nkeys; i++)
	{
		float8		v = key[i] + 0.0;	/* -0 and +0 are the same key */
		uint64		bits;

		memcpy(&bits, &v, sizeof(bits));
		h ^= bits;
		h ^= h >> 30;
		h *= UINT64CONST(0xBF58476D1CE4E5B9);
		h ^= h >> 27;
		h *= UINT64CONST(0x94D049BB133111EB);
		h ^= h >> 31;
	}
	return h;
}

/* An empty histogram in the current memory context. */
static Hist *
hist_create(int nkeys, float8 penalizer, int capacity)
{
	Size		size;
	Hist	   *h;

	if (capacity > HIST_MAX_CAPACITY)
		ereport(ERROR,
				(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
				 errmsg("too many distinct customer histories for one model fit"),
				 errdetail("The fit keeps at most %d distinct histories.",
						   HIST_MAX_CAPACITY / 10 * 7)));
	size = offsetof(Hist, slots) + sizeof(HistEntry) * (Size) capacity;
	h = palloc0(size);
	SET_VARSIZE(h, size);
	h->version = HIST_VERSION;
	h->nkeys = nkeys;
	h->capacity = capacity;
	h->penalizer = penalizer;
	return h;
}

/* The slot holding the key, or the empty slot where it belongs. */
static HistEntry *
hist_slot(Hist *h, const float8 *key)
{
	uint32		mask = (uint32) h->capacity - 1;
	uint32		i = (uint32) hist_hash(key, h->nkeys) & mask;

	for (;;)
	{
		HistEntry  *e = &h->slots[i];
		bool		same = e->n > 0;

		for (int k = 0; same && k < h->nkeys; k++)
			same = e->key[k] == key[k];
		if (same || e->n == 0)
			return e;
		i = (i + 1) & mask;
	}
}

/*
 * Adds n customers with this key.  Returns h, changed in place, or a larger
 * copy made in the current memory context (h itself is left for the caller:
 * in an aggregate the executor frees the old state).
 */
static Hist *
hist_add(Hist *h, const float8 *key, int64 n)
{
	HistEntry  *e = hist_slot(h, key);

	if (e->n == 0 && (int64) (h->used + 1) * 10 > (int64) h->capacity * 7)
	{
		Hist	   *bigger = hist_create(h->nkeys, h->penalizer,
										 h->capacity * 2);

		bigger->skipped = h->skipped;
		for (int i = 0; i < h->capacity; i++)
		{
			if (h->slots[i].n > 0)
			{
				*hist_slot(bigger, h->slots[i].key) = h->slots[i];
				bigger->used++;
			}
		}
		h = bigger;
		e = hist_slot(h, key);
	}
	if (e->n == 0)
	{
		memset(e->key, 0, sizeof(e->key));
		memcpy(e->key, key, sizeof(float8) * h->nkeys);
		h->used++;
	}
	if (pg_add_s64_overflow(e->n, n, &e->n))
		ereport(ERROR,
				(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
				 errmsg("customer count of an aggregate state is out of range")));
	return h;
}

static void
hist_check_penalizer(float8 have, float8 got)
{
	if (have != got)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("penalizer must be the same for every row of a fit"),
				 errdetail("The fit started with penalizer %g and then got %g.",
						   have, got)));
}

/* Adds every entry of from into into; same return contract as hist_add. */
static Hist *
hist_merge(Hist *into, const Hist *from)
{
	if (into->nkeys != from->nkeys)
		elog(ERROR, "cannot merge model histograms of %d and %d keys",
			 into->nkeys, from->nkeys);
	hist_check_penalizer(into->penalizer, from->penalizer);
	into->skipped += from->skipped;
	for (int i = 0; i < from->capacity; i++)
	{
		if (from->slots[i].n > 0)
			into = hist_add(into, from->slots[i].key, from->slots[i].n);
	}
	return into;
}

/* An entry's keys packed into one integer, when they are small whole numbers. */
typedef struct PackedEntry
{
	uint64		key;
	int64		n;
} PackedEntry;

StaticAssertDecl(sizeof(PackedEntry) == 2 * sizeof(uint64), "PackedEntry is two words");

/*
 * Packs every entry's keys (nkeys fields of bits bits, the first key highest,
 * so integer order is key order) and returns how many there are; -1 unless
 * all are whole numbers in [0, 2^bits).  The refresh fits on whole days,
 * where these keys take one radix sort instead of one for each key.
 */
static int
hist_pack(const Hist *h, PackedEntry *out)
{
	int			bits = 63 / h->nkeys;
	float8		limit = (float8) (UINT64CONST(1) << bits);
	int			m = 0;

	for (int i = 0; i < h->capacity; i++)
	{
		const HistEntry *e = &h->slots[i];
		uint64		key = 0;

		if (e->n == 0)
			continue;
		for (int k = 0; k < h->nkeys; k++)
		{
			if (!(e->key[k] >= 0.0 && e->key[k] < limit && e->key[k] == floor(e->key[k])))
				return -1;
			key = (key << bits) | (uint64) e->key[k];
		}
		out[m].key = key;
		out[m++].n = e->n;
	}
	return m;
}

/*
 * The entries in key order: a fit sums over them in this order, so serial
 * and parallel aggregation give bit-identical results.
 */
HistEntry *
hist_sorted(const Hist *h, int *count)
{
	HistEntry  *out = palloc(sizeof(HistEntry) * Max(h->used, 1));
	PackedEntry *packed = palloc(sizeof(PackedEntry) * Max(h->used, 1));
	int			m = hist_pack(h, packed);

	if (m >= 0)
	{
		int			bits = 63 / h->nkeys;

		segtier_sort_u64((uint64 *) packed, m, sizeof(PackedEntry) / sizeof(uint64));
		for (int i = 0; i < m; i++)
		{
			memset(out[i].key, 0, sizeof(out[i].key));
			for (int k = 0; k < h->nkeys; k++)
				out[i].key[k] = (float8) ((packed[i].key >> (bits * (h->nkeys - 1 - k))) &
										  ((UINT64CONST(1) << bits) - 1));
			out[i].n = packed[i].n;
		}
	}
	else
	{
		m = 0;
		for (int i = 0; i < h->capacity; i++)
		{
			if (h->slots[i].n > 0)
				out[m++] = h->slots[i];
		}
		segtier_sort_rows(out, m, sizeof(HistEntry) / sizeof(float8), h->nkeys);
	}
	pfree(packed);
	*count = m;
	return out;
}

/*
 * The shared transition step.  A row with a NULL is skipped (the state is
 * kept); otherwise arguments 1..nkeys are the key, which check validates
 * (returning true for a row the model skips and counts), and an optional
 * next argument is the penalizer.  Updates the state in place in an
 * aggregate.
 */
Datum
hist_accumulate(FunctionCallInfo fcinfo, int nkeys, bool (*check) (float8 *key))
{
	float8		key[HIST_MAX_KEYS] = {0};
	float8		penalizer = 0.0;
	bool		skip;
	Hist	   *h;

	for (int i = 1; i < PG_NARGS(); i++)
		if (PG_ARGISNULL(i))
		{
			if (PG_ARGISNULL(0))
				PG_RETURN_NULL();
			PG_RETURN_DATUM(PG_GETARG_DATUM(0));
		}
	for (int k = 0; k < nkeys; k++)
		key[k] = PG_GETARG_FLOAT8(k + 1);
	skip = check(key);
	if (PG_NARGS() > nkeys + 1)
	{
		penalizer = PG_GETARG_FLOAT8(nkeys + 1);
		if (!(penalizer >= 0.0 && penalizer < HUGE_VAL))
			ereport(ERROR,
					(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
					 errmsg("penalizer must be a finite number >= 0"),
					 errdetail("Got penalizer %g.", penalizer)));
	}

	if (PG_ARGISNULL(0))
		h = hist_create(nkeys, penalizer, HIST_MIN_CAPACITY);
	else
	{
		if (AggCheckCallContext(fcinfo, NULL))
			h = PG_GETARG_HIST_P(0);
		else
			h = (Hist *) PG_DETOAST_DATUM_COPY(PG_GETARG_DATUM(0));
		hist_check_penalizer(h->penalizer, penalizer);
	}
	if (skip)
		h->skipped++;
	else
		h = hist_add(h, key, 1);
	PG_RETURN_POINTER(h);
}

/* The shared combine step: merges the second state into the first. */
Datum
hist_combine(FunctionCallInfo fcinfo)
{
	Hist	   *into;

	if (AggCheckCallContext(fcinfo, NULL))
		into = PG_GETARG_HIST_P(0);
	else
		into = (Hist *) PG_DETOAST_DATUM_COPY(PG_GETARG_DATUM(0));
	PG_RETURN_POINTER(hist_merge(into, PG_GETARG_HIST_P(1)));
}

static void
append_float8(StringInfo buf, float8 v)
{
	char		tmp[DOUBLE_SHORTEST_DECIMAL_LEN];

	double_to_shortest_decimal_buf(v, tmp);
	appendStringInfoString(buf, tmp);
}

/* Text form: penalizer;skipped then ;k1,k2[,k3],n per entry in key order. */
char *
hist_to_cstring(const Hist *h)
{
	StringInfoData buf;
	int			m;
	HistEntry  *e = hist_sorted(h, &m);

	initStringInfo(&buf);
	append_float8(&buf, h->penalizer);
	appendStringInfo(&buf, ";" INT64_FORMAT, h->skipped);
	for (int i = 0; i < m; i++)
	{
		appendStringInfoChar(&buf, ';');
		for (int k = 0; k < h->nkeys; k++)
		{
			append_float8(&buf, e[i].key[k]);
			appendStringInfoChar(&buf, ',');
		}
		appendStringInfo(&buf, INT64_FORMAT, e[i].n);
	}
	pfree(e);
	return buf.data;
}

static void
hist_check_header(float8 penalizer, int64 skipped)
{
	if (!(penalizer >= 0.0 && penalizer < HUGE_VAL))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("penalizer must be a finite number >= 0")));
	if (skipped < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("skipped count must not be negative")));
}

static void
hist_check_count(int64 n)
{
	if (n <= 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("histogram count must be positive")));
}

static void
hist_syntax_error(const char *type_name, const char *str)
{
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_TEXT_REPRESENTATION),
			 errmsg("invalid input syntax for type %s: \"%s\"", type_name, str),
			 errhint("Use penalizer;skipped followed by ;key,...,count for each entry.")));
}

static float8
parse_float8(const char **p, const char *type_name, const char *str)
{
	char	   *end;
	float8		v;

	/* as float8in: subnormal values, which the states may hold, read back */
	v = float8in_internal((char *) *p, &end, type_name, str);
	*p = end;
	return v;
}

static int64
parse_int64(const char **p, const char *type_name, const char *str)
{
	char	   *end;
	long long	v;

	errno = 0;
	v = strtoll(*p, &end, 10);
	if (end == *p || errno != 0)
		hist_syntax_error(type_name, str);
	*p = end;
	return (int64) v;
}

/* Parses hist_to_cstring's form, checking every key as a new row would be. */
Hist *
hist_from_cstring(const char *str, int nkeys, HistKeyCheck check,
				  const char *type_name)
{
	const char *p = str;
	float8		penalizer = parse_float8(&p, type_name, str);
	int64		skipped;
	Hist	   *h;

	if (*p++ != ';')
		hist_syntax_error(type_name, str);
	skipped = parse_int64(&p, type_name, str);
	hist_check_header(penalizer, skipped);
	h = hist_create(nkeys, penalizer, HIST_MIN_CAPACITY);
	h->skipped = skipped;
	while (*p == ';')
	{
		float8		key[HIST_MAX_KEYS] = {0};
		int64		n;

		p++;
		for (int k = 0; k < nkeys; k++)
		{
			key[k] = parse_float8(&p, type_name, str);
			if (*p++ != ',')
				hist_syntax_error(type_name, str);
		}
		n = parse_int64(&p, type_name, str);
		check(key);
		hist_check_count(n);
		h = hist_add(h, key, n);
	}
	if (*p != '\0')
		hist_syntax_error(type_name, str);
	return h;
}

/* Binary form: version, nkeys, penalizer, skipped, count, then the entries. */
bytea *
hist_to_bytea(const Hist *h)
{
	StringInfoData buf;
	int			m;
	HistEntry  *e = hist_sorted(h, &m);

	pq_begintypsend(&buf);
	pq_sendint16(&buf, HIST_VERSION);
	pq_sendint16(&buf, h->nkeys);
	pq_sendfloat8(&buf, h->penalizer);
	pq_sendint64(&buf, h->skipped);
	pq_sendint32(&buf, m);
	for (int i = 0; i < m; i++)
	{
		for (int k = 0; k < h->nkeys; k++)
			pq_sendfloat8(&buf, e[i].key[k]);
		pq_sendint64(&buf, e[i].n);
	}
	pfree(e);
	return pq_endtypsend(&buf);
}

/* Reads hist_to_bytea's form with the same checks as the text input. */
Hist *
hist_from_buf(StringInfo buf, int nkeys, HistKeyCheck check)
{
	int			version = pq_getmsgint(buf, 2);
	int			got_keys = pq_getmsgint(buf, 2);
	float8		penalizer;
	int64		skipped;
	int			m;
	Hist	   *h;

	if (version != HIST_VERSION || got_keys != nkeys)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_BINARY_REPRESENTATION),
				 errmsg("unsupported model state layout (version %d, %d keys)",
						version, got_keys)));
	penalizer = pq_getmsgfloat8(buf);
	skipped = pq_getmsgint64(buf);
	hist_check_header(penalizer, skipped);
	m = pq_getmsgint(buf, 4);
	if (m < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_BINARY_REPRESENTATION),
				 errmsg("negative entry count in model state")));
	h = hist_create(nkeys, penalizer, HIST_MIN_CAPACITY);
	h->skipped = skipped;
	for (int i = 0; i < m; i++)
	{
		float8		key[HIST_MAX_KEYS] = {0};
		int64		n;

		for (int k = 0; k < nkeys; k++)
			key[k] = pq_getmsgfloat8(buf);
		n = pq_getmsgint64(buf);
		check(key);
		hist_check_count(n);
		h = hist_add(h, key, n);
	}
	return h;
}

/* Rejects NaN and infinities in model inputs, naming the argument. */
void
segtier_check_finite(const char *what, float8 v)
{
	if (isnan(v) || isinf(v))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("%s must be a finite number", what),
				 errdetail("Got %g.", v)));
}

/*
 * psi(x) for x > 0: the recurrence psi(x) = psi(x + 1) - 1/x up to x >= 8,
 * then the asymptotic series (Abramowitz & Stegun 6.3.18).
 */
float8
segtier_digamma(float8 x)
{
	float8		acc = 0.0;
	float8		w;

	while (x < 8.0)
	{
		acc -= 1.0 / x;
		x += 1.0;
	}
	w = 1.0 / (x * x);
	return acc + log(x) - 0.5 / x -
		w * (1.0 / 12 - w * (1.0 / 120 - w * (1.0 / 252 - w * (1.0 / 240 - w * (1.0 / 132)))));
}

/*
 * psi'(x) for x > 0: psi'(x) = psi'(x + 1) + 1/x^2 up to x >= 8, then the
 * asymptotic series (Abramowitz & Stegun 6.4.12).
 */
float8
segtier_trigamma(float8 x)
{
	float8		acc = 0.0;
	float8		w;

	while (x < 8.0)
	{
		acc += 1.0 / (x * x);
		x += 1.0;
	}
	w = 1.0 / (x * x);
	return acc + 1.0 / x + 0.5 * w +
		w / x * (1.0 / 6 - w * (1.0 / 30 - w * (1.0 / 42 - w * (1.0 / 30 - w * (5.0 / 66)))));
}

/* Solves A s = g for symmetric positive definite A (n <= 4); false if not. */
static bool
cholesky_solve(int n, const float8 *A, const float8 *g, float8 *s)
{
	float8		L[MAX_MODEL_PARAMS * MAX_MODEL_PARAMS] = {0};
	float8		y[MAX_MODEL_PARAMS];

	for (int i = 0; i < n; i++)
	{
		for (int j = 0; j <= i; j++)
		{
			float8		sum = A[i * n + j];

			for (int k = 0; k < j; k++)
				sum -= L[i * n + k] * L[j * n + k];
			if (i == j)
			{
				if (!(sum > 0.0) || isinf(sum))
					return false;
				L[i * n + i] = sqrt(sum);
			}
			else
				L[i * n + j] = sum / L[j * n + j];
		}
	}
	for (int i = 0; i < n; i++)
	{
		float8		sum = g[i];

		for (int k = 0; k < i; k++)
			sum -= L[i * n + k] * y[k];
		y[i] = sum / L[i * n + i];
	}
	for (int i = n - 1; i >= 0; i--)
	{
		float8		sum = y[i];

		for (int k = i + 1; k < n; k++)
			sum -= L[k * n + i] * s[k];
		s[i] = sum / L[i * n + i];
	}
	return true;
}

/*
 * The objective at phi = log(theta), with its gradient G and Hessian Hp in
 * phi: G_i = theta_i g_i, Hp_ij = theta_i theta_j H_ij + [i = j] theta_i g_i.
 */
static float8
eval_log(int n, const float8 *phi, ModelObjective f, void *arg,
		 float8 *G, float8 *Hp)
{
	float8		theta[MAX_MODEL_PARAMS] = {0};
	float8		g[MAX_MODEL_PARAMS];
	float8		H[MAX_MODEL_PARAMS * MAX_MODEL_PARAMS];
	float8		v;

	for (int i = 0; i < n; i++)
		theta[i] = exp(phi[i]);
	v = f(theta, g, H, arg);
	for (int i = 0; i < n; i++)
	{
		G[i] = theta[i] * g[i];
		for (int j = 0; j < n; j++)
			Hp[i * n + j] = theta[i] * theta[j] * H[i * n + j] +
				(i == j ? theta[i] * g[i] : 0.0);
	}
	return v;
}

#define MAXIMIZE_ITERATIONS 200
#define MAX_LOG_STEP 4.0
#define LOG_PARAM_LIMIT 50.0

/*
 * Maximises f over theta > 0 from the start in theta, by Newton steps in
 * log parameters.  Where the Hessian is not negative definite the step is
 * damped (Levenberg-Marquardt: solve (mu I - Hp) s = G with mu raised until
 * the matrix is positive definite), steps are capped and backtracked until
 * f rises (Armijo).  Stops when the Newton decrement G's is at the level of
 * rounding.  Returns whether it converged; theta and *fmax get the best
 * point found.
 */
bool
segtier_maximize(int n, float8 *theta, ModelObjective f, void *arg,
				 float8 *fmax)
{
	float8		phi[MAX_MODEL_PARAMS];
	float8		G[MAX_MODEL_PARAMS];
	float8		Hp[MAX_MODEL_PARAMS * MAX_MODEL_PARAMS];
	float8		fx;
	bool		converged = false;

	for (int i = 0; i < n; i++)
		phi[i] = log(theta[i]);
	fx = eval_log(n, phi, f, arg, G, Hp);
	for (int iter = 0; iter < MAXIMIZE_ITERATIONS && isfinite(fx); iter++)
	{
		float8		A[MAX_MODEL_PARAMS * MAX_MODEL_PARAMS];
		float8		step[MAX_MODEL_PARAMS];
		float8		mu = 0.0;
		float8		scale = 0.0;
		float8		biggest = 0.0;
		float8		decrement = 0.0;
		float8		t = 1.0;
		bool		moved = false;

		CHECK_FOR_INTERRUPTS();
		for (int i = 0; i < n; i++)
			scale = Max(scale, fabs(Hp[i * n + i]));
		for (;;)
		{
			for (int i = 0; i < n * n; i++)
				A[i] = -Hp[i];
			for (int i = 0; i < n; i++)
				A[i * n + i] += mu;
			if (cholesky_solve(n, A, G, step))
				break;
			mu = (mu == 0.0) ? 1e-10 * (1.0 + scale) : mu * 10.0;
			if (!(mu < 1e200))
			{
				/* no usable curvature (NaN terms): plain gradient ascent */
				for (int i = 0; i < n; i++)
					step[i] = G[i] / (1.0 + scale);
				break;
			}
		}
		for (int i = 0; i < n; i++)
		{
			decrement += G[i] * step[i];
			biggest = Max(biggest, fabs(step[i]));
		}
		converged = mu == 0.0 && decrement <= 1e-13 * (1.0 + fabs(fx));
		if (biggest > MAX_LOG_STEP)
			for (int i = 0; i < n; i++)
				step[i] *= MAX_LOG_STEP / biggest;
		for (int tries = 0; tries < 40 && !moved; tries++, t *= 0.5)
		{
			float8		trial[MAX_MODEL_PARAMS];
			float8		tG[MAX_MODEL_PARAMS];
			float8		tH[MAX_MODEL_PARAMS * MAX_MODEL_PARAMS];
			float8		ft;

			for (int i = 0; i < n; i++)
				trial[i] = Max(-LOG_PARAM_LIMIT,
							   Min(LOG_PARAM_LIMIT, phi[i] + t * step[i]));
			ft = eval_log(n, trial, f, arg, tG, tH);
			if (isfinite(ft) &&
				(ft >= fx + 1e-4 * t * decrement || (converged && ft >= fx)))
			{
				memcpy(phi, trial, sizeof(float8) * n);
				memcpy(G, tG, sizeof(float8) * n);
				memcpy(Hp, tH, sizeof(float8) * n * n);
				fx = ft;
				moved = true;
			}
			if (converged)
				break;
		}
		if (converged || !moved)
		{
			/* no rise left to find: a maximum up to rounding */
			converged = converged || decrement <= 1e-9 * (1.0 + fabs(fx));
			break;
		}
	}
	for (int i = 0; i < n; i++)
	{
		theta[i] = exp(phi[i]);
		if (fabs(phi[i]) >= LOG_PARAM_LIMIT)
			converged = false;
	}
	*fmax = fx;
	return converged;
}
