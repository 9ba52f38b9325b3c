-- the tier type: schemes, text form, order, labels, errors
SET search_path = public, segtier;
-- the built-in schemes, each level in order, with its labels
SELECT tier_scheme(t) AS scheme, tier_name(t) AS level, tier_rank(t) AS rank,
	   tier_label(t) AS en, tier_label(t, 'zh') AS zh, t
FROM (SELECT s.name AS scheme, (s.name || ':' || l.name)::tier AS t
	  FROM tier_level l JOIN tier_scheme s USING (scheme_id) WHERE s.builtin) x
ORDER BY scheme, t;
SELECT '  pyramid:gold '::tier AS spaces, tier('value', 'A') AS constructed,
	   'pyramid:silver'::tier < 'pyramid:gold' AS lt, 'value:A'::tier > 'value:C' AS gt,
	   'pyramid:gold'::tier = 'value:A' AS eq_other_scheme;
-- errors
SELECT 'pyramid'::tier;
SELECT 'nope:gold'::tier;
SELECT 'pyramid:platinum'::tier;
SELECT 'pyramid:gold'::tier < 'value:A'::tier;
SELECT tier_label('pyramid:gold', 'fr');
-- a user-defined scheme, inside a transaction that is rolled back
BEGIN;
INSERT INTO tier_scheme (name, description) VALUES ('membership', 'membership card');
INSERT INTO tier_level (scheme_id, name, rank, label_en)
SELECT scheme_id, l, r, en FROM tier_scheme,
	(VALUES ('普通', 10, 'Regular'), ('银卡', 20, 'Silver card'), ('金卡', 30, 'Gold card'), ('黑卡', 40, 'Black card')) v(l, r, en)
WHERE name = 'membership';
SELECT t, tier_rank(t) AS rank, tier_label(t) AS en, tier_label(t, 'zh') AS zh
FROM unnest('{membership:金卡,membership:黑卡,membership:普通,membership:银卡}'::tier[]) t ORDER BY t;
DELETE FROM tier_level WHERE name = '普通';
ROLLBACK;
BEGIN;
INSERT INTO tier_scheme (name) VALUES ('membership');
INSERT INTO tier_level (scheme_id, name, rank) SELECT scheme_id, '普通', 10 FROM tier_scheme WHERE name = 'membership';
UPDATE tier_level SET rank = 5 WHERE name = '普通';
ROLLBACK;
BEGIN;
UPDATE tier_level SET name = 'platinum', label_en = 'Platinum' WHERE name = 'vip';
SELECT t, tier_label(t) FROM unnest('{pyramid:gold,pyramid:platinum}'::tier[]) t ORDER BY t DESC;
ROLLBACK;
SELECT 'pyramid:vip'::tier;
