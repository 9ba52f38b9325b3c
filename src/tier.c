/*
 * tier.c: the segtier.tier type, a level inside a named tier scheme.
 *
 * Values store stable ids (scheme id, level id).  Names, labels and the
 * order of levels live in segtier.tier_scheme / segtier.tier_level and are
 * read through a per-backend cache.  A statement trigger on those tables
 * sends a relcache invalidation for them, which every backend receives and
 * which drops the cache, so renames and new levels are seen at once.  Level
 * ranks never change and levels are never deleted (enforced by triggers),
 * so the order of stored values, and btree indexes on them, stay valid.
 *
 * The tables are read like catalogs: with the catalog snapshot, which is
 * allowed in parallel workers (a fresh snapshot is not) and which the
 * invalidation callback also drops.  A message that arrives while the cache
 * is being read (a commit later than our snapshot) bumps a generation
 * counter and the read is repeated.  A lookup that misses re-reads once, for
 * a level committed by another session before its invalidation reached us.
 */
#include "segtier.h"

#include "access/hash.h"
#include "access/heapam.h"
#include "access/table.h"
#include "access/tableam.h"
#include "catalog/namespace.h"
#include "catalog/pg_statistic.h"
#include "commands/trigger.h"
#include "libpq/pqformat.h"
#include "utils/builtins.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/selfuncs.h"
#include "utils/snapmgr.h"

typedef struct TierLevel
{
	int32		level_id;
	int32		scheme_id;
	int32		rank;			/* sort key; unique within the scheme */
	int32		position;		/* 1-based place in the scheme's order */
	char	   *scheme_name;
	char	   *name;
	char	   *label_en;
	char	   *label_zh;
} TierLevel;

typedef struct TierScheme
{
	int32		scheme_id;
	char	   *name;
} TierScheme;

typedef struct TierCache
{
	bool		valid;
	uint64		generation;		/* bumped by every invalidation */
	MemoryContext cxt;
	Oid			scheme_relid;
	Oid			level_relid;
	int			nschemes;
	TierScheme *schemes;		/* sorted by scheme_id */
	int			nlevels;
	TierLevel  *levels;			/* sorted by level_id */
} TierCache;

static TierCache cache;
static bool callback_registered = false;

/* Relcache invalidation of a tier table (or of everything): reread later. */
static void
tier_cache_callback(Datum arg, Oid relid)
{
	if (relid == InvalidOid || relid == cache.scheme_relid ||
		relid == cache.level_relid)
	{
		cache.valid = false;
		cache.generation++;
		InvalidateCatalogSnapshot();
	}
}

static int
cmp_level_id(const void *a, const void *b)
{
	int32		x = ((const TierLevel *) a)->level_id;
	int32		y = ((const TierLevel *) b)->level_id;

	return (x > y) - (x < y);
}

static int
cmp_scheme_rank(const void *a, const void *b)
{
	const TierLevel *x = a;
	const TierLevel *y = b;

	if (x->scheme_id != y->scheme_id)
		return (x->scheme_id > y->scheme_id) - (x->scheme_id < y->scheme_id);
	return (x->rank > y->rank) - (x->rank < y->rank);
}

static int
cmp_scheme_id(const void *a, const void *b)
{
	int32		x = ((const TierScheme *) a)->scheme_id;
	int32		y = ((const TierScheme *) b)->scheme_id;

	return (x > y) - (x < y);
}

static Oid
tier_relid(const char *relname)
{
	Oid			nsp = get_namespace_oid("segtier", true);
	Oid			relid = OidIsValid(nsp) ? get_relname_relid(relname, nsp) : InvalidOid;

	if (!OidIsValid(relid))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("segtier tier catalog \"%s\" does not exist", relname),
				 errhint("Run CREATE EXTENSION segtier.")));
	return relid;
}

static char *
text_col(Datum *values, bool *nulls, int col)
{
	return nulls[col] ? NULL : TextDatumGetCString(values[col]);
}

/* Reads both tables into the cache memory (see the header for the snapshot). */
static void
tier_cache_load(void)
{
	MemoryContext old;
	Relation	srel;
	Relation	lrel;
	TableScanDesc scan;
	HeapTuple	tup;
	Snapshot	snap;
	Datum	   *v;
	bool	   *n;
	int			cap;

	if (!callback_registered)
	{
		CacheRegisterRelcacheCallback(tier_cache_callback, (Datum) 0);
		callback_registered = true;
	}
	if (cache.cxt == NULL)
		cache.cxt = AllocSetContextCreate(CacheMemoryContext, "segtier tier cache",
										  ALLOCSET_SMALL_SIZES);
	else
		MemoryContextReset(cache.cxt);
	cache.nschemes = cache.nlevels = 0;
	cache.scheme_relid = tier_relid("tier_scheme");
	cache.level_relid = tier_relid("tier_level");

	old = MemoryContextSwitchTo(cache.cxt);
	srel = table_open(cache.scheme_relid, AccessShareLock);
	lrel = table_open(cache.level_relid, AccessShareLock);
	snap = RegisterSnapshot(GetCatalogSnapshot(cache.level_relid));
	v = palloc(Max(RelationGetDescr(srel)->natts,
				   RelationGetDescr(lrel)->natts) * sizeof(Datum));
	n = palloc(Max(RelationGetDescr(srel)->natts,
				   RelationGetDescr(lrel)->natts) * sizeof(bool));

	/* tier_scheme(scheme_id, name, ...) */
	cap = 8;
	cache.schemes = palloc(cap * sizeof(TierScheme));
	scan = table_beginscan(srel, snap, 0, NULL);
	while ((tup = heap_getnext(scan, ForwardScanDirection)) != NULL)
	{
		heap_deform_tuple(tup, RelationGetDescr(srel), v, n);
		if (cache.nschemes == cap)
			cache.schemes = repalloc(cache.schemes, (cap *= 2) * sizeof(TierScheme));
		cache.schemes[cache.nschemes].scheme_id = DatumGetInt32(v[0]);
		cache.schemes[cache.nschemes].name = text_col(v, n, 1);
		cache.nschemes++;
	}
	table_endscan(scan);
	qsort(cache.schemes, cache.nschemes, sizeof(TierScheme), cmp_scheme_id);

	/* tier_level(level_id, scheme_id, name, rank, label_en, label_zh) */
	cap = 32;
	cache.levels = palloc(cap * sizeof(TierLevel));
	scan = table_beginscan(lrel, snap, 0, NULL);
	while ((tup = heap_getnext(scan, ForwardScanDirection)) != NULL)
	{
		TierLevel  *l;
		TierScheme	key;
		TierScheme *s;

		heap_deform_tuple(tup, RelationGetDescr(lrel), v, n);
		if (cache.nlevels == cap)
			cache.levels = repalloc(cache.levels, (cap *= 2) * sizeof(TierLevel));
		l = &cache.levels[cache.nlevels++];
		l->level_id = DatumGetInt32(v[0]);
		l->scheme_id = DatumGetInt32(v[1]);
		l->name = text_col(v, n, 2);
		l->rank = DatumGetInt32(v[3]);
		l->label_en = text_col(v, n, 4);
		l->label_zh = text_col(v, n, 5);
		key.scheme_id = l->scheme_id;
		s = bsearch(&key, cache.schemes, cache.nschemes, sizeof(TierScheme), cmp_scheme_id);
		if (s == NULL)
			elog(ERROR, "tier level %d refers to missing scheme %d",
				 l->level_id, l->scheme_id);
		l->scheme_name = s->name;
	}
	table_endscan(scan);
	UnregisterSnapshot(snap);
	table_close(lrel, AccessShareLock);
	table_close(srel, AccessShareLock);
	pfree(v);
	pfree(n);

	/* positions: order by (scheme, rank), then index by level id */
	qsort(cache.levels, cache.nlevels, sizeof(TierLevel), cmp_scheme_rank);
	for (int i = 0; i < cache.nlevels; i++)
		cache.levels[i].position =
			(i > 0 && cache.levels[i - 1].scheme_id == cache.levels[i].scheme_id)
			? cache.levels[i - 1].position + 1 : 1;
	qsort(cache.levels, cache.nlevels, sizeof(TierLevel), cmp_level_id);

	MemoryContextSwitchTo(old);
}

/* Makes the cache current; true when it was read just now. */
static bool
tier_cache_ensure(void)
{
	bool		loaded = false;

	while (!cache.valid)
	{
		uint64		generation = cache.generation;

		tier_cache_load();
		cache.valid = (cache.generation == generation);
		loaded = true;
	}
	return loaded;
}

/* Forgets the cache and reads it again, e.g. after a miss. */
static void
tier_cache_reread(void)
{
	tier_cache_callback((Datum) 0, InvalidOid);
	tier_cache_ensure();
}

static TierLevel *
tier_find_level(int32 level_id)
{
	TierLevel	key = {.level_id = level_id};

	return bsearch(&key, cache.levels, cache.nlevels, sizeof(TierLevel), cmp_level_id);
}

/* Level id of scheme:level, or -1; *scheme_id is -1 for an unknown scheme. */
static int32
tier_find_level_by_name(const char *scheme, const char *level, int32 *scheme_id)
{
	*scheme_id = -1;
	for (int i = 0; i < cache.nschemes; i++)
		if (strcmp(cache.schemes[i].name, scheme) == 0)
			*scheme_id = cache.schemes[i].scheme_id;
	for (int i = 0; i < cache.nlevels; i++)
		if (cache.levels[i].scheme_id == *scheme_id &&
			strcmp(cache.levels[i].name, level) == 0)
			return cache.levels[i].level_id;
	return -1;
}

/*
 * The level of a stored value; a missing one means a damaged value.  The
 * result points into the cache: copy what is needed before the next lookup.
 */
static TierLevel *
tier_level_of(Tier t)
{
	bool		loaded = tier_cache_ensure();
	TierLevel  *l = tier_find_level(TIER_LEVEL(t));

	if (l == NULL && !loaded)
	{
		tier_cache_reread();
		l = tier_find_level(TIER_LEVEL(t));
	}
	if (l == NULL || l->scheme_id != TIER_SCHEME(t))
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("tier level %d of scheme %d does not exist",
						TIER_LEVEL(t), TIER_SCHEME(t)),
				 errdetail("The value refers to a level that is not in segtier.tier_level.")));
	return l;
}

/* The tier named scheme:level; the error for an absent one quotes input. */
static Tier
tier_lookup(const char *scheme, const char *level, const char *input)
{
	bool		loaded = tier_cache_ensure();
	int32		scheme_id;
	int32		level_id = tier_find_level_by_name(scheme, level, &scheme_id);

	if (level_id < 0 && !loaded)
	{
		tier_cache_reread();
		level_id = tier_find_level_by_name(scheme, level, &scheme_id);
	}
	if (scheme_id < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_TEXT_REPRESENTATION),
				 errmsg("invalid input syntax for type tier: \"%s\"", input),
				 errdetail("Tier scheme \"%s\" does not exist.", scheme),
				 errhint("Schemes are listed in segtier.tier_scheme.")));
	if (level_id < 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_TEXT_REPRESENTATION),
				 errmsg("invalid input syntax for type tier: \"%s\"", input),
				 errdetail("Tier scheme \"%s\" has no level \"%s\".", scheme, level),
				 errhint("Levels are listed in segtier.tier_level.")));
	return TIER_PACK(scheme_id, level_id);
}

/* Parses 'scheme:level' (surrounding spaces ignored). */
static Tier
tier_parse(const char *str)
{
	char	   *s = pstrdup(str);
	char	   *colon;
	char	   *end;

	while (*s == ' ')
		s++;
	end = s + strlen(s);
	while (end > s && end[-1] == ' ')
		*--end = '\0';
	colon = strchr(s, ':');
	if (colon == NULL || colon == s || colon[1] == '\0')
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_TEXT_REPRESENTATION),
				 errmsg("invalid input syntax for type tier: \"%s\"", str),
				 errhint("A tier is written scheme:level, e.g. 'pyramid:gold'.")));
	*colon = '\0';
	return tier_lookup(s, colon + 1, str);
}

/* scheme:level, the text form (also for the refresh, rescore.c) */
char *
segtier_tier_cstring(Tier t)
{
	TierLevel  *l = tier_level_of(t);

	return psprintf("%s:%s", l->scheme_name, l->name);
}

/* For the refresh (rescore.c): a tier by names, its rank and level name. */
Tier
segtier_tier(const char *scheme, const char *level)
{
	return tier_lookup(scheme, level, psprintf("%s:%s", scheme, level));
}

int32
segtier_tier_rank(Tier t)
{
	return tier_level_of(t)->position;
}

const char *
segtier_tier_level_name(Tier t)
{
	return tier_level_of(t)->name;
}

PG_FUNCTION_INFO_V1(tier_in);
Datum
tier_in(PG_FUNCTION_ARGS)
{
	PG_RETURN_TIER(tier_parse(PG_GETARG_CSTRING(0)));
}

PG_FUNCTION_INFO_V1(tier_out);
Datum
tier_out(PG_FUNCTION_ARGS)
{
	PG_RETURN_CSTRING(segtier_tier_cstring(PG_GETARG_TIER(0)));
}

/* The wire format is the text form, so ids never leave the database. */
PG_FUNCTION_INFO_V1(tier_recv);
Datum
tier_recv(PG_FUNCTION_ARGS)
{
	StringInfo	buf = (StringInfo) PG_GETARG_POINTER(0);
	int			version = pq_getmsgbyte(buf);
	char	   *str;
	int			nbytes;

	if (version != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_BINARY_REPRESENTATION),
				 errmsg("unsupported binary tier version %d", version)));
	str = pq_getmsgtext(buf, buf->len - buf->cursor, &nbytes);
	PG_RETURN_TIER(tier_parse(str));
}

PG_FUNCTION_INFO_V1(tier_send);
Datum
tier_send(PG_FUNCTION_ARGS)
{
	char	   *str = segtier_tier_cstring(PG_GETARG_TIER(0));
	StringInfoData buf;

	pq_begintypsend(&buf);
	pq_sendbyte(&buf, 0);
	pq_sendtext(&buf, str, strlen(str));
	PG_RETURN_BYTEA_P(pq_endtypsend(&buf));
}

PG_FUNCTION_INFO_V1(tier_construct);
Datum
tier_construct(PG_FUNCTION_ARGS)
{
	char	   *scheme = text_to_cstring(PG_GETARG_TEXT_PP(0));
	char	   *level = text_to_cstring(PG_GETARG_TEXT_PP(1));

	PG_RETURN_TIER(tier_lookup(scheme, level, psprintf("%s:%s", scheme, level)));
}

PG_FUNCTION_INFO_V1(tier_scheme);
Datum
tier_scheme(PG_FUNCTION_ARGS)
{
	PG_RETURN_TEXT_P(cstring_to_text(tier_level_of(PG_GETARG_TIER(0))->scheme_name));
}

PG_FUNCTION_INFO_V1(tier_name);
Datum
tier_name(PG_FUNCTION_ARGS)
{
	PG_RETURN_TEXT_P(cstring_to_text(segtier_tier_level_name(PG_GETARG_TIER(0))));
}

PG_FUNCTION_INFO_V1(tier_rank);
Datum
tier_rank(PG_FUNCTION_ARGS)
{
	PG_RETURN_INT32(segtier_tier_rank(PG_GETARG_TIER(0)));
}

SegtierLang
segtier_parse_lang(text *lang)
{
	if (segtier_text_is(lang, "en"))
		return LANG_EN;
	if (segtier_text_is(lang, "zh"))
		return LANG_ZH;
	ereport(ERROR,
			(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
			 errmsg("unsupported language \"%s\"", text_to_cstring(lang)),
			 errhint("Use 'en' or 'zh'.")));
	return LANG_EN;
}

/* The label in the language asked for, else the level's name. */
PG_FUNCTION_INFO_V1(tier_label);
Datum
tier_label(PG_FUNCTION_ARGS)
{
	TierLevel  *l = tier_level_of(PG_GETARG_TIER(0));
	SegtierLang lang = segtier_parse_lang(PG_GETARG_TEXT_PP(1));
	const char *label = (lang == LANG_ZH) ? l->label_zh : l->label_en;

	PG_RETURN_TEXT_P(cstring_to_text(label ? label : l->name));
}

/*
 * The btree order: by scheme id, then by rank.  It must be total, as sorting,
 * btree indexes and ANALYZE use it on columns that mix schemes (history).
 */
static int
tier_order(Tier a, Tier b)
{
	int32		ra;
	int32		rb;

	if (a == b)
		return 0;
	if (TIER_SCHEME(a) != TIER_SCHEME(b))
		return (TIER_SCHEME(a) > TIER_SCHEME(b)) - (TIER_SCHEME(a) < TIER_SCHEME(b));
	ra = tier_level_of(a)->rank;
	rb = tier_level_of(b)->rank;
	return (ra > rb) - (ra < rb);
}

/* What < <= > >= say: asking which of two schemes' tiers is higher is an error. */
static int
tier_compare(Tier a, Tier b)
{
	if (TIER_SCHEME(a) != TIER_SCHEME(b))
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("cannot compare tiers of different schemes: \"%s\" and \"%s\"",
						segtier_tier_cstring(a), segtier_tier_cstring(b)),
				 errdetail("Tiers are ordered only within one scheme.")));
	return tier_order(a, b);
}

PG_FUNCTION_INFO_V1(tier_cmp);
Datum
tier_cmp(PG_FUNCTION_ARGS)
{
	PG_RETURN_INT32(tier_order(PG_GETARG_TIER(0), PG_GETARG_TIER(1)));
}

/* Equality needs no order, so it also answers across schemes. */
PG_FUNCTION_INFO_V1(tier_eq);
Datum
tier_eq(PG_FUNCTION_ARGS)
{
	PG_RETURN_BOOL(PG_GETARG_TIER(0) == PG_GETARG_TIER(1));
}

PG_FUNCTION_INFO_V1(tier_ne);
Datum
tier_ne(PG_FUNCTION_ARGS)
{
	PG_RETURN_BOOL(PG_GETARG_TIER(0) != PG_GETARG_TIER(1));
}

/*
 * < <= > >= in a query (an expression: fn_expr is set) raise the error
 * across schemes.  The planner calls the same functions bare on a column's
 * statistics (the estimates of a merge join, of an inequality); there they
 * answer by the btree order, which built those statistics, so that a join on
 * a column mixing schemes can be planned.
 */
static int
tier_compare_args(FunctionCallInfo fcinfo)
{
	Tier		a = PG_GETARG_TIER(0);
	Tier		b = PG_GETARG_TIER(1);

	if (fcinfo->flinfo == NULL || fcinfo->flinfo->fn_expr == NULL)
		return tier_order(a, b);
	return tier_compare(a, b);
}

#define TIER_ORDER_FN(name, op) \
PG_FUNCTION_INFO_V1(name); \
Datum \
name(PG_FUNCTION_ARGS) \
{ \
	PG_RETURN_BOOL(tier_compare_args(fcinfo) op 0); \
}

TIER_ORDER_FN(tier_lt, <)
TIER_ORDER_FN(tier_le, <=)
TIER_ORDER_FN(tier_gt, >)
TIER_ORDER_FN(tier_ge, >=)

/*
 * Selectivity of < <= > >=: PostgreSQL's estimate places the constant among
 * the column's most common values and histogram.  When those hold another
 * scheme, its place in the btree order (by scheme first) says nothing of
 * the rows the condition keeps, so the default estimate is taken instead.
 */
static bool
tier_stats_one_scheme(VariableStatData *vardata, int32 scheme)
{
	static const int kinds[] = {STATISTIC_KIND_MCV, STATISTIC_KIND_HISTOGRAM};

	if (!HeapTupleIsValid(vardata->statsTuple))
		return true;
	for (int i = 0; i < lengthof(kinds); i++)
	{
		AttStatsSlot sslot;
		bool		same = true;

		if (!get_attstatsslot(&sslot, vardata->statsTuple, kinds[i], InvalidOid, ATTSTATSSLOT_VALUES))
			continue;
		for (int j = 0; j < sslot.nvalues && same; j++)
			same = TIER_SCHEME(DatumGetTier(sslot.values[j])) == scheme;
		free_attstatsslot(&sslot);
		if (!same)
			return false;
	}
	return true;
}

static Datum
tier_ineqsel(FunctionCallInfo fcinfo, PGFunction estimate)
{
	VariableStatData vardata;
	Node	   *other;
	bool		varonleft;
	bool		same = true;

	if (get_restriction_variable((PlannerInfo *) PG_GETARG_POINTER(0), (List *) PG_GETARG_POINTER(2),
								 PG_GETARG_INT32(3), &vardata, &other, &varonleft))
	{
		if (IsA(other, Const) && !((Const *) other)->constisnull)
			same = tier_stats_one_scheme(&vardata, TIER_SCHEME(DatumGetTier(((Const *) other)->constvalue)));
		ReleaseVariableStats(vardata);
	}
	if (!same)
		PG_RETURN_FLOAT8(DEFAULT_INEQ_SEL);
	return estimate(fcinfo);
}

#define TIER_SEL_FN(name, estimate) \
PG_FUNCTION_INFO_V1(name); \
Datum \
name(PG_FUNCTION_ARGS) \
{ \
	return tier_ineqsel(fcinfo, estimate); \
}

TIER_SEL_FN(tier_ltsel, scalarltsel)
TIER_SEL_FN(tier_lesel, scalarlesel)
TIER_SEL_FN(tier_gtsel, scalargtsel)
TIER_SEL_FN(tier_gesel, scalargesel)

/* Level ids are unique across schemes, so they alone decide equality. */
PG_FUNCTION_INFO_V1(tier_hash);
Datum
tier_hash(PG_FUNCTION_ARGS)
{
	return hash_uint32((uint32) TIER_LEVEL(PG_GETARG_TIER(0)));
}

PG_FUNCTION_INFO_V1(tier_hash_extended);
Datum
tier_hash_extended(PG_FUNCTION_ARGS)
{
	return hash_uint32_extended((uint32) TIER_LEVEL(PG_GETARG_TIER(0)),
								PG_GETARG_INT64(1));
}

/* Statement trigger on the tier tables: every backend drops its cache. */
PG_FUNCTION_INFO_V1(tier_catalog_changed);
Datum
tier_catalog_changed(PG_FUNCTION_ARGS)
{
	TriggerData *trigdata = (TriggerData *) fcinfo->context;

	if (!CALLED_AS_TRIGGER(fcinfo))
		elog(ERROR, "tier_catalog_changed: not called as a trigger");
	CacheInvalidateRelcache(trigdata->tg_relation);
	return PointerGetDatum(NULL);
}
