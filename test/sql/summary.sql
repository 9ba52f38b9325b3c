-- purchase_summary: fixtures for each dirty-data rule, time zones, the state's
-- text form, parallel == serial, and agreement with plain SQL on generated data
SET search_path = public, segtier;
SET TimeZone = 'UTC';
SET DateStyle = 'ISO, YMD';

-- one customer, every rule: 2 NULL rows, a refund (not a purchase), a zero
-- purchase, two purchases on the first day (2024-03-01), a later day, and a
-- row after as_of (2024-03-05)
CREATE TABLE summary_fixture (customer int, ts timestamptz, amount numeric);
INSERT INTO summary_fixture VALUES
	(1, '2024-03-03 09:00+00', 7.25),
	(1, '2024-03-01 10:00+00', 10.50),
	(1, '2024-03-01 18:00+00', 2),
	(1, '2024-03-02 12:00+00', -4.10),
	(1, '2024-03-04 08:00+00', 0),
	(1, NULL, 99),
	(1, '2024-03-04 09:00+00', NULL),
	(1, '2024-03-06 00:00+00', 1000),
	(2, '2024-03-02 12:00+00', -5),
	(2, '2024-03-03 12:00+00', -1.5),
	(3, NULL, NULL);
SELECT customer, (purchase_summary(ts, amount, 'UTC', '2024-03-05')).*
FROM summary_fixture GROUP BY customer ORDER BY customer;
SELECT customer, (purchase_summary(ts, amount)).*
FROM summary_fixture GROUP BY customer ORDER BY customer;

-- the day boundary depends on the zone: 15:30 and 16:30 UTC on 2024-03-10 are
-- two days in Shanghai (23:30, 00:30) but one in New York (11:30, 12:30)
SELECT z, (s).purchase_days, (s).repeat_amount
FROM (SELECT z, purchase_summary(ts, amount, z) AS s
	  FROM (VALUES ('2024-03-10 15:30+00'::timestamptz, 1.0), ('2024-03-10 16:30+00', 2.0)) AS v(ts, amount),
		   (VALUES ('Asia/Shanghai'), ('America/New_York'), ('UTC')) AS zones(z)
	  GROUP BY z) AS x
ORDER BY z;
SET TimeZone = 'Asia/Shanghai';
SELECT (purchase_summary(ts, amount)).purchase_days AS session_zone_days
FROM (VALUES ('2024-03-10 15:30+00'::timestamptz, 1.0), ('2024-03-10 16:30+00', 2.0)) AS v(ts, amount);
SET TimeZone = 'UTC';

-- a single row, and no rows (NULL, no error)
SELECT purchase_summary('2024-01-01 00:00+00', 12.345);
SELECT purchase_summary(ts, amount) IS NULL AS empty_is_null FROM summary_fixture WHERE false;

-- the state type: text form and round trip
SELECT purchase_state_add(purchase_state_add(purchase_state_add(NULL, '2000-01-02 00:00+00', 1.5),
	'2000-01-01 12:00+00', 2), NULL, 3) AS state;
SELECT s::text = s::purchase_state::text AS round_trip, s
FROM (VALUES ('1;;;0;0;0;0;0;0;0;'),
			 ('1;43200000000;86400000000;2;1;0;0;3.5;0;2;0,1'),
			 ('1;0;0;1;0;2;3;0.000000000000000000000000000000000000000000001;-12.30;0.000000000000000000000000000000000000000000001;0'),
			 ('1;-100;100;3;0;0;0;123456789012345678901234567890123456789012.5;0;1;-1,0,1')) AS v(s);

-- parallel aggregation: Partial Aggregate, and the same result as serial
CREATE TABLE summary_par AS
SELECT i % 7 AS customer,
	   timestamptz '2023-01-01 00:00+00' + ((i * 7919) % 525600) * interval '1 minute' AS ts,
	   round(((i * 31) % 20000 - 1500) / 100.0, i % 3) AS amount
FROM generate_series(1, 20000) AS i;
ALTER TABLE summary_par SET (parallel_workers = 2);
ANALYZE summary_par;
SET parallel_setup_cost = 0;
SET parallel_tuple_cost = 0;
SET min_parallel_table_scan_size = 0;
SET max_parallel_workers_per_gather = 2;
EXPLAIN (COSTS OFF)
SELECT customer, purchase_summary(ts, amount, 'America/New_York') FROM summary_par GROUP BY customer;
CREATE TEMP TABLE summary_parallel AS
SELECT customer, purchase_summary(ts, amount, 'America/New_York') AS s FROM summary_par GROUP BY customer;
SET max_parallel_workers_per_gather = 0;
SELECT count(*) AS customers,
	   count(*) FILTER (WHERE p.s::text = q.s::text) AS identical
FROM summary_parallel p
JOIN (SELECT customer, purchase_summary(ts, amount, 'America/New_York') AS s
	  FROM summary_par GROUP BY customer) q USING (customer);
SELECT * FROM summary_parallel WHERE customer = 0;

-- plain SQL on generated data, in three zones and as of a time: every field equal
CREATE TABLE summary_gen AS
SELECT i % 53 AS customer,
	   CASE WHEN i % 101 = 0 THEN NULL
			ELSE timestamptz '2023-01-01 00:00+00' + ((i * 7919) % 700000) * interval '1 minute' END AS ts,
	   CASE WHEN i % 89 = 0 THEN NULL
			ELSE round(((i * 37) % 30000 - 2500) / 100.0, i % 4) END AS amount
FROM generate_series(1, 30000) AS i;
CREATE FUNCTION summary_ref(z text, as_of timestamptz)
RETURNS TABLE (customer int, s purchase_summary) LANGUAGE sql AS $$
	WITH rows AS (
		SELECT customer, ts, amount, (ts AT TIME ZONE z)::date AS day
		FROM summary_gen WHERE ts IS NOT NULL AND amount IS NOT NULL AND ts <= as_of),
	first_day AS (
		SELECT customer, min(day) FILTER (WHERE amount >= 0) AS day FROM rows GROUP BY customer)
	SELECT g.customer, ROW(
		min(r.ts) FILTER (WHERE r.amount >= 0),
		max(r.ts) FILTER (WHERE r.amount >= 0),
		count(*) FILTER (WHERE r.amount >= 0),
		count(DISTINCT r.day) FILTER (WHERE r.amount >= 0),
		coalesce(sum(r.amount), 0),
		coalesce(sum(r.amount) FILTER (WHERE r.amount >= 0 AND r.day > f.day), 0),
		coalesce(sum(r.amount) FILTER (WHERE r.amount < 0), 0),
		(SELECT count(*) FROM summary_gen n
		 WHERE n.customer = g.customer AND (n.ts IS NULL OR n.amount IS NULL)),
		count(*) FILTER (WHERE r.amount < 0),
		(SELECT count(*) FROM summary_gen n
		 WHERE n.customer = g.customer AND n.amount IS NOT NULL AND n.ts > as_of)
	)::purchase_summary
	FROM (SELECT DISTINCT customer FROM summary_gen) AS g
	LEFT JOIN rows r USING (customer) LEFT JOIN first_day f USING (customer)
	GROUP BY g.customer
$$;
SET TimeZone = 'America/New_York';
SELECT 'session' AS form, count(*) AS customers,
	   count(*) FILTER (WHERE a.s::text = r.s::text) AS identical
FROM (SELECT customer, purchase_summary(ts, amount) AS s FROM summary_gen GROUP BY customer) a
JOIN summary_ref('America/New_York', 'infinity') r USING (customer)
UNION ALL
SELECT 'Asia/Shanghai', count(*), count(*) FILTER (WHERE a.s::text = r.s::text)
FROM (SELECT customer, purchase_summary(ts, amount, 'Asia/Shanghai') AS s FROM summary_gen GROUP BY customer) a
JOIN summary_ref('Asia/Shanghai', 'infinity') r USING (customer)
UNION ALL
SELECT 'as_of', count(*), count(*) FILTER (WHERE a.s::text = r.s::text)
FROM (SELECT customer, purchase_summary(ts, amount, 'Europe/Berlin', '2023-11-01') AS s
	  FROM summary_gen GROUP BY customer) a
JOIN summary_ref('Europe/Berlin', '2023-11-01') r USING (customer);
-- the zones really disagree on this data
SELECT count(*) > 0 AS zones_differ
FROM (SELECT customer, purchase_summary(ts, amount, 'Asia/Shanghai') AS s FROM summary_gen GROUP BY customer) a
JOIN (SELECT customer, purchase_summary(ts, amount, 'America/New_York') AS s FROM summary_gen GROUP BY customer) b
	USING (customer)
WHERE (a.s).purchase_days <> (b.s).purchase_days OR (a.s).repeat_amount <> (b.s).repeat_amount;

DROP FUNCTION summary_ref(text, timestamptz);
DROP TABLE summary_fixture, summary_par, summary_gen;
