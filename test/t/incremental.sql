BEGIN;
SET search_path = public, segtier;
SELECT plan(28);

-- Two models on one source: "inc" refreshes from captured changes, "ful"
-- rescans every time.  With statistics recomputed every run
-- (statistics_interval 0), their tiers must agree after every kind of change.
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
	  "predict": true, "penalizer": 0.001, "clusters": 3, "statistics_interval": "0"}')
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
-- a customer with transactions after the as-of time buys again before it:
-- queued and after the as-of time, rescored (and counted) once
INSERT INTO tx SELECT cust, '2025-06-05 00:00+00', 10 FROM tx WHERE ts > '2025-06-10 00:00+00' ORDER BY cust LIMIT 1;
SELECT is(pg_temp.models_agree('2025-06-25 00:00+00'), 0::bigint, 'as-of moved forward within the month');
SELECT is((SELECT (params->>'incremental_customers')::bigint FROM refresh_runs WHERE model = 'inc'
		   ORDER BY run_id DESC LIMIT 1),
	(SELECT count(DISTINCT cust) FROM tx WHERE ts > '2025-06-10 00:00+00'),
	'incremental_customers: the customers with later transactions, the queued one among them once');
SELECT is(pg_temp.models_agree('2025-08-02 00:00+00'), 0::bigint, 'as-of moved into a later month');

TRUNCATE tx;
INSERT INTO tx SELECT 1 + (random() * 100)::int, '2025-01-01 00:00+00'::timestamptz + random() * interval '200 days',
	round((random() * 100)::numeric, 2) FROM generate_series(1, 500);
SELECT is(pg_temp.models_agree('2025-08-02 00:00+00'), 0::bigint, 'after TRUNCATE and new data');
SELECT is((SELECT full_refresh FROM refresh_runs WHERE model = 'inc' ORDER BY run_id DESC LIMIT 1), true,
	'TRUNCATE made the inc model rescan');

-- Kept statistics (the default statistics_interval, 1 day): an incremental
-- run scores only the changed customers, against the statistics of the run
-- that computed them.  Reference: every stored row equals what the SQL
-- scoring functions give with the statistics in the run's params.
SELECT create_model('kept', 'tx', 'cust', 'ts', 'amount',
	'{"time_zone": "UTC", "predict": true, "penalizer": 0.001, "clusters": 3, "as_of": "2025-08-02 00:00+00"}');
CREATE FUNCTION pg_temp.off_reference(model text) RETURNS bigint LANGUAGE sql AS $$
	WITH p AS (
		SELECT r.params, r.as_of,
			   (SELECT array_agg(segtier._jsonb_floats(c->'centroid') ORDER BY (c->>'cluster')::int)
				FROM jsonb_array_elements(r.params->'clusters') c) AS centroids,
			   segtier._jsonb_floats(r.params->'stdz') AS z
		FROM segtier.refresh_runs r WHERE r.model = $1 ORDER BY r.run_id DESC LIMIT 1
	), f AS (
		SELECT s.customer, date_part('epoch', p.as_of - s.last_purchase) / 86400 AS rec,
			   s.purchase_days::float8 AS freq, s.total_amount AS mon, (s.purchase_days - 1)::float8 AS x,
			   floor(date_part('epoch', s.last_purchase - s.first_purchase) / 86400) AS t_x,
			   floor(date_part('epoch', p.as_of - s.first_purchase) / 86400) AS t,
			   (s.repeat_amount / nullif(s.purchase_days - 1, 0))::float8 AS mean_repeat
		FROM segtier_data.kept_summary s, p
	)
	SELECT count(*) FROM f JOIN segtier_data.kept_tiers k USING (customer), p
	WHERE k.rfm IS DISTINCT FROM segtier.rfm(segtier.score(f.rec, segtier._jsonb_floats(p.params->'recency_cuts'), false),
											  segtier.score(f.freq, segtier._jsonb_floats(p.params->'frequency_cuts')),
											  CASE WHEN f.mon > 0 THEN segtier.score(f.mon::float8, segtier._jsonb_floats(p.params->'monetary_cuts')) ELSE 1 END,
											  (p.params->'scoring_options'->>'rfm_bins')::int)
	   OR k.value_class IS DISTINCT FROM (segtier._levels('value'))[
			CASE WHEN f.mon > 0 THEN segtier.score(f.mon::float8, segtier._jsonb_floats(p.params->'value_cuts')) ELSE 1 END]
	   OR k.pyramid IS DISTINCT FROM (segtier._levels('pyramid'))[
			CASE WHEN f.mon > 0 THEN segtier.score(f.mon::float8, segtier._jsonb_floats(p.params->'pyramid_cuts')) ELSE 1 END]
	   OR k.p_alive IS DISTINCT FROM segtier.p_alive(jsonb_populate_record(NULL::segtier.bgnbd, p.params->'bgnbd'), f.x, f.t_x, f.t)
	   OR k.expected_purchases IS DISTINCT FROM segtier.expected_purchases(jsonb_populate_record(NULL::segtier.bgnbd, p.params->'bgnbd'),
			(p.params->'scoring_options'->>'horizon_days')::float8, f.x, f.t_x, f.t)
	   OR k.clv IS DISTINCT FROM CASE WHEN f.x > 0 AND NOT f.mean_repeat > 0 THEN 0 ELSE segtier.clv(
			jsonb_populate_record(NULL::segtier.bgnbd, p.params->'bgnbd'),
			jsonb_populate_record(NULL::segtier.gamma_gamma, p.params->'gamma_gamma'), f.x, f.t_x, f.t, coalesce(f.mean_repeat, 0),
			((p.params->'scoring_options'->>'horizon_days')::int / 30.0)::float8,
			(p.params->'scoring_options'->>'discount_rate')::float8) END
	   OR k.cluster IS DISTINCT FROM segtier.nearest_centroid(
			ARRAY[(ln(1 + f.rec) - p.z[1]) / p.z[2], (ln(1 + f.freq) - p.z[3]) / p.z[4],
				  (ln(1 + greatest(f.mon, 0)::float8) - p.z[5]) / p.z[6]], p.centroids)
$$;
SELECT refresh('kept');
CREATE TEMP TABLE kept_first AS SELECT max(run_id) AS run_id FROM refresh_runs WHERE model = 'kept';
INSERT INTO tx SELECT c, '2025-08-01 00:00+00', 1000 FROM generate_series(1, 100, 10) c;
SELECT refresh('kept');
SELECT is((SELECT (params->>'statistics_run')::bigint FROM refresh_runs WHERE model = 'kept' ORDER BY run_id DESC LIMIT 1),
	(SELECT run_id FROM kept_first), 'an incremental run keeps the statistics of the full run');
SELECT is((SELECT array_agg(customer ORDER BY customer) FROM segtier_data.kept_tiers
		   WHERE run_id > (SELECT run_id FROM kept_first)),
	ARRAY[1, 11, 21, 31, 41, 51, 61, 71, 81, 91], 'it wrote the changed customers only');
SELECT is(pg_temp.off_reference('kept'), 0::bigint, 'every row is scored against the kept statistics');
SELECT isnt((SELECT rfm::text FROM segtier_data.kept_tiers WHERE customer = 1),
	(SELECT rfm::text FROM segtier_data.ful_tiers WHERE customer = 1), 'which a full refresh would have moved');

SELECT alter_model('kept', '{"as_of": "2025-08-02 12:00+00"}');
SELECT refresh('kept');
SELECT ok((SELECT (params->>'statistics_run')::bigint = (SELECT run_id FROM kept_first) AND NOT full_refresh
		   FROM refresh_runs WHERE model = 'kept' ORDER BY run_id DESC LIMIT 1)
	AND pg_temp.off_reference('kept') = 0
	AND NOT EXISTS (SELECT 1 FROM segtier_data.kept_tiers WHERE run_id <= (SELECT run_id FROM kept_first) + 1),
	'the as-of time moved: everybody rescored (recency moved) against the same statistics');

SELECT alter_model('kept', '{"as_of": "2025-08-03 12:00+00"}');
SELECT refresh('kept');
SELECT ok((SELECT (params->>'statistics_run')::bigint = run_id AND NOT full_refresh
		   FROM refresh_runs WHERE model = 'kept' ORDER BY run_id DESC LIMIT 1),
	'a day later the statistics are recomputed, without a rescan');
SELECT alter_model('kept', '{"rfm_bins": 4}');
SELECT refresh('kept');
SELECT ok((SELECT (params->>'statistics_run')::bigint = run_id AND rfm_scale(
			   (SELECT rfm FROM segtier_data.kept_tiers WHERE customer = 1)) = 4
		   FROM refresh_runs WHERE model = 'kept' ORDER BY run_id DESC LIMIT 1),
	'a scoring option change recomputes them');
SELECT refresh('kept', full => true);
SELECT is(pg_temp.off_reference('kept'), 0::bigint, 'and so does a full refresh');

-- an override deleted behind segtier's back is undone by an incremental run
SELECT set_override('kept', '21', 'pyramid:vip', 'test');
SELECT refresh('kept');
DELETE FROM segtier.tier_override WHERE model = 'kept';
SELECT refresh('kept');
SELECT is((SELECT overridden::text || ' ' || (pyramid = (segtier._levels('pyramid'))[
			  CASE WHEN monetary > 0 THEN segtier.score(monetary::float8, segtier._jsonb_floats(
				  (SELECT params->'pyramid_cuts' FROM refresh_runs WHERE model = 'kept' ORDER BY run_id DESC LIMIT 1))) ELSE 1 END])::text
		   FROM segtier_data.kept_tiers WHERE customer = 21), '{} true',
	'a deleted override: back to the score on the next incremental run');
SELECT is((SELECT full_refresh FROM refresh_runs WHERE model = 'kept' ORDER BY run_id DESC LIMIT 1), false, 'which it was');
SELECT is(current_setting('enable_seqscan'), 'on', 'the planner settings an incremental run touches are restored');

-- statistics survive a session with few float digits
CREATE TEMP TABLE kept_before AS SELECT * FROM segtier_data.kept_tiers;
SET extra_float_digits = 0;
SELECT refresh('kept', full => true);
RESET extra_float_digits;
SELECT is((SELECT count(*) FROM (SELECT customer, rfm::text, value_class::text, pyramid::text, p_alive, clv, cluster
								 FROM kept_before
								 EXCEPT SELECT customer, rfm::text, value_class::text, pyramid::text, p_alive, clv, cluster
								 FROM segtier_data.kept_tiers) d), 0::bigint,
	'a refresh under extra_float_digits = 0 gives the same tiers and predictions');

-- the hash partitions the scoring pass's workers each score (segtier._in_part)
SELECT is((SELECT count(*) FROM generate_series(1, 2000) i
		   WHERE (SELECT count(*) FROM generate_series(0, 2) p WHERE segtier._in_part('Kunde ' || i, p, 3)) = 1),
	2000::bigint, 'every text id falls in exactly one of three partitions');
SELECT is((SELECT count(*) FROM generate_series(-1000, 1000) i
		   WHERE segtier._in_part(i::int, 1, 2) IS DISTINCT FROM segtier._in_part(i::bigint, 1, 2)), 0::bigint,
	'an integer id falls in the same partition as int and as bigint, as the join compares them');
SELECT is((SELECT count(*) FILTER (WHERE segtier._in_part(i, 0, 2)) BETWEEN 4700 AND 5300
		   FROM generate_series(1, 10000) i), true, 'two partitions take about half the ids each');
SELECT throws_ok($$SELECT segtier._in_part(1, 2, 2)$$, '22023', 'partition 2 of 2 does not exist',
	'a partition out of range is an error');

SELECT * FROM finish();
ROLLBACK;
