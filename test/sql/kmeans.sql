-- the kmeans aggregate and nearest_centroid: blobs recovered exactly,
-- deterministic in any input order and parallel plan
SET search_path = public, segtier;

-- three well-separated blobs in 3-D, 1000 points each, offsets within 0.5
CREATE TABLE blobs AS
SELECT g, b AS blob,
	ARRAY[CASE b WHEN 1 THEN 0 WHEN 2 THEN 10 ELSE -20 END + ((g * 7919) % 1000) / 1000.0 - 0.5,
		  CASE b WHEN 1 THEN 0 WHEN 2 THEN -10 ELSE 5 END + ((g * 104729) % 997) / 997.0 - 0.5,
		  CASE b WHEN 1 THEN 0 WHEN 2 THEN 5 ELSE 30 END + ((g * 1299709::bigint) % 991) / 991.0 - 0.5]::float8[] AS f
FROM generate_series(1, 3000) g, LATERAL (SELECT g % 3 + 1 AS b) bb;
CREATE TABLE blob_centroids AS SELECT kmeans(f, 3, 42) AS c FROM blobs;
-- rows ordered by first coordinate: the (-20,5,30) blob, then (0,0,0), then (10,-10,5)
SELECT array_dims(c), round(c[1][1]::numeric, 1) AS x1, round(c[1][2]::numeric, 1) AS y1, round(c[1][3]::numeric, 1) AS z1,
	round(c[2][1]::numeric, 1) AS x2, round(c[3][1]::numeric, 1) AS x3 FROM blob_centroids;
-- every point goes to its own blob's centroid, and each centroid is its blob's mean
SELECT blob, nearest_centroid(f, c) AS cluster, count(*)
FROM blobs, blob_centroids GROUP BY 1, 2 ORDER BY 1, 2;
SELECT bool_and(abs(m.x - c.c[cl][1]) < 1e-9 AND abs(m.y - c.c[cl][2]) < 1e-9 AND abs(m.z - c.c[cl][3]) < 1e-9) AS centroids_are_means
FROM blob_centroids c, LATERAL (SELECT nearest_centroid(f, c.c) AS cl, avg(f[1]) x, avg(f[2]) y, avg(f[3]) z
	FROM blobs GROUP BY 1) m;
-- the same twice, in any input order, with other seeds
SELECT (SELECT kmeans(f, 3, 42) FROM (SELECT f FROM blobs ORDER BY g) s) = c AS ordered,
	(SELECT kmeans(f, 3, 42) FROM (SELECT f FROM blobs ORDER BY f[2] DESC, g) s) = c AS reversed,
	(SELECT kmeans(f, 3, 42) FROM blobs) = c AS again,
	(SELECT kmeans(f, 3, 7) FROM blobs) = c AS seed_7
FROM blob_centroids;
-- seed defaults to 0
SELECT (SELECT kmeans(f, 3) FROM blobs) = (SELECT kmeans(f, 3, 0) FROM blobs) AS default_seed_0;

-- hand-sized cases: four points on a line, two clusters; duplicates weigh
SELECT kmeans(ARRAY[v]::float8[], 2) FROM unnest('{0,1,10,11}'::float8[]) v;
SELECT kmeans(ARRAY[v]::float8[], 2) FROM unnest('{0,0,0,3,10}'::float8[]) v;
SELECT kmeans(ARRAY[x, y]::float8[], 1) FROM (VALUES (0, 0), (2, 0), (1, 3)) t(x, y);
-- fewer distinct points than k: one centroid per distinct point, sorted
SELECT kmeans(ARRAY[x, y]::float8[], 5) FROM (VALUES (3, 1), (1, 2), (3, 1), (1, -2)) t(x, y);
-- NULL rows skipped; no rows or only NULL rows give NULL
SELECT kmeans(f, 2) FROM (VALUES ('{1,1}'::float8[]), (NULL), ('{5,5}')) t(f);
SELECT kmeans(f, 2) IS NULL AS only_nulls FROM (VALUES (NULL::float8[])) t(f);
SELECT kmeans(f, 2) IS NULL AS empty FROM blobs WHERE false;
-- nearest_centroid: ties go to the lowest row
SELECT nearest_centroid('{0,0}', '{{1,0},{-1,0},{0,0.5}}') AS nearest,
	nearest_centroid('{0,0}', '{{1,0},{-1,0}}') AS tie;

-- parallel == serial
ALTER TABLE blobs SET (parallel_workers = 2);
ANALYZE blobs;
SET parallel_setup_cost = 0;
SET parallel_tuple_cost = 0;
SET min_parallel_table_scan_size = 0;
SET max_parallel_workers_per_gather = 2;
EXPLAIN (COSTS OFF) SELECT k = (SELECT c FROM blob_centroids) FROM (SELECT kmeans(f, 3, 42) AS k FROM blobs) p;
SELECT k = (SELECT c FROM blob_centroids) AS parallel_same_as_serial FROM (SELECT kmeans(f, 3, 42) AS k FROM blobs) p;
RESET ALL;
DROP TABLE blobs, blob_centroids;
