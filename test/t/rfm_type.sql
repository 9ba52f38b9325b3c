BEGIN;
SET search_path = public, segtier;
SELECT plan(3);
SELECT is('543'::rfm::text, '543', 'plain form');
SELECT throws_ok($$SELECT 'x'::segtier.rfm$$, '22P02', 'invalid input syntax for type rfm: "x"', 'malformed text');
SELECT is(segtier.rfm(NULL, 1, 1), NULL, 'strict');
SELECT * FROM finish();
ROLLBACK;
