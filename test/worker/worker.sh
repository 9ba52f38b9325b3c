#!/bin/bash
# The background worker, end to end, as TAP: a throwaway cluster of its own
# with segtier preloaded (naptime 1 s).  Run by test/harness.sh through
# `prove --exec bash`; expects the built segtier installed and its bin dir
# on PATH.  Every wait is a bounded poll.
set -uo pipefail

as_pg() {
	if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

DIR=$(mktemp -d /tmp/segtier-worker.XXXXXX)
LOCKER=""
cleanup() {
	if [ "${FAILED:-0}" != 0 ]; then
		cp "$LOG" /tmp/segtier-worker-failed.log
		echo "# server log kept in /tmp/segtier-worker-failed.log"
	fi
	[ -n "$LOCKER" ] && kill "$LOCKER" 2>/dev/null
	for data in "$DIR/data" "$DIR/standby"; do
		[ -f "$data/postmaster.pid" ] && as_pg pg_ctl -D "$data" -m immediate -w stop >/dev/null 2>&1
	done
	rm -rf "$DIR"
}
trap cleanup EXIT
trap "exit 1" INT TERM
chmod 755 "$DIR"
[ "$(id -u)" -eq 0 ] && chown postgres: "$DIR"
LOG=$DIR/server.log
as_pg initdb -D "$DIR/data" -A trust -E UTF8 --locale=C.UTF-8 -U postgres >/dev/null || exit 1
cat >> "$DIR/data/postgresql.conf" <<EOF
port = 5432
listen_addresses = ''
unix_socket_directories = '$DIR'
shared_preload_libraries = 'segtier'
segtier.naptime = 1
max_worker_processes = 16
fsync = off
lc_messages = 'C'
log_line_prefix = '%m [%p] '
EOF
as_pg pg_ctl -D "$DIR/data" -l "$LOG" -w -t 60 start >/dev/null || { cat "$LOG" >&2; exit 1; }
export PGHOST=$DIR PGPORT=5432 PGUSER=postgres
unset PGDATABASE
psql -X -q -d postgres -c "SELECT 1" >/dev/null || { echo "Bail out! cannot connect to the test cluster"; exit 1; }

echo "1..55"
N=0
FAILED=0
pass() { N=$((N + 1)); echo "ok $N - $1"; }
fail() { N=$((N + 1)); echo "not ok $N - $1"; FAILED=1; }
# q DB SQL: one value, unaligned
q() { psql -X -qAt -v ON_ERROR_STOP=1 -d "$1" -c "$2"; }
# same GOT EXPECTED NAME
same() {
	if [ "$1" = "$2" ]; then pass "$3"; else
		fail "$3"; printf '#   got:      %s\n#   expected: %s\n' "$1" "$2"; fi
}
# is DB SQL EXPECTED NAME
is() { same "$(q "$1" "$2" 2>&1)" "$3" "$4"; }
# poll DB SQL SECONDS NAME: passes once SQL returns t
poll() {
	local end=$((SECONDS + $3))
	while [ $SECONDS -lt "$end" ]; do
		[ "$(q "$1" "$2" 2>/dev/null)" = t ] && { pass "$4"; return 0; }
		sleep 0.1
	done
	fail "$4 (not within $3 s)"; return 1
}
# log_count TEXT: lines of the server log since the mark that contain TEXT
MARK=0
log_count() { tail -c +$((MARK + 1)) "$LOG" | grep -cF -- "$1"; }
reload() { q postgres "$1" >/dev/null && q postgres "SELECT pg_reload_conf()" >/dev/null; }
WORKER="SELECT pid FROM pg_stat_activity WHERE backend_type = 'segtier worker' AND datname"

# --- launcher, before any database is configured
poll postgres "SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'segtier launcher'
	AND application_name = 'segtier launcher'" 30 "the launcher runs, named in pg_stat_activity"
for db in wk wk_drop wk_noext; do q postgres "CREATE DATABASE $db" >/dev/null; done
for db in wk wk_drop; do q "$db" "CREATE EXTENSION segtier" >/dev/null; done
is wk "SELECT count(*) FROM segtier.worker_status()" 0 "no database configured: no worker"

# --- a model with a 1-second interval, refreshed with no manual call
q wk "CREATE TABLE tx (cust int, at timestamptz, amount numeric);
	INSERT INTO tx SELECT c, now() - (c * 10 + k) * interval '1 day', 10 * c + k
	FROM generate_series(1, 20) c, generate_series(1, c % 4 + 1) k;
	SELECT segtier.create_model('m1', 'tx', 'cust', 'at', 'amount', '{\"refresh_interval\": \"1 second\"}')" >/dev/null
q wk_drop "CREATE TABLE tx (cust int, at timestamptz, amount numeric);
	INSERT INTO tx SELECT c, now() - c * interval '1 day', c FROM generate_series(1, 5) c;
	SELECT segtier.create_model('md', 'tx', 'cust', 'at', 'amount', '{\"refresh_interval\": \"1 second\"}')" >/dev/null
MARK=$(stat -c %s "$LOG")
T0=$SECONDS
reload "ALTER SYSTEM SET segtier.database = 'wk, wk_drop, wk_noext, wk_missing'"
poll wk "SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'segtier worker'
	AND application_name = 'segtier worker' AND datname = 'wk'" 30 "a reload starts the worker of a listed database"
poll wk "SELECT EXISTS (SELECT FROM segtier.refresh_runs WHERE model = 'm1' AND status = 'succeeded')" 30 \
	"the worker refreshes a model with a 1-second interval"
is wk "SELECT count(*) FROM segtier_data.m1_tiers" 20 "its tiers hold every customer"
is wk "SELECT state IN ('idle', 'refreshing') AND pid = ($WORKER = 'wk') AND last_run IS NOT NULL
	AND next_run > now() - interval '5 s' FROM segtier.worker_status() WHERE database = 'wk'" t \
	"worker_status shows the worker's pid, state, last and next run"

R=$(q wk "SELECT max(run_id) FROM segtier.refresh_runs")
q wk "INSERT INTO tx VALUES (999, now() - interval '1 hour', 5000)" >/dev/null
poll wk "SELECT count(*) = 3 FROM segtier.tier_history WHERE model = 'm1' AND customer = '999'
	AND reason = 'new customer' AND run_id > $R" 30 "new transactions show up as history rows"

# --- wake(): with a one-hour naptime only a wake-up makes the worker look
reload "ALTER SYSTEM SET segtier.naptime = 3600"
poll wk "SELECT next_run > now() + interval '3000 s' FROM segtier.worker_status() WHERE database = 'wk'" 30 \
	"a reloaded naptime applies to the next sleep"
poll wk "SELECT EXISTS (SELECT FROM segtier._worker_due_models() WHERE model = 'm1')" 30 "m1 is due again"
R=$(q wk "SELECT max(run_id) FROM segtier.refresh_runs")
is wk "SELECT segtier.wake()" t "wake() finds the worker of this database"
poll wk "SELECT EXISTS (SELECT FROM segtier.refresh_runs WHERE model = 'm1' AND status = 'succeeded' AND run_id > $R)" 30 \
	"wake() makes it refresh the due model now"
reload "ALTER SYSTEM SET segtier.naptime = 1"
is wk_drop "SELECT segtier.wake()" t "wake() in another served database"

# --- pg_terminate_backend: the worker comes back
OLD=$(q wk "$WORKER = 'wk'")
is wk "SELECT pg_terminate_backend($OLD)" t "terminate the worker"
poll wk "SELECT EXISTS ($WORKER = 'wk' AND pid <> $OLD)" 30 "a new worker replaces it"
R=$(q wk "SELECT max(run_id) FROM segtier.refresh_runs")
poll wk "SELECT EXISTS (SELECT FROM segtier.refresh_runs WHERE model = 'm1' AND status = 'succeeded' AND run_id > $R)" 30 \
	"and goes on refreshing"

# --- a failing model is recorded; the other model keeps refreshing
q wk "CREATE TABLE tx2 (cust int, at timestamptz, amount numeric);
	INSERT INTO tx2 VALUES (1, now(), 1);
	SELECT segtier.create_model('m2', 'tx2', 'cust', 'at', 'amount', '{\"refresh_interval\": \"1 second\"}')" >/dev/null
poll wk "SELECT EXISTS (SELECT FROM segtier.refresh_runs WHERE model = 'm2' AND status = 'succeeded')" 30 \
	"a second model is refreshed"
PID=$(q wk "$WORKER = 'wk'")
q wk "DROP TABLE tx2" >/dev/null
poll wk "SELECT EXISTS (SELECT FROM segtier.refresh_runs WHERE model = 'm2' AND status = 'failed'
	AND error = 'source of model \"m2\" no longer exists' AND finished IS NOT NULL)" 30 \
	"a model whose source was dropped fails, with the error recorded"
R=$(q wk "SELECT max(run_id) FROM segtier.refresh_runs")
poll wk "SELECT EXISTS (SELECT FROM segtier.refresh_runs WHERE model = 'm1' AND status = 'succeeded' AND run_id > $R)" 30 \
	"the other model keeps refreshing"
is wk "SELECT pid FROM segtier.worker_status() WHERE database = 'wk'" "$PID" "the worker did not die of the failure"
end=$((SECONDS + 30))
while [ $SECONDS -lt $end ]; do
	FAILS=$(q wk "SELECT count(*) FROM segtier.refresh_runs WHERE model = 'm2' AND status = 'failed'")
	LOGGED=$(log_count 'ERROR:  source of model "m2" no longer exists')
	[ "$FAILS" = "$LOGGED" ] && break
	sleep 0.1
done
if [ "$FAILS" = "$LOGGED" ]; then pass "each failure is logged once ($FAILS)"; else
	fail "each failure is logged once"; echo "#   runs $FAILS, log lines $LOGGED"; fi
q wk "SELECT segtier.drop_model('m2')" >/dev/null

# --- segtier.enabled = off stops refreshes, on resumes them
reload "ALTER SYSTEM SET segtier.enabled = off"
poll wk "SELECT state = 'disabled' FROM segtier.worker_status() WHERE database = 'wk'" 30 "enabled = off: the worker is disabled"
NEXT=$(q wk "SELECT next_run FROM segtier.worker_status() WHERE database = 'wk'")
R=$(q wk "SELECT max(run_id) FROM segtier.refresh_runs")
poll wk "SELECT next_run > '$NEXT'::timestamptz + interval '1.5 s' FROM segtier.worker_status() WHERE database = 'wk'" 30 \
	"the disabled worker keeps looking"
is wk "SELECT max(run_id) FROM segtier.refresh_runs" "$R" "but starts no run"
reload "ALTER SYSTEM SET segtier.enabled = on"
poll wk "SELECT EXISTS (SELECT FROM segtier.refresh_runs WHERE model = 'm1' AND status = 'succeeded' AND run_id > $R)" 30 \
	"enabled = on resumes refreshes"

# --- statement_timeout cancels a slow refresh: a failed run, the others go on
reload "ALTER SYSTEM SET statement_timeout = '1s'"
q wk "CREATE VIEW slow_tx AS SELECT t.* FROM tx t CROSS JOIN pg_sleep(3) s;
	SELECT segtier.create_model('m3', 'slow_tx', 'cust', 'at', 'amount', '{\"refresh_interval\": \"1 second\"}')" >/dev/null
poll wk "SELECT EXISTS (SELECT FROM segtier.refresh_runs WHERE model = 'm3' AND status = 'failed'
	AND error = 'canceling statement due to statement timeout')" 30 "statement_timeout cancels a slow refresh"
R=$(q wk "SELECT max(run_id) FROM segtier.refresh_runs")
poll wk "SELECT EXISTS (SELECT FROM segtier.refresh_runs WHERE model = 'm1' AND status = 'succeeded' AND run_id > $R)" 30 \
	"and the worker goes on with the other model"
q wk "SELECT segtier.drop_model('m3')" >/dev/null
reload "ALTER SYSTEM RESET statement_timeout"

# --- SIGTERM mid-refresh rolls the run back
PGAPPNAME=wk_locker psql -X -q -d wk -c "BEGIN; LOCK TABLE segtier_data.m1_tiers IN SHARE MODE; SELECT pg_sleep(300)" \
	>/dev/null 2>&1 &
LOCKER=$!
poll wk "SELECT EXISTS (SELECT FROM pg_locks l JOIN pg_stat_activity a USING (pid) WHERE a.application_name = 'wk_locker'
	AND l.relation = 'segtier_data.m1_tiers'::regclass AND l.mode = 'ShareLock' AND l.granted)" 30 \
	"a session holds a lock the refresh's writes need"
TIERS="SELECT md5(string_agg(t::text, ',' ORDER BY customer)) FROM segtier_data.m1_tiers t"
BEFORE=$(q wk "$TIERS")
q wk "INSERT INTO tx VALUES (1000, now() - interval '1 hour', 9000), (1, now() - interval '1 hour', 7000)" >/dev/null
PID=$(q wk "$WORKER = 'wk'")
poll wk "SELECT EXISTS (SELECT FROM pg_stat_activity WHERE pid = $PID AND wait_event_type = 'Lock')
	AND EXISTS (SELECT FROM segtier.refresh_progress WHERE pid = $PID AND database = 'wk' AND model = 'm1'
				AND phase IN ('score', 'write') AND started <= updated)" 30 \
	"the worker is mid-refresh, visible in refresh_progress"
RUN=$(q wk "SELECT max(run_id) FROM segtier.refresh_runs WHERE model = 'm1' AND status = 'running'")
is wk "SELECT pg_terminate_backend($PID)" t "SIGTERM the worker mid-refresh"
poll wk "SELECT NOT EXISTS (SELECT FROM pg_stat_activity WHERE pid = $PID)" 30 "it exits promptly"
is wk "$TIERS" "$BEFORE" "the current tiers are exactly as before that run"
is wk "SELECT count(*) FROM segtier.refresh_progress WHERE pid = $PID" 0 "its progress row is gone"
poll wk "SELECT status = 'failed' AND error LIKE 'interrupted%' FROM segtier.refresh_runs WHERE run_id = $RUN" 30 \
	"the new worker marks the interrupted run failed"
q wk "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'wk_locker'" >/dev/null
wait "$LOCKER" 2>/dev/null
LOCKER=""
poll wk "SELECT EXISTS (SELECT FROM segtier.refresh_runs WHERE model = 'm1' AND status = 'succeeded' AND run_id > $RUN)
	AND ($TIERS) <> '$BEFORE'" 30 "once the lock is gone the tiers take the new transactions"

# --- DROP DATABASE while its worker refreshes
poll wk_drop "SELECT count(*) >= 2 FROM segtier.refresh_runs WHERE model = 'md' AND status = 'succeeded'" 30 \
	"the worker of wk_drop refreshes its model"
if q postgres "DROP DATABASE wk_drop" >/dev/null; then pass "DROP DATABASE succeeds while its worker runs"; else
	fail "DROP DATABASE succeeds while its worker runs"; fi

# --- nonexistent database and database without the extension: no restart loop
while [ $((SECONDS - T0)) -lt 10 ]; do sleep 0.2; done
same "$(log_count 'segtier worker starting for database "wk_missing"') $(log_count \
	'database "wk_missing" listed in segtier.database does not exist')" "0 1" \
	"a nonexistent database: no worker start and one log line in 10 s"
same "$(log_count 'segtier worker starting for database "wk_noext"') $(log_count \
	'extension segtier is not installed in database "wk_noext"')" "1 1" \
	"a database without the extension: one worker start and one log line in 10 s"
poll wk "SELECT string_agg(database || '=' || state || ':' || (pid IS NULL), ' ' ORDER BY database)
	= 'wk_drop=no database:true wk_missing=no database:true wk_noext=no extension:false'
	FROM segtier.worker_status() WHERE database <> 'wk'" 30 \
	"worker_status shows why the other databases are not refreshed"

# --- segtier.role: a reload reconnects the workers as the new role
q postgres "CREATE ROLE segtier_bot LOGIN" >/dev/null
reload "ALTER SYSTEM SET segtier.role = 'segtier_bot'"
poll wk "SELECT EXISTS (SELECT FROM pg_stat_activity WHERE backend_type = 'segtier worker' AND datname = 'wk'
	AND usename = 'segtier_bot')" 30 "a new segtier.role restarts the worker as that role"
poll wk "SELECT state = 'bad role' AND pid IS NOT NULL FROM segtier.worker_status() WHERE database = 'wk'" 30 \
	"a role short of the worker's grants shows bad role"
sleep 3
same "$(log_count 'role "segtier_bot" cannot refresh the models of database "wk"') $(log_count \
	'It lacks EXECUTE on segtier._close_stale_runs(), segtier._run_start(text), segtier._refresh_model(text, boolean, bigint), segtier._run_failed(bigint, text).')" \
	"1 1" "it is logged once in 3 s, naming what the role lacks"
R=$(q wk "SELECT max(run_id) FROM segtier.refresh_runs")
q wk "SELECT segtier.grant_admin('segtier_bot');
	GRANT EXECUTE ON FUNCTION segtier._run_start(text), segtier._run_failed(bigint, text), segtier._close_stale_runs()
	TO segtier_bot; GRANT postgres TO segtier_bot" >/dev/null
poll wk "SELECT EXISTS (SELECT FROM segtier.refresh_runs WHERE model = 'm1' AND status = 'succeeded' AND run_id > $R)" 30 \
	"granted as the README says, it refreshes again"
reload "ALTER SYSTEM SET segtier.role = 'no_such_role'"
poll wk "SELECT state = 'bad role' AND pid IS NULL FROM segtier.worker_status() WHERE database = 'wk'" 30 \
	"a role that cannot log in stops the worker"
same "$(log_count 'database "wk": role "no_such_role" set in segtier.role does not exist or cannot log in')" 1 \
	"and is logged once"
reload "ALTER SYSTEM RESET segtier.role"
poll wk "SELECT EXISTS (SELECT FROM pg_stat_activity WHERE backend_type = 'segtier worker' AND datname = 'wk'
	AND usename = 'postgres')" 30 "an empty segtier.role is the bootstrap superuser"

# --- a standby runs no worker; promoted, it starts one
SB=$DIR/standby
as_pg pg_basebackup -D "$SB" -R -X stream -d "host=$DIR port=5432 user=postgres" >/dev/null 2>&1
echo "port = 5433" >> "$SB/postgresql.conf"
as_pg pg_ctl -D "$SB" -l "$DIR/standby.log" -w -t 60 start >/dev/null
PGPORT=5433 is postgres "SELECT pg_is_in_recovery() || ' ' || (SELECT count(*) FROM pg_stat_activity WHERE backend_type LIKE 'segtier%')
	|| ' ' || current_setting('segtier.database')" "true 0 wk, wk_drop, wk_noext, wk_missing" \
	"a standby configured like its primary runs no launcher and no worker"
R=$(PGPORT=5433 q wk "SELECT max(run_id) FROM segtier.refresh_runs")
as_pg pg_ctl -D "$SB" -w promote >/dev/null
PGPORT=5433 poll wk "SELECT EXISTS (SELECT FROM segtier.refresh_runs WHERE model = 'm1' AND status = 'succeeded'
	AND run_id > $R)" 30 "promoted, it starts the worker, which refreshes"
as_pg pg_ctl -D "$SB" -m fast -w stop >/dev/null

# --- DROP EXTENSION while the worker refreshes
R=$(q wk "SELECT max(run_id) FROM segtier.refresh_runs")
poll wk "SELECT EXISTS (SELECT FROM segtier.refresh_runs WHERE model = 'm1' AND status = 'succeeded' AND run_id > $R)" 30 \
	"the worker refreshes m1"
if q wk "SET lock_timeout = '20s'; SET client_min_messages = warning; DROP EXTENSION segtier CASCADE" >/dev/null; then
	pass "DROP EXTENSION succeeds while the worker runs"; else fail "DROP EXTENSION succeeds while the worker runs"; fi
poll postgres "SELECT EXISTS (SELECT FROM pg_stat_activity WHERE backend_type = 'segtier worker' AND datname = 'wk')" 30 \
	"the worker stays"
# worker_status went with the extension in wk: ask from wk_noext
q wk_noext "CREATE EXTENSION segtier" >/dev/null
poll wk_noext "SELECT state = 'no extension' FROM segtier.worker_status() WHERE database = 'wk'" 30 \
	"and waits for the extension to come back"

# --- without shared_preload_libraries: no worker, progress is a no-op
as_pg pg_ctl -D "$DIR/data" -l "$LOG" -w -t 60 -o "-c shared_preload_libraries=" restart >/dev/null
q wk "CREATE EXTENSION segtier" >/dev/null
q wk "SELECT segtier.create_model('m9', 'tx', 'cust', 'at', 'amount')" >/dev/null
is wk "SELECT segtier.refresh('m9') IS NOT NULL" t "refresh works without preload"
is wk "SELECT (SELECT count(*) FROM segtier.worker_status()) || ' ' || segtier.wake() || ' '
	|| (SELECT count(*) FROM pg_stat_activity WHERE backend_type LIKE 'segtier%')" "0 false 0" \
	"without preload: no workers, worker_status empty, wake() false"
same "$(psql -X -qAt -d wk -c "BEGIN" -c "SELECT count(*) FROM (SELECT segtier.report_progress('m9', 'scan', 1, 2)) r" \
	-c "SELECT count(*) FROM segtier.refresh_progress" -c "COMMIT" 2>&1 | tr '\n' ' ')" "1 0 " \
	"without preload: report_progress does nothing"

exit $FAILED
