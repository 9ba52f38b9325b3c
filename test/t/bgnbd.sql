BEGIN;
SET search_path = public, segtier;
SET client_min_messages = error;
SELECT plan(44);

-- Parameter recovery: 20,000 customers from the BG/NBD process with
-- r = 0.5, alpha = 4, a = 0.8, b = 2.5 and T uniform on 30..40.  Tolerance:
-- 10 % for r and alpha, 20 % for a and b (about three standard errors; the
-- drop-out parameters are the least determined).
\ir ../gen/sim.sql
SELECT setseed(0.25);
CREATE TEMP TABLE sim AS
SELECT i, g.x, g.t_x, s.t
FROM (SELECT i, 30 + 10 * random() AS t FROM generate_series(1, 20000) AS i) AS s,
	 LATERAL pg_temp.rbgnbd(0.5, 4, 0.8, 2.5, s.t) AS g;
CREATE TEMP TABLE fit AS SELECT (bgnbd_fit(x, t_x, t)).* FROM sim;

SELECT ok(abs(r / 0.5 - 1) < 0.10, 'r recovered within 10 %') FROM fit;
SELECT ok(abs(alpha / 4 - 1) < 0.10, 'alpha recovered within 10 %') FROM fit;
SELECT ok(abs(a / 0.8 - 1) < 0.20, 'a recovered within 20 %') FROM fit;
SELECT ok(abs(b / 2.5 - 1) < 0.20, 'b recovered within 20 %') FROM fit;
SELECT is(customers, 20000::bigint, 'every customer counted') FROM fit;
-- the fit is the maximum: the summed per-customer log-likelihoods equal
-- loglik, and moving any parameter by 1 % lowers it
SELECT ok(abs((SELECT sum(bgnbd_loglik((f.r, f.alpha, f.a, f.b, 0, 0), x, t_x, t)) FROM sim) - f.loglik) < 1e-6,
		  'loglik is the sum of the per-customer log-likelihoods') FROM fit AS f;
SELECT ok(bool_and((SELECT sum(bgnbd_loglik((f.r * d[1], f.alpha * d[2], f.a * d[3], f.b * d[4], 0, 0), x, t_x, t))
					FROM sim) < f.loglik), 'every 1 % move lowers the log-likelihood')
FROM fit AS f,
	 (VALUES ('{1.01,1,1,1}'::float8[]), ('{0.99,1,1,1}'), ('{1,1.01,1,1}'), ('{1,0.99,1,1}'),
			 ('{1,1,1.01,1}'), ('{1,1,0.99,1}'), ('{1,1,1,1.01}'), ('{1,1,1,0.99}')) AS m(d);

-- whole days take the packed sort and the time table indexed by value; the
-- same histories times 2^13 (T above 2^21) take the float sort and the
-- indexed table, times 2^22 the float sort and the searched table, and must
-- give the same fit, alpha times the factor
CREATE TEMP TABLE days AS SELECT x, floor(t_x * 7) AS t_x, floor(t * 7) AS t FROM sim;
CREATE TEMP TABLE fit_days AS SELECT (bgnbd_fit(x, t_x, t)).* FROM days;
SELECT ok(bool_and(abs(d.r / s.r - 1) < 1e-9 AND abs(d.alpha * k / s.alpha - 1) < 1e-9
				   AND abs(d.a / s.a - 1) < 1e-9 AND abs(d.b / s.b - 1) < 1e-9),
		  'whole days and scaled times give the same fit')
FROM fit_days AS d, (VALUES (8192::float8), (4194304)) AS f(k),
	 LATERAL (SELECT (bgnbd_fit(x, t_x * k, t * k)).* FROM days) AS s;
SELECT ok(abs((SELECT sum(bgnbd_loglik((f.r, f.alpha, f.a, f.b, 0, 0), x, t_x, t)) FROM days) - f.loglik) < 1e-6,
		  'whole days: loglik is the sum of the per-customer log-likelihoods') FROM fit_days AS f;

-- NULL handling: NULL rows are skipped; the functions are strict
SELECT is((SELECT customers FROM (SELECT (bgnbd_fit(x, t_x, t)).*
		  FROM (VALUES (1::float8, 1::float8, 2::float8), (NULL, 1, 2), (1, NULL, 2), (1, 1, NULL)) AS v(x, t_x, t)) AS f),
		  1::bigint, 'rows with a NULL are skipped');
SELECT is(p_alive((0.25, 4, 0.8, 2.5, 0, 0), NULL, 1, 2), NULL, 'p_alive is strict');
SELECT is(expected_purchases(NULL::bgnbd, 1), NULL, 'expected_purchases is strict');

-- errors
SELECT throws_ok($$SELECT bgnbd_fit(x, 0, 1) FROM (VALUES (-1::float8)) AS v(x)$$,
	'22023', 'frequency must not be negative', 'negative frequency');
SELECT throws_ok($$SELECT bgnbd_fit(1.5, 0, 1)$$,
	'22023', 'frequency must be a whole number', 'fractional frequency');
SELECT throws_ok($$SELECT bgnbd_fit(1, 3, 2)$$,
	'22023', 'recency must not be greater than t', 'recency > t');
SELECT throws_ok($$SELECT bgnbd_fit(0, 0, -1)$$,
	'22023', 't must not be negative', 'negative t');
SELECT throws_ok($$SELECT bgnbd_fit(1, -1, 2)$$,
	'22023', 'recency must not be negative', 'negative recency');
SELECT throws_ok($$SELECT bgnbd_fit(1, 'NaN', 2)$$,
	'22023', 'recency must be a finite number', 'NaN recency');
SELECT throws_ok($$SELECT bgnbd_fit(x, 0, 1, p) FROM (VALUES (0::float8, 0::float8), (0, 0.5)) AS v(x, p)$$,
	'22023', 'penalizer must be the same for every row of a fit', 'changing penalizer');
SELECT throws_ok($$SELECT bgnbd_fit(0, 0, 1, -1)$$,
	'22023', 'penalizer must be a finite number >= 0', 'negative penalizer');
SELECT throws_ok($$SELECT p_alive((0.25, 0, 0.8, 2.5, 0, 0), 1, 1, 2)$$,
	'22023', 'BG/NBD parameter alpha must be a finite number > 0', 'bad model');
SELECT throws_ok($$SELECT expected_purchases((0.25, 4, 0.8, 2.5, 0, 0), -1)$$,
	'22023', 'horizon must not be negative', 'negative horizon');
SELECT throws_ok($$SELECT '0;0;1,3,2,1'::bgnbd_state$$,
	'22023', 'recency must not be greater than t', 'state input is checked');
SELECT throws_ok($$SELECT '0;0;1,0.5'::bgnbd_state$$,
	'22P02', 'invalid input syntax for type bgnbd_state: "0;0;1,0.5"', 'malformed state');

-- The state: stored, it holds the distinct histories only (40 bytes and 32
-- a history; pg_column_size leaves out the 4-byte header of a value out of
-- line) and fits as the aggregate does; many rows of few histories; many
-- groups; a running fit over a window; a state of layout 1 (0.12.0 and before, a hash
-- table) reads back, an unknown layout or a short state is refused.
CREATE AGGREGATE pg_temp.bg_state(float8, float8, float8) (SFUNC = segtier.bgnbd_accum, STYPE = segtier.bgnbd_state);
CREATE TEMP TABLE stored (s segtier.bgnbd_state);
ALTER TABLE stored ALTER s SET STORAGE EXTERNAL;	-- not compressed
INSERT INTO stored SELECT pg_temp.bg_state(x, t_x, t) FROM days;
SELECT is(pg_column_size(s), 36 + 32 * (SELECT count(DISTINCT (x, t_x, t))::int FROM days),
		  'a stored state holds each distinct history once') FROM stored;
SELECT is(bgnbd_final(s), (SELECT bgnbd_fit(x, t_x, t) FROM days), 'a stored state fits as the aggregate')
FROM stored;
SELECT is(pg_temp.bg_state(i % 7, 0, 9)::text, '0;0;0,0,9,28571;1,0,9,28572;2,0,9,28572;3,0,9,28572;4,0,9,28571;5,0,9,28571;6,0,9,28571',
		  '200000 rows of seven histories') FROM generate_series(1, 200000) i;
-- a hash aggregation of 1000 groups that spills to disk
SET LOCAL work_mem = '64kB';
SET LOCAL enable_sort = off;
SELECT is((SELECT md5(string_agg(g || ':' || s::text, '|' ORDER BY g))
		   FROM (SELECT i % 1000 AS g, pg_temp.bg_state(x, t_x, t) AS s FROM sim GROUP BY 1) q),
		  (SELECT md5(string_agg(g || ':0;0;' || e, '|' ORDER BY g))
		   FROM (SELECT g, string_agg(concat_ws(',', x, t_x, t, n), ';' ORDER BY x, t_x, t) AS e
				 FROM (SELECT i % 1000 AS g, x, t_x, t, count(*) AS n FROM sim GROUP BY 1, 2, 3, 4) h
				 GROUP BY g) q),
		  'states of many groups, hashed and spilled, hold each group''s histories');
RESET work_mem;
RESET enable_sort;
WITH first AS (SELECT i, x, t_x, t FROM sim ORDER BY i LIMIT 100)
SELECT is((SELECT f FROM (SELECT i, bgnbd_fit(x, t_x, t) OVER (ORDER BY i) AS f FROM first) w ORDER BY i DESC LIMIT 1),
		  (SELECT bgnbd_fit(x, t_x, t) FROM first), 'the last row of a running fit is the whole fit');
-- (a binary cast from bytea, which CREATE CAST refuses for the alignment)
SET LOCAL allow_system_table_mods = on;
INSERT INTO pg_cast (oid, castsource, casttarget, castfunc, castcontext, castmethod)
VALUES (pg_nextoid('pg_cast', 'oid', 'pg_cast_oid_index'), 'bytea'::regtype, 'segtier.bgnbd_state'::regtype, 0, 'e', 'b');
RESET allow_system_table_mods;
SELECT is(bgnbd_accum(decode('01000300040000000200000000000000000000000000000000000000000000000000000000000000'
							 '00000000000000000000000000000000000000000000000000000000000000000000f03f00000000'
							 '0000e03f000000000000004002000000000000000000000000000000000000000000000000000000'
							 '00000000000000000000000000000000000000000000000000000000000000000000084001000000'
							 '00000000', 'hex')::segtier.bgnbd_state, 1, 0.5, 2)::text,
		  '0;0;0,0,3,1;1,0.5,2,3', 'a state of layout 1 (a hash table of 0.12.0) reads back');
SELECT throws_ok($$SELECT decode('070003000000000000000000000000000000000000000000000000000000000000000000', 'hex')::segtier.bgnbd_state::text$$,
	'XX001', 'invalid model state (layout version 7, 40 bytes)', 'an unknown state layout is refused');
SELECT throws_ok($$SELECT decode('020003000100000001000000000000000000000000000000000000000000000000000000', 'hex')::segtier.bgnbd_state::text$$,
	'XX001', 'invalid model state (layout version 2, 40 bytes)', 'a state shorter than its entries is refused');

SELECT throws_ok($$SELECT segtier.bgnbd_fit(f, 1e308, 1.5e308) FROM (VALUES (1::float8), (2), (3)) v(f)$$,
	'22003', 'values are too large for the BG/NBD fit', 'ages whose sum overflows');

-- A large a (a fit of customers who all drop out alike): the values
-- converge as a grows; references from mpmath's hyp2f1 at 40 digits
-- (FHL 2005 eq. 9 and 10).  a = 6492 and 6493 are either side of the switch
-- between the two series of the conditional expectation (x 3, t_x 130, T 365).
SELECT ok(bool_and(abs(expected_purchases((0.41, 9.5, a, 9 * a, 0, 1), 30, 3, 130, 365) / e - 1) < 1e-12),
		  'expected_purchases with a large a (conditional)')
FROM (VALUES (6492::float8, 0.06356368609215616), (6493, 0.063563685828183244), (7000, 0.063563561706382175),
			 (4.4e6, 0.063561974630326212), (1e9, 0.063561972112516516)) v(a, e);
SELECT ok(bool_and(abs(expected_purchases((0.41, 9.5, a, 9 * a, 0, 1), 30) / e - 1) < 1e-12),
		  'expected_purchases with a large a (new customers)')
FROM (VALUES (1000::float8, 1.0642297800910544), (4.4e6, 1.0641972719773265), (1e9, 1.0641972646176631)) v(a, e);
SELECT ok(abs(clv((0.41, 9.5, 1e5, 9e5, 0, 1), (6.25, 3.74, 15.44, 0, 1, 0), 3, 130, 365, 30, 12, 0.01)
			  / clv((0.41, 9.5, 1e9, 9e9, 0, 1), (6.25, 3.74, 15.44, 0, 1, 0), 3, 130, 365, 30, 12, 0.01) - 1) < 1e-4,
		  'clv with a large a converges (it was NaN)');

-- A large b (customers who hardly ever drop out): the bracket of eq. 10 is
-- 1 minus a number within about t/b of 1, times (a+b+x-1)/(a-1); references
-- from the Gauss series of 2F1 at 80 digits.  Before 0.11.0, b = 1e9 lost
-- 6 digits and b = 1e16 gave 10 times the value.
SELECT ok(bool_and(abs(expected_purchases((0.41, 9.5, a, b, 0, 1), 30, x, tx, tt) / e - 1) < 1e-12),
		  'expected_purchases with a large b')
FROM (VALUES (0.8::float8, 1e9::float8, 3::float8, 130::float8, 365::float8, 0.27316421258151168862::float8),
			 (2.5, 1e12, 3, 130, 365, 0.27316421893868304267), (2.5, 1e12, 0, 0, 0, 1.2947368420980568481),
			 (1.2, 1e16, 3, 130, 365, 0.27316421895861052345), (1.2, 1e16, 40, 350, 360, 3.2809201623815948954),
			 (1.2, 1e16, 0, 0, 0, 1.2947368421052627349), (1000, 1e14, 3, 130, 365, 0.27316421887889773064),
			 (1000, 1e14, 0, 0, 0, 1.29473684207643815), (5000, 1e16, 3, 130, 365, 0.27316421895462579255)) v(a, b, x, tx, tt, e);
SELECT ok(abs(expected_purchases((0.41, 9.5, 1e4, 1e12, 0, 1), 365) / 15.752627312058284041 - 1) < 1e-10,
		  'expected_purchases with a large a and a larger b (400k terms, rescaled)');
-- A large r (customers who all buy at one rate): the terms of the
-- transformed series alternate in sign and cancel (0.10.0 was off by a
-- factor of about 7e3 for the first, 6e12 for the second)
SELECT ok(bool_and(abs(expected_purchases((r, alpha, 0.5, 1.5, 0, 1), 365, x, tx, tt) / e - 1) < 1e-12),
		  'expected_purchases with a large r')
FROM (VALUES (100::float8, 100::float8, 0::float8, 0::float8, 0::float8, 41.091099877507849028::float8),
			 (200, 400, 0, 0, 0, 28.509948473823260586), (50, 50, 0, 0, 0, 41.037420957263014081),
			 (100, 100, 5, 60, 100, 4.2697046917662612018e-8)) v(r, alpha, x, tx, tt, e);

-- A large a with a far larger b (customers who in effect never drop out):
-- the numerator of eq. 10 tends to its limit as b grows, which joins the
-- positive series (references: its values of E / P(alive) before the limit
-- was used, for a = 1e3 and 1e4), and far out to the NBD model's (r+x) t / (alpha+T)
-- (0.12.0 gave 3.99, 4.4e4 and 4.4e34 for the last three: the
-- untransformed series lost every digit).
SELECT ok(bool_and(abs(expected_purchases((0.41, 9.5, a, b, 0, 1), 365, 3, 130, 365)
					   / p_alive((0.41, 9.5, a, b, 0, 1), 3, 130, 365) / e - 1) < 1e-11),
		  'expected_purchases as b grows joins the positive series')
FROM (VALUES (1e3::float8, 1e16::float8, 3.3234979973292456::float8), (1e3, 1e20, 3.3234979973300156),
			 (1e4, 1e16, 3.3234979973245076), (1e4, 1e20, 3.3234979973324696)) v(a, b, e);
SELECT ok(bool_and(abs(expected_purchases((0.41, 9.5, a, b, 0, 1), 365, 3, 130, 365) / (3.41 * 365 / 374.5) - 1) < 1e-12),
		  'expected_purchases of customers who never drop out is the NBD model''s')
FROM (VALUES (1e58::float8, 1e72::float8), (1e60, 1e75), (1e80, 1e100), (1e100, 1e150), (1e250, 1e300)) v(a, b);

-- nobody observed for any time (every t = 0): the likelihood is 1 for every
-- parameter, and the fit is NULL with a warning (a penalizer drove it to 0)
SELECT is((SELECT bgnbd_fit(0, 0, 0, 0.001) FROM generate_series(1, 3)), NULL, 'no customer observed for any time: NULL fit');

-- nobody repeats (every x = 0): the likelihood rises as r goes to 0 and
-- does not depend on a and b; the fit is NULL with a warning (it was r 0.002,
-- alpha 3e14, a and b their start values, and no warning)
SELECT is((SELECT bgnbd_fit(0, 0, t, 0.001) FROM generate_series(1, 30) t), NULL, 'no repeat purchase: NULL fit');

-- the gamma-function terms as b or r grow, against mpmath at 50 digits (as
-- differences of lgamma values: -24.911 instead of -11.131 at b = 1e15)
SELECT ok(bool_and(abs(bgnbd_loglik((r, 10, 2, b, 0, 1), 3, 20, 30) / e - 1) < 1e-14),
		  'bgnbd_loglik keeps its digits as b and r grow')
FROM (VALUES (0.5::float8, 2.5::float8, -11.742755518007677022::float8), (0.5, 1e12, -11.131176883479905944),
			 (0.5, 1e15, -11.131176883479380606), (1e9, 1e12, -1098612263.6397782579),
			 (1e9, 1e15, -1098612270.5475335369)) v(r, b, e);

SELECT * FROM finish();
ROLLBACK;
