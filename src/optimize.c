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

#define HIST_MIN_CAPACITY 16
#define HIST_MAX_CAPACITY ((int32) ((MaxAllocSize - offsetof(Hist, slots)) / sizeof(HistEntry)))
/* Layout 1 (0.12.0 and before): an open-addressing hash table, n = 0 in empty slots. */
#define HIST_HASH_VERSION 1
/* The binary send/receive form's version. */
#define HIST_WIRE_VERSION 1

/*
 * An aggregate's state is an expanded object: the transition functions
 * change it in place and grow it by repalloc, where a flat varlena state
 * would be copied by the executor each time it grew.  Its flat form (for a
 * parallel worker's partial state, a table) holds the distinct entries only.
 */
typedef struct HistObject
{
	ExpandedObjectHeader hdr;
	Hist	   *h;				/* in hdr.eoh_context */
} HistObject;

/*
 * An empty histogram with room for capacity entries in the current memory
 * context.  Its varlena header is set only when it is made flat.
 */
static Hist *
hist_create(int nkeys, float8 penalizer, int capacity)
{
	Hist	   *h = palloc(offsetof(Hist, slots) + sizeof(HistEntry) * (Size) capacity);

	memset(h, 0, offsetof(Hist, slots));
	h->version = HIST_VERSION;
	h->nkeys = nkeys;
	h->capacity = capacity;
	h->penalizer = penalizer;
	return h;
}

static inline int
hist_key_cmp(const float8 *x, const float8 *y, int nkeys)
{
	for (int k = 0; k < nkeys; k++)
	{
		if (x[k] < y[k])
			return -1;
		if (x[k] > y[k])
			return 1;
	}
	return 0;
}

/* An entry's keys packed into one integer, when they are small whole numbers. */
typedef struct PackedEntry
{
	uint64		key;
	int64		n;
} PackedEntry;

StaticAssertDecl(sizeof(PackedEntry) == 2 * sizeof(uint64), "PackedEntry is two words");

/*
 * Sorts m entries by key.  When every key is a whole number in [0, 2^bits)
 * (the refresh fits on whole days), the keys are packed into one integer,
 * the first key highest, and take one radix sort instead of one per key.
 */
static void
hist_sort_entries(HistEntry *e, int m, int nkeys)
{
	int			bits = 63 / nkeys;
	float8		limit = (float8) (UINT64CONST(1) << bits);
	PackedEntry *packed;

	if (m < 2)
		return;
	packed = palloc(sizeof(PackedEntry) * m);
	for (int i = 0; i < m; i++)
	{
		uint64		key = 0;

		for (int k = 0; k < nkeys; k++)
		{
			if (!(e[i].key[k] >= 0.0 && e[i].key[k] < limit && e[i].key[k] == floor(e[i].key[k])))
			{
				pfree(packed);
				segtier_sort_rows(e, m, sizeof(HistEntry) / sizeof(float8), nkeys);
				return;
			}
			key = (key << bits) | (uint64) e[i].key[k];
		}
		packed[i].key = key;
		packed[i].n = e[i].n;
	}
	segtier_sort_u64((uint64 *) packed, m, sizeof(PackedEntry) / sizeof(uint64));
	for (int i = 0; i < m; i++)
	{
		for (int k = 0; k < nkeys; k++)
			e[i].key[k] = (float8) ((packed[i].key >> (bits * (nkeys - 1 - k))) &
									((UINT64CONST(1) << bits) - 1));
		e[i].n = packed[i].n;
	}
	pfree(packed);
}

/*
 * The distinct entries of h in key order with their counts, in out (room
 * for used + pending entries, not h's own); returns how many.  The pending
 * entries are sorted in a copy and merged with the sorted ones.
 */
static int
hist_collect(const Hist *h, HistEntry *out)
{
	HistEntry  *added = palloc(sizeof(HistEntry) * Max(h->pending, 1));
	const HistEntry *sorted = h->slots;
	int			i = 0,
				j = 0,
				m = 0;

	memcpy(added, h->slots + h->used, sizeof(HistEntry) * h->pending);
	hist_sort_entries(added, h->pending, h->nkeys);
	while (i < h->used || j < h->pending)
	{
		const HistEntry *next;

		if (j == h->pending ||
			(i < h->used && hist_key_cmp(sorted[i].key, added[j].key, h->nkeys) <= 0))
			next = &sorted[i++];
		else
			next = &added[j++];
		if (m > 0 && hist_key_cmp(out[m - 1].key, next->key, h->nkeys) == 0)
		{
			if (pg_add_s64_overflow(out[m - 1].n, next->n, &out[m - 1].n))
				ereport(ERROR,
						(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
						 errmsg("customer count of an aggregate state is out of range")));
		}
		else
			out[m++] = *next;
	}
	pfree(added);
	return m;
}

/* Folds the pending entries into the sorted ones, in place. */
static void
hist_compact(Hist *h)
{
	HistEntry  *merged;

	if (h->pending == 0)
		return;
	merged = palloc(sizeof(HistEntry) * (h->used + h->pending));
	h->used = hist_collect(h, merged);
	h->pending = 0;
	memcpy(h->slots, merged, sizeof(HistEntry) * h->used);
	pfree(merged);
}

/*
 * Adds n customers with this key at the end: the sorting waits until the
 * histogram is full, so a row costs no hash probe (a cache miss a row once
 * the distinct histories outgrow the caches).  When the distinct entries
 * then fill more than half of it, *hp is grown in its memory context.
 */
static void
hist_add(Hist **hp, const float8 *key, int64 n)
{
	Hist	   *h = *hp;
	HistEntry  *e;

	if (h->used + h->pending == h->capacity)
	{
		hist_compact(h);
		if (h->used > h->capacity / 2)
		{
			int32		capacity = (int32) Min((int64) h->capacity * 2, HIST_MAX_CAPACITY);

			if (h->used > HIST_MAX_CAPACITY / 2)
				ereport(ERROR,
						(errcode(ERRCODE_PROGRAM_LIMIT_EXCEEDED),
						 errmsg("too many distinct customer histories for one model fit"),
						 errdetail("The fit keeps at most %d distinct histories.",
								   HIST_MAX_CAPACITY / 2)));
			*hp = h = repalloc(h, offsetof(Hist, slots) + sizeof(HistEntry) * (Size) capacity);
			h->capacity = capacity;
		}
	}
	e = &h->slots[h->used + h->pending++];
	memset(e->key, 0, sizeof(e->key));
	for (int k = 0; k < h->nkeys; k++)
		e->key[k] = key[k] + 0.0;	/* -0 and +0 are the same key */
	e->n = n;
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

/*
 * The distinct entries in key order: a fit sums over them in this order, so
 * serial and parallel aggregation give bit-identical results.
 */
HistEntry *
hist_sorted(const Hist *h, int *count)
{
	HistEntry  *out = palloc(sizeof(HistEntry) * Max(h->used + h->pending, 1));

	*count = hist_collect(h, out);
	return out;
}

/* The flat varlena of h's distinct entries, in the current memory context. */
static Hist *
hist_flat(const Hist *h)
{
	Hist	   *flat = hist_create(h->nkeys, h->penalizer, h->used + h->pending);

	flat->skipped = h->skipped;
	flat->used = flat->capacity = hist_collect(h, flat->slots);
	SET_VARSIZE(flat, offsetof(Hist, slots) + sizeof(HistEntry) * flat->used);
	return flat;
}

static Size
hist_object_flat_size(ExpandedObjectHeader *eohptr)
{
	HistObject *obj = (HistObject *) eohptr;

	hist_compact(obj->h);
	return offsetof(Hist, slots) + sizeof(HistEntry) * obj->h->used;
}

static void
hist_object_flatten_into(ExpandedObjectHeader *eohptr, void *result, Size allocated_size)
{
	HistObject *obj = (HistObject *) eohptr;
	Hist	   *flat = result;

	Assert(obj->h->pending == 0 &&
		   allocated_size == offsetof(Hist, slots) + sizeof(HistEntry) * obj->h->used);
	memcpy(flat, obj->h, allocated_size);
	flat->capacity = obj->h->used;
	SET_VARSIZE(flat, allocated_size);
}

static const ExpandedObjectMethods hist_object_methods = {
	hist_object_flat_size,
	hist_object_flatten_into
};

/*
 * A state datum as a histogram, to read only.  A flat one of layout 1,
 * which a table may hold from 0.12.0 or before, is read into a new one.
 */
const Hist *
hist_from_datum(Datum d)
{
	Hist	   *h;
	Hist	   *cur;

	if (VARATT_IS_EXTERNAL_EXPANDED(DatumGetPointer(d)))
	{
		HistObject *obj = (HistObject *) DatumGetEOHP(d);

		Assert(obj->hdr.eoh_methods == &hist_object_methods);
		return obj->h;
	}
	h = (Hist *) PG_DETOAST_DATUM(d);
	/* both layouts: the header, then capacity entries */
	if (VARSIZE(h) < offsetof(Hist, slots) ||
		(h->version != HIST_VERSION && h->version != HIST_HASH_VERSION) ||
		h->nkeys < 1 || h->nkeys > HIST_MAX_KEYS || h->capacity < 0 ||
		VARSIZE(h) != offsetof(Hist, slots) + sizeof(HistEntry) * (Size) h->capacity ||
		h->used < 0 || h->pending < 0 || (int64) h->used + h->pending > h->capacity)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("invalid model state (layout version %d, %d bytes)",
						h->version, (int) VARSIZE(h))));
	if (h->version == HIST_VERSION)
		return h;
	cur = hist_create(h->nkeys, h->penalizer, HIST_MIN_CAPACITY);
	cur->skipped = h->skipped;
	for (int i = 0; i < h->capacity; i++)
		if (h->slots[i].n > 0)
			hist_add(&cur, h->slots[i].key, h->slots[i].n);
	return cur;
}

/*
 * The state to change: the first argument itself when it is the
 * aggregate's expanded state, else a new one (empty for NULL) in
 * segtier_state_context.
 */
static HistObject *
hist_state_arg(FunctionCallInfo fcinfo, int nkeys, float8 penalizer)
{
	MemoryContext cxt;
	MemoryContext old;
	HistObject *obj;
	const Hist *from = NULL;

	if (!PG_ARGISNULL(0))
	{
		Datum		d = PG_GETARG_DATUM(0);

		if (AggCheckCallContext(fcinfo, NULL) && VARATT_IS_EXTERNAL_EXPANDED_RW(DatumGetPointer(d)))
		{
			obj = (HistObject *) DatumGetEOHP(d);
			Assert(obj->hdr.eoh_methods == &hist_object_methods);
			return obj;
		}
		from = hist_from_datum(d);
	}
	cxt = segtier_state_context(fcinfo);
	obj = MemoryContextAlloc(cxt, sizeof(HistObject));
	EOH_init_header(&obj->hdr, &hist_object_methods, cxt);
	old = MemoryContextSwitchTo(cxt);
	if (from == NULL)
		obj->h = hist_create(nkeys, penalizer, HIST_MIN_CAPACITY);
	else
	{
		int			n = from->used + from->pending;

		obj->h = hist_create(from->nkeys, from->penalizer,
							 (int32) Max(Min(2 * (int64) n, HIST_MAX_CAPACITY), HIST_MIN_CAPACITY));
		obj->h->skipped = from->skipped;
		obj->h->used = from->used;
		obj->h->pending = from->pending;
		memcpy(obj->h->slots, from->slots, sizeof(HistEntry) * n);
	}
	MemoryContextSwitchTo(old);
	return obj;
}

/*
 * The shared transition step.  A row with a NULL is skipped (the state is
 * kept); otherwise arguments 1..nkeys are the key, which check validates
 * (returning true for a row the model skips and counts), and an optional
 * next argument is the penalizer.
 */
Datum
hist_accumulate(FunctionCallInfo fcinfo, int nkeys, bool (*check) (float8 *key))
{
	float8		key[HIST_MAX_KEYS] = {0};
	float8		penalizer = 0.0;
	bool		skip;
	HistObject *obj;

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

	obj = hist_state_arg(fcinfo, nkeys, penalizer);
	hist_check_penalizer(obj->h->penalizer, penalizer);
	if (skip)
		obj->h->skipped++;
	else
		hist_add(&obj->h, key, 1);
	PG_RETURN_DATUM(EOHPGetRWDatum(&obj->hdr));
}

/* The shared combine step: merges the second state into the first. */
Datum
hist_combine(FunctionCallInfo fcinfo)
{
	const Hist *from = PG_GETARG_HIST_P(1);
	HistObject *obj = hist_state_arg(fcinfo, from->nkeys, from->penalizer);

	if (obj->h->nkeys != from->nkeys)
		elog(ERROR, "cannot merge model histograms of %d and %d keys",
			 obj->h->nkeys, from->nkeys);
	hist_check_penalizer(obj->h->penalizer, from->penalizer);
	if (pg_add_s64_overflow(obj->h->skipped, from->skipped, &obj->h->skipped))
		ereport(ERROR,
				(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
				 errmsg("skipped count of an aggregate state is out of range")));
	for (int i = 0; i < from->used + from->pending; i++)
		hist_add(&obj->h, from->slots[i].key, from->slots[i].n);
	PG_RETURN_DATUM(EOHPGetRWDatum(&obj->hdr));
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
		hist_add(&h, key, n);
	}
	if (*p != '\0')
		hist_syntax_error(type_name, str);
	return hist_flat(h);
}

/* Binary form: version, nkeys, penalizer, skipped, count, then the entries. */
bytea *
hist_to_bytea(const Hist *h)
{
	StringInfoData buf;
	int			m;
	HistEntry  *e = hist_sorted(h, &m);

	pq_begintypsend(&buf);
	pq_sendint16(&buf, HIST_WIRE_VERSION);
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

	if (version != HIST_WIRE_VERSION || got_keys != nkeys)
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
		hist_add(&h, key, n);
	}
	return hist_flat(h);
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

/* 1/(12y) - 1/(360y^3) + ...: lnG(y) less (y - 1/2) ln y - y + ln(2 pi)/2. */
static inline float8
stirling_tail(float8 y)
{
	float8		r = 1.0 / (y * y);

	return (1.0 / 12.0 - r * (1.0 / 360.0 - r * (1.0 / 1260.0 - r / 1680.0))) / y;
}

/*
 * lnG(z + s) - lnG(z) and psi(z + s) - psi(z) for z, s > 0.  As the
 * difference of two lgamma values it loses all its digits once z is large
 * (a parameter of a fit heading for a boundary); from z = 100 on it comes
 * from Stirling's series, whose next terms are below 1e-21 there.
 */
float8
segtier_lgamma_step(float8 z, float8 s)
{
	float8		y = z + s;

	if (z < 100.0)
		return lgamma(y) - lgamma(z);
	return (z - 0.5) * log1p(s / z) + s * (log(y) - 1.0) + stirling_tail(y) - stirling_tail(z);
}

float8
segtier_digamma_step(float8 z, float8 s)
{
	float8		y = z + s;
	float8		ry = 1.0 / (y * y),
				rz = 1.0 / (z * z);

	if (z < 100.0)
		return segtier_digamma(y) - segtier_digamma(z);
	/* psi(y) = ln y - 1/(2y) - 1/(12y^2) + 1/(120y^4) - 1/(252y^6) + ... */
	return log1p(s / z) + s / (2.0 * y * z) -
		(ry * (1.0 / 12.0 - ry * (1.0 / 120.0 - ry / 252.0)) -
		 rz * (1.0 / 12.0 - rz * (1.0 / 120.0 - rz / 252.0)));
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
