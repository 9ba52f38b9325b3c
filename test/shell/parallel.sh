#!/bin/bash
# TAP: the scoring pass with parallel workers (each scores one hash
# partition of the customers, the leader writes after them) gives the rows,
# history and counts of the serial pass.  Two databases get the same data
# and the same refreshes, one without workers, one with them; every scan is
# large enough for workers there.  Runs against the harness's cluster.
source "$(dirname "$0")/tap.inc"
echo "1..7"

serial="-c client_min_messages=error -c max_parallel_workers_per_gather=0"
# the least maintenance_work_mem: the rows the leader keeps for writing
# (about 1 MB here) go through a temporary file; no cost of parallelism:
# the statistics query aggregates in workers too
parallel="-c client_min_messages=debug1 -c max_parallel_workers_per_gather=2 -c min_parallel_table_scan_size=0"
parallel="$parallel -c maintenance_work_mem=1MB -c parallel_setup_cost=0 -c parallel_tuple_cost=0"
# psql as q does, with the options given (the debug lines go to stderr)
qo() { local o=$1; shift; PGOPTIONS="$o" psql -X -q -At -v ON_ERROR_STOP=1 "$@"; }

for db in st_serial st_parallel; do
	q -d postgres -c "DROP DATABASE IF EXISTS $db" -c "CREATE DATABASE $db" >/dev/null
	q -d $db -v customers=3000 -f test/gen/crm.sql >/dev/null
	q -d $db -c "CREATE EXTENSION segtier" -c "SELECT segtier.create_model('m', 'crm.orders', 'customer_id', 'ordered_at',
		'amount', '{\"as_of\": \"2025-01-01 00:00+00\", \"time_zone\": \"UTC\", \"customers_table\": \"crm.customers\",
		 \"predict\": true, \"clusters\": 3, \"hysteresis_runs\": 2}')" >/dev/null
done

# the same refreshes in both: a first one (every row new), one a day later
# after new orders, a removed buyer, a new prospect and an override, one
# with nothing changed, one full, three more full ones
steps=(
	"SELECT segtier.refresh('m')"
	"SELECT segtier.alter_model('m', '{\"as_of\": \"2025-01-02 00:00+00\"}');
	 INSERT INTO crm.orders (customer_id, ordered_at, amount)
		SELECT customer_id, '2025-01-01 12:00+00', 40 + customer_id % 700 FROM crm.customers WHERE customer_id % 37 = 0;
	 DELETE FROM crm.orders WHERE customer_id = 60; DELETE FROM crm.customers WHERE customer_id = 60;
	 INSERT INTO crm.customers (customer_id, name, signed_up) VALUES (999999, 'prospect', '2024-12-31');
	 SELECT segtier.set_override('m', '3', 'pyramid:vip', 'key account');
	 SELECT segtier.refresh('m')"
	"SELECT segtier.refresh('m')"
	"SELECT segtier.alter_model('m', '{\"as_of\": \"2025-01-09 00:00+00\"}'); SELECT segtier.refresh('m', true)"
	# workers read the rows in another order each time: the statistics must not care
	"SELECT segtier.refresh('m', true); SELECT segtier.refresh('m', true); SELECT segtier.refresh('m', true)"
)
log=$(mktemp /tmp/segtier-parallel.XXXXXX)
for i in "${!steps[@]}"; do
	qo "$serial" -d st_serial -c "${steps[$i]}" >/dev/null
	# the second step with one worker of two: the leader scores the other partition
	extra=$([ "$i" = 1 ] && echo "-c max_parallel_workers=1")
	qo "$parallel $extra" -d st_parallel -c "${steps[$i]}" >/dev/null 2>>"$log"
done

[ "$(grep "segtier._rescore: " "$log" | sed 's/.*_rescore: //' | tr '\n' '|')" = "2 of 2 parallel workers launched|1 of 2 parallel workers launched|2 of 2 parallel workers launched|$(printf '2 of 2 parallel workers launched|%.0s' 1 2 3)" ]
ok $? "the refreshes that score everybody did so with workers (one with a single worker launched), the incremental one alone"

same() {
	[ "$(q -d st_serial -c "$1")" = "$(q -d st_parallel -c "$1")" ] && [ -n "$(q -d st_serial -c "$1")" ]
}
same "SELECT md5(string_agg(t::text, '|' ORDER BY customer)) FROM (SELECT customer, first_purchase, last_purchase,
	recency_days, frequency, monetary, value, rfm, rfm_segment, value_class, pyramid, lifecycle, churn_risk, churn_reason,
	p_alive, expected_purchases, clv, cluster, cluster_label, held, overridden, hold, run_id FROM segtier_data.m_tiers) t"
ok $? "every tiers column of every customer is the serial pass's, down to the last digit and the run that wrote it"
same "SELECT md5(string_agg(format('%s %s %s %s %s %s %s', customer, scheme, from_tier, to_tier, run_id, reason, changed_by),
	'|' ORDER BY customer, scheme, run_id)) FROM segtier.tier_history"
ok $? "the history is the serial pass's"
same "SELECT string_agg(format('%s %s %s %s %s', run_id, full_refresh, customers, changed, params - 'capture_targets'), '|' ORDER BY run_id)
	FROM segtier.refresh_runs"
ok $? "and so are the runs' counts and statistics (cut points, means, fits, standardization, centroids), to the last digit"
[ "$(q -d st_parallel -c "SELECT string_agg(DISTINCT split_part(reason, ':', 1), ', ') FROM segtier.tier_history")" = \
	"customer removed, hysteresis hold, hysteresis release, new customer, override, score" ]
ok $? "the refreshes added, removed, held, released, overrode and rescored customers"

# a worker's error is the refresh's, with its SQLSTATE, and writes nothing
q -d st_parallel -c "UPDATE segtier_data.m_tiers SET hold = '{\"pyramid\": {\"runs\": 2147483647, \"since\": \"2025-01-01T00:00:00+00:00\"}}',
	held = '{pyramid}' WHERE customer = (SELECT min(customer) FROM segtier_data.m_tiers)" >/dev/null
before=$(q -d st_parallel -c "SELECT md5(string_agg(t::text, '|' ORDER BY customer)) FROM segtier_data.m_tiers t")
err=$(qo "$parallel -c max_parallel_workers_per_gather=2" -d st_parallel -v VERBOSITY=verbose \
	-c "SELECT segtier.refresh('m', true)" 2>&1 >/dev/null)
echo "$err" | grep -q "ERROR:  22003: hysteresis run count of column pyramid is out of range" &&
	echo "$err" | grep -q "segtier._rescore: 2 of 2 parallel workers launched"
ok $? "a worker's error fails the refresh with its SQLSTATE${err:+ ($(echo "$err" | grep ERROR | head -1))}"
[ "$(q -d st_parallel -c "SELECT md5(string_agg(t::text, '|' ORDER BY customer)) FROM segtier_data.m_tiers t")" = "$before" ]
ok $? "and leaves the tiers as they were"

rm -f "$log"
for db in st_serial st_parallel; do q -d postgres -c "DROP DATABASE $db" >/dev/null; done
exit $failed
