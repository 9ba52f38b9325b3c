#!/bin/bash
# The segtier benchmark (issue 7); not part of `make test`.
#
#   bash test/bench/run.sh [customers] [transactions]     # default 1000000 10000000
#   bash test/bench/run.sh 100000                         # 100k customers / 1M transactions
#
# Builds and installs the extension (PG_CONFIG selects the installation, as
# for test/harness.sh), starts a throwaway cluster in a temporary directory
# on a free port (always stopped and removed on exit), generates the seeded
# CRM data set with test/gen/crm.sql, and measures, each several times on the
# same data with the same settings:
#   1  floor: CREATE TABLE AS SELECT customer, min, max, count, sum GROUP BY customer
#   2  the hand-written baseline (test/bench/baseline.sql)
#   3  segtier full refresh of a model with every scheme on (predict, clusters,
#      hysteresis, customers table): the first one, a daily one (as_of one
#      day later each run, so every row's recency changes), one with nothing
#      changed, and the daily refresh the worker runs (not forced full)
#   4  incremental refresh after 1 % and 0.1 % of the customers bought again,
#      each in a new session, then in one session as the worker runs them
#   5  BG/NBD and Gamma-Gamma fits and p_alive/CLV scoring of every customer
#   6  scalar throughput of score, rfm_segment and rfm text I/O in one backend
#      (each call alternating with the same loop without it)
# and prints a table (median, min, max), the backend's memory during the
# daily full refreshes and its growth across them, and the ratios 3/1, 3/2, 4/3.
#
# Environment: BENCH_REPS (runs per item, default 5), BENCH_GROWTH_RUNS
# (daily full refreshes in one session, default 50 up to 50k customers,
# else BENCH_REPS), BENCH_SCALAR_CALLS (default 10000000), BENCH_PROFILE=1
# (also log the statements of one daily full and one incremental refresh
# with auto_explain and print their times, and record a perf profile of the
# full refresh when perf is installed),
# BENCH_HUGE_PAGES=1 (as root: reserve huge pages for the cluster's shared
# memory, huge_pages = on, and give the reservation back on exit),
# BENCH_THP=1 (the server processes' malloc'd memory in transparent huge
# pages: GLIBC_TUNABLES=glibc.malloc.hugetlb=1, glibc 2.35 and later, with
# the kernel's THP mode madvise or always).
set -euo pipefail
cd "$(dirname "$0")/../.."
CUSTOMERS=${1:-1000000}
TRANSACTIONS=${2:-$((CUSTOMERS * 10))}
REPS=${BENCH_REPS:-5}
if [ "$CUSTOMERS" -le 50000 ]; then GROWTH_DEFAULT=50; else GROWTH_DEFAULT=$REPS; fi
GROWTH_RUNS=${BENCH_GROWTH_RUNS:-$GROWTH_DEFAULT}
SCALAR_CALLS=${BENCH_SCALAR_CALLS:-10000000}
PROFILE=${BENCH_PROFILE:-0}
SEED=0.42
AS_OF='2025-01-01 00:00+00'

# Sized for the 24 GB, 2-core benchmark machine; durability is off because
# nothing here must survive a crash (the same for every item measured).
SETTINGS=(
	"shared_buffers = 6GB"
	"work_mem = 256MB"
	"maintenance_work_mem = 1GB"
	"max_parallel_workers_per_gather = 2"
	"max_worker_processes = 8"
	"max_wal_size = 32GB"
	"checkpoint_timeout = 1h"
	"fsync = off"
	"synchronous_commit = off"
	"full_page_writes = off"
	"jit = off"
	"autovacuum = off"
	"track_io_timing = on"
)

source test/cluster.sh
say() { printf '== %s\n' "$*" >&2; }

SAMPLER=""
HUGE_BEFORE=""
on_cleanup() {
	[ -z "$SAMPLER" ] || kill "$SAMPLER" 2>/dev/null
	# pages still mapped are freed from the pool when the cluster stops
	[ -z "$HUGE_BEFORE" ] || echo "$HUGE_BEFORE" > /proc/sys/vm/nr_hugepages
}
# A new backend maps each shared buffer it touches, a 4 kB page at a time;
# with 2 MB pages that costs next to nothing (see RESULTS.md, runs H-J).
if [ "${BENCH_HUGE_PAGES:-0}" = 1 ]; then
	[ "$(id -u)" -eq 0 ] || { echo "BENCH_HUGE_PAGES=1 must run as root" >&2; exit 1; }
	HUGE_KB=$(awk '/^Hugepagesize:/ { print $2 }' /proc/meminfo)
	HUGE_BEFORE=$(cat /proc/sys/vm/nr_hugepages)
	# shared_buffers (6 GB, see SETTINGS) and about 400 MB for the rest
	HUGE_WANT=$(( HUGE_BEFORE + (6 * 1024 + 400) * 1024 / HUGE_KB ))
	echo "$HUGE_WANT" > /proc/sys/vm/nr_hugepages
	[ "$(cat /proc/sys/vm/nr_hugepages)" -ge "$HUGE_WANT" ] ||
		{ echo "could reserve only $(cat /proc/sys/vm/nr_hugepages) of $HUGE_WANT huge pages" >&2; exit 1; }
	SETTINGS+=("huge_pages = on")
fi
# BENCH_THP: the kernel zeroes a new process's memory a 4 kB page at a time
# at its first touch, and parallel workers are new processes (RESULTS.md,
# run S); only the server gets GLIBC_TUNABLES.  No preload: no background
# worker competes with the measurements.
TUNABLES=""
[ "${BENCH_THP:-0}" = 1 ] && TUNABLES=glibc.malloc.hugetlb=1
GLIBC_TUNABLES=$TUNABLES start_cluster "shared_preload_libraries = ''" "listen_addresses = ''" "${SETTINGS[@]}"
export PGDATABASE=bench

sql() { psql -X -q -At -v ON_ERROR_STOP=1 "$@"; }

# timed <sql...>: runs the statements in one session and prints the
# server round trip of the last one in seconds.
timed() {
	{ printf '%s\n' "${@:1:$#-1}"; printf '\\timing on\n%s\n' "${!#}"; } |
		sql -v as_of="$AS_OF" | sed -n 's/^Time: \([0-9.]*\) ms.*/\1/p' | tail -1 |
		awk '{ printf "%.4f\n", $1 / 1000 }'
}

# Results: one line per item, "label<TAB>t1 t2 ...".
RESULTS=$TMP/results
: > "$RESULTS"
record() { printf '%s\t%s\n' "$1" "$2" >> "$RESULTS"; }

# measure <label> <runs> <setup sql or ''> <timed sql>
measure() {
	local label=$1 runs=$2 setup=$3 stmt=$4 times="" t
	for i in $(seq 1 "$runs"); do
		t=$(timed "${setup//@I@/$i}" "${stmt//@I@/$i}")
		times="$times $t"
	done
	record "$label" "${times# }"
	say "$label: $times"
}

# median / min / max of a list of numbers
stats() { tr ' ' '\n' | sort -g | awk '{ v[NR] = $1 } END {
	m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2; printf "%s %s %s %d\n", m, v[1], v[NR], NR }'; }
median_of() { awk -F'\t' -v l="$1" '$1 == l { print $2 }' "$RESULTS" | stats | cut -d' ' -f1; }
min_of() { awk -F'\t' -v l="$1" '$1 == l { print $2 }' "$RESULTS" | stats | cut -d' ' -f2; }

say "database, extension, data: $CUSTOMERS customers, $TRANSACTIONS transactions (seed $SEED)"
sql -d postgres -c "CREATE DATABASE bench"
sql -c "CREATE EXTENSION segtier"
GEN_START=$(date +%s.%N)
sql -v customers="$CUSTOMERS" -v transactions="$TRANSACTIONS" -v seed="$SEED" -v as_of="$AS_OF" -f test/gen/crm.sql
GEN_SECONDS=$(echo "$(date +%s.%N) - $GEN_START" | bc)
sql -c "VACUUM (FREEZE, ANALYZE) crm.orders" -c "VACUUM (FREEZE, ANALYZE) crm.customers"
DATA=$(sql -F ' ' -c "SELECT count(*), count(DISTINCT customer_id), sum(amount), count(*) FILTER (WHERE amount < 0),
	(SELECT count(*) FROM crm.customers), pg_size_pretty(pg_table_size('crm.orders')) FROM crm.orders")
say "data: $DATA (generated in ${GEN_SECONDS}s)"
read -r N_ORDERS N_BUYERS REVENUE N_REFUNDS N_CUSTOMERS ORDERS_SIZE ORDERS_UNIT <<< "$DATA"

say "1: floor"
measure "1 floor: CTAS GROUP BY" "$REPS" "DROP TABLE IF EXISTS bench_floor;" \
	"CREATE TABLE bench_floor AS SELECT customer_id, min(ordered_at), max(ordered_at), count(*), sum(amount)
	 FROM crm.orders GROUP BY customer_id;"

say "2: hand-written baseline"
measure "2 baseline.sql" "$REPS" "" "\\i test/bench/baseline.sql"

say "3: full refresh"
sql -c "SELECT segtier.create_model('bench', 'crm.orders', 'customer_id', 'ordered_at', 'amount',
	jsonb_build_object('as_of', '$AS_OF', 'time_zone', 'UTC', 'customers_table', 'crm.customers',
		'predict', true, 'penalizer', 0.001, 'clusters', 4, 'hysteresis_runs', 2))"
measure "3a first full refresh (all rows new)" 1 "" "SELECT segtier.refresh('bench', full => true);"

# The daily runs share one session: its memory is sampled all along.
PIDFILE=$TMP/backend.pid
DAILY=$TMP/daily.sql
{
	echo "\\o $PIDFILE"
	echo "SELECT pg_backend_pid();"
	echo "\\o $TMP/rss.txt"
	for i in $(seq 1 "$GROWTH_RUNS"); do
		echo "SELECT segtier.alter_model('bench', jsonb_build_object('as_of', timestamptz '$AS_OF' + $i * interval '1 day'));"
		echo "\\timing on"
		echo "SELECT segtier.refresh('bench', full => true);"
		echo "\\timing off"
		# RssAnon (kB) and the bytes held by the backend's memory contexts
		echo "SELECT $i, (regexp_match(pg_read_file('/proc/' || pg_backend_pid() || '/status'), 'RssAnon:\\s+(\\d+)'))[1],
			(SELECT sum(total_bytes) FROM pg_backend_memory_contexts);"
	done
} > "$DAILY"
TEMP_BEFORE=$(sql -c "SELECT temp_bytes FROM pg_stat_database WHERE datname = 'bench'")
sql -f "$DAILY" >"$TMP/daily.out" 2>"$TMP/daily.err" &
PSQL_PID=$!
while [ ! -s "$PIDFILE" ] && kill -0 "$PSQL_PID" 2>/dev/null; do sleep 0.05; done
BACKEND=$(head -1 "$PIDFILE")
# peak anonymous (private) memory; VmHWM also counts shared buffers touched
(
	peak=0
	while kill -0 "$BACKEND" 2>/dev/null; do
		a=$(awk '/^RssAnon:/ { print $2 }' "/proc/$BACKEND/status" 2>/dev/null || echo 0)
		[ "${a:-0}" -gt "$peak" ] && { peak=$a; echo "$peak" > "$TMP/peak_anon"; }
		awk '/^VmHWM:/ { print $2 }' "/proc/$BACKEND/status" > "$TMP/hwm.tmp" 2>/dev/null
		[ -s "$TMP/hwm.tmp" ] && mv "$TMP/hwm.tmp" "$TMP/hwm"
		sleep 0.1
	done
) &
SAMPLER=$!
wait "$PSQL_PID" || { cat "$TMP/daily.err" >&2; exit 1; }
wait "$SAMPLER" || true
SAMPLER=""
TEMP_AFTER=$(sql -c "SELECT temp_bytes FROM pg_stat_database WHERE datname = 'bench'")
record "3b daily full refresh (as_of +1 day)" "$(sed -n 's/^Time: \([0-9.]*\) ms.*/\1/p' "$TMP/daily.out" | awk '{ printf "%.4f ", $1 / 1000 }' | sed 's/ $//')"
say "3b: $(tail -1 "$RESULTS" | cut -f2)"
PEAK_ANON_MB=$(awk '{ printf "%.0f", $1 / 1024 }' "$TMP/peak_anon")
HWM_MB=$(awk '{ printf "%.0f", $1 / 1024 }' "$TMP/hwm")
RSS_FIRST=$(awk -F'|' '$2 != "" && $1 == 1 { printf "%.1f", $2 / 1024 }' "$TMP/rss.txt")
RSS_SECOND=$(awk -F'|' '$2 != "" && $1 == 2 { printf "%.1f", $2 / 1024 }' "$TMP/rss.txt")
RSS_LAST=$(awk -F'|' '$2 != "" { v = $2 } END { $2 = v; printf "%.1f", $2 / 1024 }' "$TMP/rss.txt")
CTX_SECOND=$(awk -F'|' '$3 != "" && $1 == 2 { printf "%.2f", $3 / 1048576 }' "$TMP/rss.txt")
CTX_LAST=$(awk -F'|' '$3 != "" { v = $3 } END { printf "%.2f", v / 1048576 }' "$TMP/rss.txt")
TEMP_MB=$(( (TEMP_AFTER - TEMP_BEFORE) / GROWTH_RUNS / 1048576 ))

measure "3c full refresh, nothing changed" "$REPS" "" "SELECT segtier.refresh('bench', full => true);"
# what the worker runs each day: as_of one day later, captured changes only
# (statistics recomputed, as statistics_interval is 1 day, without a rescan)
measure "3d daily refresh, not forced full (as_of +1 day)" "$REPS" \
	"SELECT segtier.alter_model('bench', jsonb_build_object('as_of', timestamptz '$AS_OF' + ($GROWTH_RUNS + @I@) * interval '1 day'));" \
	"SELECT segtier.refresh('bench');"
# settle on the last as_of; from here on the model's options stay put
FINAL_AS_OF=$(sql -c "SELECT (options->>'as_of')::timestamptz FROM segtier.model WHERE name = 'bench'")

say "4: incremental refresh"
# new orders an hour before as_of for every 100th (1000th) customer, a
# different set each run
incremental() {
	local label=$1 modulus=$2 times="" ins="" t
	for i in $(seq 1 "$REPS"); do
		t=$(timed "" "INSERT INTO crm.orders (customer_id, ordered_at, amount)
			SELECT customer_id, timestamptz '$FINAL_AS_OF' - interval '1 hour', 50 FROM crm.customers
			WHERE customer_id % $modulus = $i AND customer_id <= $CUSTOMERS;")
		ins="$ins $t"
		t=$(timed "" "SELECT segtier.refresh('bench');")
		times="$times $t"
		[ "$(sql -c "SELECT full_refresh FROM segtier.refresh_runs ORDER BY run_id DESC LIMIT 1")" = f ] ||
			{ echo "run was not incremental" >&2; exit 1; }
	done
	record "$label" "${times# }"
	record "  insert of those orders (capture triggers)" "${ins# }"
	say "$label: $times (inserts:$ins)"
}
incremental "4a incremental refresh, 1 % changed" 100
incremental "4b incremental refresh, 0.1 % changed" 1000
# the same in one backend, as the worker's long-lived one runs them: after a
# warm-up refresh it has its caches and its mappings of shared buffers
# (other customers: ids modulo 100 from 51 on, modulo 1000 from 501 on)
{
	echo "SELECT segtier.refresh('bench');"
	for m in 100 1000; do
		for i in $(seq 1 "$REPS"); do
			echo "INSERT INTO crm.orders (customer_id, ordered_at, amount)
				SELECT customer_id, timestamptz '$FINAL_AS_OF' - interval '1 hour', 50 FROM crm.customers
				WHERE customer_id % $m = $((m / 2 + i)) AND customer_id <= $CUSTOMERS;"
			printf '\\timing on\nSELECT segtier.refresh('"'"'bench'"'"');\n\\timing off\n'
		done
	done
} | sql | sed -n 's/^Time: \([0-9.]*\) ms.*/\1/p' | awk '{ printf "%.4f\n", $1 / 1000 }' > "$TMP/warm"
[ "$(sql -c "SELECT bool_and(NOT full_refresh) FROM (SELECT full_refresh FROM segtier.refresh_runs
	ORDER BY run_id DESC LIMIT 2 * $REPS + 1) r")" = t ] || { echo "run was not incremental" >&2; exit 1; }
record "4c 1 %, in one backend (as the worker)" "$(head -n "$REPS" "$TMP/warm" | paste -sd' ')"
record "4d 0.1 %, in one backend (as the worker)" "$(tail -n "$REPS" "$TMP/warm" | paste -sd' ')"
say "4c, 4d in one backend: $(paste -sd' ' "$TMP/warm")"
sql -c "SELECT changed, params->'incremental_customers' FROM segtier.refresh_runs ORDER BY run_id DESC LIMIT 1" >&2

say "5: predictive models"
# whole days, as the refresh fits them (t_x, t), and exact times (every
# customer a history of its own, as a fit on raw timestamps would see them)
sql -c "CREATE TABLE bench_features AS
	SELECT customer, (purchase_days - 1)::float8 AS x,
		   floor(date_part('epoch', last_purchase - first_purchase) / 86400) AS t_x,
		   floor(date_part('epoch', timestamptz '$FINAL_AS_OF' - first_purchase) / 86400) AS t,
		   date_part('epoch', last_purchase - first_purchase) / 86400 AS t_x_exact,
		   date_part('epoch', timestamptz '$FINAL_AS_OF' - first_purchase) / 86400 AS t_exact,
		   coalesce(repeat_amount::float8 / nullif(purchase_days - 1, 0), 0) AS monetary,
		   purchase_days, first_purchase, last_purchase, repeat_amount
	FROM segtier_data.bench_summary" -c "ANALYZE bench_features"
measure "5a bgnbd_fit, every customer (whole days)" "$REPS" "" "SELECT segtier.bgnbd_fit(x, t_x, t, 0.001) FROM bench_features;"
measure "5a bgnbd_fit, every customer (exact times)" "$REPS" "" \
	"SELECT segtier.bgnbd_fit(x, t_x_exact, t_exact, 0.001) FROM bench_features;"
measure "5b gamma_gamma_fit, every customer" "$REPS" "" "SELECT segtier.gamma_gamma_fit(x, monetary, 0.001) FROM bench_features;"
sql -c "CREATE TABLE bench_fit AS SELECT (SELECT segtier.bgnbd_fit(x, t_x, t, 0.001) FROM bench_features) AS bg,
	(SELECT segtier.gamma_gamma_fit(x, monetary, 0.001) FROM bench_features) AS gg"
measure "5c p_alive + clv, every customer (as the refresh)" "$REPS" "" \
	"SELECT count(segtier.p_alive(bg, x, t_x, t)), sum(segtier.clv(bg, gg, x, t_x, t, monetary, 365 / 30.0, 0.01))
	 FROM bench_features, bench_fit;"

say "6: scalar throughput ($SCALAR_CALLS calls each)"
RFMS="(SELECT array_agg(segtier.rfm(r, f, m)) FROM generate_series(1, 5) r, generate_series(1, 5) f, generate_series(1, 5) m)"
TEXTS="(SELECT array_agg(format('%s%s%s', r, f, m)) FROM generate_series(1, 5) r, generate_series(1, 5) f, generate_series(1, 5) m)"
# i runs over 1..SCALAR_CALLS (rounded to thousands) without materializing
# SCALAR_CALLS rows: the inner series of 1000 is rescanned from memory.  The
# loop alone (the same expression without the call) and the call alternate,
# so that drift on this machine hits both, and the net figure compares the
# fastest run of each (the noise only ever adds time).
scalar() {
	local name=$1 bare=$2 call=$3 from=$4 loops="" calls="" t i e
	for i in $(seq 1 "$REPS"); do
		for e in "$bare" "$call"; do
			t=$(timed "" "SELECT count($e) FROM $from c(a), generate_series(0, $SCALAR_CALLS / 1000 - 1) j,
				LATERAL (SELECT j * 1000 + k AS i FROM generate_series(1, 1000) k) s;")
			if [ "$e" = "$bare" ]; then loops="$loops $t"; else calls="$calls $t"; fi
		done
	done
	record "6 $name: loop alone" "${loops# }"
	record "6 $name" "${calls# }"
	say "6 $name: loop alone$loops; with the call$calls"
}
scalar "score(float8, 4 cuts)" "i::float8" "segtier.score(i::float8, '{200000,400000,600000,800000}'::float8[])" "(SELECT 1)"
scalar "rfm_segment(rfm)" "a[1 + i % 125]" "segtier.rfm_segment(a[1 + i % 125])" "$RFMS"
scalar "rfm_out (rfm::text)" "a[1 + i % 125]" "a[1 + i % 125]::text" "$RFMS"
scalar "rfm_in (text::rfm)" "a[1 + i % 125]" "a[1 + i % 125]::segtier.rfm" "$TEXTS"

if [ "$PROFILE" = 1 ]; then
	PROFILE_AS_OF=$(sql -c "SELECT timestamptz '$FINAL_AS_OF' + interval '1 day'")
	if command -v perf >/dev/null && [ "$(id -u)" -eq 0 ]; then
		sql -c "SELECT segtier.alter_model('bench', jsonb_build_object('as_of', timestamptz '$PROFILE_AS_OF'))"
		sql -c "SELECT pg_backend_pid()" -c "SELECT pg_sleep(1)" -c "SELECT segtier.refresh('bench', full => true)" > "$TMP/perf.pid" &
		PSQL_PID=$!
		while [ ! -s "$TMP/perf.pid" ]; do sleep 0.05; done
		perf record -F 499 -g -o "$TMP/perf.data" -p "$(head -1 "$TMP/perf.pid")" >/dev/null 2>&1 &
		PERF_PID=$!
		wait "$PSQL_PID"
		kill -INT "$PERF_PID"; wait "$PERF_PID" || true
		say "perf: a daily full refresh, functions by inclusive time (the server binary has no symbols for its static functions)"
		perf report -i "$TMP/perf.data" --children --sort symbol --stdio 2>/dev/null |
			grep -E '^ +[0-9.]+%' | grep -v ' 0x0000' | sed -n 1,40p >&2
	fi
	# statements of one refresh over 10 ms, from the server log, in order
	statements() {
		local from
		from=$(wc -c < "$TMP/server.log")
		sql -c "LOAD 'auto_explain'" -c "SET auto_explain.log_min_duration = 10" \
			-c "SET auto_explain.log_nested_statements = on" -c "SELECT segtier.refresh('bench', full => $1)" >/dev/null
		tail -c +"$((from + 1))" "$TMP/server.log" | awk '
			/duration: [0-9.]+ ms  plan:/ { match($0, /duration: [0-9.]+/); d = substr($0, RSTART + 10, RLENGTH - 10); want = 1; next }
			want == 1 && /Query Text:/ { sub(/.*Query Text: */, ""); want = 2 }
			want == 2 && /[^ \t]/ { gsub(/^[ \t]+/, ""); n++; dur[n] = d; txt[n] = $0; want = 0 }
			END { for (i = 1; i <= n; i++) printf "%9.0f ms %5.1f %%  %s\n", dur[i], 100 * dur[i] / dur[n], substr(txt[i], 1, 100) }' >&2
	}
	say "profile: statements of a daily full refresh (auto_explain, nested statements over 10 ms)"
	sql -c "SELECT segtier.alter_model('bench', jsonb_build_object('as_of', timestamptz '$PROFILE_AS_OF' + interval '1 day'))"
	statements true
	sql -c "INSERT INTO crm.orders (customer_id, ordered_at, amount)
		SELECT customer_id, timestamptz '$PROFILE_AS_OF', 50 FROM crm.customers
		WHERE customer_id % 100 = 99 AND customer_id <= $CUSTOMERS"
	say "profile: statements of an incremental refresh, 1 % changed"
	statements false
fi

# the table
{
	echo
	echo "segtier benchmark: $CUSTOMERS customers, $TRANSACTIONS transactions requested"
	echo "data: $N_ORDERS orders ($N_REFUNDS refunds, $ORDERS_SIZE $ORDERS_UNIT), $N_BUYERS buyers, $N_CUSTOMERS customers, revenue $REVENUE; generated in $(printf '%.0f' "$GEN_SECONDS") s"
	echo "machine: $(nproc) cores ($(awk -F': ' '/model name/ { print $2; exit }' /proc/cpuinfo)), $(awk '/MemTotal/ { printf "%.0f GB", $2 / 1048576 }' /proc/meminfo); $(psql -X -At -c 'SHOW server_version')"
	echo "settings: ${SETTINGS[*]}${TUNABLES:+; server GLIBC_TUNABLES=$TUNABLES}" | sed 's/ = /=/g'
	echo
	printf '%-48s %5s %10s %10s %10s %8s\n' item runs median_s min_s max_s spread
	while IFS=$'\t' read -r label times; do
		read -r med lo hi n <<< "$(echo "$times" | stats)"
		printf '%-48s %5d %10.3f %10.3f %10.3f %7.0f%%\n' "$label" "$n" "$med" "$lo" "$hi" \
			"$(echo "if ($med > 0) ($hi - $lo) * 100 / $med else 0" | bc -l)"
	done < "$RESULTS"
	echo
	echo "scalar throughput (one backend; net = fastest run with the call minus fastest run of the loop alone):"
	rate() {
		local f b
		f=$(min_of "6 $1"); b=$(min_of "6 $1: loop alone")
		printf '  %-28s %8.2f M calls/s gross, ' "$1" "$(echo "$SCALAR_CALLS / $f / 1000000" | bc -l)"
		# the loop alone spreads more than a fast call costs: no net figure then
		if [ "$(echo "$f > $b" | bc -l)" = 1 ]; then
			printf '%6.1f ns/call net (%.1f M calls/s net)\n' "$(echo "($f - $b) * 1000000000 / $SCALAR_CALLS" | bc -l)" \
				"$(echo "$SCALAR_CALLS / ($f - $b) / 1000000" | bc -l)"
		else
			echo "net not resolved: the fastest run with the call was no slower than the loop alone"
		fi
	}
	rate "score(float8, 4 cuts)"
	rate "rfm_segment(rfm)"
	rate "rfm_out (rfm::text)"
	rate "rfm_in (text::rfm)"
	echo
	echo "backend memory over $GROWTH_RUNS daily full refreshes in one session: peak RssAnon $PEAK_ANON_MB MB" \
		"($(echo "$PEAK_ANON_MB * 1048576 / $N_CUSTOMERS" | bc) bytes per customer), VmHWM $HWM_MB MB (includes shared buffers);"
	echo "  RssAnon after run 1: $RSS_FIRST MB, run 2: $RSS_SECOND MB, run $GROWTH_RUNS: $RSS_LAST MB; temp files $TEMP_MB MB per refresh"
	echo "  memory contexts after run 2: $CTX_SECOND MB, run $GROWTH_RUNS: $CTX_LAST MB"
	echo
	F=$(median_of "1 floor: CTAS GROUP BY"); B=$(median_of "2 baseline.sql"); D=$(median_of "3b daily full refresh (as_of +1 day)")
	I1=$(median_of "4a incremental refresh, 1 % changed"); I2=$(median_of "4b incremental refresh, 0.1 % changed")
	ratio() { echo "$1 / $2" | bc -l | xargs printf '%.3f'; }
	echo "ratios (medians; full = 3b daily full refresh):"
	echo "  3/1 full / floor            $(ratio "$D" "$F")   (target <= 1.0)"
	echo "  3/2 full / baseline         $(ratio "$D" "$B")   (target <= 0.5)"
	echo "  4/3 incremental 1 % / full  $(ratio "$I1" "$D")   (target <= 0.05)"
	echo "  4/3 incremental 0.1 % / full $(ratio "$I2" "$D")  (target <= 0.01)"
	echo "  in one backend (4c, 4d): 1 % $(ratio "$(median_of "4c 1 %, in one backend (as the worker)")" "$D"), 0.1 % $(ratio "$(median_of "4d 0.1 %, in one backend (as the worker)")" "$D")"
	W=$(median_of "3d daily refresh, not forced full (as_of +1 day)")
	echo "  3d daily refresh / floor    $(ratio "$W" "$F")   (no target; what the worker runs each day)"
}
