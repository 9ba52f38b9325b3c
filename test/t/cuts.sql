BEGIN;
SET search_path = public, segtier;
SELECT plan(23);

SELECT throws_ok($$SELECT segtier.cuts(v, 1) FROM (VALUES (1::float8)) t(v)$$,
	'22023', 'number of groups 1 is out of range', 'n = 1 is rejected');
SELECT throws_ok($$SELECT segtier.cuts(v, 10) FROM (VALUES (1::float8)) t(v)$$,
	'22023', 'number of groups 10 is out of range', 'n = 10 is rejected');
SELECT throws_ok($$SELECT segtier.cuts(NULL, 0)$$,
	'22023', 'number of groups 0 is out of range', 'n is checked even for a NULL value');
SELECT throws_ok($$SELECT segtier.cuts(v, n) FROM (VALUES (1::float8, 5), (2, 6)) t(v, n)$$,
	'22023', 'number of groups must be the same in every row', 'n varying between rows');
SELECT throws_ok($$SELECT segtier.cuts(v, n) FROM (VALUES (1::float8, 5), (2, NULL)) t(v, n)$$,
	'22004', 'number of groups must not be NULL', 'NULL n');
SELECT throws_ok($$SELECT segtier.cuts(v, 5) FROM unnest('{1,NaN,2}'::float8[]) v$$,
	'22023', 'cannot compute cut points of NaN', 'NaN value');
SELECT throws_ok($$SELECT segtier.cuts_combine('n=5 {1}', 'n=4 {2}')$$,
	'22023', 'number of groups must be the same in every row', 'combining states of different n');

-- the state type: text round trip, validation
SELECT is(segtier.cuts_trans(segtier.cuts_trans(NULL, 2.5, 4), -1e300, 4)::text, 'n=4 {2.5,-1e+300}',
	'transition outside an aggregate builds a state');
SELECT is(' n=3 { 1 , 0.1,-Infinity } '::segtier.cuts_state::text, 'n=3 {1,0.1,-Infinity}', 'text form is read and written back');
SELECT is('n=3 {}'::segtier.cuts_state::text, 'n=3 {}', 'empty state');
SELECT throws_ok($$SELECT 'n=3 {1,x}'::segtier.cuts_state$$, '22P02',
	'invalid input syntax for type cuts_state: "n=3 {1,x}"', 'bad number');
SELECT throws_ok($$SELECT 'k=3 {1}'::segtier.cuts_state$$, '22P02',
	'invalid input syntax for type cuts_state: "k=3 {1}"', 'wrong parameter name');
SELECT throws_ok($$SELECT 'n=3 {1} x'::segtier.cuts_state$$, '22P02',
	'invalid input syntax for type cuts_state: "n=3 {1} x"', 'trailing garbage');
SELECT throws_ok($$SELECT 'n=11 {1}'::segtier.cuts_state$$, '22023',
	'number of groups 11 is out of range', 'state with a bad n');
SELECT throws_ok($$SELECT 'n=3 {1,NaN}'::segtier.cuts_state$$, '22023',
	'cuts state must not contain NaN', 'state with NaN');
SELECT is(segtier.cuts_final(segtier.cuts_combine('n=2 {4,1}', 'n=2 {3,2}')), '{2}'::float8[],
	'combine then final');
SELECT is(segtier.cuts_state_send('n=2 {1}'), '\x000000000000000200000000000000013ff0000000000000'::bytea,
	'binary form: version, n, count, values');

-- a window: the final function runs on a growing state (fed in descending
-- order, so its in-place sort must not disturb later rows)
SELECT is(string_agg(c::text, ' ' ORDER BY v DESC), '{} {4} {3} {3} {2}', 'running cuts in a window')
FROM (SELECT v, segtier.cuts(v, 2) OVER (ORDER BY v DESC) AS c FROM generate_series(1, 5) v) w;

-- hashed grouping: one state per group
SELECT set_eq($$SELECT g % 3, segtier.cuts(g, 2) FROM generate_series(1, 30) g GROUP BY 1$$,
	$$VALUES (0, '{15}'::float8[]), (1, '{13}'), (2, '{14}')$$, 'one state per group');
SELECT is(array_agg(segtier.score(v, c) ORDER BY v), '{1,1,2,2}',
	'the cut is the largest value of the lower group')
FROM (SELECT segtier.cuts(v, 2) c FROM generate_series(1, 4) v) x, generate_series(1, 4) v;

-- values of every sign, size and byte pattern, -0, infinities and ties,
-- against an independent statement of the rule on a sorted copy: boundary
-- k * N / n moved to the nearer end of its tie block (the lower when equal),
-- each distinct boundary inside (0, N) giving the value just below it
SELECT setseed(0.17);
CREATE TEMP TABLE cv AS
SELECT CASE WHEN g % 53 = 0 THEN '-Infinity'::float8 WHEN g % 59 = 0 THEN 'Infinity'
			WHEN g % 7 = 0 THEN '-0'::float8 WHEN g % 11 = 0 THEN 0
			WHEN g % 5 = 0 THEN round(random() * 20 - 10)
			WHEN g % 13 = 0 THEN (random() - 0.5) * 1e-310
			ELSE (random() - 0.5) * power(10::float8, floor(random() * 60) - 30) END AS v
FROM generate_series(1, 20000) g;
CREATE FUNCTION pg_temp.ref_cuts(n int) RETURNS float8[] LANGUAGE sql AS $$
	WITH s AS (SELECT v, row_number() OVER (ORDER BY v) - 1 AS i FROM cv),
		 tot AS (SELECT count(*) AS cnt FROM cv),
		 blocks AS (SELECT k * cnt AS target, (SELECT count(*) FROM cv WHERE cv.v < s.v) AS lo,
						   (SELECT count(*) FROM cv WHERE cv.v <= s.v) AS hi
					FROM generate_series(1, n - 1) k, tot, s WHERE s.i = k * cnt / n),
		 b AS (SELECT DISTINCT CASE WHEN target - n * lo <= n * hi - target THEN lo ELSE hi END AS b FROM blocks)
	SELECT array_agg(s.v ORDER BY b.b) FROM b, s, tot WHERE s.i = b.b - 1 AND b.b > 0 AND b.b < tot.cnt $$;
SELECT is((SELECT segtier.cuts(v, 9) FROM cv), pg_temp.ref_cuts(9), 'nine groups of mixed values match the reference');
SELECT is((SELECT segtier.cuts(v, 7) FROM cv), pg_temp.ref_cuts(7), 'seven groups match the reference');

-- Many groups: a hash aggregation that spills to disk gives what a sorted
-- one gives (the groups' states share one memory context)
CREATE TEMP TABLE many AS SELECT i % 1000 AS g, (i * 7919 % 10007)::float8 AS v FROM generate_series(1, 20000) i;
SET LOCAL work_mem = '64kB';
SET LOCAL enable_sort = off;
CREATE TEMP TABLE hashed AS SELECT g, segtier.cuts(v, 4) AS c, segtier.kmeans(ARRAY[v], 2, 1) AS k FROM many GROUP BY g;
RESET enable_sort;
SET LOCAL enable_hashagg = off;
SELECT is((SELECT md5(string_agg(g || ':' || c::text || ':' || k::text, '|' ORDER BY g)) FROM hashed),
		  (SELECT md5(string_agg(g || ':' || c::text || ':' || k::text, '|' ORDER BY g))
		   FROM (SELECT g, segtier.cuts(v, 4) AS c, segtier.kmeans(ARRAY[v], 2, 1) AS k FROM many GROUP BY g) s),
		  'cuts and kmeans of 1000 groups, hashed and spilled, equal the sorted aggregation');
RESET enable_hashagg;
RESET work_mem;

SELECT * FROM finish();
ROLLBACK;
