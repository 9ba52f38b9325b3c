#!/bin/bash
# TAP: what needs real sessions and whole databases: pg_dump/pg_restore of
# configuration, tiers and history; readers and writers during a refresh;
# a second refresh waiting; NOTIFY.  Runs against the harness's cluster.
source "$(dirname "$0")/tap.inc"
echo "1..14"

for db in st_dump st_restore st_conc; do q -d postgres -c "DROP DATABASE IF EXISTS $db" >/dev/null; done
q -d postgres -c "CREATE DATABASE st_dump" -c "CREATE DATABASE st_restore" -c "CREATE DATABASE st_conc"

# --- dump and restore -------------------------------------------------------
q -d st_dump -v customers=300 -f test/gen/crm.sql >/dev/null
q -d st_dump <<'SQL' >/dev/null
CREATE EXTENSION segtier;
INSERT INTO segtier.tier_scheme (name, description) VALUES ('membership', 'card');
INSERT INTO segtier.tier_level (scheme_id, name, rank, label_en)
SELECT scheme_id, l, r, e FROM segtier.tier_scheme, (VALUES ('普通', 10, 'Regular'), ('金卡', 30, 'Gold')) v(l, r, e)
WHERE name = 'membership';
CREATE TABLE public.cards (customer_id bigint PRIMARY KEY, card segtier.tier);
INSERT INTO public.cards VALUES (1, 'membership:金卡'), (2, 'membership:普通');
SELECT segtier.create_model('crm', 'crm.orders', 'customer_id', 'ordered_at', 'amount',
	'{"as_of": "2025-01-01 00:00+00", "time_zone": "UTC", "customers_table": "crm.customers", "hysteresis_runs": 2}');
SELECT segtier.refresh('crm');
INSERT INTO crm.orders (customer_id, ordered_at, amount) VALUES (7, '2024-12-30', 999);
SELECT segtier.set_override('crm', '3', 'pyramid:vip', 'key account');
SELECT segtier.refresh('crm');
-- a model whose options name the user-defined scheme (its data is dumped after the models')
SELECT segtier.create_model('member', 'crm.orders', 'customer_id', 'ordered_at', 'amount',
	'{"as_of": "2025-01-01 00:00+00", "time_zone": "UTC", "value_scheme": "membership", "value_cutoffs": [0.8]}');
SELECT segtier.refresh('member');
-- built-in levels renamed, relabelled and added to (the tiers hold the new name)
UPDATE segtier.tier_level SET name = 'platinum', label_en = 'Platinum' WHERE name = 'vip';
UPDATE segtier.tier_level SET label_zh = '金卡会员' WHERE name = 'gold';
INSERT INTO segtier.tier_level (scheme_id, name, rank, label_en)
SELECT scheme_id, 'diamond', 5, 'Diamond' FROM segtier.tier_scheme WHERE name = 'pyramid';
SELECT segtier.alter_model(m, '{"pyramid_shares": [0.01, 0.05, 0.2, 0.5]}') FROM unnest(ARRAY['crm', 'member']) m;
SELECT segtier.refresh('crm');
-- a model whose amount column was renamed since: its row must not take the others down
CREATE TABLE public.renamed (c int, t timestamptz, a numeric);
SELECT segtier.create_model('renamed', 'public.renamed', 'c', 't', 'a', '{"capture": false, "pyramid_shares": [0.01, 0.05, 0.2, 0.5]}');
ALTER TABLE public.renamed RENAME COLUMN a TO amount;
SQL
snapshot() {
	q -d "$1" -c "SELECT md5(string_agg(x, '|' ORDER BY x)) FROM (
		SELECT format('%s %s %s %s %s %s', name, source::text, customer_column, options, owner, since_run) x FROM segtier.model
		UNION ALL SELECT format('%s %s %s %s %s %s', run_id, model, status, full_refresh, customers, changed) FROM segtier.refresh_runs
		UNION ALL SELECT format('%s %s %s %s %s %s %s', model, customer, scheme, from_tier, to_tier, run_id, reason) FROM segtier.tier_history
		UNION ALL SELECT format('%s %s %s %s', model, customer, tier, reason) FROM segtier.tier_override
		UNION ALL SELECT format('%s %s %s %s %s', customer, rfm, value_class, pyramid, lifecycle) FROM segtier_data.crm_tiers
		UNION ALL SELECT format('%s %s %s %s %s', s.name, l.name, l.rank, l.label_en, l.label_zh)
			FROM segtier.tier_level l JOIN segtier.tier_scheme s USING (scheme_id)
		${2:-}) t"
}
dump=$(mktemp /tmp/segtier-dump.XXXXXX)
# user tables holding user-defined tiers are set aside for the second round
q -d st_dump -c "ALTER TABLE public.cards RENAME TO cards_later" >/dev/null
before=$(snapshot st_dump)
pg_dump -Fc -T public.cards_later -d st_dump -f "$dump"
ok $? "pg_dump of a database with a model and a user-defined tier scheme"
pg_restore -d st_restore "$dump" 2>/tmp/segtier-restore.err
ok $? "plain pg_restore into a fresh database$( [ -s /tmp/segtier-restore.err ] && echo ': '$(head -c 300 /tmp/segtier-restore.err))"
after=$(snapshot st_restore)
[ -n "$before" ] && [ "$before" = "$after" ]
ok $? "models (with since_run, a broken one too), runs, history, overrides, tiers, user schemes and changed built-in levels survive the round trip"
# user tables with user-defined tiers: segtier's catalog data first (README)
q -d st_dump -c "ALTER TABLE public.cards_later RENAME TO cards" >/dev/null
q -d postgres -c "DROP DATABASE st_restore" -c "CREATE DATABASE st_restore" >/dev/null
cards="UNION ALL SELECT format('%s %s', customer_id, card) FROM public.cards"
before=$(snapshot st_dump "$cards")
pg_dump -Fc -d st_dump -f "$dump"
pg_restore -d st_restore --section=pre-data "$dump" &&
	pg_restore -d st_restore --section=data -n segtier "$dump" &&
	pg_restore -d st_restore --section=data -N segtier "$dump" &&
	pg_restore -d st_restore --section=post-data "$dump"
after=$(snapshot st_restore "$cards")
[ -n "$before" ] && [ "$before" = "$after" ]
ok $? "with segtier's data restored first, user tables holding user-defined tiers survive too"
rm -f "$dump" /tmp/segtier-restore.err
q -d st_restore -c "INSERT INTO crm.orders (customer_id, ordered_at, amount) VALUES (8, '2024-12-31', 5000)" >/dev/null
run=$(q -d st_restore -c "SELECT segtier.refresh('crm')")
[ "$(q -d st_restore -c "SELECT full_refresh || ' ' || status FROM segtier.refresh_runs WHERE run_id = $run")" = "false succeeded" ]
ok $? "the restored model refreshes incrementally (capture triggers restored, the same tables by name)"
[ "$(q -d st_restore -c "SELECT segtier.refresh('renamed')" 2>&1 | head -1)" = 'ERROR:  amount column "a" does not exist in public.renamed' ]
ok $? "the restored broken model's refresh says what is wrong"
[ "$(q -d st_restore -c "SELECT count(*) > 0 FROM segtier.tier_history WHERE run_id = $run AND customer = '8'")" = "t" ]
ok $? "and records the restored customer's changes"
[ "$(q -d st_restore -c "SELECT segtier.refresh('member') > 0" -c "SELECT string_agg(DISTINCT value_class::text, ',' ORDER BY value_class::text) FROM segtier_data.member_tiers")" = "$(printf 't\nmembership:普通,membership:金卡')" ]
ok $? "the restored model on the user-defined scheme refreshes into its levels"

# --- concurrency -------------------------------------------------------------
q -d st_conc -v customers=2000 -f test/gen/crm.sql >/dev/null
q -d st_conc -c "CREATE EXTENSION segtier" \
	-c "SELECT segtier.create_model('c', 'crm.orders', 'customer_id', 'ordered_at', 'amount', '{\"as_of\": \"2025-01-01 00:00+00\"}')" \
	-c "SELECT segtier.refresh('c')" >/dev/null
# session A: a refresh whose transaction stays open until we release it
q -d st_conc -c "SELECT pg_advisory_lock(4711)" -c "SELECT pg_sleep(30)" >/dev/null 2>&1 &
holder=$!
q -d st_conc -c "INSERT INTO crm.orders (customer_id, ordered_at, amount) SELECT customer_id, '2024-12-31', 3000 FROM crm.customers WHERE customer_id <= 40" >/dev/null
( q -d st_conc -c "BEGIN" -c "SELECT segtier.refresh('c')" -c "SELECT pg_advisory_lock(4711)" -c "COMMIT" >/dev/null ) &
refresher=$!
wait_for() { for _ in $(seq 1 300); do [ "$(q -d st_conc -c "$1")" = t ] && return 0; sleep 0.1; done; return 1; }
wait_for "SELECT count(*) = 1 FROM pg_locks WHERE locktype = 'advisory' AND objid = 4711 AND NOT granted"
ok $? "a refresh is in progress, its transaction open"
q -d st_conc -c "SET lock_timeout = '2s'" -c "SELECT count(*) FROM segtier_data.c_tiers" >/dev/null
ok $? "readers of the tiers do not wait for it"
q -d st_conc -c "SET lock_timeout = '2s'" -c "INSERT INTO crm.orders (customer_id, ordered_at, amount) VALUES (41, '2024-12-31', 3000)" >/dev/null
ok $? "writers of the source do not wait for it"
[ "$(q -d st_conc -c "SELECT count(*) FROM segtier.tier_history WHERE run_id = (SELECT max(run_id) FROM segtier.refresh_runs)")" = "$(q -d st_conc -c "SELECT count(*) FROM segtier.tier_history WHERE run_id = (SELECT max(run_id) FROM segtier.refresh_runs WHERE status = 'succeeded')")" ]
( q -d st_conc -c "SELECT segtier.refresh('c')" >/dev/null ) &
second=$!
wait_for "SELECT count(*) >= 1 FROM pg_locks WHERE locktype = 'advisory' AND classid = 1936024946 AND NOT granted"
ok $? "a second refresh of the model waits for the first"
kill $holder 2>/dev/null; q -d st_conc -c "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query LIKE '%pg_sleep(30)%' AND pid <> pg_backend_pid()" >/dev/null
wait $refresher; wait $second
[ "$(q -d st_conc -c "SELECT count(*) FROM segtier_data.c_tiers WHERE customer <= 41 AND monetary >= 3000")" = 41 ]
ok $? "after both, every concurrent write is in the tiers"

# --- notifications ------------------------------------------------------------
out=$(q -d st_conc -c "LISTEN segtier" -c "SELECT segtier.refresh('c')" 2>&1)
echo "$out" | grep -q 'Asynchronous notification "segtier" with payload "{"model": "c", "run_id": [0-9]*, "status": "succeeded", "changed": [0-9]*, "customers": [0-9]*}"'
ok $? "NOTIFY segtier with model, run id, status, changed and customers"

for db in st_dump st_restore st_conc; do q -d postgres -c "DROP DATABASE IF EXISTS $db WITH (FORCE)" >/dev/null; done
exit $failed
