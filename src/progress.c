/*
 * progress.c: the progress of running refreshes, in shared memory, for the
 * view segtier.refresh_progress.
 *
 * One slot per backend (MaxBackends, indexed by BackendId), written only by
 * its own backend.  A slot lives at most as long as the transaction that
 * filled it: report_progress_done() clears it, and so do the end of the
 * transaction and the abort of the subtransaction that made the report.  A
 * backend that exits aborts its open transaction first (ShutdownPostgres),
 * which clears the slot; a crash reinitialises shared memory.  Without
 * shared_preload_libraries there is no array: reporting does nothing and the
 * view is empty.
 */
#include "segtier.h"

#include "access/xact.h"
#include "funcapi.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "storage/backendid.h"
#include "storage/shmem.h"
#include "storage/spin.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"

#define PHASE_LEN 64

typedef struct ProgressSlot
{
	slock_t		mutex;
	pid_t		pid;			/* 0: empty */
	Oid			dboid;
	char		model[SEGTIER_SHMEM_NAMELEN];
	char		phase[PHASE_LEN];
	int64		done;
	int64		total;
	bool		done_null;
	bool		total_null;
	TimestampTz started;
	TimestampTz updated;
} ProgressSlot;

static ProgressSlot *ProgressSlots = NULL;

/* Backend-local: is our slot filled, and at which transaction nesting level. */
static bool progress_active = false;
static int	progress_nest_level = 0;
static bool callbacks_registered = false;

PG_FUNCTION_INFO_V1(segtier_report_progress);
PG_FUNCTION_INFO_V1(segtier_report_progress_done);
PG_FUNCTION_INFO_V1(segtier_refresh_progress);

/* Shared memory the progress array needs, asked for at preload. */
Size
segtier_progress_shmem_size(void)
{
	return mul_size(MaxBackends, sizeof(ProgressSlot));
}

/* Attach to (or create) the progress array; called with AddinShmemInitLock held. */
void
segtier_progress_shmem_init(void)
{
	bool		found;

	ProgressSlots = ShmemInitStruct("segtier refresh progress",
									segtier_progress_shmem_size(), &found);
	if (!found)
	{
		for (int i = 0; i < MaxBackends; i++)
		{
			SpinLockInit(&ProgressSlots[i].mutex);
			ProgressSlots[i].pid = 0;
		}
	}
}

/* This backend's slot, or NULL when there is none to use. */
static ProgressSlot *
MySlot(void)
{
	if (ProgressSlots == NULL || MyBackendId == InvalidBackendId ||
		MyBackendId > MaxBackends)
		return NULL;
	return &ProgressSlots[MyBackendId - 1];
}

/* Empty this backend's slot. */
static void
ClearMySlot(void)
{
	ProgressSlot *slot = MySlot();

	progress_active = false;
	if (slot == NULL)
		return;
	SpinLockAcquire(&slot->mutex);
	slot->pid = 0;
	SpinLockRelease(&slot->mutex);
}

/* A report does not outlive its transaction. */
static void
ProgressXactCallback(XactEvent event, void *arg)
{
	if (!progress_active)
		return;
	switch (event)
	{
		case XACT_EVENT_COMMIT:
		case XACT_EVENT_PARALLEL_COMMIT:
		case XACT_EVENT_ABORT:
		case XACT_EVENT_PARALLEL_ABORT:
		case XACT_EVENT_PREPARE:
			ClearMySlot();
			break;
		default:
			break;
	}
}

/* Nor the subtransaction it was made in, when that one aborts. */
static void
ProgressSubXactCallback(SubXactEvent event, SubTransactionId mySubid,
						SubTransactionId parentSubid, void *arg)
{
	int			level;

	if (!progress_active)
		return;
	level = GetCurrentTransactionNestLevel();
	if (event == SUBXACT_EVENT_ABORT_SUB && progress_nest_level >= level)
		ClearMySlot();
	else if (event == SUBXACT_EVENT_COMMIT_SUB && progress_nest_level >= level)
		progress_nest_level = level - 1;
}

/* Copy a text argument into a fixed buffer, clipped on a character boundary. */
static void
CopyClipped(char *dst, int dstlen, text *src)
{
	int			len = VARSIZE_ANY_EXHDR(src);

	len = pg_mbcliplen(VARDATA_ANY(src), len, dstlen - 1);
	memcpy(dst, VARDATA_ANY(src), len);
	dst[len] = '\0';
}

/* segtier.report_progress(model, phase, customers_done, customers_total): publish where a refresh is. */
Datum
segtier_report_progress(PG_FUNCTION_ARGS)
{
	ProgressSlot *slot = MySlot();
	char		model[SEGTIER_SHMEM_NAMELEN];
	char		phase[PHASE_LEN];
	TimestampTz now;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("model and phase must not be null"),
				 errdetail("Only the customer counts may be NULL (unknown).")));
	if (slot == NULL)
		PG_RETURN_VOID();
	if (!callbacks_registered)
	{
		RegisterXactCallback(ProgressXactCallback, NULL);
		RegisterSubXactCallback(ProgressSubXactCallback, NULL);
		callbacks_registered = true;
	}
	CopyClipped(model, sizeof(model), PG_GETARG_TEXT_PP(0));
	CopyClipped(phase, sizeof(phase), PG_GETARG_TEXT_PP(1));
	now = GetCurrentTimestamp();

	SpinLockAcquire(&slot->mutex);
	if (slot->pid != MyProcPid || strcmp(slot->model, model) != 0)
		slot->started = now;
	slot->pid = MyProcPid;
	slot->dboid = MyDatabaseId;
	memcpy(slot->model, model, sizeof(model));
	memcpy(slot->phase, phase, sizeof(phase));
	slot->done_null = PG_ARGISNULL(2);
	slot->done = slot->done_null ? 0 : PG_GETARG_INT64(2);
	slot->total_null = PG_ARGISNULL(3);
	slot->total = slot->total_null ? 0 : PG_GETARG_INT64(3);
	slot->updated = now;
	SpinLockRelease(&slot->mutex);

	progress_active = true;
	progress_nest_level = GetCurrentTransactionNestLevel();
	PG_RETURN_VOID();
}

/* segtier.report_progress_done(): the refresh finished; drop its row from the view. */
Datum
segtier_report_progress_done(PG_FUNCTION_ARGS)
{
	if (progress_active)
		ClearMySlot();
	PG_RETURN_VOID();
}

/* segtier._refresh_progress(): every filled slot, for the view segtier.refresh_progress. */
Datum
segtier_refresh_progress(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;

	InitMaterializedSRF(fcinfo, 0);
	if (ProgressSlots == NULL)
		return (Datum) 0;

	for (int i = 0; i < MaxBackends; i++)
	{
		ProgressSlot copy;
		Datum		values[8];
		bool		nulls[8] = {0};

		SpinLockAcquire(&ProgressSlots[i].mutex);
		copy = ProgressSlots[i];
		SpinLockRelease(&ProgressSlots[i].mutex);
		if (copy.pid == 0)
			continue;

		values[0] = Int32GetDatum(copy.pid);
		values[1] = ObjectIdGetDatum(copy.dboid);
		values[2] = CStringGetTextDatum(copy.model);
		values[3] = CStringGetTextDatum(copy.phase);
		values[4] = Int64GetDatum(copy.done);
		nulls[4] = copy.done_null;
		values[5] = Int64GetDatum(copy.total);
		nulls[5] = copy.total_null;
		values[6] = TimestampTzGetDatum(copy.started);
		values[7] = TimestampTzGetDatum(copy.updated);
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}
