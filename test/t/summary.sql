BEGIN;
SET search_path = public, segtier;
SET TimeZone = 'UTC';
SELECT plan(61);

CREATE TEMP TABLE rows (ts timestamptz, amount numeric);

-- errors, with their SQLSTATEs
SELECT throws_ok($$SELECT segtier.purchase_summary(now(), 'NaN')$$,
	'22023', 'purchase amount is NaN', 'NaN amount');
SELECT throws_ok($$SELECT segtier.purchase_summary(now(), 'Infinity')$$,
	'22023', 'purchase amount is infinite', '+Infinity amount');
SELECT throws_ok($$SELECT segtier.purchase_summary(now(), '-Infinity', 'UTC', now())$$,
	'22023', 'purchase amount is infinite', '-Infinity amount, even after as_of');
SELECT throws_ok($$SELECT segtier.purchase_summary('infinity', 1)$$,
	'22023', 'purchase time is infinite', 'infinite purchase time');
SELECT throws_ok($$SELECT segtier.purchase_summary('-infinity', -1, 'UTC', now())$$,
	'22023', 'purchase time is infinite', '-infinity purchase time of a refund');
SELECT throws_ok($$SELECT segtier.purchase_summary(now(), 1, 'Mars/Olympus')$$,
	'22023', 'time zone "Mars/Olympus" not recognized', 'unknown zone');
SELECT throws_ok($$SELECT segtier.purchase_summary(NULL, NULL, 'Nowhere')$$,
	'22023', 'time zone "Nowhere" not recognized', 'zone checked on NULL rows too');
SELECT throws_ok($$SELECT segtier.purchase_summary(now(), 1, NULL)$$,
	'22004', 'time zone must not be null', 'NULL zone');
SELECT throws_ok($$SELECT segtier.purchase_summary(now(), 1, 'UTC', NULL)$$,
	'22004', 'as_of must not be null', 'NULL as_of');
SELECT throws_ok($$SELECT 'x'::segtier.purchase_state$$,
	'22P02', 'invalid input syntax for type purchase_state: "x"', 'malformed state');
SELECT throws_ok($$SELECT '2;;;0;0;0;0;0;0;0;'::segtier.purchase_state$$,
	'22P02', 'invalid input syntax for type purchase_state: "2;;;0;0;0;0;0;0;0;"', 'unknown state version');
SELECT throws_ok($$SELECT '1;0;0;2;0;0;0;3;0;1;5,4'::segtier.purchase_state$$,
	'22023', 'invalid purchase_state value', 'days out of order');
SELECT throws_ok($$SELECT '1;;;1;0;0;0;3;0;1;'::segtier.purchase_state$$,
	'22023', 'invalid purchase_state value', 'transactions without days or times');
SELECT throws_ok($$SELECT '1;0;0;1;0;0;0;3;0;4;5'::segtier.purchase_state$$,
	'22023', 'invalid purchase_state value', 'first-day sum above the purchase sum');
SELECT throws_ok($$SELECT '1;;;0;0;1;0;0;0;0;'::segtier.purchase_state$$,
	'22023', 'invalid purchase_state value', 'a refund without a negative refund sum');
SELECT throws_ok($$SELECT '1;;;0;0;0;0;0;2.5;0;'::segtier.purchase_state$$,
	'22023', 'invalid purchase_state value', 'a positive refund sum');
SELECT throws_ok($$SELECT '1;-9223372036854775807;0;1;0;0;0;3;0;3;5'::segtier.purchase_state$$,
	'22023', 'invalid purchase_state value', 'a first purchase before the first timestamp');
SELECT throws_ok($$SELECT '1;0;9223372036854775806;2;0;0;0;3;0;1;4,5'::segtier.purchase_state$$,
	'22023', 'invalid purchase_state value', 'a last purchase after the last timestamp');
SELECT throws_ok($$SELECT '1;;;0;0;0;0;1.2.3;0;0;'::segtier.purchase_state$$,
	'22P02', 'invalid input syntax for type purchase_state: "1;;;0;0;0;0;1.2.3;0;0;"', 'a sum that is no number');

-- dirty-data rules, hand computed
SELECT is(segtier.purchase_summary(ts, amount), NULL, 'no rows: NULL')
FROM rows;
SELECT is(segtier.purchase_summary(ts, amount)::text, '(,,0,0,0,0,0,3,0,0)',
	'NULL time or amount: ignored and counted')
FROM (VALUES (NULL::timestamptz, 1.0), ('2024-01-01', NULL), ('infinity', NULL)) AS v(ts, amount);
SELECT is(segtier.purchase_summary(ts, amount)::text, '(,,0,0,-7.50,0,-7.50,0,2,0)',
	'only refunds: no purchase times, 0 transactions, negative total')
FROM (VALUES ('2024-01-01'::timestamptz, -5), ('2024-01-02', -2.50)) AS v(ts, amount);
SELECT is(segtier.purchase_summary(ts, amount)::text,
	'("2024-01-01 10:00:00+00","2024-01-01 10:00:00+00",1,1,0,0,0,0,0,0)',
	'a zero amount is a purchase')
FROM (VALUES ('2024-01-01 10:00'::timestamptz, 0)) AS v(ts, amount);
SELECT is(segtier.purchase_summary(ts, amount)::text,
	'("2024-01-02 00:00:00+00","2024-01-05 00:00:00+00",2,2,12,10,-3,0,1,0)',
	'a refund is no purchase: no day, no first/last, not in repeat_amount')
FROM (VALUES ('2024-01-01'::timestamptz, -3), ('2024-01-05', 10), ('2024-01-02', 5),
			 ('2024-01-09', -0)) AS v(ts, amount)
WHERE amount <> 0 OR ts < '2024-01-09';
SELECT is(segtier.purchase_summary(ts, amount, 'UTC', '2024-01-03')::text,
	'("2024-01-01 00:00:00+00","2024-01-03 00:00:00+00",2,2,3,2,0,0,0,3)',
	'rows after as_of (purchases and refunds) ignored and counted; ts = as_of kept')
FROM (VALUES ('2024-01-01'::timestamptz, 1), ('2024-01-03', 2), ('2024-01-03 00:00:00.000001', 4),
			 ('2024-02-01', -1), ('2030-01-01', 8)) AS v(ts, amount);
SELECT is((segtier.purchase_summary(ts, amount, 'UTC', '-infinity')).future_rows, 2::bigint,
	'as_of -infinity: every row is in the future')
FROM (VALUES ('2024-01-01'::timestamptz, 1), ('2024-01-03', -2)) AS v(ts, amount);
SELECT is(segtier.purchase_summary(ts, amount ORDER BY ts DESC)::text,
	'("2024-01-01 09:00:00+00","2024-01-03 00:00:00+00",4,2,11,4,0,0,0,0)',
	'repeat_amount when the first day arrives last: only later days count')
FROM (VALUES ('2024-01-01 09:00'::timestamptz, 2), ('2024-01-01 23:00', 5),
			 ('2024-01-03', 3), ('2024-01-03', 1)) AS v(ts, amount);

-- exact sums beyond int128 and beyond scale 38 (numeric fallback)
SELECT is((segtier.purchase_summary(ts, amount)).total_amount, sum(amount),
	'sums past int128 stay exact')
FROM (SELECT '2024-01-01'::timestamptz + i * interval '1 day',
			 12345678901234567890123456789012345.6789 * i
	  FROM generate_series(1, 1000) AS i) AS v(ts, amount);
SELECT is((segtier.purchase_summary(ts, amount)).total_amount::text, sum(amount)::text,
	'sums with more than 38 decimals stay exact, at the largest input scale')
FROM (VALUES ('2024-01-01'::timestamptz, 1.5), ('2024-01-02', 1e-45), ('2024-01-03', -2.25)) AS v(ts, amount);
SELECT is((segtier.purchase_summary(ts, amount)).total_amount::text, '4.125',
	'mixed input scales add exactly at the largest scale')
FROM (VALUES ('2024-01-01'::timestamptz, 1), ('2024-01-02', 1.5), ('2024-01-03', 1.625)) AS v(ts, amount);

-- the state: text round trip, combine, binary I/O, window use
SELECT is(s::segtier.purchase_state::text, s, 'text form round-trips: ' || left(s, 30))
FROM (VALUES ('1;;;0;0;0;0;0;0;0;'),
			 ('1;-5;7;4;1;2;3;10.50;-0.001;0.50;-9,0,3'),
			 ('1;0;0;1;0;0;0;100000000000000000000000000000000000000000.5;0;100000000000000000000000000000000000000000.5;0')) AS v(s);

CREATE AGGREGATE pg_temp.pstate(timestamptz, numeric) (
	SFUNC = segtier.purchase_state_add, STYPE = segtier.purchase_state);
CREATE TEMP TABLE two (part int, ts timestamptz, amount numeric);
INSERT INTO two VALUES
	(1, '2024-01-05', 4), (1, '2024-01-02', 1.5), (1, NULL, 1), (1, '2024-01-03', -1),
	(2, '2024-01-02 20:00', 2), (2, '2024-01-01 23:00', 1e-40), (2, '2024-01-05', 3),
	(2, '2024-01-09', 1e39);
CREATE TEMP TABLE states AS
SELECT part, pg_temp.pstate(ts, amount) AS st FROM two GROUP BY part;
SELECT is(segtier.purchase_state_summary(segtier.purchase_state_combine(a.st, b.st))::text,
	format('("2024-01-01 23:00:00+00","2024-01-09 00:00:00+00",6,4,%s,%s,-1,1,1,0)',
		   1e39 + 9.5 + 1e-40, (1e39 + 10.5)::numeric(80, 40)),
	'combine: days merged, earlier first day wins, numeric with fast state')
FROM states a, states b WHERE a.part = 1 AND b.part = 2;
SELECT is(segtier.purchase_state_summary(segtier.purchase_state_combine(b.st, a.st))::text,
	(SELECT segtier.purchase_summary(ts, amount)::text FROM two),
	'combine in either order equals the aggregate over all rows')
FROM states a, states b WHERE a.part = 1 AND b.part = 2;
SELECT is(x.merged::text || '|' || x.a::text,
	'1;757468800000000;757728000000000;4;2;2;0;11.0;-2;3.0;8767,8770|'
		'1;757468800000000;757728000000000;2;1;1;0;5.5;-1;1.5;8767,8770',
	'combine with the same first day adds the first-day sums, and outside an aggregate leaves its input unchanged')
FROM (SELECT a.st AS a, segtier.purchase_state_combine(a.st, a.st) AS merged
	  FROM states a WHERE a.part = 1) AS x;
SELECT is(st::text, '1;757468800000000;757728000000000;2;1;1;0;5.5;-1;1.5;8767,8770',
	'the stored state is untouched after combine')
FROM states WHERE part = 1;

SELECT lives_ok(format($$COPY (SELECT st FROM states ORDER BY part) TO %L (FORMAT binary)$$,
	'/tmp/segtier_summary_' || pg_backend_pid() || '.bin'), 'binary send');
CREATE TEMP TABLE states_back (st segtier.purchase_state);
SELECT lives_ok(format($$COPY states_back FROM %L (FORMAT binary)$$,
	'/tmp/segtier_summary_' || pg_backend_pid() || '.bin'), 'binary receive');
SELECT is((SELECT array_agg(st::text) FROM states_back),
	(SELECT array_agg(st::text ORDER BY part) FROM states), 'binary form round-trips');
-- a crafted row whose purchase sum is no number: version 1, no times, four
-- zero counts, sums '1.2.3', '0', '0', no days
CREATE TEMP TABLE bad_state AS
SELECT lo_from_bytea(0, '\x5047434f50590aff0d0a000000000000000000'::bytea || '\x0001'::bytea
		|| int4send(48) || '\x0100'::bytea || decode(repeat('00', 32), 'hex')
		|| convert_to('1.2.3', 'UTF8') || '\x003000300000000000'::bytea || '\xffff'::bytea) AS lo;
SELECT lo_export(lo, '/tmp/segtier_summary_' || pg_backend_pid() || '.bin') FROM bad_state;
SELECT throws_ok(format($$COPY states_back FROM %L (FORMAT binary)$$, '/tmp/segtier_summary_' || pg_backend_pid() || '.bin'),
	'22P03', 'invalid sum "1.2.3" in binary purchase_state', 'binary receive checks the sums');
SELECT lives_ok(format($$COPY (SELECT 1 WHERE false) TO PROGRAM %L$$,
	'rm -f /tmp/segtier_summary_' || pg_backend_pid() || '.bin'), 'remove the binary file');

SELECT is(array_agg((s).purchase_days ORDER BY ts)::text, '{1,1,2,2}',
	'as a window aggregate (running state)')
FROM (SELECT ts, segtier.purchase_summary(ts, amount) OVER (ORDER BY ts) AS s
	  FROM (VALUES ('2024-01-01 01:00'::timestamptz, 1), ('2024-01-01 02:00', 2),
				   ('2024-01-02 01:00', 3), ('2024-01-02 03:00', -3)) AS v(ts, amount)) AS w;

-- period_spend: the sums of FILTER (WHERE ts in period) as a reference
CREATE TABLE ps (g int, ts timestamptz, amount numeric);
INSERT INTO ps SELECT i % 50, '2024-01-01 00:00+00'::timestamptz + (i * 7919 % 20000) * interval '30 minutes',
	CASE WHEN i % 97 = 0 THEN NULL WHEN i % 13 = 0 THEN -round((i % 70)::numeric / 3, 3) ELSE round((i % 1000)::numeric / 7, 2) END
FROM generate_series(1, 20000) i;
INSERT INTO ps VALUES (7, NULL, 5), (8, '2024-02-10 00:00+00', 1e40), (8, '2024-02-11 00:00+00', 1e40), (8, '2024-02-12 00:00+00', -3.5);
-- int64 overflows on the second row, then exact amounts add to the numeric
INSERT INTO ps VALUES (9, '2024-01-05 00:00+00', 5e18), (9, '2024-01-06 00:00+00', 5e18), (9, '2024-01-07 00:00+00', 0.125),
	(9, '2024-01-08 00:00+00', -1), (9, '2024-02-05 00:00+00', -9.2e18), (9, '2024-02-06 00:00+00', -9.2e18);
-- segtier._float8: the bits of the cast, on the fast path and off it
SELECT is((SELECT count(*) FROM (
		SELECT round((i * 7919 % 100003)::numeric / (10::numeric ^ (i % 26)) * (1 - 2 * (i % 2)), i % 26) AS v
		FROM generate_series(1, 20000) i
		UNION ALL  -- 15-16 significant digits at scales 1-22, around 2^53
		SELECT round((9007199254740993 - i * 104729)::numeric / (10::numeric ^ (1 + i % 22)), 1 + i % 22) * (1 - 2 * (i % 2))
		FROM generate_series(1, 20000) i
		UNION ALL VALUES (9007199254740991), (9007199254740993), (-9007199254740993.5), (0.1), (1e22), (1e-22),
			(123456789012345678901234567890.123), (1e-40), (0), (-0.000), ('NaN'), ('Infinity'), ('-Infinity')) x
	WHERE float8send(segtier._float8(v)) IS DISTINCT FROM float8send(v::float8)), 0::bigint,
	'_float8 gives the bits of numeric::float8');
SELECT is(segtier._float8(NULL), NULL, '_float8 of NULL');
-- states that grow: about 400 rows a group on shuffled days, so days are
-- inserted in the middle and the day array outgrows its first chunks
CREATE TEMP TABLE ps_sum_ref AS
SELECT g, count(*) FILTER (WHERE amount >= 0 AND ts IS NOT NULL) AS transactions,
	   count(DISTINCT (ts AT TIME ZONE 'UTC')::date) FILTER (WHERE amount >= 0) AS purchase_days,
	   coalesce(sum(amount) FILTER (WHERE ts IS NOT NULL), 0) AS total_amount,
	   count(*) FILTER (WHERE amount < 0) AS refunds, count(*) FILTER (WHERE amount IS NULL OR ts IS NULL) AS null_rows
FROM ps GROUP BY g;
CREATE FUNCTION pg_temp.ps_sum_mismatches() RETURNS bigint LANGUAGE sql AS $$
	SELECT count(*) FROM ps_sum_ref r FULL JOIN (SELECT g, segtier.purchase_summary(ts, amount, 'UTC') AS s FROM ps GROUP BY g
												 ORDER BY g OFFSET 0) x USING (g)
	WHERE (r.transactions, r.purchase_days, r.total_amount, r.refunds, r.null_rows)
		IS DISTINCT FROM ((x.s).transactions, (x.s).purchase_days, (x.s).total_amount, (x.s).refunds, (x.s).null_rows)
$$;
SELECT is(pg_temp.ps_sum_mismatches(), 0::bigint, 'purchase_summary of groups with hundreds of shuffled days equals count(DISTINCT day) and the sums');
CREATE TEMP TABLE ps_bounds AS SELECT ARRAY['2024-01-01 00:00+00', '2024-02-01 00:00+00', '2024-03-01 00:00+00',
	'2024-03-15 12:00+00']::timestamptz[] AS b;
CREATE TEMP TABLE ps_ref AS
SELECT g, ARRAY[coalesce(sum(amount) FILTER (WHERE ts >= b[1] AND ts < b[2]), 0),
				coalesce(sum(amount) FILTER (WHERE ts >= b[2] AND ts < b[3]), 0),
				coalesce(sum(amount) FILTER (WHERE ts >= b[3] AND ts < b[4]), 0)] AS s
FROM ps, ps_bounds GROUP BY g;
SELECT is((SELECT count(*) FROM ps_ref r JOIN (SELECT g, period_spend(ts, amount, b) AS s FROM ps, ps_bounds GROUP BY g) x USING (g)
		   WHERE r.s::text = x.s::text), 50::bigint, 'period_spend equals the FILTER sums, scales, int64 and int128 overflow included');
-- groups alternate between two bounds arrays, so states keep the earlier ones
SELECT is((SELECT array_agg(s::text ORDER BY g) FROM (SELECT g, period_spend(ts, amount, CASE WHEN g % 2 = 0 THEN b ELSE b[2:4] END) AS s
												   FROM ps, ps_bounds WHERE g < 6 GROUP BY g) x),
		  (SELECT array_agg((CASE WHEN g % 2 = 0 THEN s ELSE s[2:3] END)::text ORDER BY g) FROM ps_ref WHERE g < 6),
		  'bounds that differ between groups');
SELECT is((SELECT array[period_spend(ts, amount, b)::text, period_spend(ts, amount, b[1:2])::text] FROM ps, ps_bounds WHERE g = 8),
		  (SELECT array[s::text, s[1:1]::text] FROM ps_ref WHERE g = 8), 'two period_spend calls with their own bounds');
SELECT is((SELECT period_spend(ts, amount, '{2024-01-01, 2024-01-02}') FROM ps WHERE false), NULL,
	'no rows: NULL');
SELECT is((SELECT period_spend(ts, amount, '{2030-01-01, 2030-01-02}')::text FROM ps WHERE g = 1), '{0}',
	'no rows in the periods: zeros');
ALTER TABLE ps SET (parallel_workers = 2);
SET LOCAL parallel_setup_cost = 0;
SET LOCAL parallel_tuple_cost = 0;
SET LOCAL min_parallel_table_scan_size = 0;
SET LOCAL max_parallel_workers_per_gather = 2;
CREATE FUNCTION pg_temp.ps_plan(q text) RETURNS SETOF text LANGUAGE plpgsql AS $$
BEGIN
	RETURN QUERY EXECUTE 'EXPLAIN (COSTS OFF) ' || q;
END $$;
CREATE FUNCTION pg_temp.ps_value(q text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
	v text;
BEGIN
	EXECUTE q INTO v;
	RETURN v;
END $$;
-- the bounds are literals: a temporary table (ps_bounds) keeps the plan serial
CREATE TEMP TABLE ps_par(q text, grouped text);
INSERT INTO ps_par VALUES ($$SELECT segtier.period_spend(ts, amount,
	'{2024-01-01 00:00+00, 2024-02-01 00:00+00, 2024-03-01 00:00+00, 2024-03-15 12:00+00}')::text FROM ps$$,
	$$SELECT array_agg(s::text ORDER BY g) FROM (SELECT g, segtier.period_spend(ts, amount, CASE WHEN g % 2 = 0
		THEN '{2024-01-01 00:00+00, 2024-02-01 00:00+00, 2024-03-01 00:00+00, 2024-03-15 12:00+00}'::timestamptz[]
		ELSE '{2024-02-01 00:00+00, 2024-03-01 00:00+00, 2024-03-15 12:00+00}' END) AS s FROM ps GROUP BY g) x$$);
SELECT ok((SELECT bool_or(p ~ 'Partial HashAggregate|Partial GroupAggregate')
		   FROM pg_temp.ps_plan($$SELECT count(*) FROM ps_sum_ref r FULL JOIN (SELECT g, segtier.purchase_summary(ts, amount, 'UTC') AS s
		   FROM ps GROUP BY g ORDER BY g OFFSET 0) x USING (g)$$) p), 'EXPLAIN of that comparison shows a partial aggregate');
SELECT is(pg_temp.ps_sum_mismatches(), 0::bigint, 'the same in a parallel plan (states combined)');
SELECT ok((SELECT bool_or(p ~ 'Partial Aggregate') FROM ps_par, pg_temp.ps_plan(q) p), 'EXPLAIN shows a Partial Aggregate');
SELECT is(pg_temp.ps_value(q), (SELECT ARRAY[sum(s[1]), sum(s[2]), sum(s[3])]::text FROM ps_ref),
		  'parallel equals the reference') FROM ps_par;
SELECT ok((SELECT bool_or(p ~ 'Partial HashAggregate') FROM ps_par, pg_temp.ps_plan(grouped) p),
		  'EXPLAIN shows a Partial HashAggregate by group');
SELECT is(pg_temp.ps_value(grouped),
		  (SELECT array_agg((CASE WHEN g % 2 = 0 THEN s ELSE s[2:3] END)::text ORDER BY g) FROM ps_ref)::text,
		  'parallel groups with bounds that differ between groups') FROM ps_par;
RESET max_parallel_workers_per_gather;
SELECT throws_ok($$SELECT segtier.period_spend(now(), 1, '{2024-01-01}')$$, '22023',
	'period bounds need at least two times', 'one bound');
SELECT throws_ok($$SELECT segtier.period_spend(now(), 1, '{2024-02-01, 2024-01-01}')$$, '22023',
	'period bounds must be finite and strictly increasing', 'bounds out of order');
SELECT throws_ok($$SELECT segtier.period_spend(now(), 1, '{2024-01-01, NULL}')$$, '22004',
	'period bounds must not contain NULLs', 'a NULL bound');
SELECT throws_ok($$SELECT segtier.period_spend(now(), 1, '{infinity, NULL}')$$, '22023',
	'period bounds must be finite and strictly increasing', 'bounds are checked in order');

SELECT * FROM finish();
ROLLBACK;
