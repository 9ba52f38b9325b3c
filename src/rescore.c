/*
 * rescore.c: the scoring pass of a refresh.
 *
 * segtier._rescore(cfg segtier._scoring, query text) reads the rows of query
 * (each customer's features and the ctid of its row in <model>_tiers, see
 * _refresh_model) and those rows in one streaming pass.  It writes the rows
 * itself (tablewrite.c), inserting new customers' and updating those whose
 * values changed: a daily run changes nearly every row (recency, P(alive)),
 * a first one adds every row, and writing them here spares a million-row
 * result set and the INSERT or UPDATE that joined it back.  It returns what
 * SQL still writes: the new ('i'), removed ('d') and updated ('u')
 * customers with their tier_history entries (an updated one only with
 * entries), the removed to be deleted, the new to be counted.  A large
 * query is scored by parallel workers, one hash partition of the customers
 * each, and written by the leader after them (see "Parallel workers").
 * Scores, segments, value classes, the pyramid, lifecycle, churn, the
 * predictive columns, clusters, overrides and hysteresis are all computed
 * here, with the same functions the SQL API exposes, so the refresh and a
 * hand-written query give the same answer.
 */
#include "segtier.h"

#include <math.h>

#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "common/hashfn.h"
#include "common/int.h"
#include "executor/spi.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "nodes/nodeFuncs.h"
#include "parser/parse_coerce.h"
#include "pgstat.h"
#include "storage/latch.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/float.h"
#include "utils/json.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/numeric.h"
#include "utils/snapmgr.h"
#include "utils/syscache.h"

/*
 * The BG/NBD expectations of a customer known to be alive, which cost a
 * hypergeometric series a month, depend on x and T only (not on t_x): they
 * are computed once per (x, T) and pass, for far fewer keys than customers.
 * P(alive), a closed form, is cheaper than a memo of a million histories.
 */
typedef struct AliveKey
{
	float8		v[2];			/* x, T */
} AliveKey;

typedef struct GivenAlive
{
	AliveKey	key;
	uint32		hash;
	char		status;
	float8		expected;
	float8		clv_purchases;
} GivenAlive;

#define SH_PREFIX alive
#define SH_ELEMENT_TYPE GivenAlive
#define SH_KEY_TYPE AliveKey
#define SH_KEY key
#define SH_HASH_KEY(tb, k) hash_bytes((const unsigned char *) (k).v, sizeof(AliveKey))
#define SH_EQUAL(tb, a, b) (memcmp((a).v, (b).v, sizeof(AliveKey)) == 0)
#define SH_STORE_HASH
#define SH_GET_HASH(tb, e) ((e)->hash)
#define SH_SCOPE static inline
#define SH_DECLARE
#define SH_DEFINE
#include "lib/simplehash.h"

/* The columns of a <model>_tiers row that the pass computes, in table order. */
typedef enum TierColumn
{
	C_FIRST,
	C_LAST,
	C_RECENCY,
	C_FREQUENCY,
	C_MONETARY,
	C_VALUE,
	C_RFM,
	C_SEGMENT,
	C_VALUE_CLASS,
	C_PYRAMID,
	C_LIFECYCLE,
	C_CHURN,
	C_CHURN_REASON,
	C_P_ALIVE,
	C_EXPECTED,
	C_CLV,
	C_CLUSTER,
	C_CLUSTER_LABEL,
	C_HELD,
	C_OVERRIDDEN,
	C_HOLD,
	NCOLS
} TierColumn;

/* How two values of a column are compared (as IS DISTINCT FROM would). */
typedef enum Kind
{
	K_INT64,					/* timestamptz, bigint, tier */
	K_INT32,					/* rfm, int */
	K_BOOL,
	K_FLOAT8,
	K_NUMERIC,
	K_TEXT,
	K_TEXTARR,
	K_JSONB
} Kind;

static const Kind column_kind[NCOLS] = {
	K_INT64, K_INT64, K_FLOAT8, K_INT64, K_NUMERIC, K_NUMERIC, K_INT32, K_TEXT,
	K_INT64, K_INT64, K_INT64, K_BOOL, K_TEXT, K_FLOAT8, K_FLOAT8, K_FLOAT8,
	K_INT32, K_TEXT, K_TEXTARR, K_TEXTARR, K_JSONB
};

/* The SQL type of each row column; InvalidOid: segtier.rfm or segtier.tier. */
static const Oid column_type[NCOLS] = {
	TIMESTAMPTZOID, TIMESTAMPTZOID, FLOAT8OID, INT8OID, NUMERICOID, NUMERICOID, InvalidOid, TEXTOID,
	InvalidOid, InvalidOid, InvalidOid, BOOLOID, TEXTOID, FLOAT8OID, FLOAT8OID, FLOAT8OID,
	INT4OID, TEXTOID, TEXTARRAYOID, TEXTARRAYOID, JSONBOID
};

/*
 * Input columns of the query, 0-based: the features, then the ctid of the
 * customer's row in <model>_tiers (NULL for a new customer), which the pass
 * reads itself: a hash join carrying every old row would cost more.
 */
enum
{
	IN_CUSTOMER,
	IN_FIRST,
	IN_LAST,
	IN_RECENCY,
	IN_FREQUENCY,
	IN_MONETARY,
	IN_VALUE,
	IN_TRANSACTIONS,
	IN_MONTH_SPEND,
	IN_X,
	IN_T_X,
	IN_T_AGE,
	IN_MEAN_REPEAT,
	IN_PRESENT,
	IN_TID,
	IN_NCOLS
};

/* The <model>_tiers row: customer, the NCOLS columns, computed_at, run_id. */
#define TIERS_NCOLS (1 + NCOLS + 2)

/* Output: op, customer, then the history arrays (NULL without history). */
#define OUT_HIST 2
#define HIST_FIELDS 5
#define OUT_NCOLS (OUT_HIST + HIST_FIELDS)

/* The three tier columns with history, overrides and (two) hysteresis. */
#define NSCHEMES 3
static const char *const scheme_names[NSCHEMES] = {"value_class", "pyramid", "lifecycle"};
static const TierColumn scheme_column[NSCHEMES] = {C_VALUE_CLASS, C_PYRAMID, C_LIFECYCLE};

typedef struct Levels
{
	int			n;
	Datum	   *tiers;
	bool	   *nulls;
} Levels;

typedef struct Cuts
{
	bool		present;
	int			n;
	const float8 *v;
} Cuts;

typedef struct Override
{
	char	   *customer;
	int			scheme;
	bool		has_tier;
	Tier		tier;
	char	   *reason;			/* NULL when NULL */
	char	   *set_by;
	char	   *cleared_by;
	bool		live;
} Override;

typedef struct Scoring
{
	TimestampTz as_of;
	int32		bins;
	Cuts		r_cuts,
				f_cuts,
				m_cuts,
				v_cuts,
				p_cuts;
	Levels		value_levels,
				pyramid_levels;
	bool		rfm8;
	bool		rfm8_mean;
	float8		means[3];
	bool		means_null[3];
	SegtierLang lang;
	LifecycleWindows windows;
	float8		churn_decline;
	int32		churn_months;
	bool		has_threshold;
	float8		p_alive_threshold;
	char	   *threshold_text;
	bool		predict;
	BgnbdParams bg;
	bool		has_gg;
	float8		gg[3];
	float8		horizon_days;
	float8		horizon_months;
	float8		discount_rate;
	bool		cluster;
	float8		stdz[6];
	int			k;
	const float8 *centroids;
	Datum	   *labels;
	bool	   *label_nulls;
	int			nlabels;
	int32		hysteresis_runs;
	int32		hysteresis_days;
	Tier		stage_tier[LIFECYCLE_STAGES];
	int			noverrides;
	Override   *overrides;		/* sorted by customer, then scheme */
	Oid			customer_out;	/* how id::text writes an id: the output */
	Oid			customer_cast;	/* function, or a cast (char(n)'s rtrim) */
	int64		run_id;			/* of the rows updated */
	alive_hash *given_alive;	/* GivenAlive by (x, T) */
	Datum		empty_array;	/* '{}'::text[] and '{}'::jsonb, built once */
	Datum		empty_object;
} Scoring;

static Datum
cfg_field(HeapTupleHeader cfg, const char *name, bool *isnull)
{
	return GetAttributeByName(cfg, name, isnull);
}

static Cuts
cfg_cuts(HeapTupleHeader cfg, const char *name)
{
	bool		isnull;
	Datum		d = cfg_field(cfg, name, &isnull);
	Cuts		c = {false, 0, NULL};

	if (!isnull)
	{
		c.present = true;
		c.n = segtier_get_cuts(DatumGetArrayTypeP(d), &c.v);
	}
	return c;
}

static Levels
cfg_levels(HeapTupleHeader cfg, const char *name)
{
	bool		isnull;
	Datum		d = cfg_field(cfg, name, &isnull);
	Levels		l = {0, NULL, NULL};

	if (!isnull)
	{
		ArrayType  *arr = DatumGetArrayTypeP(d);

		deconstruct_array(arr, ARR_ELEMTYPE(arr), sizeof(Tier), true, TYPALIGN_DOUBLE,
						  &l.tiers, &l.nulls, &l.n);
	}
	return l;
}

/* A setting that cannot be NULL. */
static Datum
cfg_required(HeapTupleHeader cfg, const char *name)
{
	bool		isnull;
	Datum		d = cfg_field(cfg, name, &isnull);

	if (isnull)
		elog(ERROR, "scoring setting %s is NULL", name);
	return d;
}

static int32
cfg_int(HeapTupleHeader cfg, const char *name)
{
	return DatumGetInt32(cfg_required(cfg, name));
}

static float8
cfg_float(HeapTupleHeader cfg, const char *name, bool *isnull)
{
	Datum		d = cfg_field(cfg, name, isnull);

	return *isnull ? 0.0 : DatumGetFloat8(d);
}

static int
override_cmp(const void *a, const void *b)
{
	const Override *x = a;
	const Override *y = b;
	int			c = strcmp(x->customer, y->customer);

	return c != 0 ? c : x->scheme - y->scheme;
}

static char *
spi_text(HeapTuple tup, TupleDesc desc, int col)
{
	bool		isnull;
	Datum		d = SPI_getbinval(tup, desc, col, &isnull);

	return isnull ? NULL : TextDatumGetCString(d);
}

/* The model's overrides, all of them (cleared and expired ones give reasons). */
static void
load_overrides(Scoring *s, text *model, MemoryContext cxt)
{
	Oid			argtypes[1] = {TEXTOID};
	Datum		args[1] = {PointerGetDatum(model)};

	if (SPI_execute_with_args(
			"SELECT o.customer, o.scheme, o.tier::segtier.tier, o.reason, o.set_by::text, o.cleared_by::text, "
			"       o.cleared_by IS NULL AND (o.expires IS NULL OR o.expires > now()) "
			"FROM segtier.tier_override o WHERE o.model = $1",
			1, argtypes, args, NULL, true, 0) != SPI_OK_SELECT)
		elog(ERROR, "could not read the overrides");
	s->noverrides = 0;
	s->overrides = MemoryContextAlloc(cxt, sizeof(Override) * Max(SPI_processed, 1));
	for (uint64 i = 0; i < SPI_processed; i++)
	{
		HeapTuple	tup = SPI_tuptable->vals[i];
		TupleDesc	desc = SPI_tuptable->tupdesc;
		Override   *o = &s->overrides[s->noverrides];
		MemoryContext old = MemoryContextSwitchTo(cxt);
		char	   *scheme = spi_text(tup, desc, 2);
		bool		isnull;
		Datum		t;

		o->scheme = -1;
		for (int k = 0; k < NSCHEMES; k++)
			if (scheme && strcmp(scheme, scheme_names[k]) == 0)
				o->scheme = k;
		o->customer = spi_text(tup, desc, 1);
		t = SPI_getbinval(tup, desc, 3, &isnull);
		o->has_tier = !isnull;
		o->tier = isnull ? 0 : DatumGetTier(t);
		o->reason = spi_text(tup, desc, 4);
		o->set_by = spi_text(tup, desc, 5);
		o->cleared_by = spi_text(tup, desc, 6);
		o->live = o->has_tier && DatumGetBool(SPI_getbinval(tup, desc, 7, &isnull)) && !isnull;
		MemoryContextSwitchTo(old);
		if (o->scheme >= 0 && o->customer != NULL)
			s->noverrides++;
	}
	SPI_freetuptable(SPI_tuptable);
	qsort(s->overrides, s->noverrides, sizeof(Override), override_cmp);
}

static const Override *
find_override(const Scoring *s, const char *customer, int scheme)
{
	Override	key = {.customer = (char *) customer, .scheme = scheme};

	return bsearch(&key, s->overrides, s->noverrides, sizeof(Override), override_cmp);
}

static void
read_config(Scoring *s, HeapTupleHeader cfg, MemoryContext cxt)
{
	bool		isnull;
	Datum		d;
	MemoryContext old = MemoryContextSwitchTo(cxt);

	s->as_of = DatumGetTimestampTz(cfg_required(cfg, "as_of"));
	s->bins = cfg_int(cfg, "bins");
	s->r_cuts = cfg_cuts(cfg, "recency_cuts");
	s->f_cuts = cfg_cuts(cfg, "frequency_cuts");
	s->m_cuts = cfg_cuts(cfg, "monetary_cuts");
	s->v_cuts = cfg_cuts(cfg, "value_cuts");
	s->p_cuts = cfg_cuts(cfg, "pyramid_cuts");
	s->value_levels = cfg_levels(cfg, "value_levels");
	s->pyramid_levels = cfg_levels(cfg, "pyramid_levels");

	s->rfm8 = segtier_segment_rfm8(DatumGetTextPP(cfg_required(cfg, "segment_scheme")));
	d = cfg_field(cfg, "rfm8_mean", &isnull);
	s->rfm8_mean = !isnull && DatumGetBool(d);
	d = cfg_field(cfg, "means", &isnull);
	for (int i = 0; i < 3; i++)
		s->means_null[i] = true;
	if (!isnull)
	{
		Datum	   *e;
		bool	   *n;
		int			ne;

		deconstruct_array(DatumGetArrayTypeP(d), FLOAT8OID, sizeof(float8), FLOAT8PASSBYVAL,
						  TYPALIGN_DOUBLE, &e, &n, &ne);
		for (int i = 0; i < Min(ne, 3); i++)
		{
			s->means_null[i] = n[i];
			s->means[i] = n[i] ? 0.0 : DatumGetFloat8(e[i]);
		}
	}
	s->lang = segtier_parse_lang(DatumGetTextPP(cfg_required(cfg, "lang")));

	s->windows.new_days = cfg_int(cfg, "new_days");
	s->windows.active_days = cfg_int(cfg, "active_days");
	s->windows.churn_days = cfg_int(cfg, "churn_days");
	s->windows.loyal_purchases = cfg_int(cfg, "loyal_purchases");
	segtier_lifecycle_check(&s->windows);
	s->churn_decline = DatumGetFloat8(cfg_required(cfg, "churn_decline"));
	s->churn_months = cfg_int(cfg, "churn_months");
	s->p_alive_threshold = cfg_float(cfg, "p_alive_threshold", &isnull);
	s->has_threshold = !isnull;
	if (s->has_threshold)
		s->threshold_text = float8out_internal(s->p_alive_threshold);

	d = cfg_field(cfg, "bgnbd", &isnull);
	s->predict = !isnull;
	if (s->predict)
		bgnbd_get_params(DatumGetHeapTupleHeader(d), &s->bg);
	d = cfg_field(cfg, "gamma_gamma", &isnull);
	s->has_gg = !isnull;
	if (s->has_gg)
		gg_get_params(DatumGetHeapTupleHeader(d), s->gg);
	s->horizon_days = cfg_float(cfg, "horizon_days", &isnull);
	s->horizon_months = cfg_float(cfg, "horizon_months", &isnull);
	s->discount_rate = cfg_float(cfg, "discount_rate", &isnull);

	s->cluster = false;
	d = cfg_field(cfg, "stdz", &isnull);
	if (!isnull)
	{
		ArrayType  *stdz = DatumGetArrayTypeP(d);
		Datum		cd = cfg_field(cfg, "centroids", &isnull);

		if (!isnull)
		{
			ArrayType  *cent = DatumGetArrayTypeP(cd);
			Datum	   *e;
			bool	   *n;
			int			ne;

			deconstruct_array(stdz, FLOAT8OID, sizeof(float8), FLOAT8PASSBYVAL,
							  TYPALIGN_DOUBLE, &e, &n, &ne);
			if (ne != 6 || array_contains_nulls(stdz) || ARR_NDIM(cent) != 2 ||
				ARR_DIMS(cent)[1] != 3 || array_contains_nulls(cent))
				elog(ERROR, "malformed cluster statistics");
			for (int i = 0; i < 6; i++)
				s->stdz[i] = DatumGetFloat8(e[i]);
			s->k = ARR_DIMS(cent)[0];
			s->centroids = (const float8 *) ARR_DATA_PTR(cent);
			s->cluster = true;
		}
	}
	d = cfg_field(cfg, "cluster_labels", &isnull);
	s->nlabels = 0;
	if (!isnull)
		deconstruct_array(DatumGetArrayTypeP(d), TEXTOID, -1, false, TYPALIGN_INT,
						  &s->labels, &s->label_nulls, &s->nlabels);
	s->hysteresis_runs = cfg_int(cfg, "hysteresis_runs");
	s->hysteresis_days = cfg_int(cfg, "hysteresis_days");
	for (int i = 0; i < LIFECYCLE_STAGES; i++)
		s->stage_tier[i] = segtier_tier("lifecycle", segtier_lifecycle_stages[i]);
	MemoryContextSwitchTo(old);
}

/* ---- one customer ---- */

typedef struct History
{
	int			n;
	Datum		field[HIST_FIELDS][NSCHEMES];
	bool		null[HIST_FIELDS][NSCHEMES];
} History;

static void
history_add(History *h, int scheme, bool old_null, Tier old, bool new_null, Tier new,
			const char *reason, const char *by)
{
	int			i = h->n++;

	h->field[0][i] = CStringGetTextDatum(scheme_names[scheme]);
	h->null[0][i] = false;
	h->null[1][i] = old_null;
	if (!old_null)
		h->field[1][i] = CStringGetTextDatum(segtier_tier_cstring(old));
	h->null[2][i] = new_null;
	if (!new_null)
		h->field[2][i] = CStringGetTextDatum(segtier_tier_cstring(new));
	h->null[3][i] = reason == NULL;
	if (reason)
		h->field[3][i] = CStringGetTextDatum(reason);
	h->null[4][i] = by == NULL;
	if (by)
		h->field[4][i] = CStringGetTextDatum(by);
}

static Datum
text_array(const Scoring *s, Datum *elems, int n)
{
	if (n == 0)
		return s->empty_array;
	return PointerGetDatum(construct_array(elems, n, TEXTOID, -1, false, TYPALIGN_INT));
}

static Datum
history_array(const History *h, int field)
{
	int			dims[1] = {h->n};
	int			lbs[1] = {1};

	return PointerGetDatum(construct_md_array((Datum *) h->field[field], (bool *) h->null[field],
											  1, dims, lbs, TEXTOID, -1, false, TYPALIGN_INT));
}

/* A text[] compared element by element (stored and built arrays differ in headers). */
static bool
text_arrays_same(Datum a, Datum b)
{
	Datum	   *ea,
			   *eb;
	bool	   *na,
			   *nb;
	int			ca,
				cb;

	deconstruct_array(DatumGetArrayTypeP(a), TEXTOID, -1, false, TYPALIGN_INT, &ea, &na, &ca);
	deconstruct_array(DatumGetArrayTypeP(b), TEXTOID, -1, false, TYPALIGN_INT, &eb, &nb, &cb);
	if (ca != cb)
		return false;
	for (int i = 0; i < ca; i++)
		if (na[i] != nb[i] || (!na[i] && !datum_image_eq(ea[i], eb[i], false, -1)))
			return false;
	return true;
}

static bool
values_same(Kind kind, Datum a, bool an, Datum b, bool bn)
{
	if (an || bn)
		return an && bn;
	switch (kind)
	{
		case K_INT64:
			return DatumGetInt64(a) == DatumGetInt64(b);
		case K_INT32:
			return DatumGetInt32(a) == DatumGetInt32(b);
		case K_BOOL:
			return DatumGetBool(a) == DatumGetBool(b);
		case K_FLOAT8:
			{
				float8		x = DatumGetFloat8(a),
							y = DatumGetFloat8(b);

				return x == y || (isnan(x) && isnan(y));
			}
		case K_NUMERIC:
			return DatumGetBool(DirectFunctionCall2(numeric_eq, a, b));
		case K_TEXT:
			return datum_image_eq(a, b, false, -1);
		case K_TEXTARR:
			return datum_image_eq(a, b, false, -1) || text_arrays_same(a, b);
		case K_JSONB:
			return datum_image_eq(a, b, false, -1) ||
				DatumGetBool(DirectFunctionCall2(jsonb_eq, a, b));
	}
	return false;
}

/* hold->scheme->key of the old hold counters, or NULL. */
static JsonbValue *
hold_field(Jsonb *hold, const char *scheme, const char *key)
{
	JsonbValue	v;
	JsonbValue *inner;

	if (hold == NULL ||
		!getKeyJsonValueFromContainer(&hold->root, scheme, strlen(scheme), &v) ||
		v.type != jbvBinary)
		return NULL;
	inner = getKeyJsonValueFromContainer(v.val.binary.data, key, strlen(key), NULL);
	return inner;
}

static bool
hold_has(Jsonb *hold, const char *scheme)
{
	JsonbValue	v;

	return hold != NULL &&
		getKeyJsonValueFromContainer(&hold->root, scheme, strlen(scheme), &v) != NULL;
}

static char *
json_scalar_text(JsonbValue *v)
{
	if (v == NULL || v->type == jbvNull)
		return NULL;
	if (v->type == jbvString)
		return pnstrdup(v->val.string.val, v->val.string.len);
	if (v->type == jbvNumeric)
		return DatumGetCString(DirectFunctionCall1(numeric_out, NumericGetDatum(v->val.numeric)));
	if (v->type == jbvBool)
		return pstrdup(v->val.boolean ? "true" : "false");
	return NULL;
}

/* The hysteresis run count after this run: the stored one plus one. */
static int32
next_run(const char *stored, int scheme)
{
	int32		runs = stored ? pg_strtoint32(stored) : 0;

	if (pg_add_s32_overflow(runs, 1, &runs))
		ereport(ERROR,
				(errcode(ERRCODE_NUMERIC_VALUE_OUT_OF_RANGE),
				 errmsg("hysteresis run count of column %s is out of range", scheme_names[scheme])));
	return runs;
}

static int
score_or_zero(const Cuts *c, float8 v, bool higher)
{
	return c->present ? segtier_score(v, c->v, c->n, higher) : 0;
}

/* levels[score(value, cuts)] as SQL subscripts it: NULL when out of range. */
static bool
level_at(const Levels *l, int score, Tier *t)
{
	if (l->tiers == NULL || score < 1 || score > l->n || l->nulls[score - 1])
		return false;
	*t = DatumGetTier(l->tiers[score - 1]);
	return true;
}

/*
 * Scores one customer, the query's row in/nul beside the customer's row of
 * <model>_tiers (the NCOLS columns old/oldnull, when it existed), into
 * row/rownull (the customer, then the NCOLS columns, as the table has them)
 * and h; returns the row's operation ('i', 'u' or 'd'), or '\0' when
 * nothing must be written.
 */
static char
rescore_row(const Scoring *s, const Datum *in, const bool *nul, bool existed, const Datum *old,
			const bool *oldnull, Datum *row, bool *rownull, History *h, const char *by)
{
	Datum	   *v = row + 1;
	bool	   *isnull = rownull + 1;
	bool		has;
	float8		recency = 0,
				frequency = 0,
				monetary = 0;
	Tier		scored[NSCHEMES];
	bool		scored_null[NSCHEMES];
	Jsonb	   *hold_old;
	bool		overridden_old[NSCHEMES] = {false, false, false};
	char	   *customer_text = NULL;
	Datum		held[NSCHEMES],
				overridden[NSCHEMES];
	int			nheld = 0,
				noverridden = 0;
	StringInfoData hold;
	bool		changed;

	h->n = 0;
	row[0] = in[IN_CUSTOMER];
	rownull[0] = nul[IN_CUSTOMER];

	if (nul[IN_PRESENT] || !DatumGetBool(in[IN_PRESENT]))
	{
		if (!existed)
			return '\0';
		for (int k = 0; k < NSCHEMES; k++)
			history_add(h, k, oldnull[scheme_column[k]], DatumGetTier(old[scheme_column[k]]),
						true, 0, "customer removed", NULL);
		return 'd';
	}

	/* the customer's own numbers */
	for (int c = C_FIRST; c <= C_VALUE; c++)
	{
		v[c] = in[IN_FIRST + c];
		isnull[c] = nul[IN_FIRST + c];
	}
	has = !nul[IN_LAST];
	if (has)
	{
		recency = DatumGetFloat8(in[IN_RECENCY]);
		frequency = (float8) DatumGetInt64(in[IN_FREQUENCY]);
		/* no average for a customer without purchases: scored as zero */
		monetary = nul[IN_MONETARY] ? 0.0 : segtier_numeric_float8(in[IN_MONETARY]);
	}

	/* RFM and its segment */
	isnull[C_RFM] = isnull[C_SEGMENT] = true;
	if (has && s->r_cuts.present && s->f_cuts.present && (monetary <= 0 || s->m_cuts.present))
	{
		Rfm			rfm = rfm_make(segtier_score(recency, s->r_cuts.v, s->r_cuts.n, false),
								   segtier_score(frequency, s->f_cuts.v, s->f_cuts.n, true),
								   monetary > 0 ? segtier_score(monetary, s->m_cuts.v, s->m_cuts.n, true) : 1,
								   s->bins);
		const char *segment = NULL;

		v[C_RFM] = RfmGetDatum(rfm);
		isnull[C_RFM] = false;
		if (s->rfm8 && s->rfm8_mean)
		{
			if (!s->means_null[0] && !s->means_null[1] && !s->means_null[2])
				segment = segtier_rfm8(recency < s->means[0], frequency > s->means[1],
									   monetary > s->means[2], s->lang);
		}
		else
			segment = segtier_segment(rfm, s->rfm8, s->lang);
		if (segment)
		{
			v[C_SEGMENT] = CStringGetTextDatum(segment);
			isnull[C_SEGMENT] = false;
		}
	}

	/* value class and pyramid: the first level for no or negative value */
	{
		float8		value = has && !nul[IN_VALUE] ? segtier_numeric_float8(in[IN_VALUE]) : 0.0;
		bool		positive = has && value > 0;
		int			score_v = positive ? score_or_zero(&s->v_cuts, value, true) : 1;
		int			score_p = positive ? score_or_zero(&s->p_cuts, value, true) : 1;

		if (has && nul[IN_VALUE])
			score_v = score_p = 0;
		scored_null[0] = !level_at(&s->value_levels, score_v, &scored[0]);
		scored_null[1] = !level_at(&s->pyramid_levels, score_p, &scored[1]);
	}

	/* the overrides in force before this run, and the hysteresis counters */
	if (!oldnull[C_OVERRIDDEN])
	{
		Datum	   *e;
		bool	   *n;
		int			ne;

		deconstruct_array(DatumGetArrayTypeP(old[C_OVERRIDDEN]), TEXTOID, -1, false,
						  TYPALIGN_INT, &e, &n, &ne);
		for (int i = 0; i < ne; i++)
			for (int k = 0; k < NSCHEMES; k++)
				if (!n[i] && strcmp(TextDatumGetCString(e[i]), scheme_names[k]) == 0)
					overridden_old[k] = true;
	}
	hold_old = oldnull[C_HOLD] ? NULL : DatumGetJsonbP(old[C_HOLD]);

	/* lifecycle: reactivation looks at the previous scored stage */
	{
		int			prev = -1;

		if (!oldnull[C_LIFECYCLE] && !overridden_old[2])
			prev = segtier_lifecycle_parse(segtier_tier_level_name(DatumGetTier(old[C_LIFECYCLE])));
		scored[2] = s->stage_tier[segtier_lifecycle(has,
													nul[IN_FIRST] ? 0 : DatumGetTimestampTz(in[IN_FIRST]),
													has ? DatumGetTimestampTz(in[IN_LAST]) : 0,
													nul[IN_TRANSACTIONS] ? 0 : DatumGetInt64(in[IN_TRANSACTIONS]),
													s->as_of, &s->windows, prev)];
		scored_null[2] = false;
	}

	/* predictions */
	isnull[C_P_ALIVE] = isnull[C_EXPECTED] = isnull[C_CLV] = true;
	if (has)
	{
		float8		key[3];
		float8		clv_purchases = 0.0;

		key[0] = DatumGetFloat8(in[IN_X]);
		key[1] = DatumGetFloat8(in[IN_T_X]);
		key[2] = DatumGetFloat8(in[IN_T_AGE]);
		if (s->predict)
		{
			AliveKey	ak = {{key[0], key[2]}};
			GivenAlive *alive;
			float8		p_alive;
			bool		found;

			bgnbd_check_customer(key);
			alive = alive_insert(s->given_alive, ak, &found);
			if (!found)
			{
				alive->expected = bgnbd_expected_alive(&s->bg, s->horizon_days, key);
				alive->clv_purchases = s->has_gg ?
					segtier_clv_purchases_alive(&s->bg, key, s->horizon_months, s->discount_rate, 30.0) : 0.0;
			}
			p_alive = bgnbd_p_alive_key(&s->bg, key);
			v[C_P_ALIVE] = Float8GetDatum(p_alive);
			v[C_EXPECTED] = Float8GetDatum(alive->expected * p_alive);
			isnull[C_P_ALIVE] = isnull[C_EXPECTED] = false;
			clv_purchases = alive->clv_purchases * p_alive;
		}
		/* Gamma-Gamma has no spend for repeat purchases that were all free */
		if (key[0] > 0 && !nul[IN_MEAN_REPEAT] && !(DatumGetFloat8(in[IN_MEAN_REPEAT]) > 0))
		{
			v[C_CLV] = Float8GetDatum(0.0);
			isnull[C_CLV] = false;
		}
		else if (s->predict && s->has_gg)
		{
			v[C_CLV] = Float8GetDatum(segtier_clv_from(s->gg, key[0],
													   nul[IN_MEAN_REPEAT] ? 0.0 : DatumGetFloat8(in[IN_MEAN_REPEAT]),
													   1.0, clv_purchases));
			isnull[C_CLV] = false;
		}
	}

	/* churn: the spend rule, or p_alive below the threshold */
	v[C_CHURN] = BoolGetDatum(false);
	isnull[C_CHURN] = false;
	isnull[C_CHURN_REASON] = true;
	if (has)
	{
		const float8 *spend = NULL;
		int			nspend = 0;
		char	   *reason;
		bool		at_risk;
		bool		low = s->has_threshold && !isnull[C_P_ALIVE] &&
			DatumGetFloat8(v[C_P_ALIVE]) < s->p_alive_threshold;

		if (!nul[IN_MONTH_SPEND])
		{
			Datum	   *e;
			bool	   *n;
			float8	   *f;

			deconstruct_array(DatumGetArrayTypeP(in[IN_MONTH_SPEND]), NUMERICOID, -1, false,
							  TYPALIGN_INT, &e, &n, &nspend);
			f = palloc(sizeof(float8) * Max(nspend, 1));
			for (int i = 0; i < nspend; i++)
			{
				if (n[i])
					ereport(ERROR,
							(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
							 errmsg("monthly spend must be a one-dimensional array without NULLs")));
				f[i] = segtier_numeric_float8(e[i]);
			}
			spend = f;
		}
		at_risk = segtier_churn(spend, nspend, recency, s->windows.active_days,
								s->churn_decline, s->churn_months, &reason);
		if (low)
		{
			Datum		rounded = DirectFunctionCall2(numeric_round,
													  DirectFunctionCall1(float8_numeric, v[C_P_ALIVE]),
													  Int32GetDatum(3));
			char	   *p = psprintf("p_alive %s below %s",
									 DatumGetCString(DirectFunctionCall1(numeric_out, rounded)),
									 s->threshold_text);

			reason = reason ? psprintf("%s; %s", reason, p) : p;
		}
		v[C_CHURN] = BoolGetDatum(at_risk || low);
		if (reason)
		{
			v[C_CHURN_REASON] = CStringGetTextDatum(reason);
			isnull[C_CHURN_REASON] = false;
		}
	}

	/* k-means cluster of the standardized log features */
	isnull[C_CLUSTER] = isnull[C_CLUSTER_LABEL] = true;
	if (has && s->cluster)
	{
		float8		x[3];
		int			c;

		segtier_cluster_point(recency, frequency, monetary, s->stdz, x);
		c = segtier_nearest_centroid(x, 3, s->centroids, s->k);
		v[C_CLUSTER] = Int32GetDatum(c);
		isnull[C_CLUSTER] = false;
		if (c <= s->nlabels && !s->label_nulls[c - 1])
		{
			v[C_CLUSTER_LABEL] = s->labels[c - 1];
			isnull[C_CLUSTER_LABEL] = false;
		}
	}

	/*
	 * Final tiers: an active override wins; a downgrade of value_class or
	 * pyramid is held until the customer was below its tier for
	 * hysteresis_runs consecutive rescorings or hysteresis_days days.
	 * set_override stores the id as id::text writes it.
	 */
	if (s->noverrides > 0)
		customer_text = OidIsValid(s->customer_cast) ?
			TextDatumGetCString(OidFunctionCall1(s->customer_cast, in[IN_CUSTOMER])) :
			OidOutputFunctionCall(s->customer_out, in[IN_CUSTOMER]);
	for (int k = 0; k < NSCHEMES; k++)
	{
		TierColumn col = scheme_column[k];
		const Override *o = customer_text ? find_override(s, customer_text, k) : NULL;
		bool		live = o != NULL && o->live;
		char	   *runs_text = json_scalar_text(hold_field(hold_old, scheme_names[k], "runs"));
		char	   *since_text = json_scalar_text(hold_field(hold_old, scheme_names[k], "since"));
		int32		runs = next_run(runs_text, k);
		TimestampTz since = since_text ?
			DatumGetTimestampTz(DirectFunctionCall3(timestamptz_in, CStringGetDatum(since_text),
													ObjectIdGetDatum(InvalidOid), Int32GetDatum(-1))) :
			s->as_of;
		bool		hyst = k != 2 && (s->hysteresis_runs > 1 || s->hysteresis_days > 0);
		bool		keep = hyst && existed && !live && !overridden_old[k] &&
			!oldnull[col] && !scored_null[k] &&
			TIER_SCHEME(DatumGetTier(old[col])) == TIER_SCHEME(scored[k]) &&
			segtier_tier_rank(scored[k]) < segtier_tier_rank(DatumGetTier(old[col])) &&
			!((s->hysteresis_runs > 1 && runs >= s->hysteresis_runs) ||
			  (s->hysteresis_days > 0 &&
			   s->as_of - since >= (int64) s->hysteresis_days * USECS_PER_DAY));
		const char *reason;
		const char *who;
		bool		cleared = overridden_old[k] && o != NULL && o->cleared_by != NULL;
		bool		released = false;	/* set where the reason is chosen */

		if (live)
		{
			v[col] = TierGetDatum(o->tier);
			isnull[col] = false;
		}
		else if (keep)
		{
			v[col] = old[col];
			isnull[col] = false;
		}
		else
		{
			v[col] = TierGetDatum(scored[k]);
			isnull[col] = scored_null[k];
		}
		if (!existed)
			reason = "new customer";
		else if (live)
			reason = o->reason ? psprintf("override: %s", o->reason) : NULL;
		else if (cleared)
			reason = "override cleared";
		else if (overridden_old[k])
			reason = "override expired";
		else if (keep)
			reason = psprintf("hysteresis hold: scored %s, run %d",
							  segtier_tier_cstring(scored[k]), runs);
		else if ((released = hold_has(hold_old, scheme_names[k])))
			reason = "hysteresis release";
		else
			reason = "score";
		who = live ? o->set_by : cleared ? o->cleared_by : by;

		if (live)
			overridden[noverridden++] = CStringGetTextDatum(scheme_names[k]);
		if (keep)
		{
			if (nheld == 0)
				initStringInfo(&hold);	/* rare: most rows hold nothing */
			held[nheld++] = CStringGetTextDatum(scheme_names[k]);
			appendStringInfo(&hold, "%s\"%s\": {\"runs\": %d, \"since\": \"%s\"}",
							 nheld > 1 ? ", " : "{", scheme_names[k], runs,
							 JsonEncodeDateTime(NULL, TimestampTzGetDatum(since), TIMESTAMPTZOID, NULL));
		}
		/* a hold or its release is history even when the tier stays */
		if (!values_same(K_INT64, old[col], oldnull[col] || !existed, v[col], isnull[col]) ||
			keep || released)
			history_add(h, k, oldnull[col] || !existed, DatumGetTier(old[col]),
						isnull[col], DatumGetTier(v[col]), reason, who);
	}
	v[C_HELD] = text_array(s, held, nheld);
	v[C_OVERRIDDEN] = text_array(s, overridden, noverridden);
	if (nheld == 0)
		v[C_HOLD] = s->empty_object;
	else
	{
		appendStringInfoChar(&hold, '}');
		v[C_HOLD] = DirectFunctionCall1(jsonb_in, CStringGetDatum(hold.data));
	}
	isnull[C_HELD] = isnull[C_OVERRIDDEN] = isnull[C_HOLD] = false;

	if (!existed)
		return 'i';
	changed = h->n > 0;
	for (int c = 0; c < NCOLS && !changed; c++)
		changed = !values_same(column_kind[c], old[c], oldnull[c], v[c], isnull[c]);
	return changed ? 'u' : '\0';
}

static Oid
segtier_type(const char *name)
{
	return GetSysCacheOid2(TYPENAMENSP, Anum_pg_type_oid, CStringGetDatum(name),
						   ObjectIdGetDatum(get_namespace_oid("segtier", false)));
}

void
segtier_check_type(const char *func, const char *what, int col, Oid have, Oid want)
{
	if (have != want)
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("%s column %d of %s has type %s, not %s",
						what, col + 1, func, format_type_be(have), format_type_be(want))));
}

/*
 * The query's columns and the column definition list must have the types the
 * pass reads and writes: it reads datums by position.
 */
static void
check_types(TupleDesc in, TupleDesc out, TupleDesc tiers)
{
	static const Oid features[IN_NCOLS] = {
		InvalidOid, TIMESTAMPTZOID, TIMESTAMPTZOID, FLOAT8OID, INT8OID, NUMERICOID, NUMERICOID,
		INT8OID, NUMERICARRAYOID, FLOAT8OID, FLOAT8OID, FLOAT8OID, FLOAT8OID, BOOLOID, TIDOID
	};
	Oid			rfm = segtier_type("rfm");
	Oid			tier = segtier_type("tier");

	if (in->natts != IN_NCOLS)
		elog(ERROR, "the scoring query returns %d columns, not %d", in->natts, IN_NCOLS);
	for (int i = 1; i < IN_NCOLS; i++)
		segtier_check_type("segtier._rescore", "input", i, TupleDescAttr(in, i)->atttypid, features[i]);
	for (int c = 0; c < NCOLS; c++)
	{
		Oid			want = column_type[c] != InvalidOid ? column_type[c] : c == C_RFM ? rfm : tier;

		segtier_check_type("segtier._rescore", "tiers", 1 + c, TupleDescAttr(tiers, 1 + c)->atttypid, want);
	}
	/* a worker has no output: its leader's is checked */
	if (out != NULL)
	{
		segtier_check_type("segtier._rescore", "output", 0, TupleDescAttr(out, 0)->atttypid, CHAROID);
		segtier_check_type("segtier._rescore", "output", 1, TupleDescAttr(out, 1)->atttypid,
						   TupleDescAttr(in, IN_CUSTOMER)->atttypid);
		for (int f = 0; f < HIST_FIELDS; f++)
			segtier_check_type("segtier._rescore", "output", OUT_HIST + f, TupleDescAttr(out, OUT_HIST + f)->atttypid,
							   TEXTARRAYOID);
	}
	segtier_check_type("segtier._rescore", "tiers", 0, TupleDescAttr(tiers, 0)->atttypid, TupleDescAttr(in, IN_CUSTOMER)->atttypid);
	segtier_check_type("segtier._rescore", "tiers", 1 + NCOLS, TupleDescAttr(tiers, 1 + NCOLS)->atttypid, TIMESTAMPTZOID);
	segtier_check_type("segtier._rescore", "tiers", 2 + NCOLS, TupleDescAttr(tiers, 2 + NCOLS)->atttypid, INT8OID);
}

/* A tiers row of row/rownull, with the run's computed_at and run_id, into slot. */
static void
tiers_row(const Scoring *s, TupleTableSlot *slot, const Datum *row, const bool *rownull)
{
	ExecClearTuple(slot);
	memcpy(slot->tts_values, row, (1 + NCOLS) * sizeof(Datum));
	memcpy(slot->tts_isnull, rownull, (1 + NCOLS) * sizeof(bool));
	/* computed_at = now(), run_id */
	slot->tts_values[1 + NCOLS] = TimestampTzGetDatum(GetCurrentTransactionStartTimestamp());
	slot->tts_isnull[1 + NCOLS] = false;
	slot->tts_values[2 + NCOLS] = Int64GetDatum(s->run_id);
	slot->tts_isnull[2 + NCOLS] = false;
	ExecStoreVirtualTuple(slot);
}

/*
 * A scored row that must be written, as a parallel worker sends it to the
 * leader: op, the ctid of the old row ('u'), the row (customer and the
 * NCOLS columns) and the history arrays.
 */
#define MSG_OP 0
#define MSG_TID 1
#define MSG_ROW 2
#define MSG_HIST (MSG_ROW + 1 + NCOLS)
#define MSG_NCOLS (MSG_HIST + HIST_FIELDS)

/*
 * The scoring query's rows come straight from the executor (no copy into a
 * tuple table): each is scored, and its row is written at once (inserted or
 * updated, and what SQL must write put in the result) or, while workers
 * score, formed into a message that the leader keeps or a worker sends.
 */
typedef struct ScoreReceiver
{
	DestReceiver pub;			/* first: the executor calls us as a receiver */
	Scoring    *s;
	Relation	rel;			/* <model>_tiers */
	TupleTableSlot *old;		/* a tiers row as fetched */
	Datum		no_values[NCOLS];	/* the columns of no row: 0 */
	bool		no_row[NCOLS];	/* and NULL */
	MemoryContext row_cxt;
	const char *by;
	TupleDesc	msgdesc;
	Tuplestorestate *kept;		/* the leader's messages, while workers score */
	shm_mq_handle *mqh;			/* a worker's queue to the leader */
	uint64		sent;			/* a worker's messages */
	/* the leader's writes */
	TableWriter *tiers;
	TupleTableSlot *slot;		/* a tiers row as updated */
	Tuplestorestate *store;
	TupleDesc	outdesc;
} ScoreReceiver;

static void
score_startup(DestReceiver *self, int operation, TupleDesc desc)
{
	ScoreReceiver *r = (ScoreReceiver *) self;
	Oid			type = TupleDescAttr(desc, IN_CUSTOMER)->atttypid;
	bool		typisvarlena;

	check_types(desc, r->outdesc, RelationGetDescr(r->rel));
	getTypeOutputInfo(type, &r->s->customer_out, &typisvarlena);
	if (find_coercion_pathway(TEXTOID, type, COERCION_EXPLICIT, &r->s->customer_cast) != COERCION_PATH_FUNC ||
		get_func_nargs(r->s->customer_cast) != 1)
		r->s->customer_cast = InvalidOid;
}

/* Writes a scored row: inserts or updates it, and puts what SQL must write in the result. */
static void
write_row(ScoreReceiver *r, char op, ItemPointer tid, const Datum *row, const bool *rownull,
		  const Datum *hist, const bool *histnull)
{
	Datum		out[OUT_NCOLS];
	bool		outnull[OUT_NCOLS];

	if (op == 'u')
	{
		tiers_row(r->s, r->slot, row, rownull);
		segtier_table_update(r->tiers, tid, r->slot);
	}
	else if (op == 'i')
	{
		tiers_row(r->s, segtier_table_slot(r->tiers), row, rownull);
		segtier_table_put(r->tiers);
	}
	/* an updated row only for its history; new and removed ones are counted */
	if (op == 'u' && histnull[0])
		return;
	out[0] = CharGetDatum(op);
	outnull[0] = false;
	out[1] = row[0];
	outnull[1] = rownull[0];
	memcpy(out + OUT_HIST, hist, HIST_FIELDS * sizeof(Datum));
	memcpy(outnull + OUT_HIST, histnull, HIST_FIELDS * sizeof(bool));
	tuplestore_putvalues(r->store, r->outdesc, out, outnull);
}

static bool
score_receive(TupleTableSlot *in, DestReceiver *self)
{
	ScoreReceiver *r = (ScoreReceiver *) self;
	Datum		msg[MSG_NCOLS];
	bool		msgnull[MSG_NCOLS];
	Datum	   *row = msg + MSG_ROW;
	bool	   *rownull = msgnull + MSG_ROW;
	History		h;
	char		op;
	MemoryContext old;
	bool		existed;

	CHECK_FOR_INTERRUPTS();
	slot_getallattrs(in);
	existed = !in->tts_isnull[IN_TID];
	if (existed)
	{
		/* a query's ctid: the row must be there, as the query saw it */
		if (!table_tuple_fetch_row_version(r->rel, (ItemPointer) DatumGetPointer(in->tts_values[IN_TID]),
										   GetActiveSnapshot(), r->old))
			elog(ERROR, "the scoring query of segtier._rescore read no row of \"%s\" at its ctid",
				 RelationGetRelationName(r->rel));
		slot_getallattrs(r->old);
	}
	old = MemoryContextSwitchTo(r->row_cxt);
	memset(msgnull, true, sizeof(msgnull));
	op = rescore_row(r->s, in->tts_values, in->tts_isnull, existed,
					 existed ? r->old->tts_values + 1 : r->no_values, existed ? r->old->tts_isnull + 1 : r->no_row,
					 row, rownull, &h, r->by);
	if (op != '\0')
	{
		msg[MSG_OP] = CharGetDatum(op);
		msgnull[MSG_OP] = false;
		if (op == 'u')
		{
			/* in place of the old row, its key as stored (an equal key may be spelt otherwise) */
			row[0] = slot_getattr(r->old, 1, &rownull[0]);
			msg[MSG_TID] = PointerGetDatum(&r->old->tts_tid);
			msgnull[MSG_TID] = false;
		}
		/* NULL without history: most rows of a daily run have none */
		for (int f = 0; f < HIST_FIELDS && h.n > 0; f++)
		{
			msg[MSG_HIST + f] = history_array(&h, f);
			msgnull[MSG_HIST + f] = false;
		}
		if (r->kept == NULL && r->mqh == NULL)
			write_row(r, op, &r->old->tts_tid, row, rownull, msg + MSG_HIST, msgnull + MSG_HIST);
		else
		{
			HeapTuple	tuple = heap_form_tuple(r->msgdesc, msg, msgnull);

			if (r->kept != NULL)
				tuplestore_puttuple(r->kept, tuple);
			else if (shm_mq_send(r->mqh, tuple->t_len, tuple->t_data, false, false) == SHM_MQ_SUCCESS)
				r->sent++;
			else
				ereport(ERROR,
						(errcode(ERRCODE_INTERNAL_ERROR),
						 errmsg("the leader of segtier._rescore stopped reading")));
		}
	}
	MemoryContextSwitchTo(old);
	MemoryContextReset(r->row_cxt);
	ExecClearTuple(r->old);
	return true;
}

static void
score_noop(DestReceiver *self)
{
}

/*
 * The scoring settings of cfg and the model's overrides, in cxt; SPI is
 * connected.
 */
static void
scoring_init(Scoring *s, HeapTupleHeader cfg, MemoryContext cxt)
{
	MemoryContext old;

	memset(s, 0, sizeof(*s));
	read_config(s, cfg, cxt);
	old = MemoryContextSwitchTo(cxt);
	s->empty_array = PointerGetDatum(construct_empty_array(TEXTOID));
	s->empty_object = DirectFunctionCall1(jsonb_in, CStringGetDatum("{}"));
	MemoryContextSwitchTo(old);
	if (s->predict)
		s->given_alive = alive_create(cxt, 1024, NULL);
	load_overrides(s, DatumGetTextPP(cfg_required(cfg, "model")), cxt);
	s->run_id = DatumGetInt64(cfg_required(cfg, "run_id"));
}

/* A receiver of the rows scored for the tiers table rel; the caller says where they go. */
static void
receiver_init(ScoreReceiver *r, Scoring *s, Relation rel)
{
	TupleDesc	tiers = RelationGetDescr(rel);

	/* the types are checked at the query's start (check_types) */
	if (tiers->natts != TIERS_NCOLS)
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("the tiers table of segtier._rescore has %d columns, not %d", tiers->natts, TIERS_NCOLS)));
	memset(r, 0, sizeof(*r));
	r->pub.receiveSlot = score_receive;
	r->pub.rStartup = score_startup;
	r->pub.rShutdown = score_noop;
	r->pub.rDestroy = score_noop;
	r->pub.mydest = DestNone;
	r->s = s;
	r->rel = rel;
	r->old = table_slot_create(rel, NULL);
	memset(r->no_row, true, sizeof(r->no_row));
	r->row_cxt = AllocSetContextCreate(CurrentMemoryContext, "segtier rescore row", ALLOCSET_DEFAULT_SIZES);
	r->by = GetUserNameFromId(GetUserId(), false);
	r->msgdesc = CreateTemplateTupleDesc(MSG_NCOLS);
	TupleDescInitEntry(r->msgdesc, MSG_OP + 1, "op", CHAROID, -1, 0);
	TupleDescInitEntry(r->msgdesc, MSG_TID + 1, "tid", TIDOID, -1, 0);
	for (int c = 0; c < 1 + NCOLS; c++)
		TupleDescCopyEntry(r->msgdesc, MSG_ROW + c + 1, tiers, c + 1);
	for (int f = 0; f < HIST_FIELDS; f++)
		TupleDescInitEntry(r->msgdesc, MSG_HIST + f + 1, NULL, TEXTARRAYOID, -1, 0);
}

/* The scoring query's parameters: $1 a partition, $2 of how many. */
static Oid	query_types[2] = {INT4OID, INT4OID};

static SPIPlanPtr
query_prepare(const char *query)
{
	SPIPlanPtr	plan = SPI_prepare(query, 2, query_types);

	if (plan == NULL)
		elog(ERROR, "could not prepare the scoring query: %s", SPI_result_code_string(SPI_result));
	return plan;
}

/* Scores the rows of partition part of nparts. */
static void
query_run(ScoreReceiver *r, SPIPlanPtr plan, int part, int nparts)
{
	Datum		args[2] = {Int32GetDatum(part), Int32GetDatum(nparts)};

	segtier_run_query(plan, 2, query_types, args, &r->pub, "the scoring query of segtier._rescore");
}

/*
 * Parallel workers.  Reading and scoring a million customers is most of
 * the pass, and each customer is scored alone, so for a large query each
 * worker scores one hash partition of the customers (the query keeps those
 * of partition $1 of $2 on both sides of its join) and sends the rows to
 * write to the leader.  No process may update a row in parallel mode: the
 * leader keeps the rows until the workers are done and writes them after.
 * The workers' arguments (segtier_worker_arg):
 */
#define RESCORE_ARG_SHARED 0
#define RESCORE_ARG_CFG 1
#define RESCORE_ARG_QUERY 2
#define RESCORE_NARGS 3

typedef struct RescoreShared
{
	Oid			tiers;
	int			nparts;
} RescoreShared;

PGDLLEXPORT void segtier_rescore_worker(dsm_segment *seg, shm_toc *toc);

/*
 * The launched workers' rows into kept, until each sent its count of rows
 * (a message of a uint64: a tuple is longer).
 */
static void
workers_drain(ParallelContext *pcxt, shm_mq_handle **queues, Tuplestorestate *kept)
{
	int			busy = pcxt->nworkers_launched;
	uint64	   *received = palloc0(sizeof(uint64) * busy);
	bool	   *done = palloc0(sizeof(bool) * busy);

	while (busy > 0)
	{
		bool		got = false;

		for (int i = 0; i < pcxt->nworkers_launched; i++)
		{
			Size		nbytes;
			void	   *data;
			shm_mq_result res;

			if (done[i])
				continue;
			res = shm_mq_receive(queues[i], &nbytes, &data, true);
			if (res == SHM_MQ_WOULD_BLOCK)
				continue;
			if (res != SHM_MQ_SUCCESS)
			{
				/* its error, if it sent one */
				WaitForParallelWorkersToFinish(pcxt);
				elog(ERROR, "a parallel worker of segtier._rescore stopped before it sent its rows");
			}
			got = true;
			if (nbytes == sizeof(uint64))
			{
				uint64		sent;

				memcpy(&sent, data, sizeof(sent));
				if (sent != received[i])
					elog(ERROR, "a parallel worker of segtier._rescore sent " UINT64_FORMAT " rows, of which "
						 UINT64_FORMAT " arrived", sent, received[i]);
				done[i] = true;
				busy--;
			}
			else
			{
				HeapTupleData tuple;

				tuple.t_len = nbytes;
				tuple.t_data = data;
				ItemPointerSetInvalid(&tuple.t_self);
				tuple.t_tableOid = InvalidOid;
				tuplestore_puttuple(kept, &tuple);
				received[i]++;
			}
		}
		if (!got)
		{
			(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_EXIT_ON_PM_DEATH, -1, WAIT_EVENT_MQ_RECEIVE);
			ResetLatch(MyLatch);
		}
		CHECK_FOR_INTERRUPTS();
	}
}

/* Writes the rows kept while the workers scored. */
static void
kept_write(ScoreReceiver *r)
{
	TupleTableSlot *slot = MakeSingleTupleTableSlot(r->msgdesc, &TTSOpsMinimalTuple);

	while (tuplestore_gettupleslot(r->kept, true, false, slot))
	{
		CHECK_FOR_INTERRUPTS();
		slot_getallattrs(slot);
		write_row(r, DatumGetChar(slot->tts_values[MSG_OP]),
				  (ItemPointer) DatumGetPointer(slot->tts_values[MSG_TID]),
				  slot->tts_values + MSG_ROW, slot->tts_isnull + MSG_ROW,
				  slot->tts_values + MSG_HIST, slot->tts_isnull + MSG_HIST);
	}
	ExecDropSingleTupleTableSlot(slot);
	tuplestore_end(r->kept);
	r->kept = NULL;
}

/* Sets bit n of *used for each $n in a query. */
static bool
params_walker(Node *node, int *used)
{
	if (node == NULL)
		return false;
	if (IsA(node, Param) && ((Param *) node)->paramkind == PARAM_EXTERN && ((Param *) node)->paramid < 31)
		*used |= 1 << ((Param *) node)->paramid;
	if (IsA(node, Query))
		return query_tree_walker((Query *) node, params_walker, used, 0);
	return expression_tree_walker(node, params_walker, used);
}

/*
 * Scores the query's rows with parallel workers when it is large and keeps
 * partition $1 of $2 (0.6.0's did not); false when it did not (nothing is
 * scored then).
 */
static bool
score_parallel(ScoreReceiver *r, SPIPlanPtr plan, HeapTupleHeader cfg, const char *query)
{
	TypeCacheEntry *tc = lookup_type_cache(TupleDescAttr(RelationGetDescr(r->rel), 0)->atttypid,
										   TYPECACHE_HASH_PROC | TYPECACHE_EQ_OPR | TYPECACHE_CMP_PROC);
	int			nworkers = segtier_scan_workers(plan, tc);
	int			used = 0;
	ListCell   *lc;
	RescoreShared sh;
	const void *args[RESCORE_NARGS] = {&sh, cfg, query};
	Size		sizes[RESCORE_NARGS] = {sizeof(sh), HeapTupleHeaderGetDatumLength(cfg), strlen(query) + 1};
	ParallelContext *pcxt;
	shm_mq_handle **queues;

	if (nworkers == 0)
		return false;
	foreach(lc, SPI_plan_get_plan_sources(plan))
		(void) params_walker((Node *) ((CachedPlanSource *) lfirst(lc))->query_list, &used);
	if ((used & (1 << 1 | 1 << 2)) != (1 << 1 | 1 << 2))
		return false;
	sh.tiers = RelationGetRelid(r->rel);
	sh.nparts = nworkers;
	pcxt = segtier_workers_launch("segtier_rescore_worker", nworkers, RESCORE_NARGS, args, sizes, &queues);
	elog(DEBUG1, "segtier._rescore: %d of %d parallel workers launched", pcxt->nworkers_launched, nworkers);
	if (pcxt->nworkers_launched == 0)
	{
		segtier_workers_end(pcxt, queues);
		return false;
	}
	/*
	 * Every row of a daily refresh comes back (about 250 bytes a customer):
	 * a refresh is maintenance, so the rows stay in memory up to
	 * maintenance_work_mem, as a CREATE INDEX's sort does, not work_mem.
	 */
	r->kept = tuplestore_begin_heap(false, false, maintenance_work_mem);
	/* the partitions of workers not launched; the launched ones' queues wait */
	for (int part = pcxt->nworkers_launched; part < nworkers; part++)
		query_run(r, plan, part, nworkers);
	workers_drain(pcxt, queues, r->kept);
	WaitForParallelWorkersToFinish(pcxt);
	segtier_workers_end(pcxt, queues);
	kept_write(r);
	return true;
}

/* A worker: the query's rows of its partition, scored, to the leader, then their count. */
void
segtier_rescore_worker(dsm_segment *seg, shm_toc *toc)
{
	RescoreShared *sh = segtier_worker_arg(toc, RESCORE_ARG_SHARED);
	shm_mq_handle *mqh = segtier_worker_queue(seg, toc);
	Relation	rel;
	Scoring		s;
	ScoreReceiver r;

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	scoring_init(&s, segtier_worker_arg(toc, RESCORE_ARG_CFG), CurrentMemoryContext);
	rel = table_open(sh->tiers, AccessShareLock);
	receiver_init(&r, &s, rel);
	r.mqh = mqh;
	query_run(&r, query_prepare(segtier_worker_arg(toc, RESCORE_ARG_QUERY)), ParallelWorkerNumber, sh->nparts);
	if (shm_mq_send(r.mqh, sizeof(r.sent), &r.sent, false, true) != SHM_MQ_SUCCESS)
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("the leader of segtier._rescore stopped reading")));
	ExecDropSingleTupleTableSlot(r.old);
	table_close(rel, AccessShareLock);
	SPI_finish();
	shm_mq_detach(r.mqh);
}

PG_FUNCTION_INFO_V1(segtier_rescore);
Datum
segtier_rescore(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;
	HeapTupleHeader cfg = PG_GETARG_HEAPTUPLEHEADER(0);
	char	   *query = text_to_cstring(PG_GETARG_TEXT_PP(1));
	MemoryContext per_query;
	MemoryContext old;
	Scoring		s;
	SPIPlanPtr	plan;
	ScoreReceiver r;
	TableWriter tiers;

	if (rsinfo == NULL || !IsA(rsinfo, ReturnSetInfo) ||
		!(rsinfo->allowedModes & SFRM_Materialize) || rsinfo->expectedDesc == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("segtier._rescore must be called in FROM with a column definition list")));
	if (rsinfo->expectedDesc->natts != OUT_NCOLS)
		elog(ERROR, "segtier._rescore returns %d columns, not %d",
			 OUT_NCOLS, rsinfo->expectedDesc->natts);

	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	per_query = rsinfo->econtext->ecxt_per_query_memory;
	scoring_init(&s, cfg, per_query);
	segtier_table_open(&tiers, DatumGetObjectId(cfg_required(cfg, "tiers")), ACL_INSERT | ACL_UPDATE,
					   "segtier._rescore");
	receiver_init(&r, &s, tiers.rel);
	r.tiers = &tiers;
	r.slot = table_slot_create(tiers.rel, NULL);
	old = MemoryContextSwitchTo(per_query);
	r.outdesc = CreateTupleDescCopy(rsinfo->expectedDesc);
	r.store = tuplestore_begin_heap(true, false, work_mem);
	MemoryContextSwitchTo(old);

	plan = query_prepare(query);
	if (!score_parallel(&r, plan, cfg, query))
		query_run(&r, plan, 0, 1);
	ExecDropSingleTupleTableSlot(r.old);
	ExecDropSingleTupleTableSlot(r.slot);
	segtier_table_close(&tiers);
	SPI_finish();

	rsinfo->returnMode = SFRM_Materialize;
	rsinfo->setResult = r.store;
	rsinfo->setDesc = r.outdesc;
	return (Datum) 0;
}

/*
 * segtier._in_part(customer anyelement, part int, nparts int): whether the
 * customer's hash (by its type's hash opclass, so equal ids agree) falls
 * in partition part of nparts.
 */
PG_FUNCTION_INFO_V1(segtier_in_part);
Datum
segtier_in_part(PG_FUNCTION_ARGS)
{
	int32		part = PG_GETARG_INT32(1);
	int32		nparts = PG_GETARG_INT32(2);
	FmgrInfo   *hash = fcinfo->flinfo->fn_extra;
	uint32		h;

	if (nparts < 1 || part < 0 || part >= nparts)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("partition %d of %d does not exist", part, nparts)));
	if (hash == NULL)
	{
		Oid			type = get_fn_expr_argtype(fcinfo->flinfo, 0);
		TypeCacheEntry *tc = lookup_type_cache(type, TYPECACHE_HASH_PROC_FINFO);

		if (!OidIsValid(tc->hash_proc))
			ereport(ERROR,
					(errcode(ERRCODE_UNDEFINED_FUNCTION),
					 errmsg("could not identify a hash function for type %s", format_type_be(type))));
		hash = MemoryContextAlloc(fcinfo->flinfo->fn_mcxt, sizeof(FmgrInfo));
		fmgr_info_copy(hash, &tc->hash_proc_finfo, fcinfo->flinfo->fn_mcxt);
		fcinfo->flinfo->fn_extra = hash;
	}
	h = DatumGetUInt32(FunctionCall1Coll(hash, PG_GET_COLLATION(), PG_GETARG_DATUM(0)));
	PG_RETURN_BOOL(segtier_hash_partition(h, nparts) == part);
}
