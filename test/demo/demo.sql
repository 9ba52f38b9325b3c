-- make demo: what segtier does, on a generated CRM data set
CREATE EXTENSION segtier;
SET search_path = public, segtier;
SELECT '543'::rfm AS rfm, 'pyramid:gold'::tier AS tier;
