-- the rfm type: input forms, output, accessors, ordering
SET search_path = public, segtier;
SELECT v::segtier.rfm AS rfm
FROM (VALUES ('543'), ('5-4-3'), ('R5F4M3'), ('r5f4m3'), ('  111  '), ('999/9'),
			 ('1-2-1/2'), ('R2f1M2/2'), ('555/5')) AS t(v);
SELECT segtier.rfm(5, 4, 3), segtier.rfm(1, 2, 3, 3) AS scale3,
	   segtier.rfm_r('543'), segtier.rfm_f('543'), segtier.rfm_m('543'), segtier.rfm_scale('543/7');
SELECT v FROM unnest('{345,543,534,111,155,511,544}'::segtier.rfm[]) AS v ORDER BY v;
SELECT '5-4-3'::segtier.rfm = '543'::segtier.rfm AS same, '543'::segtier.rfm = '543/7'::segtier.rfm AS other_scale;
