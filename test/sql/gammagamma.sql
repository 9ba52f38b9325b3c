-- Gamma-Gamma: expected spend, the fit, its state type, CLV, serial = parallel
SET search_path = public, segtier;
SET extra_float_digits = 0;

-- Expected spend at the published CDNOW parameters (p 6.25, q 3.74, v 15.44)
-- for the first 10 customers of cdnow_customers_summary_with_transactions:
-- 24.65, 18.91, 35.17, 35.17, 35.17, 71.46, 18.91, 35.17, 27.28, 35.17 (the
-- README's values, tol 0.1; the CSV's 2 dp zbar moves some by 0.01); x = 0 gives the population mean p v / (q - 1).
SELECT id, x, zbar, round(expected_spend((6.25, 3.74, 15.44, 0, 0, 0), x, zbar)::numeric, 2) AS spend
FROM (VALUES (1, 2, 22.35), (2, 1, 11.77), (3, 0, 0), (4, 0, 0), (5, 0, 0), (6, 7, 73.74),
			 (7, 1, 11.77), (8, 0, 0), (9, 2, 25.55), (10, 0, 0)) AS v(id, x, zbar);
SELECT round(expected_spend((6.25, 3.74, 15.44, 0, 0, 0), 0, 0)::numeric, 2) AS population_mean,
	   round((6.25 * 15.44 / 2.74)::numeric, 2) AS p_v_over_q_1;

-- Three customers cannot identify three parameters: the fit warns and still
-- returns, counting fitted and skipped rows (x = 0 or m <= 0) and ignoring
-- NULL rows.  Only skipped or NULL rows, or none: NULL.
SELECT customers, skipped FROM (
	SELECT (gamma_gamma_fit(x, m)).*
	FROM (VALUES (1, 10), (2, 20), (3, 15), (0, 5), (2, 0), (2, -3), (NULL, 4), (4, NULL)) AS v(x, m)
) AS f;
SELECT gamma_gamma_fit(x, m) FROM (VALUES (0::float8, 3::float8), (NULL, 2)) AS v(x, m);
SELECT gamma_gamma_fit(x, m) FROM (VALUES (1::float8, 3::float8)) AS v(x, m) WHERE false;
SELECT gamma_gamma_accum(gamma_gamma_accum(gamma_gamma_accum(NULL, 2, 10.5), 0, 3), 2, 10.5)::text AS state,
	   '0.5;2;1,3,1;1,3,2'::gamma_gamma_state AS merged;

-- CLV as lifetimes: month i adds spend * (E[Y(30 i)] - E[Y(30 (i - 1))]) /
-- 1.01^i; recomputed here from expected_purchases and expected_spend.
SELECT round(clv((0.25, 4, 0.8, 2.5, 0, 0), (6.25, 3.74, 15.44, 0, 0, 0), 3, 200, 300, 30, 12, 0.01)::numeric, 8) AS clv,
	   round((SELECT sum(expected_spend((6.25, 3.74, 15.44, 0, 0, 0), 3, 30) *
				(expected_purchases((0.25, 4, 0.8, 2.5, 0, 0), 30 * i, 3, 200, 300) -
				 expected_purchases((0.25, 4, 0.8, 2.5, 0, 0), 30 * (i - 1), 3, 200, 300)) / 1.01 ^ i)
		   FROM generate_series(1, 12) AS i)::numeric, 8) AS by_hand;
-- margin scales it; weeks use 4.345 time units a month; a fractional last
-- month; horizon 0 is worth 0; one month without discount is spend * E[Y].
SELECT round(clv((0.25, 4, 0.8, 2.5, 0, 0), (6.25, 3.74, 15.44, 0, 0, 0), 3, 200, 300, 30, 12, 0.01, 0.2)::numeric, 8) AS margin_02,
	   round(clv((0.243, 4.414, 0.793, 2.426, 0, 0), (6.25, 3.74, 15.44, 0, 0, 0), 2, 30.43, 38.86, 22.35, 12, 0.01, 1, 4.345)::numeric, 4) AS weeks,
	   round(clv((0.25, 4, 0.8, 2.5, 0, 0), (6.25, 3.74, 15.44, 0, 0, 0), 3, 200, 300, 30, 2.5, 0)::numeric, 8) =
	   round((expected_spend((6.25, 3.74, 15.44, 0, 0, 0), 3, 30) *
			  expected_purchases((0.25, 4, 0.8, 2.5, 0, 0), 75, 3, 200, 300))::numeric, 8) AS fractional,
	   clv((0.25, 4, 0.8, 2.5, 0, 0), (6.25, 3.74, 15.44, 0, 0, 0), 3, 200, 300, 30, 0, 0.01) AS zero,
	   round(clv((0.25, 4, 0.8, 2.5, 0, 0), (6.25, 3.74, 15.44, 0, 0, 0), 0, 0, 300, 0, 1, 0)::numeric, 8) =
	   round((35.21897810218978 * expected_purchases((0.25, 4, 0.8, 2.5, 0, 0), 30, 0, 0, 300))::numeric, 8) AS new_customer;

-- Serial and parallel fits are identical, from data of the Gamma-Gamma
-- process (customer scale nu ~ Gamma(q, 1/v), the mean of x spends ~
-- Gamma(p x, 1/(nu x))).
\i test/gen/sim.sql
SELECT setseed(0.5);
CREATE TABLE gg_sim AS
SELECT i, x, CASE WHEN x > 0 THEN pg_temp.rgamma(6 * x) / (x * pg_temp.rgamma(4) / 15) ELSE 0 END AS m
FROM (SELECT i, floor(random() * 9)::float8 AS x FROM generate_series(1, 20000) AS i) AS s;
ALTER TABLE gg_sim SET (parallel_workers = 2);
ANALYZE gg_sim;
SET parallel_setup_cost = 0;
SET parallel_tuple_cost = 0;
SET min_parallel_table_scan_size = 0;
SET max_parallel_workers_per_gather = 2;
EXPLAIN (COSTS OFF) SELECT gamma_gamma_fit(x, m) FROM gg_sim;
CREATE TEMP TABLE gg_parallel AS SELECT gamma_gamma_fit(x, m) AS f FROM gg_sim;
SET max_parallel_workers_per_gather = 0;
CREATE TEMP TABLE gg_serial AS SELECT gamma_gamma_fit(x, m) AS f FROM gg_sim;
SELECT p.f = s.f AS same_fit, round((p.f).p::numeric, 2) AS p, round((p.f).q::numeric, 2) AS q,
	   round((p.f).v::numeric, 2) AS v, (p.f).customers, (p.f).skipped
FROM gg_parallel AS p, gg_serial AS s;
RESET max_parallel_workers_per_gather;
DROP TABLE gg_sim;
