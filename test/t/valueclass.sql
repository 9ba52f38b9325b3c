BEGIN;
SET search_path = public, segtier;
SELECT plan(17);

-- generated values: Pareto-like, with ties, zeros and refunds
SELECT setseed(0.31);
CREATE TABLE v AS
SELECT g AS id, CASE WHEN g % 97 = 0 THEN -5 WHEN g % 89 = 0 THEN 0
					 ELSE round((10 / power(1 - random(), 1 / 1.3))::numeric, 0)::float8 END AS value
FROM generate_series(1, 5000) g;

-- An independent statement of the rule with window functions: the start of
-- each tie block (share of positive value, or of customers, before it) and
-- the class its start lies in; values <= 0 go to the bottom.
CREATE FUNCTION pg_temp.ref_class(bounds float8[], basis text) RETURNS TABLE (id int, class int) LANGUAGE sql AS $$
	WITH blocks AS (
		SELECT value, count(*) AS n, sum(greatest(value, 0)) AS pos FROM v GROUP BY value
	), starts AS (
		SELECT value,
			   CASE WHEN basis = 'value'
					THEN coalesce(sum(pos) OVER (ORDER BY value DESC ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0)
						 / (SELECT sum(greatest(value, 0)) FROM v)
					ELSE coalesce(sum(n) OVER (ORDER BY value DESC ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0)::float8
						 / (SELECT count(*) FROM v) END AS start
		FROM blocks
	)
	SELECT v.id, CASE WHEN v.value <= 0 THEN 1
					  ELSE array_length(bounds, 1) + 1 - (SELECT count(*) FROM unnest(bounds) b WHERE b <= s.start)::int END
	FROM v JOIN starts s USING (value)
$$;
CREATE FUNCTION pg_temp.mismatches(bounds float8[], basis text) RETURNS bigint LANGUAGE sql AS $$
	SELECT count(*) FROM pg_temp.ref_class(bounds, basis) r JOIN v USING (id)
	WHERE r.class <> segtier.score(v.value, (SELECT segtier.share_cuts(value, bounds, basis) FROM v))
$$;

SELECT is(pg_temp.mismatches('{0.7,0.9}', 'value'), 0::bigint, 'ABC by value matches the window-function reference');
SELECT is(pg_temp.mismatches('{0.1,0.3}', 'count'), 0::bigint, 'ABC by head count matches');
SELECT is(pg_temp.mismatches('{0.01,0.05,0.2}', 'count'), 0::bigint, 'the pyramid matches');
SELECT is(pg_temp.mismatches('{0.5}', 'value'), 0::bigint, 'two classes match');
SELECT is(pg_temp.mismatches('{0.1,0.2,0.3,0.4,0.5,0.6,0.7,0.8}', 'count'), 0::bigint, 'nine classes match');
SELECT is((SELECT round(sum(value) FILTER (WHERE segtier.score(value, c) = 3)::numeric / sum(greatest(value, 0))::numeric, 2)
		   FROM v, (SELECT share_cuts(value, '{0.7,0.9}', 'value') c FROM v) x), 0.70, 'A holds about 70 % of the value');

-- fixtures
SELECT is((SELECT share_cuts(x, '{0.7,0.9}', 'value') FROM unnest('{100,50,20,10,10,5,3,1,0,-5}'::float8[]) x),
	'{5,20}'::float8[], 'hand-computed ABC: A {100,50}, B {20,10,10} (10 starts at 170/199 < 0.9), C the rest');
SELECT is((SELECT share_cuts(x, '{0.01,0.05,0.2}', 'count') FROM unnest('{100,50,20,10,10,5,3,1,0,-5}'::float8[]) x),
	'{20,50,50}'::float8[], 'an empty tier repeats the cut above it');
SELECT is((SELECT share_cuts(x, '{0.7,0.9}', 'value') FROM unnest('{7,7,7}'::float8[]) x),
	'{-Infinity,-Infinity}'::float8[], 'all equal values: all in the top class');
SELECT is((SELECT share_cuts(x, '{0.7,0.9}', 'value') FROM unnest('{42}'::float8[]) x),
	'{-Infinity,-Infinity}'::float8[], 'a single customer is in the top class');
SELECT is((SELECT share_cuts(x, '{0.7,0.9}', 'value') FROM unnest('{}'::float8[]) x), NULL, 'empty input: NULL');
SELECT is((SELECT share_cuts(x, '{0.5}', 'count')::text FROM unnest('{-0,10,-0,5,0}'::float8[]) x), '{0}',
	'a cut in a block of zeros (-0 among them) is 0');

-- parallel == serial
CREATE FUNCTION pg_temp.plan(q text) RETURNS SETOF text LANGUAGE plpgsql AS $$
BEGIN
	RETURN QUERY EXECUTE 'EXPLAIN (COSTS OFF) ' || q;
END $$;
ALTER TABLE v SET (parallel_workers = 2);
SET LOCAL parallel_setup_cost = 0;
SET LOCAL parallel_tuple_cost = 0;
SET LOCAL min_parallel_table_scan_size = 0;
SET LOCAL max_parallel_workers_per_gather = 2;
SELECT ok((SELECT bool_or(p ~ 'Partial Aggregate') FROM pg_temp.plan('SELECT segtier.share_cuts(value, ''{0.7,0.9}'', ''value'') FROM v') p),
	'EXPLAIN shows a Partial Aggregate');
CREATE TEMP TABLE par AS SELECT share_cuts(value, '{0.7,0.9}', 'value') AS c FROM v;
SET LOCAL max_parallel_workers_per_gather = 0;
SELECT is((SELECT share_cuts(value, '{0.7,0.9}', 'value') FROM v), (SELECT c FROM par), 'parallel equals serial');

-- errors
SELECT throws_ok($$SELECT segtier.share_cuts(1, '{0.9,0.7}', 'value')$$, '22023',
	'share boundaries must be strictly ascending and between 0 and 1', 'unsorted bounds');
SELECT throws_ok($$SELECT segtier.share_cuts(1, '{0.7}', 'margin')$$, '22023', 'unknown share basis "margin"', 'unknown basis');
SELECT throws_ok($$SELECT segtier.share_cuts('Infinity', '{0.7}', 'value')$$, '22023',
	'cannot rank non-finite value Infinity by share', 'infinite values');

SELECT * FROM finish();
ROLLBACK;
