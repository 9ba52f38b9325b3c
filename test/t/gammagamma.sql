BEGIN;
SET search_path = public, segtier;
SELECT plan(19);

-- Parameter recovery: 20,000 repeat customers (x uniform on 1..8) from the
-- Gamma-Gamma process with p = 6, q = 4, v = 15.  Tolerance 15 % (p and v
-- are strongly correlated at this size).
\ir ../gen/sim.sql
SELECT setseed(0.25);
CREATE TEMP TABLE fit AS
SELECT (gamma_gamma_fit(x, pg_temp.rgamma(6 * x) / (x * pg_temp.rgamma(4) / 15))).*
FROM (SELECT 1 + floor(random() * 8)::float8 AS x FROM generate_series(1, 20000)) AS s;

SELECT ok(abs(p / 6 - 1) < 0.15, 'p recovered within 15 %') FROM fit;
SELECT ok(abs(q / 4 - 1) < 0.15, 'q recovered within 15 %') FROM fit;
SELECT ok(abs(v / 15 - 1) < 0.15, 'v recovered within 15 %') FROM fit;
SELECT is((customers, skipped), (20000::bigint, 0::bigint), 'counts') FROM fit;

-- whole cents take the packed sort, the same amounts times 2^32 the float
-- sort: the same fit, v times 2^32
CREATE TEMP TABLE cents AS SELECT x, round(100 * pg_temp.rgamma(6 * x) / (x * pg_temp.rgamma(4) / 15)) AS m
FROM (SELECT 1 + floor(random() * 8)::float8 AS x FROM generate_series(1, 20000)) AS s;
SELECT ok(abs(c.p / s.p - 1) < 1e-6 AND abs(c.q / s.q - 1) < 1e-6 AND abs(c.v * 4294967296 / s.v - 1) < 1e-6,
		  'whole cents and scaled amounts give the same fit')
FROM (SELECT (gamma_gamma_fit(x, m)).* FROM cents) AS c, (SELECT (gamma_gamma_fit(x, m * 4294967296)).* FROM cents) AS s;

SELECT is(expected_spend((6.25, 3.74, 15.44, 0, 0, 0), NULL, 1), NULL, 'expected_spend is strict');
SELECT throws_ok($$SELECT gamma_gamma_fit(-1, 10)$$,
	'22023', 'frequency must not be negative', 'negative frequency');
SELECT throws_ok($$SELECT gamma_gamma_fit(1, 'Infinity')$$,
	'22023', 'monetary must be a finite number', 'infinite monetary');
SELECT throws_ok($$SELECT expected_spend((6.25, 3.74, 15.44, 0, 0, 0), 2, 0)$$,
	'22023', 'monetary must be positive for a customer with repeat purchases', 'no spend with repeats');
SELECT throws_ok($$SELECT expected_spend((6.25, 0.5, 15.44, 0, 0, 0), 0, 0)$$,
	'22003', 'expected spend is infinite', 'q <= 1 has no population mean');
-- the log-likelihood where p or q grows large: its terms cancel in the
-- textbook form (-14.708572 here before; -14.708599 by 50-digit arithmetic
-- at the returned parameters, q about 8e8), and no NaN from a zero penalty
-- times an overflowing v^2
SELECT ok(abs((g).loglik + 14.708599) < 1e-6 AND (g).q > 1e6, 'log-likelihood of a fit with a large q: ' || (g).loglik)
FROM (SELECT gamma_gamma_fit(x, m) g FROM (VALUES (1::float8, 100::float8), (2, 10), (3, 50)) v(x, m)) f;
SELECT ok((g).loglik <> 'NaN', 'no NaN log-likelihood for spends near 1e200')
FROM (SELECT gamma_gamma_fit(x, m) g FROM (VALUES (1::float8, 1e200::float8), (2, 1e199), (3, 5e199)) v(x, m)) f;
-- p x m overflows while the weighted mean (p v + p x m) / (p x + q - 1) does not
SELECT ok(abs(expected_spend((6.25, 3.74, 15.44, 0, 0, 0), 1e10, 1e308) / 1e308 - (1 - 0.4384 / (1e10 + 0.4384))) < 1e-13,
	'expected spend near the top of float8 when only an intermediate overflows');
SELECT throws_ok($$SELECT expected_spend((6.25, 3.74, 1e308, 0, 0, 0), 0, 0)$$,
	'22003', 'expected spend is out of range for type double precision', 'a population mean beyond float8');
SELECT throws_ok($$SELECT clv((0.24, 4.4, 0.79, 2.4, 0, 0), (6.25, 3.74, 15.44, 0, 0, 0), 2, 30.43, 38.86, 22.35, 12, 0.01, 1e308)$$,
	'22003', 'CLV is out of range for type double precision', 'a CLV beyond float8');
SELECT throws_ok($$SELECT clv((0.25, 4, 0.8, 2.5, 0, 0), (6.25, 3.74, 15.44, 0, 0, 0), 1, 1, 2, 10, 12, -1)$$,
	'22023', 'discount_rate must be > -1', 'discount rate');
SELECT throws_ok($$SELECT clv((0.25, 4, 0.8, 2.5, 0, 0), (6.25, 3.74, 15.44, 0, 0, 0), 1, 1, 2, 10, 12, 0.01, 1, 0)$$,
	'22023', 'time_units_per_month must be > 0', 'time unit');
SELECT throws_ok($$SELECT '0;0;0,10,1'::gamma_gamma_state$$,
	'22023', 'gamma_gamma_state entries need frequency > 0 and monetary > 0', 'state input is checked');

SELECT throws_ok($$SELECT segtier.gamma_gamma_fit(f, m) FROM (VALUES (1::float8, 1e308::float8), (2, 1.5e308), (3, 1e300)) v(f, m)$$,
	'22003', 'values are too large for the Gamma-Gamma fit', 'spends whose sum overflows');
SELECT * FROM finish();
ROLLBACK;
