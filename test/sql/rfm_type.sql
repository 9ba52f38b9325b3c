-- the rfm type: input forms, output, accessors, ordering
SET search_path = public, segtier;
SELECT v::segtier.rfm AS rfm
FROM (VALUES ('543'), ('5-4-3'), ('R5F4M3'), ('r5f4m3'), ('  111  '), ('999/9'),
			 ('1-2-1/2'), ('R2f1M2/2'), ('555/5')) AS t(v);
SELECT segtier.rfm(5, 4, 3), segtier.rfm(1, 2, 3, 3) AS scale3,
	   segtier.rfm_r('543'), segtier.rfm_f('543'), segtier.rfm_m('543'), segtier.rfm_scale('543/7');
SELECT v FROM unnest('{345,543,534,111,155,511,544}'::segtier.rfm[]) AS v ORDER BY v;
SELECT '5-4-3'::segtier.rfm = '543'::segtier.rfm AS same, '543'::segtier.rfm = '543/7'::segtier.rfm AS other_scale;
-- every accepted form, with and without a scale
SELECT v AS input, v::segtier.rfm AS rfm, segtier.rfm_scale(v::segtier.rfm) AS scale
FROM (VALUES ('5-4-3/7'), ('R5F4M3/7'), ('r1f2m2/2'), (' 9-9-9/9 '), ('543/5')) AS t(v);
-- the errors a user sees
SELECT '5-43'::segtier.rfm;
SELECT 'R5F4'::segtier.rfm;
SELECT '543/10'::segtier.rfm;
SELECT '643'::segtier.rfm;
SELECT '413/3'::segtier.rfm;
SELECT '543/1'::segtier.rfm;
SELECT segtier.rfm(1, 1, 1, 10);
SELECT segtier.rfm(0, 1, 1);
-- binary form: version byte, r, f, m, scale
SELECT segtier.rfm_send('543'), segtier.rfm_send('123/3');
-- NULL in, NULL out
SELECT segtier.rfm(NULL, 1, 1) IS NULL AS rfm_null, segtier.rfm_r(NULL) IS NULL AS r_null;
