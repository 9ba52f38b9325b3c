/*
 * tablewrite.c: a refresh's passes write into the model's tables directly.
 *
 * The aggregation pass inserts the summaries and the scoring pass updates
 * the tiers rows that changed, without forming a result set that SQL then
 * copies or joins back to the table.  Rows go in as COPY writes them: heap
 * multi-inserts through a bulk-insert state (a small ring of buffers, not
 * fresh ones from the whole pool) and their index entries (into a table new
 * and empty in the transaction, the indexes are built at the end); updates
 * as an UPDATE makes them (HOT when no indexed column changed, else new
 * index entries).  What an INSERT or UPDATE would also run or check
 * (triggers, rules, row security, check constraints, generated columns,
 * type modifiers) the tables of a model do not have, and a table that has
 * them is refused rather than bypassed.  Those tables belong to the
 * extension's owner, so no model owner can add any of it; the functions
 * check the caller's privilege on the table as the statement would.
 */
#include "segtier.h"

#include "access/heapam.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/index.h"
#include "catalog/pg_class.h"
#include "executor/executor.h"
#include "miscadmin.h"
#include "storage/bufmgr.h"
#include "tcop/utility.h"
#include "utils/acl.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/rls.h"
#include "utils/snapmgr.h"

void
segtier_table_open(TableWriter *w, Oid relid, AclMode mode, const char *func)
{
	Relation	rel;
	TupleDesc	desc;
	AclResult	acl;

	PreventCommandIfReadOnly(func);
	/* before the lock, as the statement's parse analysis would */
	acl = pg_class_aclcheck(relid, GetUserId(), mode);
	if (acl != ACLCHECK_OK)
		aclcheck_error(acl, OBJECT_TABLE, get_rel_name(relid));
	rel = w->rel = table_open(relid, RowExclusiveLock);
	desc = RelationGetDescr(rel);
	if (rel->rd_rel->relkind != RELKIND_RELATION || rel->rd_rel->relispartition)
		ereport(ERROR,
				(errcode(ERRCODE_WRONG_OBJECT_TYPE),
				 errmsg("%s writes into a table, not into \"%s\"", func, RelationGetRelationName(rel))));
	if (rel->trigdesc != NULL || rel->rd_rules != NULL || check_enable_rls(relid, InvalidOid, false) == RLS_ENABLED ||
		(desc->constr != NULL && (desc->constr->num_check > 0 || desc->constr->has_generated_stored)))
		ereport(ERROR,
				(errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
				 errmsg("%s cannot write into \"%s\"", func, RelationGetRelationName(rel)),
				 errdetail("It has triggers, rules, row security, check constraints or generated columns.")));
	/* callers check the columns' types by position */
	for (int i = 0; i < desc->natts; i++)
	{
		Form_pg_attribute att = TupleDescAttr(desc, i);

		if (att->attisdropped || att->atttypmod != -1)
			ereport(ERROR,
					(errcode(ERRCODE_DATATYPE_MISMATCH),
					 errmsg("column %d of \"%s\" is %s", i + 1, RelationGetRelationName(rel),
							att->attisdropped ? "dropped" : "of a type with a modifier"),
					 errdetail("%s writes the columns by position and their values as they are.", func)));
	}
	/* a published table must be able to log an update */
	CheckCmdReplicaIdentity(rel, (mode & ACL_UPDATE) ? CMD_UPDATE : CMD_INSERT);
	w->func = func;
	w->options = 0;
	w->build_indexes = false;
	w->nslots = 0;
	memset(w->slots, 0, sizeof(w->slots));
	/*
	 * A table made or truncated in this transaction (a full refresh) only
	 * grows: as COPY, skip the free space map, so pages fill in order.
	 */
	if (rel->rd_createSubid != InvalidSubTransactionId ||
		rel->rd_firstRelfilenodeSubid != InvalidSubTransactionId)
	{
		w->options |= TABLE_INSERT_SKIP_FSM;
		/*
		 * No other session writes it (it is new, or TRUNCATE's lock holds
		 * them off): when it is empty, its indexes are built once from all
		 * the rows at the end, as CREATE INDEX would, instead of an entry at
		 * a time.
		 */
		w->build_indexes = RelationGetNumberOfBlocks(rel) == 0;
	}
	w->not_null = desc->constr != NULL && desc->constr->has_not_null;
	w->bistate = GetBulkInsertState();
	w->estate = CreateExecutorState();
	w->rri = makeNode(ResultRelInfo);
	InitResultRelInfo(w->rri, rel, 0, NULL, 0);
	ExecOpenIndices(w->rri, false);
	w->cid = GetCurrentCommandId(true);
}

/*
 * A row's index entries.  The list of constraints to check later is empty:
 * deferrable ones come with constraint triggers, refused at open.
 */
static void
index_entries(TableWriter *w, TupleTableSlot *slot, bool update)
{
	list_free(ExecInsertIndexTuples(w->rri, slot, w->estate, update, false, NULL, NIL));
}

/* Inserts the gathered rows and clears their slots. */
static void
insert_rows(TableWriter *w)
{
	MemoryContext old = MemoryContextSwitchTo(GetPerTupleMemoryContext(w->estate));

	if (w->not_null)
		for (int i = 0; i < w->nslots; i++)
			ExecConstraints(w->rri, w->slots[i], w->estate);
	table_multi_insert(w->rel, w->slots, w->nslots, w->cid, w->options, w->bistate);
	for (int i = 0; i < w->nslots; i++)
	{
		if (!w->build_indexes)
			index_entries(w, w->slots[i], false);
		ExecClearTuple(w->slots[i]);
	}
	w->nslots = 0;
	MemoryContextSwitchTo(old);
	ResetPerTupleExprContext(w->estate);
}

/* The empty slot (of the table's kind) the caller stores the next new row in. */
TupleTableSlot *
segtier_table_slot(TableWriter *w)
{
	if (w->slots[w->nslots] == NULL)
	{
		/* in the writer's memory: the caller's may be a row's */
		MemoryContext old = MemoryContextSwitchTo(w->estate->es_query_cxt);

		w->slots[w->nslots] = table_slot_create(w->rel, NULL);
		MemoryContextSwitchTo(old);
	}
	return w->slots[w->nslots];
}

/*
 * Takes the row stored in the slot segtier_table_slot gave (its own copy:
 * the values may go with the caller's memory) and inserts the rows gathered
 * once they make a batch.
 */
void
segtier_table_put(TableWriter *w)
{
	ExecMaterializeSlot(w->slots[w->nslots]);
	if (++w->nslots == SEGTIER_WRITE_ROWS)
		insert_rows(w);
}

/*
 * Replaces the row at tid by slot's.  The caller fetched it under the
 * active snapshot; a row another transaction changed or deleted since is an
 * error (the next refresh starts over) rather than a lost update.
 */
void
segtier_table_update(TableWriter *w, ItemPointer tid, TupleTableSlot *slot)
{
	MemoryContext old = MemoryContextSwitchTo(GetPerTupleMemoryContext(w->estate));
	TM_FailureData tmfd;
	LockTupleMode lockmode;
	bool		update_indexes;
	TM_Result	r;

	if (w->not_null)
		ExecConstraints(w->rri, slot, w->estate);
	r = table_tuple_update(w->rel, tid, slot, w->cid, GetActiveSnapshot(), InvalidSnapshot,
						   true, &tmfd, &lockmode, &update_indexes);
	if (r == TM_SelfModified)
		elog(ERROR, "%s updated a row of \"%s\" twice", w->func, RelationGetRelationName(w->rel));
	if (r != TM_Ok)
		ereport(ERROR,
				(errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
				 errmsg("%s could not update a row of \"%s\": it was changed meanwhile",
						w->func, RelationGetRelationName(w->rel))));
	if (update_indexes)
		index_entries(w, slot, true);
	ExecClearTuple(slot);
	MemoryContextSwitchTo(old);
	ResetPerTupleExprContext(w->estate);
}

/* Inserts the rows left; with build_indexes, builds the indexes. */
void
segtier_table_close(TableWriter *w)
{
	if (w->nslots > 0)
		insert_rows(w);
	for (int i = 0; i < SEGTIER_WRITE_ROWS && w->slots[i] != NULL; i++)
		ExecDropSingleTupleTableSlot(w->slots[i]);
	FreeBulkInsertState(w->bistate);
	table_finish_bulk_insert(w->rel, w->options);
	ExecCloseIndices(w->rri);
	if (w->build_indexes)
	{
		ReindexParams params = {0};

		reindex_relation(RelationGetRelid(w->rel), REINDEX_REL_CHECK_CONSTRAINTS, &params);
	}
	FreeExecutorState(w->estate);
	table_close(w->rel, NoLock);
}
