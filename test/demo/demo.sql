-- make demo: segtier on a generated CRM data set.
\set QUIET on
\pset pager off
\pset footer off
\set ON_ERROR_STOP 1
SET client_min_messages = warning;
CREATE EXTENSION segtier;
SET search_path = public, segtier;
\set QUIET off

\echo
\echo '== The data: a seeded CRM (test/gen/crm.sql): 5000 buyers, 500 prospects, Pareto spend, Poisson timing, churn, 2 % refunds'
\set customers 5000
\set as_of '2025-01-01 00:00+00'
\set QUIET on
\ir ../gen/crm.sql
\set QUIET off
SELECT count(*) AS orders, count(DISTINCT customer_id) AS buyers, (SELECT count(*) FROM crm.customers) AS customers,
	   sum(amount) AS revenue, count(*) FILTER (WHERE amount < 0) AS refunds,
	   min(ordered_at)::date AS first_order, max(ordered_at)::date AS last_order
FROM crm.orders;

\echo
\echo '== Types: rfm scores and tiers'
SELECT '5-4-3'::rfm AS rfm, 'R2F5M5/7'::rfm AS rfm_scale_7, rfm_segment('543') AS rfm11,
	   rfm_segment('543', 'rfm11', 'zh') AS rfm11_zh, rfm_segment('155', 'rfm8', 'zh') AS rfm8_zh,
	   'pyramid:gold'::tier > 'pyramid:silver' AS gold_above_silver, tier_label('lifecycle:churned', 'zh') AS label;

\echo
\echo '== A model: register the orders table once (as of 2025-01-01 for a reproducible demo)'
SELECT create_model('crm', 'crm.orders', 'customer_id', 'ordered_at', 'amount',
	'{"as_of": "2025-01-01 00:00+00", "time_zone": "UTC", "customers_table": "crm.customers",
	  "predict": true, "penalizer": 0.001, "clusters": 4, "hysteresis_runs": 2}');
SELECT refresh('crm') AS run_id \gset
SELECT run_id, status, full_refresh, customers, changed, round(extract(epoch FROM finished - started)::numeric, 2) AS seconds
FROM refresh_runs WHERE run_id = :run_id;

\echo
\echo '== Current tiers (segtier.tiers(''crm'') = segtier_data.crm_tiers, keyed by the bigint customer id)'
SELECT customer, round(recency_days) AS recency, frequency, monetary, rfm, rfm_segment, value_class, pyramid,
	   lifecycle, churn_risk, round(p_alive::numeric, 3) AS p_alive, round(clv::numeric, 2) AS clv, cluster
FROM segtier_data.crm_tiers ORDER BY value DESC NULLS LAST LIMIT 8;

\echo
\echo '== The 20/80 check: value classes and pyramid (tier_summary)'
SELECT scheme, tier, customers, customer_share, value, value_share
FROM tier_summary WHERE model = 'crm' AND scheme <> 'lifecycle' ORDER BY scheme, tier DESC;

\echo
\echo '== RFM segments'
SELECT rfm_segment, count(*) AS customers, round(avg(recency_days)) AS avg_recency, round(avg(frequency), 1) AS avg_frequency,
	   round(avg(monetary), 2) AS avg_monetary
FROM segtier_data.crm_tiers WHERE rfm IS NOT NULL GROUP BY 1 ORDER BY avg(rfm_r(rfm) * 10 + rfm_f(rfm) + rfm_m(rfm)) DESC;

\echo
\echo '== Lifecycle stages and churn risk'
SELECT lifecycle, count(*) AS customers, count(*) FILTER (WHERE churn_risk) AS churn_risk,
	   round(avg(p_alive)::numeric, 3) AS avg_p_alive
FROM segtier_data.crm_tiers GROUP BY 1 ORDER BY 1;

\echo
\echo '== Predictive models fitted in the database (stored with the run)'
SELECT round((params->'bgnbd'->>'r')::numeric, 4) AS r, round((params->'bgnbd'->>'alpha')::numeric, 2) AS alpha,
	   round((params->'bgnbd'->>'a')::numeric, 4) AS a, round((params->'bgnbd'->>'b')::numeric, 4) AS b,
	   round((params->'gamma_gamma'->>'p')::numeric, 3) AS p, round((params->'gamma_gamma'->>'q')::numeric, 3) AS q,
	   round((params->'gamma_gamma'->>'v')::numeric, 3) AS v
FROM refresh_runs WHERE run_id = :run_id;
SELECT c->>'cluster' AS cluster, c->>'label' AS label,
	   (SELECT count(*) FROM segtier_data.crm_tiers t WHERE t.cluster = (c->>'cluster')::int) AS customers
FROM refresh_runs, jsonb_array_elements(params->'clusters') c WHERE run_id = :run_id;

\echo
\echo '== A month later: new orders arrive, a VIP is given an override, the model is refreshed incrementally'
INSERT INTO crm.orders (customer_id, ordered_at, amount)
SELECT customer_id, '2025-01-15 12:00+00', 400 FROM crm.customers WHERE customer_id % 50 = 7;
SELECT set_override('crm', '42', 'pyramid:vip', 'key account, agreed by sales', now() + interval '90 days');
SELECT alter_model('crm', '{"as_of": "2025-01-31 00:00+00"}');
SELECT refresh('crm') AS run_id \gset
SELECT run_id, status, full_refresh, customers, changed FROM refresh_runs WHERE run_id = :run_id;

\echo
\echo '== Transitions of that run (tier_transitions)'
SELECT scheme, from_tier, to_tier, customers FROM tier_transitions WHERE run_id = :run_id
ORDER BY scheme, customers DESC LIMIT 15;

\echo
\echo '== History of one customer (tier_history)'
SELECT customer, scheme, from_tier, to_tier, run_id, reason, changed_by FROM tier_history
WHERE model = 'crm' AND customer = '42' ORDER BY run_id, scheme;

\echo
\echo '== The same evening 1 % of the customers order again: scored against the kept statistics, only they are rewritten'
INSERT INTO crm.orders (customer_id, ordered_at, amount)
SELECT customer_id, '2025-01-30 18:00+00', 120 FROM crm.customers WHERE customer_id % 100 = 11;
SELECT refresh('crm') AS run_id \gset
SELECT r.run_id, r.full_refresh, r.params->>'statistics_run' AS statistics_of_run,
	   r.params->>'incremental_customers' AS changed_customers,
	   (SELECT count(*) FROM segtier_data.crm_tiers t WHERE t.run_id = r.run_id) AS rows_written,
	   r.changed AS tier_changes, round(extract(epoch FROM r.finished - r.started) * 1000) AS ms
FROM refresh_runs r WHERE r.run_id = :run_id;

\echo
\echo '== The background worker: switched on, the model due every 2 seconds; new orders arrive and nobody calls refresh()'
ALTER SYSTEM SET segtier.enabled = on;
SELECT pg_reload_conf();
SELECT alter_model('crm', '{"refresh_interval": "2 seconds", "as_of": "2025-02-15 00:00+00"}');
INSERT INTO crm.orders (customer_id, ordered_at, amount)
SELECT customer_id, '2025-02-10 12:00+00', 2500 FROM crm.customers WHERE customer_id % 97 = 3;
SELECT max(run_id) AS before_run FROM refresh_runs \gset
DO $$
BEGIN
	FOR i IN 1..300 LOOP  -- at most 60 s
		EXIT WHEN EXISTS (SELECT 1 FROM segtier.refresh_runs WHERE run_id > (SELECT max(run_id) FROM segtier.refresh_runs r
																			   WHERE r.started < statement_timestamp())
								 AND status = 'succeeded');
		PERFORM pg_sleep(0.2);
	END LOOP;
END $$;
SELECT run_id, status, full_refresh, customers, changed FROM refresh_runs WHERE run_id > :before_run ORDER BY run_id LIMIT 1;
SELECT database, state, current_model, last_run IS NOT NULL AS has_run FROM worker_status();
SELECT scheme, from_tier, to_tier, customers FROM tier_transitions
WHERE run_id = (SELECT min(run_id) FROM refresh_runs WHERE run_id > :before_run AND status = 'succeeded')
ORDER BY customers DESC LIMIT 8;
ALTER SYSTEM RESET segtier.enabled;
SELECT pg_reload_conf();
