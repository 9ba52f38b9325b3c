BEGIN;
SET search_path = public, segtier;
SELECT plan(10);

-- found by review: each of these once gave a wrong answer, hung or lost data
SELECT throws_ok($$SELECT segtier.lifecycle_stage('1990-01-01', '1990-01-01', 3, 'infinity')$$, '22023',
	'lifecycle times must be finite', 'an infinite as-of time is refused (it used to overflow)');
SELECT throws_ok($$SELECT segtier.lifecycle_stage('2024-01-01', '2024-03-01', 3, '2024-02-01')$$, '22023',
	'last purchase is after the as-of time', 'a last purchase after as_of is refused');
SELECT ok(abs(expected_purchases(row(0.5, 1, 0.5, 0.5, 0, 0)::bgnbd, 10)
			  - (expected_purchases(row(0.5, 1, 0.5, 0.50000001, 0, 0)::bgnbd, 10))) < 1e-6,
	'E[X(t)] is finite and continuous where a + b + x - 1 = 0');
SELECT ok(expected_purchases(row(0.5, 1, 0.5, 0.5, 0, 0)::bgnbd, 10, 0, 0, 5) > 0,
	'and so is the conditional expectation');
SELECT throws_ok($$SELECT segtier.clv(row(0.5, 1, 0.8, 2, 0, 0)::segtier.bgnbd, row(6, 4, 15, 0, 0, 0)::segtier.gamma_gamma,
	1, 1, 2, 10, 1e10, 0.01)$$, '22023', 'horizon must be at most 12000 months', 'an endless CLV horizon is refused');
SELECT throws_ok($$SELECT '0;0;1,1,2,9223372036854775807;1,1,2,1'::segtier.bgnbd_state$$, '22003',
	'customer count of an aggregate state is out of range', 'a count overflow is an error, not lost data');
SELECT throws_ok($$SELECT segtier.gamma_gamma_combine('0;9223372036854775807', '0;1')$$, '22003',
	'skipped count of an aggregate state is out of range', 'a skipped count overflow is an error, not a negative count');
SELECT is('0;0;1,0,5e-324,1'::segtier.bgnbd_state::text::segtier.bgnbd_state::text, '0;0;1,0,5e-324,1',
	'subnormal values round-trip through the text form');
SELECT is((SELECT share_cuts(x, '{0.5}', 'value') FROM unnest('{1.7e308,1.6e308,1.5e308,1e300}'::float8[]) x),
	'{1.5e+308}'::float8[], 'shares of values whose total overflows a float8');
SELECT throws_ok($$SELECT segtier.cuts(x, NULL) FROM (VALUES (1.0::float8)) v(x)$$, '22004',
	'number of groups must not be NULL', 'NULL parameters are 22004 like the other aggregates');

SELECT * FROM finish();
ROLLBACK;
