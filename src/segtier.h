/*
 * segtier.h: what the segtier source files share.
 */
#ifndef SEGTIER_H
#define SEGTIER_H

#include "postgres.h"
#include "fmgr.h"

/*
 * segtier.rfm: pass-by-value int32.  Bits 0-3 scale, 4-7 m, 8-11 f, 12-15 r,
 * 16-31 reserved (zero; a future layout sets them).  Comparing the packed
 * integers orders by r, then f, then m, then scale.
 */
typedef int32 Rfm;

#define RFM_MIN_SCALE 2
#define RFM_MAX_SCALE 9
#define RFM_DEFAULT_SCALE 5

#define RFM_PACK(r, f, m, n) ((Rfm) (((r) << 12) | ((f) << 8) | ((m) << 4) | (n)))
#define RFM_R(x) (((x) >> 12) & 0xF)
#define RFM_F(x) (((x) >> 8) & 0xF)
#define RFM_M(x) (((x) >> 4) & 0xF)
#define RFM_SCALE(x) ((x) & 0xF)

#define DatumGetRfm(X) ((Rfm) DatumGetInt32(X))
#define RfmGetDatum(X) Int32GetDatum(X)
#define PG_GETARG_RFM(n) DatumGetRfm(PG_GETARG_DATUM(n))
#define PG_RETURN_RFM(x) return RfmGetDatum(x)


/*
 * segtier.tier: pass-by-value int64, scheme id in the high 32 bits and the
 * level id in the low 32.  Ids are stable; ordering comes from the level's
 * sort key in segtier.tier_level, looked up through a per-backend cache.
 */
typedef int64 Tier;

#define TIER_PACK(scheme, level) ((Tier) (((uint64) (uint32) (scheme) << 32) | (uint32) (level)))
#define TIER_SCHEME(x) ((int32) ((uint64) (x) >> 32))
#define TIER_LEVEL(x) ((int32) ((uint64) (x) & 0xFFFFFFFF))

#define DatumGetTier(X) ((Tier) DatumGetInt64(X))
#define TierGetDatum(X) Int64GetDatum(X)
#define PG_GETARG_TIER(n) DatumGetTier(PG_GETARG_DATUM(n))
#define PG_RETURN_TIER(x) return TierGetDatum(x)

/* Language of labels: 'en' or 'zh'; anything else is an error. */
typedef enum SegtierLang
{
	LANG_EN,
	LANG_ZH
} SegtierLang;

extern SegtierLang segtier_parse_lang(text *lang);

/*
 * True when a text argument equals a short ASCII word (no palloc); inline,
 * so that a literal's length is a constant (scalar functions call it per row).
 */
static inline bool
segtier_text_is(text *t, const char *word)
{
	size_t		len = strlen(word);

	return VARSIZE_ANY_EXHDR(t) == len && memcmp(VARDATA_ANY(t), word, len) == 0;
}

#include "utils/array.h"
#include "utils/timestamp.h"

/* rfm.c, score.c */
extern Rfm	rfm_make(int r, int f, int m, int scale);
extern int	segtier_get_cuts(ArrayType *arr, const float8 **cuts);
extern int	segtier_score(float8 value, const float8 *cuts, int ncuts,
						  bool higher_is_better);

/* summary.c: exact amount sums, shared with the period_spend aggregate */
#include "utils/numeric.h"

#define MAX_FAST_SCALE 38		/* 10^38 still fits an int128 */

typedef struct PurchaseSum
{
	int128		value;			/* the sum times 10^scale */
	int32		scale;
	int32		reserved;
} PurchaseSum;

/* One input amount, decoded. */
typedef struct Amount
{
	bool		negative;
	bool		fast;			/* value and scale hold it exactly */
	int128		value;
	int32		scale;
	Datum		datum;			/* the numeric itself, for the slow path */
} Amount;

extern bool AmountDecode(Datum d, Amount *a);
extern void AmountRead(Datum d, Amount *a);
extern float8 segtier_numeric_float8(Datum n);
extern bool SumAdd(PurchaseSum *acc, int128 value, int32 scale);
extern Numeric SumToNumeric(const PurchaseSum *sum);

/* tablewrite.c: a refresh's passes write into the model's tables */
#include "executor/tuptable.h"
#include "nodes/execnodes.h"
#include "utils/relcache.h"

/* Rows a heap multi-insert writes at once (COPY's batch). */
#define SEGTIER_WRITE_ROWS 1000

typedef struct TableWriter
{
	Relation	rel;
	EState	   *estate;
	ResultRelInfo *rri;
	CommandId	cid;
	int			options;		/* of the table AM's inserts */
	struct BulkInsertStateData *bistate;	/* the inserts' page and buffer ring */
	bool		build_indexes;	/* at close, not an entry a row */
	bool		not_null;		/* NOT NULL columns to check */
	const char *func;			/* names the writer in errors */
	TupleTableSlot *slots[SEGTIER_WRITE_ROWS];	/* new rows for a multi-insert */
	int			nslots;
} TableWriter;

extern void segtier_table_open(TableWriter *w, Oid relid, AclMode mode, const char *func);
extern TupleTableSlot *segtier_table_slot(TableWriter *w);
extern void segtier_table_put(TableWriter *w);
extern void segtier_table_update(TableWriter *w, ItemPointer tid, TupleTableSlot *slot);
extern void segtier_table_close(TableWriter *w);

/* parallel.c: a refresh's passes over a query's rows, and their parallel workers */
#include "access/parallel.h"
#include "executor/spi.h"
#include "storage/shm_mq.h"
#include "utils/typcache.h"

extern void segtier_run_query(SPIPlanPtr plan, int nargs, const Oid *types, const Datum *args, DestReceiver *dest,
							  const char *what);
extern int	segtier_scan_workers(SPIPlanPtr plan, TypeCacheEntry *tc);
extern ParallelContext *segtier_workers_launch(const char *entry, int nworkers, int nargs, const void *const *args,
											   const Size *sizes, shm_mq_handle ***queues);
extern void segtier_workers_end(ParallelContext *pcxt, shm_mq_handle **queues);
extern void *segtier_worker_arg(shm_toc *toc, int i);
extern shm_mq_handle *segtier_worker_queue(dsm_segment *seg, shm_toc *toc);

/* A customer's hash partition of nparts, from the hash's high bits (hash tables take the low ones). */
static inline int
segtier_hash_partition(uint32 hash, int nparts)
{
	return (int) (((uint64) hash * (uint64) nparts) >> 32);
}

/* summary.c, periodspend.c: the states, for the aggregation pass (summarize.c) */
typedef struct PurchaseState PurchaseState;
typedef struct ZoneCache ZoneCache;
typedef struct SpendBounds SpendBounds;
typedef struct SpendState SpendState;

#define SUMMARY_FIELDS 10		/* of the segtier.purchase_summary type */

extern ZoneCache *segtier_zone_cache(MemoryContext cxt, text *zone);
extern PurchaseState *segtier_purchase_new(void);
extern PurchaseState *segtier_purchase_add(PurchaseState *st, ZoneCache *zc, bool isnull,
										   TimestampTz ts, Datum amount,
										   const TimestampTz *as_of);
extern void segtier_purchase_values(const PurchaseState *st, Datum *values, bool *nulls);
extern const SpendBounds *segtier_spend_bounds(MemoryContext cxt, ArrayType *arr);
extern SpendState *segtier_spend_new(MemoryContext cxt, const SpendBounds *bounds);
extern void segtier_spend_add(SpendState *st, MemoryContext cxt, TimestampTz ts, Datum amount);
extern Datum segtier_spend_sums(const SpendState *st);

/* rescore.c: the type check of the C passes that read a query by position */
extern void segtier_check_type(const char *func, const char *what, int col, Oid have, Oid want);

/* tier.c */
extern Tier segtier_tier(const char *scheme, const char *level);
extern char *segtier_tier_cstring(Tier t);
extern int32 segtier_tier_rank(Tier t);
extern const char *segtier_tier_level_name(Tier t);

/* segment.c */
extern const char *segtier_rfm8(bool r_high, bool f_high, bool m_high, SegtierLang lang);
extern bool segtier_segment_rfm8(text *scheme);
extern const char *segtier_segment(Rfm x, bool rfm8, SegtierLang lang);

typedef enum LifecycleStage
{
	LIFECYCLE_PROSPECT,
	LIFECYCLE_NEW,
	LIFECYCLE_ACTIVE,
	LIFECYCLE_LOYAL,
	LIFECYCLE_AT_RISK,
	LIFECYCLE_CHURNED,
	LIFECYCLE_REACTIVATED,
	LIFECYCLE_STAGES
} LifecycleStage;

typedef struct LifecycleWindows
{
	int32		new_days;
	int32		active_days;
	int32		churn_days;
	int32		loyal_purchases;
} LifecycleWindows;

extern const char *const segtier_lifecycle_stages[LIFECYCLE_STAGES];
extern void segtier_lifecycle_check(const LifecycleWindows *w);
extern int	segtier_lifecycle_parse(const char *name);
extern int	segtier_lifecycle(bool has_times, TimestampTz first, TimestampTz last,
							  int64 purchases, TimestampTz as_of,
							  const LifecycleWindows *w, int prev);
extern bool segtier_churn(const float8 *spend, int nspend, float8 silent,
						  float8 at_risk_days, float8 min_decline, int32 months,
						  char **reason);

/* kmeans.c */
extern int	segtier_nearest_centroid(const float8 *x, int d, const float8 *cent, int k);
extern void segtier_cluster_point(float8 recency, float8 frequency, float8 monetary,
								  const float8 *stdz, float8 *x);

/* ---- kmcuts: float8 bag aggregate states (cuts.c; used by kmeans.c) ---- */
#include "lib/stringinfo.h"
#include "utils/expandeddatum.h"

#define FLOATBAG_NPARAMS 10

/*
 * The state of the cuts and kmeans aggregates: a multiset of float8 plus a
 * few int32 parameters.  In an aggregate it is an expanded object that grows
 * in place; anywhere else (parallel workers, text, binary) it is flattened.
 * capacity 0 marks a read-only view of a flat datum.
 */
typedef struct FloatBag
{
	ExpandedObjectHeader hdr;
	int32		param[FLOATBAG_NPARAMS];
	int64		nvalues;
	int64		capacity;
	float8	   *values;
} FloatBag;

/* What differs between the SQL types built on FloatBag. */
typedef struct FloatBagKind
{
	const char *typname;
	int			nparams;		/* leading params named in the text form */
	const char *const *names;
	void		(*check) (const int32 *param, int64 nvalues, const float8 *values);
} FloatBagKind;

/* ---- aggstate.c ---- */
extern MemoryContext segtier_state_context(FunctionCallInfo fcinfo);

extern const FloatBag *floatbag_peek(Datum d);
extern FloatBag *floatbag_own(FunctionCallInfo fcinfo, int argno,
							  const int32 *param);
extern void floatbag_append(FloatBag *bag, const float8 *values, int64 n);
extern void floatbag_normalize_zeros(FloatBag *bag);
extern Datum floatbag_in(char *str, const FloatBagKind *kind);
extern char *floatbag_out(Datum d, const FloatBagKind *kind);
extern Datum floatbag_recv(StringInfo buf, const FloatBagKind *kind);
extern bytea *floatbag_send(Datum d, const FloatBagKind *kind);
/* ---- end kmcuts ---- */

/* ---- sort.c ---- */

extern void segtier_sort_u64(uint64 *a, int64 n, int width);
extern void segtier_sort_float8(float8 *v, int64 n);
extern void segtier_sort_rows(void *rows, int64 n, int width, int nkeys);

/* ---- models: optimize.c, bgnbd.c, gammagamma.c ---- */
#include "access/htup_details.h"
#include "lib/stringinfo.h"

/*
 * The state of the model-fitting aggregates: a histogram of distinct
 * per-customer keys ((x, t_x, T) for BG/NBD, (x, m) for Gamma-Gamma) with
 * their counts.  The first used entries are distinct and in key order; the
 * pending ones after them were added since, in any order, and are sorted
 * and merged in when the histogram is full or read.  A flat datum has
 * capacity = used + pending; in an aggregate the state is an expanded
 * object with room to add (optimize.c).
 */
#define HIST_MAX_KEYS 3

typedef struct HistEntry
{
	float8		key[HIST_MAX_KEYS];
	int64		n;
} HistEntry;

typedef struct Hist
{
	int32		vl_len_;		/* varlena header */
	int16		version;		/* layout version, HIST_VERSION */
	int16		nkeys;			/* 3 for BG/NBD, 2 for Gamma-Gamma */
	int32		capacity;		/* entries allocated */
	int32		used;			/* distinct entries in key order */
	int32		pending;		/* entries added after them */
	float8		penalizer;		/* L2 penalty coefficient of the fit */
	int64		skipped;		/* rows skipped by the model (Gamma-Gamma) */
	HistEntry	slots[FLEXIBLE_ARRAY_MEMBER];
} Hist;

#define HIST_VERSION 2
#define PG_GETARG_HIST_P(n) hist_from_datum(PG_GETARG_DATUM(n))

/* Checks one key (raising the model's error) and puts it in canonical form. */
typedef void (*HistKeyCheck) (float8 *key);

extern const Hist *hist_from_datum(Datum d);
extern HistEntry *hist_sorted(const Hist *h, int *count);
extern Datum hist_accumulate(FunctionCallInfo fcinfo, int nkeys,
							 bool (*check) (float8 *key));
extern Datum hist_combine(FunctionCallInfo fcinfo);
extern char *hist_to_cstring(const Hist *h);
extern Hist *hist_from_cstring(const char *str, int nkeys, HistKeyCheck check,
							   const char *type_name);
extern bytea *hist_to_bytea(const Hist *h);
extern Hist *hist_from_buf(StringInfo buf, int nkeys, HistKeyCheck check);

extern float8 segtier_digamma(float8 x);
extern float8 segtier_trigamma(float8 x);
extern float8 segtier_lgamma_step(float8 z, float8 s);
extern float8 segtier_digamma_step(float8 z, float8 s);
extern void segtier_check_finite(const char *what, float8 v);

/*
 * A model's log-likelihood at natural parameters theta (all > 0), with its
 * gradient and Hessian (row-major n x n) with respect to theta.
 */
typedef float8 (*ModelObjective) (const float8 *theta, float8 *grad,
								  float8 *hess, void *arg);

#define MAX_MODEL_PARAMS 4

extern bool segtier_maximize(int n, float8 *theta, ModelObjective f, void *arg,
							 float8 *fmax);

/* bgnbd.c, for the CLV in gammagamma.c */
typedef struct BgnbdParams
{
	float8		r;
	float8		alpha;
	float8		a;
	float8		b;
} BgnbdParams;

extern void bgnbd_get_params(HeapTupleHeader rec, BgnbdParams *p);
extern void bgnbd_check_customer(float8 *key);
extern float8 bgnbd_expected_alive(const BgnbdParams *p, float8 t, const float8 *key);
extern float8 bgnbd_p_alive_key(const BgnbdParams *p, const float8 *key);

/* gammagamma.c */
extern void gg_get_params(HeapTupleHeader rec, float8 *th);
extern float8 segtier_clv_purchases_alive(const BgnbdParams *bg, const float8 *key,
										  float8 horizon, float8 rate, float8 unit);
extern float8 segtier_clv_from(const float8 *gg, float8 x, float8 monetary,
							   float8 margin, float8 purchases);

/* ---- worker: background worker and refresh progress (worker.c, progress.c) ---- */

/* Longest model name kept in shared memory (longer names are clipped). */
#define SEGTIER_SHMEM_NAMELEN 128

extern void _PG_init(void);
extern Size segtier_progress_shmem_size(void);
extern void segtier_progress_shmem_init(void);
/* ---- end worker ---- */

#endif							/* SEGTIER_H */
