BEGIN;
SET search_path = public, segtier;
SELECT plan(39);

SELECT throws_ok($$SELECT segtier.kmeans('{1}'::float8[], 0)$$,
	'22023', 'k must be at least 1', 'k = 0');
SELECT throws_ok($$SELECT segtier.kmeans(NULL::float8[], -3, 1)$$,
	'22023', 'k must be at least 1', 'k is checked even for a NULL row');
SELECT throws_ok($$SELECT segtier.kmeans(f, k) FROM (VALUES ('{1}'::float8[], 2), ('{2}', 3)) t(f, k)$$,
	'22023', 'k must be the same in every row', 'k varying');
SELECT throws_ok($$SELECT segtier.kmeans(f, 2, s) FROM (VALUES ('{1}'::float8[], 1), ('{2}', 2)) t(f, s)$$,
	'22023', 'seed must be the same in every row', 'seed varying');
SELECT throws_ok($$SELECT segtier.kmeans(f, 2, NULL) FROM (VALUES ('{1}'::float8[])) t(f)$$,
	'22004', 'k and seed must not be NULL', 'NULL seed');
SELECT throws_ok($$SELECT segtier.kmeans(f, 2) FROM (VALUES ('{1,2}'::float8[]), (NULL), ('{3}')) t(f)$$,
	'22023', 'all feature arrays must have the same length', 'dimension varying');
SELECT throws_ok($$SELECT segtier.kmeans('{1,NULL}'::float8[], 2)$$,
	'22023', 'features must not contain NULLs', 'NULL element');
SELECT throws_ok($$SELECT segtier.kmeans('{1,NaN}'::float8[], 2)$$,
	'22023', 'features must not contain NaN or infinity', 'NaN element');
SELECT throws_ok($$SELECT segtier.kmeans('{-Infinity,1}'::float8[], 2)$$,
	'22023', 'features must not contain NaN or infinity', 'infinite element');
SELECT throws_ok($$SELECT segtier.kmeans('{}'::float8[], 2)$$,
	'22023', 'features must not be empty', 'empty features');
SELECT throws_ok($$SELECT segtier.kmeans('{{1,2}}'::float8[], 2)$$,
	'22023', 'features must be a one-dimensional array', 'two-dimensional features');
SELECT throws_ok($$SELECT segtier.kmeans(ARRAY[v], 2) FROM unnest('{1e300,-1e300,0}'::float8[]) v$$,
	'22003', 'feature values are too large for k-means', 'squared distances overflow');
SELECT throws_ok($$SELECT segtier.kmeans(ARRAY[v], 1) FROM unnest('{1e308,1.5e308,1.7e308}'::float8[]) v$$,
	'22003', 'feature values are too large for k-means', 'a cluster''s sum overflows');
SELECT throws_ok($$SELECT segtier.kmeans_combine('k=2 seed=0 d=1 {1}', 'k=2 seed=0 d=2 {1,2}')$$,
	'22023', 'all feature arrays must have the same length', 'combining states of different d');

SELECT throws_ok($$SELECT segtier.nearest_centroid('{1,2}', '{{1,2,3}}')$$,
	'22023', 'dimension mismatch between features and centroids', 'nearest_centroid dimension mismatch');
SELECT throws_ok($$SELECT segtier.nearest_centroid('{1,2}', '{1,2}')$$,
	'22023', 'centroids must be a two-dimensional array', 'nearest_centroid with a flat array');
SELECT throws_ok($$SELECT segtier.nearest_centroid('{1,2}', '{{1,NULL}}')$$,
	'22023', 'centroids must not contain NULLs', 'nearest_centroid with a NULL centroid element');
SELECT is(segtier.nearest_centroid('{2.9}', '{{1},{3},{2.9}}'), 3, 'exact hit');
SELECT is(segtier.nearest_centroid(NULL, '{{1}}'), NULL, 'nearest_centroid is strict');

-- the state type
SELECT is(segtier.kmeans_trans(segtier.kmeans_trans(NULL, '{1,2}', 3, 5), '{-0.5,4}', 3, 5)::text,
	'k=3 seed=5 d=2 {1,2,-0.5,4}', 'transition outside an aggregate builds a state');
SELECT is(segtier.kmeans_final('k=2 seed=0 d=1 {0,1,10,11}'), '{{0.5},{10.5}}'::float8[], 'final on a typed state');
SELECT throws_ok($$SELECT 'k=2 seed=0 d=2 {1,2,3}'::segtier.kmeans_state$$, '22023',
	'kmeans state has 3 values, which is not a number of points of dimension 2', 'ragged state');
SELECT throws_ok($$SELECT 'k=2 seed=0 {1}'::segtier.kmeans_state$$, '22P02',
	'invalid input syntax for type kmeans_state: "k=2 seed=0 {1}"', 'missing d');

-- the seed matters on data without clear clusters, and only through the seed
CREATE TEMP TABLE grid AS SELECT ARRAY[(g * 37) % 101, (g * 53) % 103]::float8[] AS f FROM generate_series(1, 500) g;
SELECT isnt((SELECT segtier.kmeans(f, 6, 1) FROM grid), (SELECT segtier.kmeans(f, 6, 2) FROM grid),
	'another seed, other centroids');
SELECT is((SELECT segtier.kmeans(f, 6, 1) FROM (SELECT f FROM grid ORDER BY f[2], f[1]) s),
	(SELECT segtier.kmeans(f, 6, 1) FROM (SELECT f FROM grid ORDER BY f[1] DESC) s), 'same seed, any order');
-- each output centroid is the mean of the points nearest to it (a Lloyd fixed point)
SELECT is(count(*), 0::bigint, 'converged: centroids are the means of their points')
FROM (SELECT segtier.kmeans(f, 6, 1) AS c FROM grid) k,
	LATERAL (SELECT segtier.nearest_centroid(f, k.c) AS cl, avg(f[1]) x, avg(f[2]) y FROM grid GROUP BY 1) m
WHERE abs(m.x - k.c[cl][1]) > 1e-9 OR abs(m.y - k.c[cl][2]) > 1e-9;
-- the bounds that let points skip the distances change no step: the
-- centroids that plain Lloyd iterations (0.6.0's full scans) reach, digit
-- for digit, on data that takes many iterations
SELECT is((SELECT segtier.kmeans(ARRAY[((g * 37) % 101) / 7.0 + (g % 7), ((g * 53) % 103) / 11.0 - (g % 5) * 0.5,
									   ((g * 7919) % 1000) / 250.0]::float8[], 7, 3)
		   FROM generate_series(1, 20000) g),
	'{{3.3939055074084403,5.7364347980786325,2.0141076320939324},{4.961993888464454,1.071432912007778,1.9896671122994642},{7.754681986790897,5.906845529391452,1.991970867637745},{10.277126577126529,1.1456617456617455,1.999831339031339},{12.182532244388,5.906946692794877,1.9949053420806016},{15.530303773862677,1.1315542924955477,2.0033857780831323},{16.623757195185757,5.907092907092913,1.9974725274725278}}'::float8[],
	'the centroids of plain Lloyd iterations');

-- the refresh's points: standardized log(1 + x), the SQL formula as reference
SELECT is(segtier._cluster_features(r, f, m, '{1.5,0.7,0.9,0.4,3.1,1.2}'),
	ARRAY[(ln(1 + r) - 1.5) / 0.7, (ln(1 + f) - 0.9) / 0.4, (ln(1 + greatest(m, 0)::float8) - 3.1) / 1.2],
	'_cluster_features equals the SQL formula: ' || r || ', ' || f || ', ' || m)
FROM (VALUES (0::float8, 1::float8, 0.01::numeric), (364.25, 7, 1234.5), (12, 2, -40)) v(r, f, m);
SELECT is(segtier._cluster_features(5, 1, 20, ARRAY[1.2, 0.5, 0.7, 0, 2.0, 0]), ARRAY[(ln(6::float8) - 1.2) / 0.5, 0, 0],
	'a feature with sd 0 is 0');
SELECT throws_ok($$SELECT segtier._cluster_features(5, 1, 20, '{1,2,3}')$$, '22023',
	'standardization must be six numbers: the mean and sd of each feature', 'short standardization');
SELECT is(segtier._cluster_features(NULL, 1, 20, '{0,1,0,1,0,1}'), NULL, 'NULL feature: NULL (the aggregate skips it)');

-- a model whose buyers all bought once (frequency constant) still clusters
CREATE TEMP TABLE once_tx (c int, t timestamptz, a numeric);
INSERT INTO once_tx SELECT i, '2024-01-01 00:00+00'::timestamptz + (i % 7) * interval '20 days', 10 * (i % 5) + 1
FROM generate_series(1, 60) i;
SELECT lives_ok($$SELECT segtier.create_model('once', 'once_tx', 'c', 't', 'a',
	'{"as_of": "2024-06-01 00:00+00", "time_zone": "UTC", "clusters": 3}'); SELECT segtier.refresh('once')$$,
	'refresh with clusters when every buyer has one purchase');
SELECT is((SELECT count(DISTINCT cluster) FROM segtier_data.once_tiers), 3::bigint, 'three clusters, on recency and spend');
SELECT is((SELECT array_agg(DISTINCT (c->'centroid'->>1)::float8) FROM segtier.refresh_runs r, jsonb_array_elements(r.params->'clusters') c
		   WHERE r.model = 'once'), '{0}'::float8[], 'the constant frequency is 0 in every centroid');
-- stddev_pop of equal values leaves a residue that grows with their count
-- (3e-12 of the mean at a million): the statistics test for equality instead
SELECT is((SELECT r.params->'stdz'->>3 FROM segtier.refresh_runs r WHERE r.model = 'once'), '0',
	'its sd is exactly 0');
SELECT ok((SELECT stddev_pop(ln(1 + 1::float8)) FROM generate_series(1, 1000000)) > 0,
	'(a million equal values: stddev_pop is not 0)');

-- every squared distance overflows: an error, as kmeans gives (it returned 1)
SELECT throws_ok($$SELECT nearest_centroid('{1e155,0}', '{{-1e155,0},{0,0}}')$$, '22003',
	'feature values are too large for k-means', 'nearest_centroid when every distance overflows');
SELECT * FROM finish();
ROLLBACK;
