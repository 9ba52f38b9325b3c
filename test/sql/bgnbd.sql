-- BG/NBD: closed forms, published values, the state type, serial = parallel
SET search_path = public, segtier;
SET extra_float_digits = 0;

-- Log-likelihood of single customers against hand-derived values.  With
-- L = B(a,b+x)/B(a,b) G(r+x)/G(r) a^r/(alpha+T)^(r+x)
--   + [x>0] B(a+1,b+x-1)/B(a,b) G(r+x)/G(r) alpha^r/(alpha+t_x)^(r+x):
-- r=1, alpha=1, x=0, T=1: L = 1/2;
-- r=alpha=a=b=1, x=1, t_x=0, T=1: B(1,2)/B(1,1) = 1/2 = B(2,1)/B(1,1), so
--   L = 1/2 (1/4 + 1) = 5/8;
-- r=2, alpha=1, a=1, b=2, x=2, t_x=1, T=1: G(4)/G(2) = 6, B(1,4)/B(1,2) = 1/2,
--   B(2,3)/B(1,2) = (1/12)/(1/2) = 1/6, so L = 6 (1/2 + 1/6) / 16 = 1/4.
SELECT round((bgnbd_loglik((1, 1, 1, 1, 0, 0), 0, 0, 1) - ln(0.5))::numeric, 12) AS x0,
	   round((bgnbd_loglik((1, 1, 1, 1, 0, 0), 1, 0, 1) - ln(5.0 / 8))::numeric, 12) AS x1,
	   round((bgnbd_loglik((2, 1, 1, 2, 0, 0), 2, 1, 1) - ln(0.25))::numeric, 12) AS x2;

-- Hardie's note 027 (a=0.80, b=2.50, r=0.25, alpha=4.00, T=40): the stable
-- form gives -0.59947382 and 100.7957 and stays finite for huge x.
SELECT round(bgnbd_loglik((0.25, 4, 0.8, 2.5, 0, 0), 0, 0, 40)::numeric, 8) AS ll_x0,
	   round(bgnbd_loglik((0.25, 4, 0.8, 2.5, 0, 0), 200, 38, 40)::numeric, 4) AS ll_x200,
	   bgnbd_loglik((0.25, 4, 0.8, 2.5, 0, 0), 1e6, 38, 40) > 0 AS ll_x1e6_finite;

-- P(alive): r=alpha=a=b=1, x=1, t_x=0, T=1: 1 / (1 + (a/b) ((1+1)/(1+0))^2) = 1/5;
-- 1 without repeat purchases; 0 (not NaN) for a huge x long ago.
SELECT p_alive((1, 1, 1, 1, 0, 0), 1, 0, 1) AS one_fifth,
	   p_alive((1, 1, 1, 1, 0, 0), 0, 0, 10) AS no_repeat,
	   p_alive((0.25, 4, 0.8, 2.5, 0, 0), 1e6, 38, 40) AS huge_x;

-- E[X(t)] in closed form: r=1, a=2, b=1 give (a+b-1)/(a-1) = 2 and
-- 2F1(1,1;2;z) = -ln(1-z)/z; alpha=t=1: z = 1/2, so E[X(1)] = 2 (1 - ln 2).
SELECT round((expected_purchases((1, 1, 2, 1, 0, 0), 1) - 2 * (1 - ln(2)))::numeric, 12) AS ex_closed;

-- The published CDNOW values at the MLE (FHL 2005; lifetimes tests):
-- E[X(t)] = 0.0078, 0.0532, 0.1506, 1.0405, 1.0437, 1.8576 (tol 1e-3; the
-- README gives E[X(78)] = 1.8580 at the MLE exactly),
-- E[Y(39) | 2, 30.43, 38.86] = 1.226, P(alive) = 0.7266.
SELECT t, round(expected_purchases((0.242593, 4.413532, 0.792886, 2.425754, 0, 0), t)::numeric, 4) AS ex
FROM unnest('{0.1429,1,3,31.8571,32,78}'::float8[]) AS t;
SELECT round(expected_purchases((0.242593, 4.413532, 0.792886, 2.425754, 0, 0), 39, 2, 30.43, 38.86)::numeric, 3) AS ey,
	   round(p_alive((0.242593, 4.413532, 0.792886, 2.425754, 0, 0), 2, 30.43, 38.86)::numeric, 4) AS palive;

-- The new-customer expectation is the conditional one with x = t_x = T = 0;
-- no jump at a = 1 (where the formula divides by a - 1); finite for huge x
-- and long horizons; 0 at horizon 0.
SELECT expected_purchases((0.5, 3, 0.8, 2, 0, 0), 20) = expected_purchases((0.5, 3, 0.8, 2, 0, 0), 20, 0, 0, 0) AS same,
	   abs(expected_purchases((0.5, 3, 1, 2, 0, 0), 20, 3, 10, 15) -
		   expected_purchases((0.5, 3, 1.000000001, 2, 0, 0), 20, 3, 10, 15)) < 1e-8 AND
	   abs(expected_purchases((0.5, 3, 1, 2, 0, 0), 20, 3, 10, 15) -
		   expected_purchases((0.5, 3, 0.999999999, 2, 0, 0), 20, 3, 10, 15)) < 1e-8 AS continuous_at_a1,
	   round(expected_purchases((0.25, 4, 0.8, 2.5, 0, 0), 1, 5000, 39.9, 40)::numeric, 2) AS huge_x,
	   round(expected_purchases((0.25, 4, 0.8, 2.5, 0, 0), 1e5)::numeric, 4) AS long_horizon,
	   expected_purchases((0.25, 4, 0.8, 2.5, 0, 0), 0, 2, 1, 5) AS zero_horizon;

-- E[Y] rises with the horizon and with x at a fixed recent t_x.
SELECT h, round(expected_purchases((0.25, 4, 0.8, 2.5, 0, 0), h, 4, 35, 40)::numeric, 6) AS ey
FROM unnest('{1,10,100,1000}'::float8[]) AS h;

-- The state type: a histogram of distinct (x, t_x, T), text round trip,
-- t_x forced to 0 when x = 0, entries merged.
SELECT bgnbd_accum(bgnbd_accum(bgnbd_accum(NULL, 1, 0.5, 2), 1, 0.5, 2), 0, 0.7, 3)::text AS state;
SELECT '0;0;1,0.5,2,2;0,0,3,1;1,0.5,2,1'::bgnbd_state AS merged;
SELECT bgnbd_fit(x, tx, tt) FROM (VALUES (NULL::float8, 0::float8, 1::float8)) AS v(x, tx, tt);
SELECT bgnbd_fit(x, tx, tt) FROM (VALUES (1::float8, 0.5::float8, 1::float8)) AS v(x, tx, tt) WHERE false;

-- Serial and parallel fits are identical, from data of the BG/NBD process.
\i test/gen/sim.sql
SELECT setseed(0.5);
CREATE TABLE bgnbd_sim AS
SELECT i, g.x, g.t_x, s.t
FROM (SELECT i, round(30 + 10 * random()) AS t FROM generate_series(1, 20000) AS i) AS s,
	 LATERAL pg_temp.rbgnbd(0.5, 4, 0.8, 2.5, s.t) AS g;
ALTER TABLE bgnbd_sim SET (parallel_workers = 2);
ANALYZE bgnbd_sim;
SET parallel_setup_cost = 0;
SET parallel_tuple_cost = 0;
SET min_parallel_table_scan_size = 0;
SET max_parallel_workers_per_gather = 2;
EXPLAIN (COSTS OFF) SELECT bgnbd_fit(x, t_x, t) FROM bgnbd_sim;
CREATE TEMP TABLE fit_parallel AS SELECT bgnbd_fit(x, t_x, t) AS f, bgnbd_fit(x, t_x, t, 0.001) AS fp FROM bgnbd_sim;
SET max_parallel_workers_per_gather = 0;
CREATE TEMP TABLE fit_serial AS SELECT bgnbd_fit(x, t_x, t) AS f, bgnbd_fit(x, t_x, t, 0.001) AS fp FROM bgnbd_sim;
SELECT p.f = s.f AS same_fit, p.fp = s.fp AS same_penalized_fit,
	   round((p.f).r::numeric, 2) AS r, round((p.f).alpha::numeric, 2) AS alpha,
	   round((p.f).a::numeric, 2) AS a, round((p.f).b::numeric, 2) AS b, (p.f).customers,
	   (p.fp).r < (p.f).r AND (p.fp).b < (p.f).b AS penalty_shrinks
FROM fit_parallel AS p, fit_serial AS s;
RESET max_parallel_workers_per_gather;
DROP TABLE bgnbd_sim;
