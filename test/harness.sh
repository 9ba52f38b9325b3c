#!/bin/bash
# The harness behind `make test` and `make demo`: install what is missing,
# build, install, run a throwaway cluster (always stopped and removed on exit),
# and run the suites or the demo against it.  Never touches another cluster.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
SHARED=${SEGTIER_SHARED:-$ROOT/../shared}
MODE=${1:-test}
source test/cluster.sh

# The real data sets in ../shared/data, when present, go into public tables
# of the pgTAP database; the validation suites skip when a table is absent.
load_shared_data() {
	local db=$1 cdnow="$SHARED/data/cdnow/CDNOW_sample.txt"
	if [ ! -f "$cdnow" ]; then
		say "skipping CDNOW validation: $cdnow not found"
		return 0
	fi
	psql -q -X -v ON_ERROR_STOP=1 -d "$db" -c "CREATE TABLE public.cdnow_sample (
		master_id text, customer_id int, day date, cds int, dollars numeric)"
	sed -e 's/\r$//' -e 's/^ *//' -e 's/  */,/g' "$cdnow" |
		psql -q -X -v ON_ERROR_STOP=1 -d "$db" -c "\copy public.cdnow_sample FROM STDIN (FORMAT csv)"
}

run_tests() {
	start_cluster
	say "pg_regress"
	local rc=0
	make -s PG_CONFIG="$PG_CONFIG" installcheck || rc=$?
	if [ $rc -ne 0 ]; then
		[ -f regression.diffs ] && cat regression.diffs
		exit $rc
	fi
	say "pgTAP"
	psql -q -X -v ON_ERROR_STOP=1 -c "CREATE DATABASE segtier_tap" \
		-d postgres
	psql -q -X -v ON_ERROR_STOP=1 -d segtier_tap \
		-c "CREATE EXTENSION pgtap" -c "CREATE EXTENSION segtier"
	load_shared_data segtier_tap
	say "pgTAP and shell suites"
	PGDATABASE=segtier_tap pg_prove --failures --ext .sql -r test/t
	prove --failures --ext .sh --exec bash test/shell
	say "worker"
	prove --failures --exec bash test/worker/worker.sh
}

run_demo() {
	start_cluster "segtier.database = 'segtier_demo'" "segtier.naptime = 1" "segtier.enabled = off"
	say "demo"
	psql -X -q -v ON_ERROR_STOP=1 -d postgres -c "CREATE DATABASE segtier_demo"
	psql -X -v ON_ERROR_STOP=1 -d segtier_demo -P pager=off -f test/demo/demo.sql
}

case "$MODE" in
	test) run_tests ;;
	demo) run_demo ;;
	*) echo "usage: $0 test|demo" >&2; exit 2 ;;
esac
