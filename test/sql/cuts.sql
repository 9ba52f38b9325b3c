-- the cuts aggregate: hand-computed fixtures, an independent check of the
-- documented rule in plain SQL, order independence, parallel == serial
SET search_path = public, segtier;

-- 1..100: every k*100/n is a boundary or between two; n = 8 puts 12.5, 37.5,
-- 62.5 and 87.5 exactly between two, and the lower one wins
SELECT n, cuts(g, n) FROM generate_series(1, 100) g, generate_series(2, 9) n
GROUP BY n ORDER BY n;

-- ties: {1,2,2,3} halves at 2, between boundaries 1 and 3 -> the lower, cut 1
SELECT cuts(v, 2) FROM unnest('{2,3,1,2}'::float8[]) v;
-- {1,1,2,2,2,3}, n = 3: ideal 2 and 4; boundary 2 exact, 4 moves to 5 -> {1,2}
SELECT cuts(v, 3) FROM unnest('{2,1,3,2,1,2}'::float8[]) v;
-- all equal, a single value, two values for five groups, no values, only NULLs
SELECT cuts(7, 5) AS all_equal FROM generate_series(1, 10);
SELECT cuts(v, 5) AS single, array_ndims(cuts(v, 5)) FROM (VALUES (42::float8)) t(v);
SELECT cuts(v, 5) AS two_values FROM (VALUES (2::float8), (1)) t(v);
SELECT cuts(v, 5) IS NULL AS empty FROM (VALUES (1::float8)) t(v) WHERE false;
SELECT cuts(v, 5) IS NULL AS only_nulls FROM (VALUES (NULL::float8), (NULL)) t(v);
SELECT cuts(v, 3) AS nulls_skipped FROM unnest('{NULL,3,1,NULL,2}'::float8[]) v;
-- a huge tie block: 90 zeros and 1..10; ideal 20, 40 go to 0, 60, 80 to 90
SELECT cuts(v, 5) AS skewed FROM (SELECT 0::float8 FROM generate_series(1, 90)
	UNION ALL SELECT g FROM generate_series(1, 10) g) t(v);
-- 50 zeros and 1..50: boundaries 0, 50, 60, 80 -> groups of 50, 10, 20, 20
WITH t(v) AS (SELECT 0::float8 FROM generate_series(1, 50)
	UNION ALL SELECT g FROM generate_series(1, 50) g),
c AS (SELECT cuts(v, 5) AS c FROM t)
SELECT c.c, score(v, c.c) AS score, count(*) FROM t, c GROUP BY 1, 2 ORDER BY 2;
-- infinities are ordinary values; -0 and 0 are one value, written 0
SELECT cuts(v, 3) FROM unnest('{Infinity,1,-Infinity,2,Infinity,-Infinity}'::float8[]) v;
SELECT cuts(v, 2) FROM unnest('{-0,0,1}'::float8[]) v;
SELECT cuts(v, 2) FROM unnest('{0,1,-0}'::float8[]) v;

-- The rule restated in plain SQL on generated data sets (skewed, or in pairs
-- and triples): a boundary
-- is the count of values below a distinct value (or N); for k = 1..n-1 take
-- the one nearest k*N/n (the lower on a tie), drop 0 and N.
CREATE TABLE cuts_data AS
SELECT s AS set, floor(((g * 7919 + s * 104729) % 1000) ^ s / (1000.0 ^ s) * (5 + 10 * s))::float8 AS v
FROM generate_series(1, 4) s, generate_series(1, 997 + s * 250) g
-- pairs and triples: many ideal boundaries fall exactly between two
UNION ALL SELECT 5, g / 2 FROM generate_series(0, 39) g
UNION ALL SELECT 6, g / 3 FROM generate_series(0, 29) g;
CREATE TABLE cuts_expected AS
WITH n AS (SELECT set, count(*) AS total FROM cuts_data GROUP BY set),
blocks AS (
	SELECT set, v, (sum(count(*)) OVER (PARTITION BY set ORDER BY v) - count(*))::bigint AS b
	FROM cuts_data GROUP BY set, v
	UNION ALL SELECT set, NULL, total FROM n),
chosen AS (
	SELECT DISTINCT n.set, g.n, (SELECT b FROM blocks
		WHERE blocks.set = n.set ORDER BY abs(k * n.total - g.n * b), b LIMIT 1) AS b
	FROM n, generate_series(2, 9) g(n), generate_series(1, 8) k WHERE k < g.n)
SELECT chosen.set, chosen.n,
	coalesce(array_agg((SELECT max(v) FROM blocks WHERE blocks.set = chosen.set AND blocks.b < chosen.b)
		ORDER BY chosen.b) FILTER (WHERE chosen.b > 0 AND chosen.b < total), '{}') AS cuts,
	array_agg(chosen.b ORDER BY chosen.b) FILTER (WHERE chosen.b > 0 AND chosen.b < total)
		|| total AS upper_bounds
FROM chosen JOIN n USING (set) GROUP BY chosen.set, chosen.n, total;
WITH got AS (SELECT set, n, cuts(v, n) AS cuts FROM cuts_data, generate_series(2, 9) n GROUP BY set, n),
sizes AS (
	SELECT got.set, got.n, score, count(*) AS size
	FROM got JOIN cuts_data d USING (set), LATERAL score(d.v, got.cuts) AS score
	GROUP BY 1, 2, 3)
SELECT e.set, e.n, got.cuts = e.cuts AS same_cuts,
	(SELECT array_agg(upper ORDER BY score) FROM (SELECT score, (sum(size) OVER (ORDER BY score))::bigint
		AS upper FROM sizes s WHERE s.set = e.set AND s.n = e.n) x) = e.upper_bounds AS same_sizes,
	(SELECT array_agg(score ORDER BY score) FROM sizes s WHERE s.set = e.set AND s.n = e.n)
		= (SELECT array_agg(i) FROM generate_series(1, cardinality(e.cuts) + 1) i) AS no_empty_group,
	got.cuts
FROM cuts_expected e JOIN got USING (set, n) ORDER BY 1, 2;

-- order independence and parallel == serial
SELECT (SELECT cuts(v, 7) FROM (SELECT v FROM cuts_data ORDER BY v) s)
	 = (SELECT cuts(v, 7) FROM (SELECT v FROM cuts_data ORDER BY -v) s) AS order_independent;
CREATE TABLE cuts_big AS SELECT ((g * 7919) % 100003)::float8 / 100 AS v FROM generate_series(1, 200000) g;
ALTER TABLE cuts_big SET (parallel_workers = 2);
ANALYZE cuts_big;
CREATE TABLE cuts_serial AS SELECT cuts(v, 9) AS c FROM cuts_big;
SET parallel_setup_cost = 0;
SET parallel_tuple_cost = 0;
SET min_parallel_table_scan_size = 0;
SET max_parallel_workers_per_gather = 2;
EXPLAIN (COSTS OFF) SELECT c = (SELECT c FROM cuts_serial) FROM (SELECT cuts(v, 9) AS c FROM cuts_big) p;
SELECT c AS parallel_cuts, c = (SELECT c FROM cuts_serial) AS same_as_serial
FROM (SELECT cuts(v, 9) AS c FROM cuts_big) p;
RESET ALL;
DROP TABLE cuts_data, cuts_expected, cuts_big, cuts_serial;
