/*
 * parallel.c: a refresh's passes over a query's rows, and their parallel
 * workers.
 *
 * The aggregation pass (summarize.c) and the scoring pass (rescore.c) each
 * run a query into a receiver of their own, and give a large one to workers
 * that run the whole of it for one hash partition of the customers and
 * send what they make to the leader through a queue of their own; the
 * leader alone writes.  Here: running the query, whether it may go to
 * workers, and the parallel context with the pass's arguments and the
 * queues.
 */
#include "segtier.h"

#include "catalog/pg_proc.h"
#include "miscadmin.h"
#include "nodes/nodeFuncs.h"
#include "optimizer/cost.h"
#include "optimizer/optimizer.h"
#include "optimizer/paths.h"
#include "storage/proc.h"
#include "utils/lsyscache.h"
#include "utils/plancache.h"

/*
 * Runs a pass's prepared SELECT into dest, with the nargs parameters args
 * (of types types, none NULL); what names the query in an error.  Read-only:
 * the query runs on the caller's snapshot, which the pass's own reads
 * share, and no command counter increment lets it see what the pass writes.
 */
void
segtier_run_query(SPIPlanPtr plan, int nargs, const Oid *types, const Datum *args, DestReceiver *dest,
				  const char *what)
{
	SPIExecuteOptions opts = {0};

	if (nargs > 0)
	{
		opts.params = makeParamList(nargs);
		for (int i = 0; i < nargs; i++)
		{
			opts.params->params[i].value = args[i];
			opts.params->params[i].isnull = false;
			opts.params->params[i].pflags = PARAM_FLAG_CONST;
			opts.params->params[i].ptype = types[i];
		}
	}
	opts.read_only = true;
	opts.dest = dest;
	if (SPI_execute_plan_extended(plan, &opts) < 0)
		elog(ERROR, "%s failed", what);
}

/* The toc keys: the queues', then the pass's arguments. */
#define WORKERS_KEY_QUEUES UINT64CONST(0x5E67000000000000)
#define WORKERS_QUEUE_SIZE ((Size) 1024 * 1024)

/*
 * Whether a query's rows may differ from one run to the next: LIMIT,
 * OFFSET, TABLESAMPLE, and window functions and DISTINCT ON, whose rows
 * among ties follow the scan's order (a synchronized scan starts anywhere).
 */
static bool
rows_vary_walker(Node *node, void *context)
{
	if (node == NULL)
		return false;
	if (IsA(node, WindowFunc))
		return true;
	if (IsA(node, Query))
	{
		Query	   *q = (Query *) node;

		if (q->limitCount != NULL || q->limitOffset != NULL || q->hasDistinctOn)
			return true;
		return query_tree_walker(q, rows_vary_walker, context, QTW_EXAMINE_RTES_BEFORE);
	}
	if (IsA(node, RangeTblEntry))
		return ((RangeTblEntry *) node)->tablesample != NULL;
	return expression_tree_walker(node, rows_vary_walker, context);
}

static bool
proc_parallel_safe(Oid proc)
{
	return func_parallel(proc) == PROPARALLEL_SAFE;
}

static bool
proc_not_parallel_safe(Oid proc, void *context)
{
	return !proc_parallel_safe(proc);
}

/*
 * Whether a worker may run a query: every function parallel safe, no
 * sequence, no domain check (its constraints may not be), no FOR UPDATE or
 * data-modifying WITH.  Unlike max_parallel_hazard, a sublink is fine: a
 * worker plans and runs the whole query itself.
 */
static bool
not_parallel_safe_walker(Node *node, void *context)
{
	if (node == NULL)
		return false;
	if (check_functions_in_node(node, proc_not_parallel_safe, context) ||
		IsA(node, NextValueExpr) || IsA(node, CoerceToDomain))
		return true;
	if (IsA(node, Query))
	{
		Query	   *q = (Query *) node;

		return q->rowMarks != NIL || q->hasModifyingCTE ||
			query_tree_walker(q, not_parallel_safe_walker, context, 0);
	}
	return expression_tree_walker(node, not_parallel_safe_walker, context);
}

/*
 * Workers for a pass over the rows of a prepared SELECT, each for a hash
 * partition of the customers (of type tc): max_parallel_workers_per_gather
 * when the planner expects at least min_parallel_table_scan_size of rows
 * and every worker may run the query and reads the same rows (a plain
 * SELECT, see the walkers above; the key type's functions parallel safe
 * too; nothing volatile; no temporary or foreign table); none below two, as
 * one would only do the leader's work.
 */
int
segtier_scan_workers(SPIPlanPtr plan, TypeCacheEntry *tc)
{
	List	   *sources = SPI_plan_get_plan_sources(plan);
	CachedPlanSource *ps = list_length(sources) == 1 ? linitial(sources) : NULL;
	Query	   *q;
	CachedPlan *cp;
	PlannedStmt *stmt;
	ListCell   *lc;
	int			n = max_parallel_workers_per_gather;
	Oid			output;
	bool		varlena;

	if (ps == NULL || list_length(ps->query_list) != 1 ||
		!OidIsValid(tc->hash_proc) || !OidIsValid(tc->eq_opr))
		return 0;
	q = linitial_node(Query, ps->query_list);
	/* the key's output function writes the ids of overrides in the scoring pass */
	getTypeOutputInfo(tc->type_id, &output, &varlena);
	if (n < 2 || IsInParallelMode() || q->commandType != CMD_SELECT || q->utilityStmt != NULL ||
		not_parallel_safe_walker((Node *) q, NULL) ||
		contain_volatile_functions((Node *) q) || rows_vary_walker((Node *) q, NULL) ||
		!proc_parallel_safe(tc->hash_proc) || !proc_parallel_safe(get_opcode(tc->eq_opr)) ||
		(OidIsValid(tc->cmp_proc) && !proc_parallel_safe(tc->cmp_proc)) || !proc_parallel_safe(output))
		return 0;
	cp = SPI_plan_get_cached_plan(plan);
	if (cp == NULL)
		return 0;
	stmt = linitial_node(PlannedStmt, cp->stmt_list);
	if (stmt->planTree == NULL ||
		stmt->planTree->plan_rows * stmt->planTree->plan_width < (double) min_parallel_table_scan_size * BLCKSZ)
		n = 0;
	foreach(lc, stmt->relationOids)
		if (get_rel_persistence(lfirst_oid(lc)) == RELPERSISTENCE_TEMP ||
			get_rel_relkind(lfirst_oid(lc)) == RELKIND_FOREIGN_TABLE)
			n = 0;
	ReleaseCachedPlan(cp, NULL);
	return n;
}

/*
 * A parallel context for nworkers workers running entry (a function of
 * this library), in parallel mode, its segment holding copies of the nargs
 * arguments args[i] (sizes[i] bytes each, segtier_worker_arg) and a queue a
 * worker to the leader; the workers launched.  No worker is launched when
 * there is no shared memory for the segment.
 */
ParallelContext *
segtier_workers_launch(const char *entry, int nworkers, int nargs, const void *const *args, const Size *sizes,
					   shm_mq_handle ***queues)
{
	ParallelContext *pcxt;
	char	   *space;

	EnterParallelMode();
	pcxt = CreateParallelContext("segtier", entry, nworkers);
	for (int i = 0; i < nargs; i++)
		shm_toc_estimate_chunk(&pcxt->estimator, sizes[i]);
	shm_toc_estimate_chunk(&pcxt->estimator, mul_size(WORKERS_QUEUE_SIZE, nworkers));
	shm_toc_estimate_keys(&pcxt->estimator, nargs + 1);
	InitializeParallelDSM(pcxt);
	*queues = NULL;
	if (pcxt->seg == NULL)
		return pcxt;

	for (int i = 0; i < nargs; i++)
	{
		space = shm_toc_allocate(pcxt->toc, sizes[i]);
		memcpy(space, args[i], sizes[i]);
		shm_toc_insert(pcxt->toc, WORKERS_KEY_QUEUES + 1 + i, space);
	}
	space = shm_toc_allocate(pcxt->toc, mul_size(WORKERS_QUEUE_SIZE, nworkers));
	shm_toc_insert(pcxt->toc, WORKERS_KEY_QUEUES, space);
	*queues = palloc0(sizeof(shm_mq_handle *) * nworkers);
	for (int i = 0; i < nworkers; i++)
	{
		shm_mq	   *mq = shm_mq_create(space + i * WORKERS_QUEUE_SIZE, WORKERS_QUEUE_SIZE);

		shm_mq_set_receiver(mq, MyProc);
		(*queues)[i] = shm_mq_attach(mq, pcxt->seg, NULL);
	}
	LaunchParallelWorkers(pcxt);
	for (int i = 0; i < pcxt->nworkers_launched; i++)
		shm_mq_set_handle((*queues)[i], pcxt->worker[i].bgwhandle);
	return pcxt;
}

/*
 * Ends the parallel context: detaches the launched workers' queues (a
 * worker still sending sees the leader gone and stops) and leaves parallel
 * mode.  The caller has waited for the workers, unless it gives up on them.
 */
void
segtier_workers_end(ParallelContext *pcxt, shm_mq_handle **queues)
{
	for (int i = 0; i < pcxt->nworkers_launched; i++)
		shm_mq_detach(queues[i]);
	DestroyParallelContext(pcxt);
	ExitParallelMode();
}

/* In a worker: argument i of segtier_workers_launch. */
void *
segtier_worker_arg(shm_toc *toc, int i)
{
	return shm_toc_lookup(toc, WORKERS_KEY_QUEUES + 1 + i, false);
}

/* In a worker: its queue to the leader, attached as the sender. */
shm_mq_handle *
segtier_worker_queue(dsm_segment *seg, shm_toc *toc)
{
	char	   *queues = shm_toc_lookup(toc, WORKERS_KEY_QUEUES, false);
	shm_mq	   *mq = (shm_mq *) (queues + ParallelWorkerNumber * WORKERS_QUEUE_SIZE);

	shm_mq_set_sender(mq, MyProc);
	return shm_mq_attach(mq, seg, NULL);
}
