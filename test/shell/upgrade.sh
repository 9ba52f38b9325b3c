#!/bin/bash
# TAP: ALTER EXTENSION UPDATE along the chain of released versions gives the
# same extension as a fresh install, a model created under the first
# release keeps its tiers, runs and grants, and this library gives a
# database left at 0.5.0 a clear error, one left at 0.6.0 a serial scoring
# pass.  Runs against the harness's cluster.
source "$(dirname "$0")/tap.inc"
first=0.1.0
current=$(sed -n "s/^default_version = '\(.*\)'/\1/p" segtier.control)
echo "1..10"

for db in su_old su_new; do q -d postgres -c "DROP DATABASE IF EXISTS $db" >/dev/null; done
q -d postgres -c "CREATE DATABASE su_old" -c "CREATE DATABASE su_new"
q -d postgres -c "DROP ROLE IF EXISTS segtier_upgrade_admin" -c "CREATE ROLE segtier_upgrade_admin"

q -d su_old -v customers=400 -f test/gen/crm.sql >/dev/null
q -d su_old <<SQL >/dev/null
CREATE EXTENSION segtier VERSION '$first';
SELECT segtier.grant_admin('segtier_upgrade_admin');
SELECT segtier.create_model('crm', 'crm.orders', 'customer_id', 'ordered_at', 'amount',
	'{"as_of": "2025-01-01 00:00+00", "time_zone": "UTC", "customers_table": "crm.customers", "hysteresis_runs": 2,
	  "predict": true, "penalizer": 0.001, "clusters": 3}');
SELECT segtier.refresh('crm');
SELECT segtier.create_model('gone', 'crm.orders', 'customer_id', 'ordered_at', 'amount', '{"as_of": "2025-01-01 00:00+00"}');
SQL
# a model dropped and created again under its name (separate transactions)
gone_run=$(q -d su_old -c "SELECT segtier.refresh('gone')")
q -d su_old -c "SELECT segtier.drop_model('gone')" >/dev/null
q -d su_old -c "SELECT segtier.create_model('gone', 'crm.orders', 'customer_id', 'ordered_at', 'amount', '{\"as_of\": \"2025-01-01 00:00+00\"}')" >/dev/null
tiers() { q -d su_old -c "SELECT md5(string_agg(format('%s %s %s %s %s %s', customer, rfm, value_class, pyramid, lifecycle, cluster), '|' ORDER BY customer)) FROM segtier_data.crm_tiers"; }
before=$(tiers)
# this library no longer has 0.5.0's C function of the summaries: the
# symbol it keeps for 0.5.0's SQL raises an error saying what to do
q -d su_old -c "ALTER EXTENSION segtier UPDATE TO '0.5.0'" >/dev/null
err=$(q -d su_old -c "SELECT segtier.refresh('crm')" 2>&1)
ok "$([[ "$err" == *"segtier's library is newer than the extension in this database"* ]]; echo $?)" \
	"a database left at 0.5.0 gets a clear error from a refresh"
# 0.6.0's scoring query keeps no hash partition: its refresh scores without workers
q -d su_old -c "ALTER EXTENSION segtier UPDATE TO '0.6.0'" >/dev/null
err=$(PGOPTIONS="-c client_min_messages=debug1 -c min_parallel_table_scan_size=0 -c max_parallel_workers_per_gather=2" \
	psql -X -q -At -v ON_ERROR_STOP=1 -d su_old -c "SELECT segtier.refresh('crm', true)" 2>&1 >/dev/null)
st=$?
ok "$([ $st = 0 ] && [[ "$err" == *"segtier._summarize: 2 of 2 parallel workers launched"* ]] &&
	[[ "$err" != *"segtier._rescore:"* ]]; echo $?)" "a database left at 0.6.0 refreshes, scoring without workers"
q -d su_old -c "ALTER EXTENSION segtier UPDATE" >/dev/null
ok $? "ALTER EXTENSION segtier UPDATE from $first"
ok "$([ "$(q -d su_old -c "SELECT extversion FROM pg_extension WHERE extname = 'segtier'")" = "$current" ]; echo $?)" \
	"the update reaches $current"
q -d su_new -c "CREATE EXTENSION segtier" -c "SELECT segtier.grant_admin('segtier_upgrade_admin')" >/dev/null
diff <(q -d su_old -f test/shell/catalog.sql) <(q -d su_new -f test/shell/catalog.sql) > /tmp/segtier-upgrade.diff
ok $? "the updated extension equals a fresh install of $current (functions, types, relations, ACLs, comments, options)$(
	[ -s /tmp/segtier-upgrade.diff ] && echo ': '$(head -c 300 /tmp/segtier-upgrade.diff))"
q -d su_old -c "SELECT segtier.refresh('crm')" >/dev/null
ok $? "the model created under $first refreshes after the update"
ok "$([ "$(tiers)" = "$before" ]; echo $?)" "with the same tiers on the same data"
ok "$([ "$(q -d su_old -c "SELECT reloptions::text || ' ' || (to_regclass('segtier_data.crm_tiers_pending') IS NOT NULL)
	FROM pg_class WHERE oid = 'segtier_data.crm_tiers'::regclass")" = "{fillfactor=45} true" ]; echo $?)" \
	"its tiers table now leaves room for HOT updates and indexes the rows incremental runs rescore"
ok "$([ "$(q -d su_old -c "SELECT string_agg(name || '=' || since_run, ' ' ORDER BY name) FROM segtier.model")" = "crm=0 gone=$gone_run" ]; echo $?)" \
	"each model's since_run is the last run of its name from before it was created"
ok "$([ "$(q -d su_old -c "SELECT has_function_privilege('segtier_upgrade_admin', 'segtier._rescore(segtier._scoring, text)', 'EXECUTE')
	AND has_function_privilege('segtier_upgrade_admin', 'segtier._summarize(regclass, text, text, text, timestamptz, timestamptz[])', 'EXECUTE')")" = t ]; echo $?)" \
	"roles granted admin before keep every function a refresh needs"

for db in su_old su_new; do q -d postgres -c "DROP DATABASE $db" >/dev/null; done
q -d postgres -c "DROP ROLE segtier_upgrade_admin" >/dev/null
exit $failed
