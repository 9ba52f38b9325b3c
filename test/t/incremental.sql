BEGIN;
SET search_path = public, segtier;
SELECT plan(11);

-- Two models on one source: "inc" refreshes from captured changes, "ful"
-- rescans every time.  After every kind of change their tiers must agree.
SELECT setseed(0.17);
CREATE TABLE tx (cust int, ts timestamptz, amount numeric(10, 2));
INSERT INTO tx
SELECT 1 + (random() * 300)::int, '2024-01-01 00:00+00'::timestamptz + random() * interval '540 days',
	   CASE WHEN random() < 0.03 THEN -round((random() * 50)::numeric, 2) ELSE round((random() * 200)::numeric, 2) END
FROM generate_series(1, 3000);
CREATE TABLE people AS SELECT g AS id FROM generate_series(1, 330) g;

CREATE FUNCTION pg_temp.models_agree(as_of text) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
	n bigint;
BEGIN
	PERFORM segtier.alter_model('inc', jsonb_build_object('as_of', as_of));
	PERFORM segtier.alter_model('ful', jsonb_build_object('as_of', as_of));
	PERFORM segtier.refresh('inc');
	PERFORM segtier.refresh('ful', full => true);
	SELECT count(*) INTO n FROM (
		(SELECT customer, first_purchase, last_purchase, recency_days, frequency, monetary, value, rfm::text,
				rfm_segment, value_class::text, pyramid::text, lifecycle::text, churn_risk, churn_reason,
				p_alive, expected_purchases, clv, cluster, cluster_label FROM segtier_data.inc_tiers
		 EXCEPT ALL
		 SELECT customer, first_purchase, last_purchase, recency_days, frequency, monetary, value, rfm::text,
				rfm_segment, value_class::text, pyramid::text, lifecycle::text, churn_risk, churn_reason,
				p_alive, expected_purchases, clv, cluster, cluster_label FROM segtier_data.ful_tiers)
		UNION ALL
		(SELECT customer, first_purchase, last_purchase, recency_days, frequency, monetary, value, rfm::text,
				rfm_segment, value_class::text, pyramid::text, lifecycle::text, churn_risk, churn_reason,
				p_alive, expected_purchases, clv, cluster, cluster_label FROM segtier_data.ful_tiers
		 EXCEPT ALL
		 SELECT customer, first_purchase, last_purchase, recency_days, frequency, monetary, value, rfm::text,
				rfm_segment, value_class::text, pyramid::text, lifecycle::text, churn_risk, churn_reason,
				p_alive, expected_purchases, clv, cluster, cluster_label FROM segtier_data.inc_tiers)) d;
	RETURN n;
END $$;

SELECT create_model(name, 'tx', 'cust', 'ts', 'amount',
	'{"time_zone": "Asia/Shanghai", "customers_table": "people", "customers_key": "id",
	  "predict": true, "penalizer": 0.001, "clusters": 3}')
FROM (VALUES ('inc'), ('ful')) m(name);

SELECT is(pg_temp.models_agree('2025-06-10 00:00+00'), 0::bigint, 'first run: both full');
SELECT is((SELECT count(*) FROM segtier_data.inc_tiers), 330::bigint, 'every customer, prospects too');

INSERT INTO tx SELECT 1 + (random() * 350)::int, '2025-06-01 00:00+00'::timestamptz + random() * interval '8 days',
	round((random() * 300)::numeric, 2) FROM generate_series(1, 60);
SELECT is(pg_temp.models_agree('2025-06-10 00:00+00'), 0::bigint, 'after inserts (new customers among them)');
SELECT is((SELECT full_refresh FROM refresh_runs WHERE model = 'inc' ORDER BY run_id DESC LIMIT 1), false,
	'the inc model refreshed incrementally');

UPDATE tx SET amount = amount * 2 WHERE cust % 7 = 0;
UPDATE tx SET cust = cust + 1 WHERE cust % 11 = 0 AND ts < '2024-06-01';
SELECT is(pg_temp.models_agree('2025-06-10 00:00+00'), 0::bigint, 'after updates of amounts and of customer ids');

DELETE FROM tx WHERE cust % 13 = 0;
DELETE FROM tx WHERE cust = 5;
SELECT is(pg_temp.models_agree('2025-06-10 00:00+00'), 0::bigint, 'after deletes (whole customers among them)');

-- rows after the as-of time, then the as-of time moving past them
INSERT INTO tx SELECT 1 + (random() * 300)::int, '2025-06-12 00:00+00'::timestamptz + random() * interval '10 days',
	round((random() * 300)::numeric, 2) FROM generate_series(1, 40);
SELECT is(pg_temp.models_agree('2025-06-10 00:00+00'), 0::bigint, 'with transactions after the as-of time');
SELECT is(pg_temp.models_agree('2025-06-25 00:00+00'), 0::bigint, 'as-of moved forward within the month');
SELECT is(pg_temp.models_agree('2025-08-02 00:00+00'), 0::bigint, 'as-of moved into a later month');

TRUNCATE tx;
INSERT INTO tx SELECT 1 + (random() * 100)::int, '2025-01-01 00:00+00'::timestamptz + random() * interval '200 days',
	round((random() * 100)::numeric, 2) FROM generate_series(1, 500);
SELECT is(pg_temp.models_agree('2025-08-02 00:00+00'), 0::bigint, 'after TRUNCATE and new data');
SELECT is((SELECT full_refresh FROM refresh_runs WHERE model = 'inc' ORDER BY run_id DESC LIMIT 1), true,
	'TRUNCATE made the inc model rescan');

SELECT * FROM finish();
ROLLBACK;
