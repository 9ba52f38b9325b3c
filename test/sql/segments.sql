-- rfm11 over all 125 cells on the 1..5 scale: the cells of each segment
SET search_path = public, segtier;
SELECT rfm_segment(rfm(r, f, m)) AS segment,
	   rfm_segment(rfm(r, f, m), 'rfm11', 'zh') AS zh,
	   count(*) AS cells,
	   string_agg(DISTINCT r::text || ((f + m + 1) / 2)::text, ' ') AS r_fm
FROM generate_series(1, 5) r, generate_series(1, 5) f, generate_series(1, 5) m
GROUP BY 1, 2 ORDER BY min(r * 10 + (f + m + 1) / 2);
-- rfm8: the 8 high/low patterns in both languages
SELECT rh, fh, mh, rfm8_segment(rh, fh, mh) AS en, rfm8_segment(rh, fh, mh, 'zh') AS zh
FROM (VALUES (true), (false)) a(rh), (VALUES (true), (false)) b(fh), (VALUES (true), (false)) c(mh)
ORDER BY rh DESC, fh DESC, mh DESC;
-- other scales map onto 1..5 with ceil(score * 5 / n); high means above the midpoint
SELECT v::rfm AS rfm, rfm_segment(v::rfm) AS rfm11, rfm_segment(v::rfm, 'rfm8') AS rfm8
FROM (VALUES ('999/9'), ('111/9'), ('911/9'), ('533/9'), ('222/2'), ('211/2'), ('443/4'), ('233/3')) t(v);
-- lifecycle stages on fixed dates
SELECT stage, lifecycle_stage(f, l, n, '2024-06-30 12:00+00', previous_stage => p) AS got
FROM (VALUES
	('prospect', NULL::timestamptz, NULL::timestamptz, 0::bigint, NULL::text),
	('new', '2024-05-01 10:00+00', '2024-06-01 10:00+00', 2, NULL),
	('active', '2023-01-01 10:00+00', '2024-06-01 10:00+00', 4, NULL),
	('loyal', '2023-01-01 10:00+00', '2024-06-01 10:00+00', 5, NULL),
	('at_risk', '2023-01-01 10:00+00', '2023-12-01 10:00+00', 9, NULL),
	('churned', '2022-01-01 10:00+00', '2023-06-01 10:00+00', 9, NULL),
	('reactivated', '2022-01-01 10:00+00', '2024-06-20 10:00+00', 10, 'churned')
) AS t(stage, f, l, n, p);
-- churn rule
SELECT * FROM churn_rule('{100, 80, 64, 51.2}', 10) AS a,
			  churn_rule('{100, 80, 64, 52}', 200) AS b,
			  churn_rule('{100, 80, 64, 51.2}', 400) AS c;
