/*
 * worker.c: the background worker that keeps every model fresh.
 *
 * A launcher (static background worker, connected to no database) reads
 * segtier.database and keeps one dynamic worker running per listed database.
 * Each worker wakes every segtier.naptime seconds (or on segtier.wake()),
 * asks segtier._worker_due_models() which models are due and refreshes each
 * one in its own transactions.  State is published in shared memory for
 * segtier.worker_status().  Also here: the GUCs and _PG_init.
 */
#include "segtier.h"

#include "access/heapam.h"
#include "access/stratnum.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "access/xlog.h"
#include "catalog/pg_authid.h"
#include "catalog/pg_database.h"
#include "catalog/pg_type.h"
#include "commands/extension.h"
#include "executor/spi.h"
#include "funcapi.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "storage/lock.h"
#include "storage/proc.h"
#include "storage/shmem.h"
#include "storage/spin.h"
#include "tcop/tcopprot.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/fmgroids.h"
#include "utils/guc.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
#include "utils/timeout.h"
#include "utils/timestamp.h"
#include "utils/varlena.h"

/* Longest pause between retries for a database that cannot be served. */
#define MAX_BACKOFF_MS (300 * 1000)
/* How often the launcher checks that nobody is waiting to drop a database. */
#define PROBE_MS 1000

typedef enum WorkerState
{
	WS_FREE,					/* slot not in use */
	WS_WAITING,					/* launcher will start a worker */
	WS_STARTING,
	WS_IDLE,
	WS_REFRESHING,
	WS_DISABLED,
	WS_NO_EXTENSION,
	WS_NO_DATABASE,
	WS_NO_ROLE,
	WS_RETRYING,				/* the last worker failed to start */
	WS_STOPPING
} WorkerState;

static const char *const WorkerStateNames[] = {
	"free", "waiting", "starting", "idle", "refreshing", "disabled",
	"no extension", "no database", "bad role", "retrying", "stopping"
};

/* One configured database: written by the launcher and by its worker. */
typedef struct WorkerSlot
{
	slock_t		mutex;
	uint32		generation;		/* bumped at each start: stale workers stay out */
	WorkerState state;
	char		dbname[NAMEDATALEN];
	char		role[NAMEDATALEN];
	pid_t		pid;
	Oid			dboid;
	Latch	   *latch;
	bool		ready;			/* the worker got as far as publishing a state */
	char		model[SEGTIER_SHMEM_NAMELEN];
	TimestampTz last_run;
	TimestampTz next_run;
} WorkerSlot;

typedef struct WorkerShared
{
	int			nslots;
	WorkerSlot	slots[FLEXIBLE_ARRAY_MEMBER];
} WorkerShared;

/* The launcher's private view of a slot. */
typedef struct LauncherEntry
{
	BackgroundWorkerHandle *handle;
	Oid			dboid;
	TimestampTz next_start;
	int			backoff_ms;
	bool		retiring;		/* removed from the list: free once stopped */
	bool		terminated;		/* asked to stop, because its database is busy */
	bool		complained;		/* the problem has been logged */
} LauncherEntry;

/* GUCs */
static char *segtier_database = NULL;
static int	segtier_naptime = 60;
static char *segtier_role = NULL;
static bool segtier_enabled = true;

static WorkerShared *Workers = NULL;
static shmem_request_hook_type prev_shmem_request_hook = NULL;
static shmem_startup_hook_type prev_shmem_startup_hook = NULL;

/* launcher */
static LauncherEntry *Entries = NULL;
static MemoryContext LauncherTickContext = NULL;

/* worker */
static WorkerSlot *MyWorkerSlot = NULL;
static uint32 MyGeneration = 0;
static char MyDbName[NAMEDATALEN];
static bool extension_seen = false;
static bool complained_no_extension = false;
static bool complained_bad_role = false;

PGDLLEXPORT void segtier_launcher_main(Datum main_arg);
PGDLLEXPORT void segtier_worker_main(Datum main_arg);

PG_FUNCTION_INFO_V1(segtier_worker_status);
PG_FUNCTION_INFO_V1(segtier_wake);

/* ---------------------------------------------------------------- shmem */

static Size
WorkerShmemSize(void)
{
	return add_size(offsetof(WorkerShared, slots),
					mul_size(max_worker_processes, sizeof(WorkerSlot)));
}

/* Ask for the worker slots and the progress array (PostgreSQL 15 hook). */
static void
SegtierShmemRequest(void)
{
	if (prev_shmem_request_hook)
		prev_shmem_request_hook();
	RequestAddinShmemSpace(add_size(WorkerShmemSize(),
									segtier_progress_shmem_size()));
}

/* Create or attach to the worker slots and the progress array. */
static void
SegtierShmemStartup(void)
{
	bool		found;

	if (prev_shmem_startup_hook)
		prev_shmem_startup_hook();

	LWLockAcquire(AddinShmemInitLock, LW_EXCLUSIVE);
	Workers = ShmemInitStruct("segtier workers", WorkerShmemSize(), &found);
	if (!found)
	{
		memset(Workers, 0, WorkerShmemSize());
		Workers->nslots = max_worker_processes;
		for (int i = 0; i < Workers->nslots; i++)
			SpinLockInit(&Workers->slots[i].mutex);
	}
	segtier_progress_shmem_init();
	LWLockRelease(AddinShmemInitLock);
}

/* ---------------------------------------------------------------- GUCs */

/* segtier.database must be a valid comma-separated list. */
static bool
CheckDatabaseList(char **newval, void **extra, GucSource source)
{
	char	   *raw = pstrdup(*newval);
	List	   *names;
	bool		ok = SplitGUCList(raw, ',', &names);

	if (!ok)
		GUC_check_errdetail("List syntax is invalid.");
	list_free(names);
	pfree(raw);
	return ok;
}

/* GUCs are defined in every backend; the workers start only when preloaded. */
void
_PG_init(void)
{
	BackgroundWorker worker;

	DefineCustomStringVariable("segtier.database",
							   "Databases whose models the background worker refreshes.",
							   "A comma-separated list; empty means no worker does anything.",
							   &segtier_database, "", PGC_SIGHUP, GUC_LIST_INPUT,
							   CheckDatabaseList, NULL, NULL);
	DefineCustomIntVariable("segtier.naptime",
							"Time between two looks for models that are due.",
							NULL, &segtier_naptime, 60, 1, INT_MAX / 1000,
							PGC_SIGHUP, GUC_UNIT_S, NULL, NULL, NULL);
	DefineCustomStringVariable("segtier.role",
							   "Role the background workers connect as.",
							   "Empty means the bootstrap superuser; the refresh itself runs as each model's owner.  A change restarts the workers.",
							   &segtier_role, "", PGC_SIGHUP, 0, NULL, NULL, NULL);
	DefineCustomBoolVariable("segtier.enabled",
							 "Whether the background workers refresh models.",
							 NULL, &segtier_enabled, true, PGC_SIGHUP, 0,
							 NULL, NULL, NULL);
	MarkGUCPrefixReserved("segtier");

	if (!process_shared_preload_libraries_in_progress)
		return;

	prev_shmem_request_hook = shmem_request_hook;
	shmem_request_hook = SegtierShmemRequest;
	prev_shmem_startup_hook = shmem_startup_hook;
	shmem_startup_hook = SegtierShmemStartup;

	if (IsBinaryUpgrade)
		return;

	memset(&worker, 0, sizeof(worker));
	worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	worker.bgw_start_time = BgWorkerStart_RecoveryFinished;
	worker.bgw_restart_time = 10;
	snprintf(worker.bgw_library_name, BGW_MAXLEN, "segtier");
	snprintf(worker.bgw_function_name, BGW_MAXLEN, "segtier_launcher_main");
	snprintf(worker.bgw_name, BGW_MAXLEN, "segtier launcher");
	snprintf(worker.bgw_type, BGW_MAXLEN, "segtier launcher");
	RegisterBackgroundWorker(&worker);
}

/* ---------------------------------------------------------------- launcher */

/*
 * Is a DROP, RENAME or CREATE ... TEMPLATE of this database waiting for its
 * sessions to leave?
 *
 * In PostgreSQL 15 those commands take a lock on the database object, then
 * wait at most 5 s for the other sessions, background workers included, to
 * go (CountOtherDBBackends), and fail if one stays.  A connecting session
 * takes RowExclusiveLock on the same object, which conflicts with theirs, so
 * a failed conditional try of it means one of them is under way.  The
 * launcher tries every PROBE_MS while a worker runs and terminates the
 * worker of a busy database; a refresh in flight rolls back.  It starts no
 * worker there while the lock is taken, and a worker that connects just
 * after waits on the lock and then finds the database gone.
 */
static bool
DatabaseBusy(Oid dboid)
{
	LOCKTAG		tag;

	SET_LOCKTAG_OBJECT(tag, InvalidOid, DatabaseRelationId, dboid, 0);
	if (LockAcquire(&tag, RowExclusiveLock, true, true) == LOCKACQUIRE_NOT_AVAIL)
		return true;
	LockRelease(&tag, RowExclusiveLock, true);
	return false;
}

/* Set a slot's state as seen by worker_status() while no worker runs. */
static void
SetSlotState(int i, WorkerState state, TimestampTz next_run)
{
	WorkerSlot *slot = &Workers->slots[i];

	SpinLockAcquire(&slot->mutex);
	slot->state = state;
	slot->next_run = next_run;
	SpinLockRelease(&slot->mutex);
}

/* The database cannot be served now: log it once, retry later with a growing delay. */
static void
PostponeStart(int i, WorkerState state, TimestampTz now, const char *why)
{
	LauncherEntry *e = &Entries[i];

	if (why != NULL && !e->complained)
	{
		ereport(WARNING,
				(errmsg("segtier: %s", why),
				 errdetail("The launcher retries quietly with a growing delay, and at once after a configuration reload.")));
		e->complained = true;
	}
	e->backoff_ms = Min(Max(e->backoff_ms * 2, segtier_naptime * 1000), MAX_BACKOFF_MS);
	e->next_start = TimestampTzPlusMilliseconds(now, e->backoff_ms);
	SetSlotState(i, state, e->next_start);
}

/*
 * A copy of the row of a shared catalog with this name, or NULL.  A heap
 * scan: the launcher is connected to no database, so it has no index access.
 */
static HeapTuple
SharedCatalogRow(Oid relid, AttrNumber name_attnum, const char *name)
{
	Relation	rel;
	TableScanDesc scan;
	ScanKeyData key;
	HeapTuple	tup;

	ScanKeyInit(&key, name_attnum, BTEqualStrategyNumber, F_NAMEEQ,
				CStringGetDatum(name));
	rel = table_open(relid, AccessShareLock);
	scan = table_beginscan_catalog(rel, 1, &key);
	tup = heap_getnext(scan, ForwardScanDirection);
	if (HeapTupleIsValid(tup))
		tup = heap_copytuple(tup);
	table_endscan(scan);
	table_close(rel, AccessShareLock);
	return tup;
}

/* Start the worker of slot i if its database and role can be used; in a transaction. */
static void
StartWorker(int i, TimestampTz now)
{
	WorkerSlot *slot = &Workers->slots[i];
	LauncherEntry *e = &Entries[i];
	BackgroundWorker worker;
	HeapTuple	tup;
	uint32		generation;
	MemoryContext oldcxt;
	bool		registered;

	tup = SharedCatalogRow(DatabaseRelationId, Anum_pg_database_datname, slot->dbname);
	if (!HeapTupleIsValid(tup))
	{
		PostponeStart(i, WS_NO_DATABASE, now,
					  psprintf("database \"%s\" listed in segtier.database does not exist",
							   slot->dbname));
		return;
	}
	e->dboid = ((Form_pg_database) GETSTRUCT(tup))->oid;
	if (!((Form_pg_database) GETSTRUCT(tup))->datallowconn)
	{
		PostponeStart(i, WS_NO_DATABASE, now,
					  psprintf("database \"%s\" listed in segtier.database does not allow connections",
							   slot->dbname));
		return;
	}
	if (slot->role[0] != '\0')
	{
		tup = SharedCatalogRow(AuthIdRelationId, Anum_pg_authid_rolname, slot->role);
		if (!HeapTupleIsValid(tup) || !((Form_pg_authid) GETSTRUCT(tup))->rolcanlogin)
		{
			PostponeStart(i, WS_NO_ROLE, now,
						  psprintf("cannot serve database \"%s\": role \"%s\" set in segtier.role does not exist or cannot log in",
								   slot->dbname, slot->role));
			return;
		}
	}
	if (DatabaseBusy(e->dboid))
	{
		/* someone is dropping or copying it: stay away, look again soon */
		e->next_start = TimestampTzPlusMilliseconds(now, PROBE_MS);
		SetSlotState(i, WS_WAITING, e->next_start);
		return;
	}

	SpinLockAcquire(&slot->mutex);
	generation = ++slot->generation;
	slot->state = WS_STARTING;
	slot->pid = 0;
	slot->dboid = e->dboid;
	slot->latch = NULL;
	slot->ready = false;
	slot->model[0] = '\0';
	slot->next_run = 0;
	SpinLockRelease(&slot->mutex);

	memset(&worker, 0, sizeof(worker));
	worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
	worker.bgw_start_time = BgWorkerStart_RecoveryFinished;
	worker.bgw_restart_time = BGW_NEVER_RESTART;
	snprintf(worker.bgw_library_name, BGW_MAXLEN, "segtier");
	snprintf(worker.bgw_function_name, BGW_MAXLEN, "segtier_worker_main");
	snprintf(worker.bgw_name, BGW_MAXLEN, "segtier worker for database %s", slot->dbname);
	snprintf(worker.bgw_type, BGW_MAXLEN, "segtier worker");
	worker.bgw_main_arg = Int32GetDatum(i);
	memcpy(worker.bgw_extra, &generation, sizeof(generation));
	worker.bgw_notify_pid = MyProcPid;

	/* the handle outlives this transaction */
	oldcxt = MemoryContextSwitchTo(TopMemoryContext);
	registered = RegisterDynamicBackgroundWorker(&worker, &e->handle);
	MemoryContextSwitchTo(oldcxt);
	if (!registered)
	{
		e->handle = NULL;
		PostponeStart(i, WS_RETRYING, now,
					  "no background worker slot is free; raise max_worker_processes");
		return;
	}
	e->complained = false;
}

/* The worker of slot i has exited: free the slot or plan its restart. */
static void
WorkerStopped(int i, TimestampTz now)
{
	WorkerSlot *slot = &Workers->slots[i];
	LauncherEntry *e = &Entries[i];
	bool		ready;

	pfree(e->handle);
	e->handle = NULL;
	e->terminated = false;
	SpinLockAcquire(&slot->mutex);
	ready = slot->ready;
	slot->pid = 0;
	slot->latch = NULL;
	slot->model[0] = '\0';
	if (e->retiring)
		slot->state = WS_FREE;
	SpinLockRelease(&slot->mutex);
	if (e->retiring)
	{
		e->retiring = false;
		return;
	}
	if (ready)
	{
		/* it worked before (then was terminated): come back at once */
		e->backoff_ms = 0;
		e->next_start = Max(e->next_start, now);
		SetSlotState(i, WS_WAITING, e->next_start);
	}
	else
		PostponeStart(i, WS_RETRYING, now, psprintf("worker for database \"%s\" exited before it could connect", slot->dbname));
}

/* Match the slots to segtier.database and segtier.role (at start and on reload). */
static void
LauncherReconcile(void)
{
	char	   *raw = pstrdup(segtier_database);
	List	   *names = NIL;
	ListCell   *lc;

	if (!SplitGUCList(raw, ',', &names))
		names = NIL;			/* cannot happen: the check hook refused it */

	for (int i = 0; i < Workers->nslots; i++)
	{
		WorkerSlot *slot = &Workers->slots[i];
		LauncherEntry *e = &Entries[i];
		bool		listed = false;

		if (slot->state == WS_FREE || e->retiring)
			continue;
		foreach(lc, names)
			listed |= strcmp(slot->dbname, lfirst(lc)) == 0;
		if (!listed || strcmp(slot->role, segtier_role) != 0)
		{
			if (e->handle != NULL)
				TerminateBackgroundWorker(e->handle);
			if (!listed && e->handle != NULL)
				e->retiring = true;
			else if (!listed)
				SetSlotState(i, WS_FREE, 0);
			else
			{
				SpinLockAcquire(&slot->mutex);
				strlcpy(slot->role, segtier_role, NAMEDATALEN);
				SpinLockRelease(&slot->mutex);
			}
		}
		/* a reload means "try again now" (quietly: the problem was logged) */
		e->next_start = 0;
		e->backoff_ms = 0;
	}

	foreach(lc, names)
	{
		const char *name = lfirst(lc);
		int			free_slot = -1;
		bool		found = false;

		for (int i = 0; i < Workers->nslots && !found; i++)
		{
			if (Workers->slots[i].state == WS_FREE)
			{
				if (free_slot < 0 && Entries[i].handle == NULL)
					free_slot = i;
			}
			else if (!Entries[i].retiring)
				found = strcmp(Workers->slots[i].dbname, name) == 0;
		}
		if (found)
			continue;
		if (free_slot < 0)
		{
			ereport(WARNING,
					(errmsg("segtier: too many databases in segtier.database"),
					 errdetail("At most %d databases (max_worker_processes) are served; \"%s\" is not.",
							   Workers->nslots, name)));
			continue;
		}
		memset(&Entries[free_slot], 0, sizeof(LauncherEntry));
		SpinLockAcquire(&Workers->slots[free_slot].mutex);
		strlcpy(Workers->slots[free_slot].dbname, name, NAMEDATALEN);
		strlcpy(Workers->slots[free_slot].role, segtier_role, NAMEDATALEN);
		Workers->slots[free_slot].state = WS_WAITING;
		Workers->slots[free_slot].last_run = 0;
		Workers->slots[free_slot].next_run = 0;
		SpinLockRelease(&Workers->slots[free_slot].mutex);
	}
	list_free(names);
	pfree(raw);
}

/* One round of the launcher: reap, probe, start.  Returns how long to sleep. */
static long
LauncherTick(void)
{
	TimestampTz now = GetCurrentTimestamp();
	TimestampTz wake = TimestampTzPlusMilliseconds(now, segtier_naptime * 1000L);
	bool		in_xact = false;
	MemoryContext oldcxt = MemoryContextSwitchTo(LauncherTickContext);

	for (int i = 0; i < Workers->nslots; i++)
	{
		LauncherEntry *e = &Entries[i];
		pid_t		pid;

		if (Workers->slots[i].state == WS_FREE)
			continue;
		if (e->handle != NULL)
		{
			if (GetBackgroundWorkerPid(e->handle, &pid) == BGWH_STOPPED)
				WorkerStopped(i, now);
			else
			{
				if (!e->retiring && !e->terminated && DatabaseBusy(e->dboid))
				{
					ereport(LOG,
							(errmsg("segtier: stopping the worker for database \"%s\", which is being dropped, renamed or copied",
									Workers->slots[i].dbname)));
					TerminateBackgroundWorker(e->handle);
					e->terminated = true;
					e->next_start = TimestampTzPlusMilliseconds(now, PROBE_MS);
					SetSlotState(i, WS_STOPPING, e->next_start);
				}
				wake = Min(wake, TimestampTzPlusMilliseconds(now, PROBE_MS));
				continue;
			}
		}
		if (e->retiring || Workers->slots[i].state == WS_FREE)
			continue;
		if (e->next_start <= now)
		{
			if (!in_xact)
			{
				StartTransactionCommand();
				in_xact = true;
			}
			StartWorker(i, now);
		}
		if (e->handle == NULL)
			wake = Min(wake, e->next_start);
		else
			wake = Min(wake, TimestampTzPlusMilliseconds(now, PROBE_MS));
	}
	if (in_xact)
		CommitTransactionCommand();
	MemoryContextSwitchTo(oldcxt);
	MemoryContextReset(LauncherTickContext);
	return Max(TimestampDifferenceMilliseconds(now, wake), 1);
}

/* On exit, take the workers down too: a restarted launcher cannot adopt them. */
static void
LauncherExit(int code, Datum arg)
{
	for (int i = 0; i < Workers->nslots; i++)
	{
		WorkerSlot *slot = &Workers->slots[i];

		if (Entries[i].handle != NULL)
			TerminateBackgroundWorker(Entries[i].handle);
		SpinLockAcquire(&slot->mutex);
		slot->generation++;
		slot->state = WS_FREE;
		SpinLockRelease(&slot->mutex);
	}
}

/* Entry point of the launcher. */
void
segtier_launcher_main(Datum main_arg)
{
	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();
	BackgroundWorkerInitializeConnection(NULL, NULL, 0);
	pgstat_report_appname("segtier launcher");

	Entries = MemoryContextAllocZero(TopMemoryContext,
									 sizeof(LauncherEntry) * Workers->nslots);
	LauncherTickContext = AllocSetContextCreate(TopMemoryContext, "segtier launcher tick",
												ALLOCSET_DEFAULT_SIZES);
	/* forget what a previous launcher left; its workers are gone or going */
	for (int i = 0; i < Workers->nslots; i++)
	{
		SpinLockAcquire(&Workers->slots[i].mutex);
		Workers->slots[i].generation++;
		Workers->slots[i].state = WS_FREE;
		Workers->slots[i].pid = 0;
		Workers->slots[i].latch = NULL;
		SpinLockRelease(&Workers->slots[i].mutex);
	}
	before_shmem_exit(LauncherExit, 0);
	LauncherReconcile();

	for (;;)
	{
		long		timeout;

		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
			LauncherReconcile();
		}
		timeout = LauncherTick();
		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 timeout, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
	}
}

/* ---------------------------------------------------------------- worker */

/* Publish this worker's state; ignored once the launcher has moved on. */
static void
PublishState(WorkerState state, const char *model, bool finished_run)
{
	char		buf[SEGTIER_SHMEM_NAMELEN];
	int			len = 0;
	TimestampTz now = GetCurrentTimestamp();

	if (model != NULL)
	{
		len = pg_mbcliplen(model, strlen(model), sizeof(buf) - 1);
		memcpy(buf, model, len);
	}
	buf[len] = '\0';
	SpinLockAcquire(&MyWorkerSlot->mutex);
	if (MyWorkerSlot->generation == MyGeneration)
	{
		MyWorkerSlot->state = state;
		memcpy(MyWorkerSlot->model, buf, len + 1);
		if (finished_run)
			MyWorkerSlot->last_run = now;
		if (state != WS_REFRESHING)
			MyWorkerSlot->next_run = TimestampTzPlusMilliseconds(now, segtier_naptime * 1000L);
		MyWorkerSlot->ready = true;
	}
	SpinLockRelease(&MyWorkerSlot->mutex);
}

/* Leave the slot to the launcher. */
static void
WorkerExit(int code, Datum arg)
{
	SpinLockAcquire(&MyWorkerSlot->mutex);
	if (MyWorkerSlot->generation == MyGeneration)
	{
		MyWorkerSlot->pid = 0;
		MyWorkerSlot->latch = NULL;
		MyWorkerSlot->model[0] = '\0';
	}
	SpinLockRelease(&MyWorkerSlot->mutex);
}

typedef void (*TxnWork) (void *arg);

/*
 * Run work(arg) in a transaction of its own, with SPI and a snapshot.  An
 * error is logged once, rolled back, and returned as false with its message
 * in *error: the worker never dies of a model's error.  Fatal errors (SIGTERM)
 * still exit.
 */
static bool
RunInTransaction(TxnWork work, void *arg, const char *activity, char **error)
{
	MemoryContext caller = CurrentMemoryContext;
	volatile bool ok = true;

	PG_TRY();
	{
		SetCurrentStatementStartTimestamp();
		StartTransactionCommand();
		if (SPI_connect() != SPI_OK_CONNECT)
			elog(ERROR, "SPI_connect failed");
		PushActiveSnapshot(GetTransactionSnapshot());
		pgstat_report_activity(STATE_RUNNING, activity);
		if (StatementTimeout > 0)
			enable_timeout_after(STATEMENT_TIMEOUT, StatementTimeout);
		work(arg);
		disable_timeout(STATEMENT_TIMEOUT, false);
		SPI_finish();
		PopActiveSnapshot();
		CommitTransactionCommand();
	}
	PG_CATCH();
	{
		ErrorData  *edata;

		HOLD_INTERRUPTS();
		disable_timeout(STATEMENT_TIMEOUT, false);
		EmitErrorReport();
		MemoryContextSwitchTo(caller);
		edata = CopyErrorData();
		FlushErrorState();
		AbortCurrentTransaction();
		RESUME_INTERRUPTS();
		if (error != NULL)
			*error = edata->message;
		ok = false;
	}
	PG_END_TRY();
	MemoryContextSwitchTo(caller);
	pgstat_report_activity(STATE_IDLE, NULL);
	return ok;
}

/* A statement with parameters whose first result column, if any, is a bigint. */
typedef struct Statement
{
	const char *sql;
	int			nargs;
	Oid			types[3];
	Datum		values[3];
	int64		result;
} Statement;

/* TxnWork: run a Statement. */
static void
StatementWork(void *arg)
{
	Statement  *st = arg;
	bool		isnull;

	if (SPI_execute_with_args(st->sql, st->nargs, st->types, st->values,
							  NULL, false, 0) != SPI_OK_SELECT)
		elog(ERROR, "segtier worker: unexpected result from %s", st->sql);
	if (SPI_processed > 0 && SPI_tuptable->tupdesc->natts > 0 &&
		SPI_tuptable->tupdesc->attrs[0].atttypid == INT8OID)
	{
		Datum		d = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);

		st->result = isnull ? 0 : DatumGetInt64(d);
	}
}

/* What DueModelsWork finds. */
typedef struct DueModels
{
	bool		extension;
	char	   *lacking;		/* functions the role may not execute, or NULL */
	char	   *role;			/* the role, when it lacks some */
	List	   *models;			/* of char *, in the caller's context */
	MemoryContext cxt;
} DueModels;

/* Every function the worker calls: a role short of one would fail at each naptime. */
#define WORKER_FUNCTIONS_LACKING \
	"SELECT string_agg(f, ', ') FROM unnest(ARRAY['segtier._close_stale_runs()', " \
	"'segtier._worker_due_models()', 'segtier._run_start(text)', " \
	"'segtier._refresh_model(text, boolean, bigint)', 'segtier._run_failed(bigint, text)']) f " \
	"WHERE NOT has_function_privilege(f, 'EXECUTE')"

/*
 * TxnWork: is the extension here, may the role run the worker's functions;
 * if the extension just appeared, close stale runs; list due models.
 */
static void
DueModelsWork(void *arg)
{
	DueModels  *due = arg;
	char	   *lacking;

	due->extension = OidIsValid(get_extension_oid("segtier", true));
	if (!due->extension)
		return;
	if (SPI_execute(WORKER_FUNCTIONS_LACKING, true, 0) != SPI_OK_SELECT)
		elog(ERROR, "segtier worker: unexpected result from the privilege check");
	lacking = SPI_getvalue(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1);
	if (lacking != NULL)
	{
		due->lacking = MemoryContextStrdup(due->cxt, lacking);
		due->role = MemoryContextStrdup(due->cxt, GetUserNameFromId(GetUserId(), false));
		return;
	}
	if (!extension_seen &&
		SPI_execute("SELECT segtier._close_stale_runs()", false, 0) != SPI_OK_SELECT)
		elog(ERROR, "segtier worker: unexpected result from _close_stale_runs()");
	if (SPI_execute("SELECT model FROM segtier._worker_due_models()", false, 0) != SPI_OK_SELECT)
		elog(ERROR, "segtier worker: unexpected result from _worker_due_models()");
	for (uint64 r = 0; r < SPI_processed; r++)
	{
		char	   *name = SPI_getvalue(SPI_tuptable->vals[r], SPI_tuptable->tupdesc, 1);

		if (name != NULL)
		{
			MemoryContext spi = MemoryContextSwitchTo(due->cxt);

			due->models = lappend(due->models, pstrdup(name));
			MemoryContextSwitchTo(spi);
		}
	}
}

/* Name the model in the log lines of a failed refresh. */
static void
RefreshErrorContext(void *arg)
{
	errcontext("segtier worker refreshing model \"%s\"", (const char *) arg);
}

/* Refresh one model: commit a 'running' run, refresh, and record a failure in a new transaction. */
static void
RefreshModel(const char *model)
{
	Statement	start = {"SELECT segtier._run_start($1)", 1, {TEXTOID}};
	Statement	refresh = {"SELECT segtier._refresh_model($1, false, $2)", 2, {TEXTOID, INT8OID}};
	Statement	failed = {"SELECT segtier._run_failed($1, $2)", 2, {INT8OID, TEXTOID}};
	ErrorContextCallback errcb;
	char	   *error = NULL;

	errcb.callback = RefreshErrorContext;
	errcb.arg = (void *) model;
	errcb.previous = error_context_stack;
	error_context_stack = &errcb;

	PublishState(WS_REFRESHING, model, false);
	start.values[0] = CStringGetTextDatum(model);
	if (RunInTransaction(StatementWork, &start, start.sql, NULL))
	{
		refresh.values[0] = start.values[0];
		refresh.values[1] = Int64GetDatum(start.result);
		if (!RunInTransaction(StatementWork, &refresh, refresh.sql, &error))
		{
			failed.values[0] = Int64GetDatum(start.result);
			failed.values[1] = CStringGetTextDatum(error);
			(void) RunInTransaction(StatementWork, &failed, failed.sql, NULL);
		}
	}
	error_context_stack = errcb.previous;
	PublishState(WS_IDLE, NULL, true);
}

/* One look: refresh every due model, if enabled, not in recovery and the extension is here. */
static void
WorkerPass(MemoryContext pass_cxt)
{
	DueModels	due = {0};
	ListCell   *lc;

	if (!segtier_enabled)
	{
		PublishState(WS_DISABLED, NULL, false);
		return;
	}
	if (RecoveryInProgress())
		return;					/* cannot happen: we start after recovery */

	due.cxt = pass_cxt;
	if (!RunInTransaction(DueModelsWork, &due, "segtier: looking for due models", NULL))
	{
		PublishState(WS_IDLE, NULL, false);
		return;
	}
	if (!due.extension)
	{
		if (!complained_no_extension)
			ereport(LOG,
					(errmsg("segtier: extension segtier is not installed in database \"%s\"",
							MyDbName),
					 errdetail("The worker looks again every segtier.naptime.")));
		complained_no_extension = true;
		extension_seen = false;
		PublishState(WS_NO_EXTENSION, NULL, false);
		return;
	}
	complained_no_extension = false;
	if (due.lacking != NULL)
	{
		if (!complained_bad_role)
			ereport(WARNING,
					(errmsg("segtier: role \"%s\" cannot refresh the models of database \"%s\"",
							due.role, MyDbName),
					 errdetail("It lacks EXECUTE on %s.", due.lacking),
					 errhint("Grant it as the README's section on segtier.role says; the worker looks again every segtier.naptime.")));
		complained_bad_role = true;
		PublishState(WS_NO_ROLE, NULL, false);
		return;
	}
	complained_bad_role = false;
	extension_seen = true;

	foreach(lc, due.models)
	{
		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}
		if (!segtier_enabled)
			break;
		RefreshModel(lfirst(lc));
	}
	PublishState(segtier_enabled ? WS_IDLE : WS_DISABLED, NULL, false);
}

/* Entry point of a per-database worker. */
void
segtier_worker_main(Datum main_arg)
{
	char		role[NAMEDATALEN];
	MemoryContext pass_cxt;

	pqsignal(SIGHUP, SignalHandlerForConfigReload);
	pqsignal(SIGTERM, die);
	BackgroundWorkerUnblockSignals();

	MyWorkerSlot = &Workers->slots[DatumGetInt32(main_arg)];
	memcpy(&MyGeneration, MyBgworkerEntry->bgw_extra, sizeof(MyGeneration));
	SpinLockAcquire(&MyWorkerSlot->mutex);
	if (MyWorkerSlot->generation != MyGeneration)
	{
		SpinLockRelease(&MyWorkerSlot->mutex);
		proc_exit(0);			/* the launcher that started us is gone */
	}
	MyWorkerSlot->pid = MyProcPid;
	MyWorkerSlot->latch = MyLatch;
	strlcpy(MyDbName, MyWorkerSlot->dbname, NAMEDATALEN);
	strlcpy(role, MyWorkerSlot->role, NAMEDATALEN);
	SpinLockRelease(&MyWorkerSlot->mutex);
	before_shmem_exit(WorkerExit, 0);

	ereport(LOG, (errmsg("segtier worker starting for database \"%s\"", MyDbName)));
	BackgroundWorkerInitializeConnection(MyDbName, role[0] ? role : NULL, 0);
	pgstat_report_appname("segtier worker");

	pass_cxt = AllocSetContextCreate(TopMemoryContext, "segtier worker pass",
									 ALLOCSET_DEFAULT_SIZES);
	for (;;)
	{
		CHECK_FOR_INTERRUPTS();
		if (ConfigReloadPending)
		{
			ConfigReloadPending = false;
			ProcessConfigFile(PGC_SIGHUP);
		}
		MemoryContextSwitchTo(pass_cxt);
		WorkerPass(pass_cxt);
		MemoryContextSwitchTo(TopMemoryContext);
		MemoryContextReset(pass_cxt);

		(void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH,
						 segtier_naptime * 1000L, PG_WAIT_EXTENSION);
		ResetLatch(MyLatch);
	}
}

/* ---------------------------------------------------------------- SQL */

/* segtier.worker_status(): each configured database and what its worker does. */
Datum
segtier_worker_status(PG_FUNCTION_ARGS)
{
	ReturnSetInfo *rsinfo = (ReturnSetInfo *) fcinfo->resultinfo;

	InitMaterializedSRF(fcinfo, 0);
	if (Workers == NULL)
		return (Datum) 0;

	for (int i = 0; i < Workers->nslots; i++)
	{
		WorkerSlot	copy;
		Datum		values[6];
		bool		nulls[6] = {0};

		SpinLockAcquire(&Workers->slots[i].mutex);
		copy = Workers->slots[i];
		SpinLockRelease(&Workers->slots[i].mutex);
		if (copy.state == WS_FREE)
			continue;

		values[0] = CStringGetTextDatum(copy.dbname);
		values[1] = Int32GetDatum(copy.pid);
		nulls[1] = copy.pid == 0;
		values[2] = CStringGetTextDatum(WorkerStateNames[copy.state]);
		values[3] = CStringGetTextDatum(copy.model);
		nulls[3] = copy.model[0] == '\0';
		values[4] = TimestampTzGetDatum(copy.last_run);
		nulls[4] = copy.last_run == 0;
		values[5] = TimestampTzGetDatum(copy.next_run);
		nulls[5] = copy.next_run == 0;
		tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
	}
	return (Datum) 0;
}

/* segtier.wake(): ask this database's worker to look for due models now. */
Datum
segtier_wake(PG_FUNCTION_ARGS)
{
	bool		woken = false;

	if (Workers == NULL)
		PG_RETURN_BOOL(false);
	for (int i = 0; i < Workers->nslots; i++)
	{
		WorkerSlot *slot = &Workers->slots[i];
		Latch	   *latch = NULL;

		SpinLockAcquire(&slot->mutex);
		if (slot->pid != 0 && slot->dboid == MyDatabaseId)
			latch = slot->latch;
		SpinLockRelease(&slot->mutex);
		/* if the worker just exited, this wakes nobody or someone harmlessly */
		if (latch != NULL)
		{
			SetLatch(latch);
			woken = true;
		}
	}
	PG_RETURN_BOOL(woken);
}
