/*
 * summarize.c: the aggregation pass of a refresh, segtier._summarize.
 *
 * A refresh sums every customer's transactions into purchase_summary,
 * period_spend and the margin.  As SQL that is a hash aggregation whose
 * executor keeps each group's key in a tuple of its own and each state
 * behind another pointer: three or four cache misses a row once a million
 * customers outgrow the caches.  This pass takes the scan's rows straight
 * from the executor (a DestReceiver: no tuple is copied) into one
 * open-addressing table whose entries hold the key and the states, and
 * calls the aggregates' own transition code, so the rows are the same.
 * The summaries go straight into the refresh's table in the customer's
 * order, by heap multi-inserts of 1000 rows (tablewrite.c); no result set
 * is formed, kept and read back.  A large scan is summed by parallel
 * workers, each for one hash partition of the customers (see "Parallel
 * workers" below); the leader merges their summaries as it writes.
 *
 * Memory stays within hash_mem (work_mem * hash_mem_multiplier) in each
 * process, as hash aggregation's does: when a process's table and states
 * outgrow it the scan stops and the grouped SQL runs instead, whose hash
 * aggregation spills to disk.  At 1M customers of ten orders the pass
 * holds 508 MB, 520 bytes a customer: 40-byte entries in a table of 2^21,
 * the purchase state's 256-byte chunk and the 128-byte period sums, with
 * chunk headers and allocator blocks; sorting the summaries adds 32 bytes
 * a customer (the references and the radix sort's buffer).  With workers
 * each holds its partition's share.
 *
 * The target is a refresh's <model>_summary; any other table must pass the
 * checks of tablewrite.c.
 */
#include "segtier.h"

#include "access/heaptoast.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/tupdesc.h"
#include "access/xact.h"
#include "catalog/pg_class.h"
#include "catalog/pg_type.h"
#include "common/hashfn.h"
#include "executor/spi.h"
#include "lib/binaryheap.h"
#include "miscadmin.h"
#include "nodes/nodeFuncs.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/plancache.h"
#include "utils/rel.h"
#include "utils/typcache.h"

/* The scan's columns: customer, time, amount, margin. */
#define SCAN_NCOLS 4
/* The target's columns: customer, the purchase_summary fields, margin, month_spend. */
#define OUT_NCOLS (1 + SUMMARY_FIELDS + 2)

/* The exact sum of the margins (NULL until one is added). */
typedef struct MarginSum
{
	PurchaseSum sum;
	Numeric		num;			/* the sum once it left int128, or NaN/infinite */
} MarginSum;

typedef struct CustomerGroup
{
	Datum		key;
	uint32		hash;
	char		status;
	PurchaseState *purchases;
	SpendState *spend;
	MarginSum  *margin;
} CustomerGroup;

typedef struct Pass Pass;

/* A scan row waiting in a batch. */
typedef struct ScanRow
{
	Datum		key;
	uint32		hash;
	bool		key_null;
	bool		isnull;			/* time or amount */
	bool		margin_null;
	TimestampTz ts;
	Datum		amount;
	Datum		margin;
} ScanRow;

#define BATCH_ROWS 64

#define SH_PREFIX groups
#define SH_ELEMENT_TYPE CustomerGroup
#define SH_KEY_TYPE Datum
#define SH_KEY key
#define SH_HASH_KEY(tb, k) key_hash((Pass *) (tb)->private_data, k)
#define SH_EQUAL(tb, a, b) key_equal((Pass *) (tb)->private_data, a, b)
#define SH_STORE_HASH
#define SH_GET_HASH(tb, a) (a)->hash
#define SH_SCOPE static inline
#define SH_DECLARE
#define SH_DEFINE
static inline uint32 key_hash(Pass *p, Datum k);
static inline bool key_equal(Pass *p, Datum a, Datum b);
#include "lib/simplehash.h"

struct Pass
{
	DestReceiver pub;			/* first: the executor calls us as a receiver */
	MemoryContext cxt;			/* the table, keys and states */
	MemoryContext row_cxt;		/* the batch's rows and what adding them makes */
	ScanRow		rows[BATCH_ROWS];
	int			nrows;
	groups_hash *groups;
	CustomerGroup null_group;	/* rows with a NULL customer, when seen */
	bool		has_null_group;
	bool		overflow;		/* the scan stopped at the memory limit */
	Size		limit;
	/* the customer type's grouping */
	Oid			key_type;
	bool		key_int;		/* int2/int4/int8: hash and compare the bits */
	int16		key_len;
	bool		key_byval;
	Oid			collation;
	FmgrInfo   *hash_fn;
	FmgrInfo   *eq_fn;
	FmgrInfo   *cmp_fn;			/* the order of the result */
	/* the arguments */
	ZoneCache  *zone;
	TimestampTz as_of;
	const SpendBounds *bounds;
	/* the customers this process sums: hash partitions [part_lo, part_hi) of nparts */
	int			nparts;
	int			part_lo;
	int			part_hi;
};

static inline uint32
key_hash(Pass *p, Datum k)
{
	if (p->key_int)
	{
		uint64		u = (uint64) DatumGetInt64(k);

		return murmurhash32((uint32) u ^ (uint32) (u >> 32));
	}
	return DatumGetUInt32(FunctionCall1Coll(p->hash_fn, p->collation, k));
}

static inline bool
key_equal(Pass *p, Datum a, Datum b)
{
	if (p->key_int)
		return a == b;
	return DatumGetBool(FunctionCall2Coll(p->eq_fn, p->collation, a, b));
}

/* A new group's states, in cxt, with its own copy of a by-reference key. */
static void
group_init(Pass *p, CustomerGroup *g, bool key_null)
{
	MemoryContext old = MemoryContextSwitchTo(p->cxt);

	if (!p->key_byval && !key_null)
		g->key = datumCopy(g->key, false, p->key_len);
	g->purchases = segtier_purchase_new();
	g->spend = segtier_spend_new(p->cxt, p->bounds);
	g->margin = NULL;
	MemoryContextSwitchTo(old);
}

/* margin += m, exactly; numerics made in the row context are copied to cxt. */
static void
margin_add(Pass *p, CustomerGroup *g, Datum m)
{
	MarginSum  *ms = g->margin;
	Amount		a;
	bool		finite = AmountDecode(m, &a);
	Numeric		sum;

	if (ms == NULL)
	{
		ms = g->margin = MemoryContextAllocZero(p->cxt, sizeof(MarginSum));
		if (finite && a.fast)
		{
			ms->sum.value = a.value;
			ms->sum.scale = a.scale;
			return;
		}
	}
	else if (ms->num == NULL && finite && a.fast && SumAdd(&ms->sum, a.value, a.scale))
		return;
	sum = numeric_add_opt_error(ms->num != NULL ? ms->num : SumToNumeric(&ms->sum),
								DatumGetNumeric(a.datum), NULL);
	if (ms->num != NULL)
		pfree(ms->num);
	ms->num = MemoryContextAlloc(p->cxt, VARSIZE(sum));
	memcpy(ms->num, sum, VARSIZE(sum));
}

/* One row into its group's states; a state that grows is moved to cxt. */
static void
row_add(Pass *p, CustomerGroup *g, const ScanRow *r)
{
	PurchaseState *st;

	st = segtier_purchase_add(g->purchases, p->zone, r->isnull, r->ts, r->amount, &p->as_of);
	if (st != g->purchases)
	{
		pfree(g->purchases);
		g->purchases = (PurchaseState *) MemoryContextAlloc(p->cxt, VARSIZE(st));
		memcpy(g->purchases, st, VARSIZE(st));
	}
	if (r->isnull)
		return;
	segtier_spend_add(g->spend, p->cxt, r->ts, r->amount);
	/* sum(margin) FILTER (WHERE time <= as_of AND amount IS NOT NULL) */
	if (!r->margin_null && r->ts <= p->as_of)
		margin_add(p, g, r->margin);
}

/*
 * Adds the batch's rows.  Each row's entry and states are most likely in no
 * cache: the batch finds all entries, then all states, prefetching each
 * before it is used, so that the misses of many rows overlap.
 */
static void
batch_add(Pass *p)
{
	groups_hash *tb = p->groups;
	MemoryContext old = MemoryContextSwitchTo(p->row_cxt);
	bool		found;

	for (int i = 0; i < p->nrows; i++)
	{
		ScanRow    *r = &p->rows[i];

		if (!r->key_null)
			__builtin_prefetch(&tb->data[r->hash & tb->sizemask]);
	}
	for (int i = 0; i < p->nrows; i++)
	{
		ScanRow    *r = &p->rows[i];
		CustomerGroup *g = &p->null_group;

		if (!r->key_null)
			g = groups_insert_hash(tb, r->key, r->hash, &found);
		else
		{
			found = p->has_null_group;
			p->has_null_group = true;
		}
		if (!found)
			group_init(p, g, r->key_null);
		/* the header and the last day slots (rows come roughly in time order) */
		__builtin_prefetch(g->purchases);
		__builtin_prefetch((char *) g->purchases + 64);
		__builtin_prefetch((char *) g->purchases + 128);
		__builtin_prefetch(g->spend);
	}
	/* an insert may have moved the entries: look each up again, in cache now */
	for (int i = 0; i < p->nrows; i++)
	{
		ScanRow    *r = &p->rows[i];

		CHECK_FOR_INTERRUPTS();
		row_add(p, r->key_null ? &p->null_group : groups_lookup_hash(tb, r->key, r->hash), r);
	}
	p->nrows = 0;
	MemoryContextSwitchTo(old);
	MemoryContextReset(p->row_cxt);
	if (MemoryContextMemAllocated(p->cxt, true) > p->limit)
		p->overflow = true;
}

/*
 * Keeps a row of this process's customers (its datums copied: the slot's
 * point into a buffer page).  Rows without a customer are partition 0's.
 */
static bool
pass_receive(TupleTableSlot *slot, DestReceiver *self)
{
	Pass	   *p = (Pass *) self;
	ScanRow    *r = &p->rows[p->nrows];
	MemoryContext old;
	int			part = 0;

	slot_getallattrs(slot);
	old = MemoryContextSwitchTo(p->row_cxt);
	r->key_null = slot->tts_isnull[0];
	if (!r->key_null)
	{
		r->key = slot->tts_values[0];
		if (p->key_len == -1)
			r->key = PointerGetDatum(PG_DETOAST_DATUM_PACKED(r->key));
		r->hash = key_hash(p, r->key);
		part = segtier_hash_partition(r->hash, p->nparts);
	}
	if (part < p->part_lo || part >= p->part_hi)
	{
		MemoryContextSwitchTo(old);
		return true;
	}
	if (!r->key_null && !p->key_byval)
		r->key = datumCopy(r->key, false, p->key_len);
	r->isnull = slot->tts_isnull[1] || slot->tts_isnull[2];
	if (!r->isnull)
	{
		r->ts = DatumGetTimestampTz(slot->tts_values[1]);
		r->amount = datumCopy(slot->tts_values[2], false, -1);
	}
	r->margin_null = slot->tts_isnull[3];
	if (!r->margin_null)
		r->margin = datumCopy(slot->tts_values[3], false, -1);
	MemoryContextSwitchTo(old);
	if (++p->nrows == BATCH_ROWS)
		batch_add(p);
	return !p->overflow;		/* false stops the scan */
}

static void
pass_shutdown(DestReceiver *self)
{
	Pass	   *p = (Pass *) self;

	if (!p->overflow && p->nrows > 0)
		batch_add(p);
}

static void
pass_startup(DestReceiver *self, int operation, TupleDesc desc)
{
	Pass	   *p = (Pass *) self;
	static const Oid types[SCAN_NCOLS] = {InvalidOid, TIMESTAMPTZOID, NUMERICOID, NUMERICOID};

	if (desc->natts != SCAN_NCOLS)
		elog(ERROR, "the scan of segtier._summarize returns %d columns, not %d",
			 desc->natts, SCAN_NCOLS);
	segtier_check_type("segtier._summarize", "scan", 0, TupleDescAttr(desc, 0)->atttypid, p->key_type);
	for (int i = 1; i < SCAN_NCOLS; i++)
		segtier_check_type("segtier._summarize", "scan", i, TupleDescAttr(desc, i)->atttypid, types[i]);
}

static void
pass_noop(DestReceiver *self)
{
}

/*
 * The summaries' way into the target table (tablewrite.c's multi-inserts).
 * The rows without a customer are not written: their counts are summed.
 * The grouped query of the fallback sends its rows here as a DestReceiver.
 */
typedef struct Writer
{
	DestReceiver pub;			/* first: the grouped query's receiver */
	TableWriter table;
	int64		null_rows;		/* source rows without a customer */
	bool		parallel;		/* writing while workers run: no TOAST */
	List	   *deferred;		/* the rows that would need it, written after */
	MemoryContext cxt;			/* the call's, for those */
} Writer;

/* The target's column types after the customer's. */
static const Oid out_types[OUT_NCOLS] = {
	InvalidOid, TIMESTAMPTZOID, TIMESTAMPTZOID, INT8OID, INT8OID, NUMERICOID, NUMERICOID,
	NUMERICOID, INT8OID, INT8OID, INT8OID, NUMERICOID, NUMERICARRAYOID
};

/* The source rows a summary counts: transactions, null_rows, refunds, future_rows. */
static int64
summary_rows(const Datum *values, const bool *nulls)
{
	static const int counts[] = {3, 8, 9, 10};
	int64		n = 0;

	for (int i = 0; i < lengthof(counts); i++)
		if (!nulls[counts[i]])
			n += DatumGetInt64(values[counts[i]]);
	return n;
}

static void
writer_open(Writer *w, Oid relid)
{
	TupleDesc	desc;

	segtier_table_open(&w->table, relid, ACL_INSERT, "segtier._summarize");
	desc = RelationGetDescr(w->table.rel);
	if (desc->natts != OUT_NCOLS)
		ereport(ERROR,
				(errcode(ERRCODE_DATATYPE_MISMATCH),
				 errmsg("the target of segtier._summarize has %d columns, not %d", desc->natts, OUT_NCOLS)));
	for (int i = 1; i < OUT_NCOLS; i++)
		segtier_check_type("segtier._summarize", "target", i, TupleDescAttr(desc, i)->atttypid, out_types[i]);
	w->cxt = CurrentMemoryContext;
}

/*
 * Takes a summary (a copy).  In parallel mode a row that would go out of
 * line waits: storing it takes an OID, which only a serial leader may.
 */
static void
writer_put(Writer *w, HeapTuple tuple)
{
	if (w->parallel && tuple->t_len > TOAST_TUPLE_THRESHOLD)
	{
		MemoryContext old = MemoryContextSwitchTo(w->cxt);

		w->deferred = lappend(w->deferred, heap_copytuple(tuple));
		MemoryContextSwitchTo(old);
		return;
	}
	ExecForceStoreHeapTuple(tuple, segtier_table_slot(&w->table), false);
	segtier_table_put(&w->table);
}

/* Writes what is left; the count of the rows without a customer. */
static int64
writer_close(Writer *w)
{
	ListCell   *lc;

	foreach(lc, w->deferred)
		writer_put(w, lfirst(lc));
	segtier_table_close(&w->table);
	return w->null_rows;
}

/* The grouped query's columns are checked when it is planned. */
static void
writer_startup(DestReceiver *self, int operation, TupleDesc desc)
{
}

/* A row of the grouped query (the writer copies it). */
static bool
writer_receive(TupleTableSlot *src, DestReceiver *self)
{
	Writer	   *w = (Writer *) self;

	CHECK_FOR_INTERRUPTS();
	slot_getallattrs(src);
	if (src->tts_isnull[0])
		w->null_rows += summary_rows(src->tts_values, src->tts_isnull);
	else
	{
		TupleTableSlot *slot = segtier_table_slot(&w->table);

		memcpy(slot->tts_values, src->tts_values, OUT_NCOLS * sizeof(Datum));
		memcpy(slot->tts_isnull, src->tts_isnull, OUT_NCOLS * sizeof(bool));
		ExecStoreVirtualTuple(slot);
		segtier_table_put(&w->table);
	}
	return true;
}

/* A group's summary as the target's columns, made in the current context. */
static void
group_values(CustomerGroup *g, bool key_null, Datum *values, bool *nulls)
{
	MarginSum  *ms = g->margin;

	values[0] = g->key;
	nulls[0] = key_null;
	segtier_purchase_values(g->purchases, values + 1, nulls + 1);
	values[1 + SUMMARY_FIELDS] = ms == NULL ? (Datum) 0 :
		NumericGetDatum(ms->num != NULL ? ms->num : SumToNumeric(&ms->sum));
	nulls[1 + SUMMARY_FIELDS] = (ms == NULL);
	values[2 + SUMMARY_FIELDS] = segtier_spend_sums(g->spend);
	nulls[2 + SUMMARY_FIELDS] = false;
}

/* A group's summary row, in the pass's row context (reset here first). */
static HeapTuple
group_tuple(Pass *p, CustomerGroup *g, TupleDesc desc)
{
	Datum		values[OUT_NCOLS];
	bool		nulls[OUT_NCOLS];
	MemoryContext old;
	HeapTuple	tuple;

	MemoryContextReset(p->row_cxt);
	old = MemoryContextSwitchTo(p->row_cxt);
	group_values(g, false, values, nulls);
	tuple = heap_form_tuple(desc, values, nulls);
	MemoryContextSwitchTo(old);
	return tuple;
}

/* The source rows without a customer that this process summed. */
static int64
pass_null_rows(Pass *p)
{
	Datum		values[OUT_NCOLS];
	bool		nulls[OUT_NCOLS];
	MemoryContext old;
	int64		n;

	if (!p->has_null_group)
		return 0;
	old = MemoryContextSwitchTo(p->row_cxt);
	group_values(&p->null_group, true, values, nulls);
	n = summary_rows(values, nulls);
	MemoryContextSwitchTo(old);
	MemoryContextReset(p->row_cxt);
	return n;
}

/* A group in the order of the result. */
typedef struct GroupRef
{
	Datum		key;
	CustomerGroup *group;
} GroupRef;

/* sorted as records of two uint64 words, the key first */
StaticAssertDecl(sizeof(GroupRef) == 2 * sizeof(uint64), "GroupRef is two words");

static inline int
key_compare(Pass *p, Datum a, Datum b)
{
	return DatumGetInt32(FunctionCall2Coll(p->cmp_fn, p->collation, a, b));
}

/* The result's order of two keys; 0 for a type without one. */
static inline int
key_order(Pass *p, Datum a, Datum b)
{
	if (p->key_int)
	{
		int64		x = DatumGetInt64(a);
		int64		y = DatumGetInt64(b);

		return (x > y) - (x < y);
	}
	return p->cmp_fn != NULL ? key_compare(p, a, b) : 0;
}

#define ST_SORT sort_keys
#define ST_ELEMENT_TYPE GroupRef
#define ST_COMPARE(a, b, p) key_compare(p, (a)->key, (b)->key)
#define ST_COMPARE_ARG_TYPE Pass
#define ST_SCOPE static
#define ST_DEFINE
#include "lib/sort_template.h"

/*
 * The groups in the customer's order when the type has one (its default
 * btree order: the table's pages then follow its primary key, whose build
 * or right edge takes the rows in order, as the scoring's scans do).
 */
static GroupRef *
pass_sorted(Pass *p, uint64 *count)
{
	GroupRef   *refs = MemoryContextAllocHuge(p->cxt, sizeof(GroupRef) * Max(p->groups->members, 1));
	uint64		n = 0;
	groups_iterator it;
	CustomerGroup *g;

	groups_start_iterate(p->groups, &it);
	while ((g = groups_iterate(p->groups, &it)) != NULL)
	{
		refs[n].key = g->key;
		refs[n++].group = g;
	}
	if (p->key_int)
	{
		/* the signed integers' order as unsigned keys; the flip undoes itself */
		for (uint64 i = 0; i < n; i++)
			refs[i].key ^= UINT64CONST(1) << 63;
		segtier_sort_u64((uint64 *) refs, n, sizeof(GroupRef) / sizeof(uint64));
		for (uint64 i = 0; i < n; i++)
			refs[i].key ^= UINT64CONST(1) << 63;
	}
	else if (p->cmp_fn != NULL)
		sort_keys(refs, n, p);
	*count = n;
	return refs;
}

/* The one SELECT of a prepared query; what names the query in the error. */
static CachedPlanSource *
plan_select(SPIPlanPtr plan, const char *what)
{
	List	   *sources = SPI_plan_get_plan_sources(plan);
	CachedPlanSource *ps = list_length(sources) == 1 ? linitial(sources) : NULL;
	Query	   *q = (ps != NULL && list_length(ps->query_list) == 1) ?
		linitial_node(Query, ps->query_list) : NULL;

	if (q == NULL || q->commandType != CMD_SELECT || q->targetList == NIL)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("the %s of segtier._summarize must be one SELECT", what)));
	return ps;
}

/* The customer type's hashing, equality and order: the target's first column's. */
static TypeCacheEntry *
key_type_cache(TupleDesc target)
{
	return lookup_type_cache(TupleDescAttr(target, 0)->atttypid,
							 TYPECACHE_HASH_PROC_FINFO | TYPECACHE_EQ_OPR_FINFO | TYPECACHE_CMP_PROC_FINFO);
}

/* The scan, prepared. */
static SPIPlanPtr
scan_prepare(const char *scan)
{
	SPIPlanPtr	plan = SPI_prepare(scan, 0, NULL);

	if (plan == NULL)
		elog(ERROR, "could not prepare the scan of segtier._summarize: %s",
			 SPI_result_code_string(SPI_result));
	return plan;
}

/*
 * A pass over the customers of partitions [part_lo, part_hi) of nparts, for
 * the customer type and the scan's plan.  The scan's rows are grouped by
 * its first expression's collation, as GROUP BY would.
 */
static void
pass_init(Pass *p, TypeCacheEntry *tc, SPIPlanPtr plan, text *zone, TimestampTz as_of, ArrayType *bounds,
		  int nparts, int part_lo, int part_hi)
{
	Query	   *q = linitial_node(Query, plan_select(plan, "scan")->query_list);

	memset(p, 0, sizeof(Pass));
	p->key_type = tc->type_id;
	p->collation = exprCollation((Node *) linitial_node(TargetEntry, q->targetList)->expr);
	p->key_int = (p->key_type == INT8OID || p->key_type == INT4OID || p->key_type == INT2OID);
	p->key_len = tc->typlen;
	p->key_byval = tc->typbyval;
	p->hash_fn = &tc->hash_proc_finfo;
	p->eq_fn = &tc->eq_opr_finfo;
	p->cmp_fn = OidIsValid(tc->cmp_proc) ? &tc->cmp_proc_finfo : NULL;
	p->limit = get_hash_memory_limit();
	p->cxt = AllocSetContextCreate(CurrentMemoryContext, "segtier summarize",
								   ALLOCSET_DEFAULT_SIZES);
	p->row_cxt = AllocSetContextCreate(CurrentMemoryContext, "segtier summarize row",
									   ALLOCSET_DEFAULT_SIZES);
	p->zone = segtier_zone_cache(p->cxt, zone);
	p->as_of = as_of;
	p->bounds = segtier_spend_bounds(p->cxt, bounds);
	p->groups = groups_create(p->cxt, 1024, p);
	p->nparts = nparts;
	p->part_lo = part_lo;
	p->part_hi = part_hi;
	p->pub.receiveSlot = pass_receive;
	p->pub.rStartup = pass_startup;
	p->pub.rShutdown = pass_shutdown;
	p->pub.rDestroy = pass_noop;
	p->pub.mydest = DestNone;
}

/* Sums the scan's rows; false when they outgrew hash_mem. */
static bool
pass_scan(Pass *p, SPIPlanPtr plan)
{
	/* a SELECT (plan_select checked) sent to a receiver of DestNone */
	segtier_run_query(plan, 0, NULL, NULL, &p->pub, "the scan of segtier._summarize");
	elog(DEBUG2, "segtier._summarize: %u customers in %zu kB of %zu kB%s",
		 p->groups->members, MemoryContextMemAllocated(p->cxt, true) / 1024, p->limit / 1024,
		 p->overflow ? ", over hash_mem" : "");
	return !p->overflow;
}

static void
pass_end(Pass *p)
{
	MemoryContextDelete(p->cxt);
	MemoryContextDelete(p->row_cxt);
}

/*
 * Parallel workers.  Each sums the customers of one hash partition: it
 * runs the whole scan, keeps the rows of its partition, and sends its
 * summaries in the customer's order through a queue.  The leader merges
 * the queues and writes (a worker may not); it sums the partitions no
 * worker was launched for itself.  Aggregating a row costs several times
 * reading it (its group and states are cache misses at a million
 * customers), so partitioning the groups rather than the rows scales, and
 * no state is ever combined.
 */
/* The workers' arguments (segtier_worker_arg). */
#define SUMMARIZE_ARG_SHARED 0
#define SUMMARIZE_ARG_SCAN 1
#define SUMMARIZE_ARG_ZONE 2
#define SUMMARIZE_ARG_BOUNDS 3
#define SUMMARIZE_NARGS 4

typedef struct SummarizeShared
{
	Oid			target;
	int			nparts;
	TimestampTz as_of;
} SummarizeShared;

/* A worker's first message; its summaries follow unless it overflowed. */
typedef struct WorkerDone
{
	bool		overflow;
	int64		null_rows;
	uint64		groups;
} WorkerDone;

PGDLLEXPORT void segtier_summarize_worker(dsm_segment *seg, shm_toc *toc);

/* The shared state, the arguments and a queue a worker, in a new parallel context. */
static ParallelContext *
workers_launch(int nworkers, Oid target, const char *scan, text *zone, TimestampTz as_of,
			   ArrayType *bounds, shm_mq_handle ***queues)
{
	SummarizeShared sh = {target, nworkers, as_of};
	const void *args[SUMMARIZE_NARGS] = {&sh, scan, zone, bounds};
	Size		sizes[SUMMARIZE_NARGS] = {sizeof(sh), strlen(scan) + 1, VARSIZE_ANY(zone), VARSIZE(bounds)};

	/* the leader's writes need a transaction id, which parallel mode cannot assign */
	(void) GetCurrentTransactionId();
	return segtier_workers_launch("segtier_summarize_worker", nworkers, SUMMARIZE_NARGS, args, sizes, queues);
}

/* The next message of a worker; a worker gone before it sent all is an error. */
static void *
worker_message(ParallelContext *pcxt, shm_mq_handle *mqh, Size *nbytes)
{
	void	   *data;

	if (shm_mq_receive(mqh, nbytes, &data, false) == SHM_MQ_SUCCESS)
		return data;
	/* its error, if it sent one */
	WaitForParallelWorkersToFinish(pcxt);
	elog(ERROR, "a parallel worker of segtier._summarize stopped before it sent its summaries");
	pg_unreachable();
}

/* One sorted source of summaries: this process's groups or a worker's queue. */
typedef struct Stream
{
	Datum		key;
	HeapTuple	tuple;			/* the current summary; NULL when done */
	HeapTupleData queued;		/* a worker's, in its queue */
	shm_mq_handle *mqh;			/* NULL for this process's groups */
	uint64		left;			/* summaries not yet current */
	GroupRef   *refs;			/* this process's, in order */
} Stream;

typedef struct Merge
{
	ParallelContext *pcxt;
	Pass	   *p;
	TupleDesc	desc;
	Stream	   *streams;
} Merge;

static void
stream_next(Merge *m, Stream *s)
{
	bool		isnull;
	Size		nbytes;

	if (s->left == 0)
	{
		s->tuple = NULL;
		return;
	}
	s->left--;
	if (s->mqh == NULL)
	{
		s->tuple = group_tuple(m->p, s->refs->group, m->desc);
		s->key = s->refs++->key;
		return;
	}
	s->queued.t_data = worker_message(m->pcxt, s->mqh, &nbytes);
	s->queued.t_len = nbytes;
	ItemPointerSetInvalid(&s->queued.t_self);
	s->queued.t_tableOid = InvalidOid;
	s->tuple = &s->queued;
	s->key = heap_getattr(s->tuple, 1, m->desc, &isnull);
}

/* binaryheap keeps the greatest first: the smallest key is the greatest here */
static int
stream_compare(Datum a, Datum b, void *arg)
{
	Merge	   *m = (Merge *) arg;

	return key_order(m->p, m->streams[DatumGetInt32(b)].key, m->streams[DatumGetInt32(a)].key);
}

/* Writes the streams' summaries merged into the customer's order. */
static void
merge_write(Merge *m, int nstreams, Writer *w)
{
	binaryheap *heap = binaryheap_allocate(nstreams, stream_compare, m);

	for (int i = 0; i < nstreams; i++)
	{
		stream_next(m, &m->streams[i]);
		if (m->streams[i].tuple != NULL)
			binaryheap_add_unordered(heap, Int32GetDatum(i));
	}
	binaryheap_build(heap);
	while (!binaryheap_empty(heap))
	{
		Stream	   *s = &m->streams[DatumGetInt32(binaryheap_first(heap))];

		CHECK_FOR_INTERRUPTS();
		writer_put(w, s->tuple);
		stream_next(m, s);
		if (s->tuple != NULL)
			binaryheap_replace_first(heap, Int32GetDatum(s - m->streams));
		else
			(void) binaryheap_remove_first(heap);
	}
	binaryheap_free(heap);
}

/*
 * The summaries of scan's rows into the writer, by this process and, for a
 * large scan, parallel workers; false when some process's groups outgrew
 * hash_mem (nothing is written then).
 */
static bool
summarize_pass(Writer *w, TypeCacheEntry *tc, const char *scan, text *zone, TimestampTz as_of,
			   ArrayType *bounds)
{
	TupleDesc	desc = RelationGetDescr(w->table.rel);
	SPIPlanPtr	plan = scan_prepare(scan);
	int			nworkers = segtier_scan_workers(plan, tc);
	int			launched = 0;
	ParallelContext *pcxt = NULL;
	shm_mq_handle **queues = NULL;
	Merge		m = {0};
	Pass		p;
	bool		ok = true;
	int			nstreams = 0;
	int64		null_rows = 0;	/* counted only if no fallback counts them again */

	if (nworkers > 0)
	{
		pcxt = workers_launch(nworkers, RelationGetRelid(w->table.rel), scan, zone, as_of, bounds, &queues);
		launched = pcxt->nworkers_launched;
		elog(DEBUG1, "segtier._summarize: %d of %d parallel workers launched", launched, nworkers);
		if (launched == 0)
		{
			segtier_workers_end(pcxt, queues);
			pcxt = NULL;
			nworkers = 0;
		}
	}
	w->parallel = (pcxt != NULL);
	pass_init(&p, tc, plan, zone, as_of, bounds, Max(nworkers, 1), launched, Max(nworkers, 1));
	m.pcxt = pcxt;
	m.p = &p;
	m.desc = desc;
	m.streams = palloc0(sizeof(Stream) * (launched + 1));
	if (p.part_lo < p.part_hi)
	{
		ok = pass_scan(&p, plan);
		if (ok)
		{
			m.streams[0].refs = pass_sorted(&p, &m.streams[0].left);
			null_rows += pass_null_rows(&p);
			nstreams++;
		}
	}
	for (int i = 0; ok && i < launched; i++)
	{
		Size		nbytes;
		WorkerDone *done = worker_message(pcxt, queues[i], &nbytes);

		Assert(nbytes == sizeof(WorkerDone));
		ok = !done->overflow;
		null_rows += done->null_rows;
		m.streams[nstreams].mqh = queues[i];
		m.streams[nstreams++].left = done->groups;
	}
	if (ok)
	{
		w->null_rows += null_rows;
		merge_write(&m, nstreams, w);
	}
	if (pcxt != NULL)
	{
		if (ok)
			WaitForParallelWorkersToFinish(pcxt);
		segtier_workers_end(pcxt, queues);
		w->parallel = false;
	}
	pass_end(&p);
	return ok;
}

/*
 * A worker: the scan's rows of its partition, then its summaries in the
 * customer's order into its queue, after a WorkerDone.
 */
void
segtier_summarize_worker(dsm_segment *seg, shm_toc *toc)
{
	SummarizeShared *sh = segtier_worker_arg(toc, SUMMARIZE_ARG_SHARED);
	shm_mq_handle *mqh = segtier_worker_queue(seg, toc);
	Relation	rel;
	SPIPlanPtr	plan;
	Pass		p;
	WorkerDone	done = {0};
	GroupRef   *refs = NULL;

	rel = table_open(sh->target, AccessShareLock);
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");
	plan = scan_prepare(segtier_worker_arg(toc, SUMMARIZE_ARG_SCAN));
	pass_init(&p, key_type_cache(RelationGetDescr(rel)), plan, segtier_worker_arg(toc, SUMMARIZE_ARG_ZONE),
			  sh->as_of, segtier_worker_arg(toc, SUMMARIZE_ARG_BOUNDS),
			  sh->nparts, ParallelWorkerNumber, ParallelWorkerNumber + 1);
	done.overflow = !pass_scan(&p, plan);
	if (!done.overflow)
	{
		refs = pass_sorted(&p, &done.groups);
		done.null_rows = pass_null_rows(&p);
	}
	if (shm_mq_send(mqh, sizeof(done), &done, false, true) == SHM_MQ_SUCCESS)
		for (uint64 i = 0; i < done.groups; i++)
		{
			HeapTuple	tuple = group_tuple(&p, refs[i].group, RelationGetDescr(rel));

			CHECK_FOR_INTERRUPTS();
			if (shm_mq_send(mqh, tuple->t_len, tuple->t_data, false, i + 1 == done.groups) != SHM_MQ_SUCCESS)
				break;
		}
	pass_end(&p);
	SPI_finish();
	table_close(rel, AccessShareLock);
	shm_mq_detach(mqh);
}

/*
 * The rows of the grouped query ($1 time_zone, $2 as_of, $3 month_starts
 * from args) into the writer.
 */
static void
run_grouped(Writer *w, const char *grouped, Datum *args)
{
	Oid			argtypes[3] = {TEXTOID, TIMESTAMPTZOID, TIMESTAMPTZARRAYOID};
	TupleDesc	desc = RelationGetDescr(w->table.rel);
	TupleDesc	rdesc;
	SPIPlanPtr	plan;

	plan = SPI_prepare(grouped, 3, argtypes);
	if (plan == NULL)
		elog(ERROR, "could not prepare the grouped query of segtier._summarize: %s",
			 SPI_result_code_string(SPI_result));
	rdesc = plan_select(plan, "grouped query")->resultDesc;
	if (rdesc->natts != OUT_NCOLS)
		elog(ERROR, "the grouped query of segtier._summarize must return %d columns", OUT_NCOLS);
	for (int i = 0; i < OUT_NCOLS; i++)
		segtier_check_type("segtier._summarize", "grouped", i, TupleDescAttr(rdesc, i)->atttypid,
						   TupleDescAttr(desc, i)->atttypid);
	w->pub.receiveSlot = writer_receive;
	w->pub.rStartup = writer_startup;
	w->pub.rShutdown = pass_noop;
	w->pub.rDestroy = pass_noop;
	w->pub.mydest = DestNone;
	segtier_run_query(plan, 3, argtypes, args, &w->pub, "the grouped query of segtier._summarize");
}

/*
 * segtier._summarize(target regclass, scan text, grouped text, time_zone
 * text, as_of timestamptz, month_starts timestamptz[]): writes the
 * per-customer rows of grouped into target, computed from scan's rows when
 * they fit in memory; returns the count of source rows without a customer
 * (their transactions, refunds, null and future rows).  scan returns
 * (customer, time timestamptz, amount numeric, margin numeric), grouped and
 * target have the columns (customer, the purchase_summary fields, margin,
 * month_spend); grouped has the parameters $1 = time_zone, $2 = as_of,
 * $3 = month_starts.
 */
PG_FUNCTION_INFO_V1(segtier_summarize_into);
Datum
segtier_summarize_into(PG_FUNCTION_ARGS)
{
	char	   *scan = text_to_cstring(PG_GETARG_TEXT_PP(1));
	char	   *grouped = text_to_cstring(PG_GETARG_TEXT_PP(2));
	Datum		args[3] = {PG_GETARG_DATUM(3), PG_GETARG_DATUM(4), PG_GETARG_DATUM(5)};
	TypeCacheEntry *tc;
	Writer		w = {0};
	bool		summed = false;

	writer_open(&w, PG_GETARG_OID(0));
	if (SPI_connect() != SPI_OK_CONNECT)
		elog(ERROR, "SPI_connect failed");

	tc = key_type_cache(RelationGetDescr(w.table.rel));
	if (OidIsValid(tc->hash_proc) && OidIsValid(tc->eq_opr))
		summed = summarize_pass(&w, tc, scan, PG_GETARG_TEXT_PP(3), PG_GETARG_TIMESTAMPTZ(4),
								PG_GETARG_ARRAYTYPE_P(5));
	/* a key type without hashing, or more states than hash_mem holds */
	if (!summed)
		run_grouped(&w, grouped, args);
	SPI_finish();
	PG_RETURN_INT64(writer_close(&w));
}

/*
 * 0.5.0's segtier._summarize(scan, grouped, time_zone, as_of, month_starts)
 * returned the rows.  Its upgrade script still creates it on the way to
 * 0.6.0, whose script replaces it; a database left at 0.5.0 gets this error
 * from a refresh instead of arguments misread.
 */
PG_FUNCTION_INFO_V1(segtier_summarize);
Datum
segtier_summarize(PG_FUNCTION_ARGS)
{
	ereport(ERROR,
			(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
			 errmsg("segtier's library is newer than the extension in this database"),
			 errhint("Run ALTER EXTENSION segtier UPDATE.")));
	pg_unreachable();
}
