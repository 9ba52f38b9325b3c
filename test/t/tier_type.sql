-- segtier.tier: text form and errors, order within a scheme, the error across
-- schemes, accessors and labels, a user-defined scheme, the guards on levels,
-- renames seen at once, binary round trips, btree, hash, NULLs, parallel
-- workers, and scheme changes seen by another, already open session.
BEGIN;
SET search_path = public, segtier;
SET LOCAL client_min_messages = warning;
SELECT plan(152);

CREATE FUNCTION pg_temp.run(sql text) RETURNS void LANGUAGE plpgsql AS $$ BEGIN EXECUTE sql; END $$;
CREATE FUNCTION pg_temp.explain(sql text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
	line text;
	plan text := '';
BEGIN
	FOR line IN EXECUTE 'EXPLAIN (COSTS OFF) ' || sql LOOP
		plan := plan || line || ' ';
	END LOOP;
	RETURN plan;
END $$;

-- The built-in schemes, in order, with their labels.
SELECT results_eq($$
	SELECT tier_scheme(t), tier_name(t), tier_rank(t), tier_label(t), tier_label(t, 'zh')
	FROM (SELECT s.name AS scheme, (s.name || ':' || l.name)::tier AS t
		  FROM tier_level l JOIN tier_scheme s USING (scheme_id) WHERE s.builtin) x
	ORDER BY scheme, t$$,
	$$VALUES ('lifecycle', 'prospect', 1, 'Prospect', '潜在客户'), ('lifecycle', 'new', 2, 'New', '新客户'),
			 ('lifecycle', 'active', 3, 'Active', '活跃客户'), ('lifecycle', 'loyal', 4, 'Loyal', '忠诚客户'),
			 ('lifecycle', 'at_risk', 5, 'At risk', '流失风险客户'), ('lifecycle', 'churned', 6, 'Churned', '流失客户'),
			 ('lifecycle', 'reactivated', 7, 'Reactivated', '回流客户'),
			 ('pyramid', 'bronze', 1, 'Bronze', '铜牌'), ('pyramid', 'silver', 2, 'Silver', '银牌'),
			 ('pyramid', 'gold', 3, 'Gold', '金牌'), ('pyramid', 'vip', 4, 'VIP', '贵宾'),
			 ('value', 'C', 1, 'C class', 'C类客户'), ('value', 'B', 2, 'B class', 'B类客户'),
			 ('value', 'A', 3, 'A class', 'A类客户')$$,
	'built-in schemes: levels in order, ranks, English and Chinese labels');

-- Text form scheme:level, and the constructor.
SELECT is(v::tier::text, want, format('input %s reads as %s', to_json(v), want))
FROM (VALUES ('pyramid:gold', 'pyramid:gold'), ('  pyramid:gold  ', 'pyramid:gold'),
	  ('value:A', 'value:A'), ('lifecycle:at_risk', 'lifecycle:at_risk')) AS t(v, want);
SELECT is(tier('pyramid', 'gold'), 'pyramid:gold'::tier, 'tier(scheme, level)');
SELECT is(tier_label('pyramid:vip'), 'VIP', 'tier_label defaults to en');
SELECT is(CAST('value:B'::text AS tier), 'value:B'::tier, 'cast text -> tier');
CREATE TEMP TABLE tier_text (s text);
INSERT INTO tier_text VALUES ('value:B'::tier);
SELECT is(s, 'value:B', 'assignment cast tier -> text') FROM tier_text;

-- Errors of the text form: 22P02, the message quotes the input.
SELECT throws_ok(format('SELECT %L::segtier.tier', v), '22P02',
				 format('invalid input syntax for type tier: "%s"', v), format('bad tier %s', to_json(v)))
FROM (VALUES ('pyramid'), (''), ('  '), (':gold'), ('pyramid:'), (':'), ('nope:gold'), ('Pyramid:gold'),
	  ('pyramid:Gold'), ('pyramid:platinum'), ('pyramid :gold'), ('pyramid: gold'), ('pyramid:gold:x'),
	  ('value:a'), ('gold')) AS t(v);
SELECT throws_ok($$SELECT segtier.tier('nope', 'gold')$$, '22P02',
				 'invalid input syntax for type tier: "nope:gold"', 'tier() with an unknown scheme');
SELECT throws_ok($$SELECT segtier.tier('value', 'D')$$, '22P02',
				 'invalid input syntax for type tier: "value:D"', 'tier() with an unknown level');

-- Order within a scheme is by rank.
SELECT is(array_agg(t ORDER BY t)::text[],
		  '{lifecycle:prospect,lifecycle:new,lifecycle:active,lifecycle:loyal,lifecycle:at_risk,lifecycle:churned,lifecycle:reactivated}',
		  'lifecycle sorts in its declared order')
FROM unnest('{lifecycle:churned,lifecycle:new,lifecycle:reactivated,lifecycle:prospect,lifecycle:loyal,lifecycle:at_risk,lifecycle:active}'::tier[]) t;
SELECT is(array_agg(t ORDER BY t DESC)::text[], '{value:A,value:B,value:C}', 'value: C < B < A')
FROM unnest('{value:B,value:A,value:C}'::tier[]) t;
SELECT is(ARRAY['pyramid:bronze'::tier < 'pyramid:silver', 'pyramid:gold'::tier < 'pyramid:vip',
				'pyramid:vip'::tier < 'pyramid:gold', 'pyramid:gold'::tier <= 'pyramid:gold',
				'pyramid:gold'::tier > 'pyramid:silver', 'pyramid:gold'::tier >= 'pyramid:vip',
				'pyramid:gold'::tier = 'pyramid:gold', 'pyramid:gold'::tier <> 'pyramid:gold',
				'value:A'::tier > 'value:C'],
		  ARRAY[true, true, false, true, true, false, true, false, true], 'comparison operators within a scheme');
SELECT is(ARRAY[tier_cmp('pyramid:gold', 'pyramid:vip'), tier_cmp('pyramid:gold', 'pyramid:gold'),
				tier_cmp('value:A', 'value:C')], ARRAY[-1, 0, 1], 'tier_cmp');
SELECT is(greatest('pyramid:silver'::tier, 'pyramid:gold', 'pyramid:bronze'), 'pyramid:gold'::tier, 'greatest()');

-- Across schemes: equality answers (false), the order operators raise 22023.
SELECT is(ARRAY['pyramid:gold'::tier = 'value:A', 'pyramid:gold'::tier <> 'value:A'], ARRAY[false, true],
		  'equality across schemes');
SELECT throws_ok(format('SELECT %s', e), '22023',
				 'cannot compare tiers of different schemes: "pyramid:gold" and "value:A"', 'across schemes: ' || e)
FROM (VALUES ($$'pyramid:gold'::segtier.tier < 'value:A'::segtier.tier$$),
	  ($$'pyramid:gold'::segtier.tier <= 'value:A'::segtier.tier$$),
	  ($$'pyramid:gold'::segtier.tier > 'value:A'::segtier.tier$$),
	  ($$'pyramid:gold'::segtier.tier >= 'value:A'::segtier.tier$$)) AS t(e);
SELECT throws_ok($$SELECT count(*) FROM unnest('{value:A,pyramid:gold}'::segtier.tier[]) t WHERE t > 'value:B'$$, '22023',
				 'cannot compare tiers of different schemes: "pyramid:gold" and "value:B"', 'a filter meeting another scheme');
-- The btree order itself is total (scheme, then rank), so that sorting,
-- indexes and ANALYZE work on columns that mix schemes, like a history.
SELECT is(ARRAY[tier_cmp('pyramid:gold', 'value:A'), tier_cmp('value:A', 'pyramid:bronze')], ARRAY[1, -1],
		  'tier_cmp across schemes orders by scheme (value was made before pyramid)');
SELECT is(array_agg(t ORDER BY t)::text[], '{value:B,value:A,pyramid:silver,pyramid:gold}',
		  'ORDER BY over two schemes: by scheme, then rank')
FROM unnest('{pyramid:gold,value:A,pyramid:silver,value:B}'::tier[]) t;
SELECT is(ARRAY[greatest('pyramid:bronze'::tier, 'value:A'), least('pyramid:bronze'::tier, 'value:A')],
		  '{pyramid:bronze,value:A}'::tier[], 'greatest() and least() over two schemes take the btree order');

-- tier_label: 'en' or 'zh' only.
SELECT throws_ok(format('SELECT segtier.tier_label(%L, %L)', 'pyramid:gold', l), '22023',
				 format('unsupported language "%s"', l), format('language %L', l))
FROM (VALUES ('fr'), ('EN'), (''), ('zh-CN'), ('en ')) AS t(l);

-- STRICT: NULL in, NULL out.
SELECT is(x, NULL, 'NULL gives NULL: ' || what)
FROM (VALUES ('tier(NULL, level)', tier(NULL, 'gold')::text), ('tier(scheme, NULL)', tier('pyramid', NULL)::text),
	  ('tier_scheme', tier_scheme(NULL)), ('tier_name', tier_name(NULL)), ('tier_rank', tier_rank(NULL)::text),
	  ('tier_label', tier_label(NULL)), ('tier_label(t, NULL)', tier_label('pyramid:gold', NULL)),
	  ('tier_in', tier_in(NULL)::text), ('tier_out', tier_out(NULL)::text), ('tier_send', tier_send(NULL)::text),
	  ('tier_cmp', tier_cmp(NULL, 'value:A')::text), ('<', (NULL::tier < 'value:A')::text),
	  ('=', ('value:A'::tier = NULL)::text), ('tier_hash', tier_hash(NULL)::text),
	  ('tier_hash_extended', tier_hash_extended('value:A', NULL)::text),
	  ('text cast', NULL::text::tier::text)) AS t(what, x);

-- A user-defined scheme: membership 普通 < 银卡 < 金卡 < 黑卡.
INSERT INTO tier_scheme (name, description) VALUES ('membership', 'membership card');
INSERT INTO tier_level (scheme_id, name, rank, label_en)
SELECT scheme_id, l, r, en FROM tier_scheme,
	(VALUES ('普通', 10, 'Regular'), ('银卡', 20, 'Silver card'), ('金卡', 30, 'Gold card'), ('黑卡', 40, 'Black card')) v(l, r, en)
WHERE name = 'membership';
SELECT is(array_agg(t ORDER BY t)::text[], '{membership:普通,membership:银卡,membership:金卡,membership:黑卡}',
		  'membership sorts 普通 < 银卡 < 金卡 < 黑卡')
FROM unnest('{membership:金卡,membership:黑卡,membership:普通,membership:银卡}'::tier[]) t;
SELECT is(ARRAY[tier_scheme('membership:金卡'), tier_name('membership:金卡'), tier_rank('membership:金卡')::text,
				tier_label('membership:金卡'), tier_label('membership:金卡', 'zh')],
		  ARRAY['membership', '金卡', '3', 'Gold card', '金卡'], 'membership accessors; no zh label falls back to the name');
SELECT ok('membership:黑卡'::tier > 'membership:金卡', 'membership:黑卡 > membership:金卡');
CREATE TABLE members (id int, t tier);
INSERT INTO members SELECT i, (ARRAY['membership:普通', 'membership:银卡', 'membership:金卡', 'membership:黑卡'])[1 + i % 4]::tier
FROM generate_series(1, 400) i;
CREATE INDEX members_t ON members (t);
ANALYZE members;
-- A level added between two others: ranks of stored values and the index stay right.
INSERT INTO tier_level (scheme_id, name, rank, label_en, label_zh)
SELECT scheme_id, '白金卡', 35, 'Platinum card', '白金卡' FROM tier_scheme WHERE name = 'membership';
INSERT INTO members VALUES (401, 'membership:白金卡'), (402, 'membership:白金卡');
SELECT is(ARRAY[tier_rank('membership:金卡'), tier_rank('membership:白金卡'), tier_rank('membership:黑卡')],
		  ARRAY[3, 4, 5], 'a level added between: positions follow the rank');
SET LOCAL enable_seqscan = off;
SET LOCAL enable_bitmapscan = off;
SELECT ok(plan ~ 'Index Only Scan using members_t', 'range on tier uses the btree index: ' || plan)
FROM pg_temp.explain($$SELECT t FROM members WHERE t > 'membership:金卡'$$) plan;
SELECT results_eq($$SELECT t::text AS s, count(*) FROM members WHERE t > 'membership:金卡' GROUP BY t ORDER BY t$$,
	$$VALUES ('membership:白金卡', 2::bigint), ('membership:黑卡', 100::bigint)$$, 'index range scan after adding a level');
SELECT results_eq($$SELECT t::text AS s FROM members WHERE t = 'membership:银卡' LIMIT 1$$,
	$$VALUES ('membership:银卡')$$, 'index equality');
SELECT results_eq($$SELECT t::text AS s FROM members ORDER BY t DESC LIMIT 3$$,
	$$VALUES ('membership:黑卡'), ('membership:黑卡'), ('membership:黑卡')$$, 'index backward scan');
RESET enable_seqscan;
RESET enable_bitmapscan;

-- Levels cannot vanish or move; schemes cannot be removed (55006).
SELECT throws_ok(sql, '55006', msg, what)
FROM (VALUES
	($$DELETE FROM segtier.tier_level WHERE name = '普通'$$, 'tier level "普通" cannot be removed', 'delete a level'),
	($$UPDATE segtier.tier_level SET rank = 45 WHERE name = '普通'$$,
	 'the id, scheme and rank of tier level "普通" cannot change', 'change a rank'),
	($$UPDATE segtier.tier_level SET level_id = level_id + 1000 WHERE name = '普通'$$,
	 'the id, scheme and rank of tier level "普通" cannot change', 'change a level id'),
	($$UPDATE segtier.tier_level SET scheme_id = (SELECT scheme_id FROM segtier.tier_scheme WHERE name = 'value') WHERE name = '普通'$$,
	 'the id, scheme and rank of tier level "普通" cannot change', 'move a level to another scheme'),
	($$DELETE FROM segtier.tier_scheme WHERE name = 'membership'$$,
	 'tier scheme "membership" cannot be removed or renumbered', 'delete a scheme'),
	($$UPDATE segtier.tier_scheme SET scheme_id = scheme_id + 1000 WHERE name = 'membership'$$,
	 'tier scheme "membership" cannot be removed or renumbered', 'renumber a scheme'),
	($$TRUNCATE segtier.tier_level$$, 'segtier tier catalogs cannot be truncated', 'truncate the levels'),
	($$TRUNCATE segtier.tier_scheme CASCADE$$, 'segtier tier catalogs cannot be truncated', 'truncate the schemes')
) AS t(sql, msg, what);
SELECT is((SELECT count(*) FROM tier_level WHERE name = '普通'), 1::bigint, 'the level is still there');

-- Renames and label changes are seen at once by this session.
UPDATE tier_level SET name = '钻石卡', label_en = 'Diamond card' WHERE name = '黑卡';
SELECT is((SELECT t::text FROM members WHERE id = 3), 'membership:钻石卡', 'a stored value shows the new level name');
SELECT is((SELECT tier_label(t) FROM members WHERE id = 3), 'Diamond card', 'and the new label');
SELECT is('membership:钻石卡'::tier, (SELECT t FROM members WHERE id = 3), 'the new name reads as the same value');
SELECT throws_ok($$SELECT 'membership:黑卡'::segtier.tier$$, '22P02',
				 'invalid input syntax for type tier: "membership:黑卡"', 'the old name is gone');
UPDATE tier_scheme SET name = 'member' WHERE name = 'membership';
SELECT is((SELECT t::text FROM members WHERE id = 3), 'member:钻石卡', 'a renamed scheme is seen at once');
SELECT is(tier_scheme((SELECT t FROM members WHERE id = 1)), 'member', 'tier_scheme of a stored value');
UPDATE tier_scheme SET name = 'membership' WHERE name = 'member';

-- A level added in a rolled back subtransaction disappears again.
SAVEPOINT before_level;
INSERT INTO tier_level (scheme_id, name, rank) SELECT scheme_id, '铜卡', 15 FROM tier_scheme WHERE name = 'membership';
SELECT is(tier_rank('membership:铜卡'), 2, 'a new level is usable in its own transaction');
ROLLBACK TO SAVEPOINT before_level;
SELECT throws_ok($$SELECT 'membership:铜卡'::segtier.tier$$, '22P02', NULL, 'and gone after ROLLBACK TO SAVEPOINT');
SELECT is(tier_rank('membership:银卡'), 2, 'positions are back');

-- Binary: a version byte 0, then the text form.
SELECT is(tier_send('pyramid:gold'), '\x00'::bytea || convert_to('pyramid:gold', 'UTF8'), 'tier_send');
SELECT is(tier_send('membership:金卡'), '\x00'::bytea || convert_to('membership:金卡', 'UTF8'), 'tier_send of a UTF-8 name');
CREATE TEMP TABLE all_tiers AS
SELECT (s.name || ':' || l.name)::tier AS t FROM tier_level l JOIN tier_scheme s USING (scheme_id);
CREATE TEMP TABLE tier_copy (t tier);
CREATE FUNCTION pg_temp.copy_file(tag text) RETURNS text LANGUAGE sql AS
$$ SELECT format('/tmp/segtier_tier_%s_%s_%s.copy', current_setting('port'), pg_backend_pid(), tag) $$;
SELECT pg_temp.run(format('COPY all_tiers TO %L (FORMAT binary)', pg_temp.copy_file('all')));
SELECT pg_temp.run(format('COPY tier_copy FROM %L (FORMAT binary)', pg_temp.copy_file('all')));
SELECT is((SELECT count(*) FROM tier_copy), 19::bigint, 'binary COPY read back all 19 levels');
SELECT is_empty($$(SELECT t FROM all_tiers EXCEPT ALL SELECT t FROM tier_copy)
	UNION ALL (SELECT t FROM tier_copy EXCEPT ALL SELECT t FROM all_tiers)$$, 'binary COPY round trip');
CREATE FUNCTION pg_temp.copy_bad(tag text, field bytea) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
	lo oid;
BEGIN
	lo := lo_from_bytea(0, '\x5047434f50590aff0d0a00'::bytea || '\x0000000000000000'::bytea
		|| '\x0001'::bytea || int4send(length(field)) || field || '\xffff'::bytea);
	PERFORM lo_export(lo, pg_temp.copy_file(tag));
	PERFORM lo_unlink(lo);
	EXECUTE format('COPY tier_copy FROM %L (FORMAT binary)', pg_temp.copy_file(tag));
END $$;
SELECT lives_ok(format('SELECT pg_temp.copy_bad(%L, %L)', 'good', '\x00'::bytea || convert_to('value:A', 'UTF8')),
				'a crafted valid field is read');
SELECT is((SELECT count(*) FROM tier_copy WHERE t = 'value:A'), 2::bigint, 'the crafted value is value:A');
SELECT throws_ok(format('SELECT pg_temp.copy_bad(%L, %L)', tag, field), code, msg, 'tier_recv rejects ' || tag)
FROM (VALUES ('version', '\x01'::bytea || convert_to('value:A', 'UTF8'), '22P03', 'unsupported binary tier version 1'),
	  ('level', '\x00'::bytea || convert_to('value:Z', 'UTF8'), '22P02', 'invalid input syntax for type tier: "value:Z"'),
	  ('colon', '\x00'::bytea || convert_to('valueA', 'UTF8'), '22P02', 'invalid input syntax for type tier: "valueA"'),
	  ('empty', '\x'::bytea, '08P01', 'no data left in message')) AS t(tag, field, code, msg);
SELECT pg_temp.run(format('COPY (SELECT 1 WHERE false) TO PROGRAM %L', 'rm -f ' || pg_temp.copy_file('*')));  -- no rows: rm never reads, so nothing can break the pipe

-- Hash joins, GROUP BY and DISTINCT (hashed and sorted).
CREATE TABLE pyr AS SELECT i, (ARRAY['pyramid:bronze', 'pyramid:silver', 'pyramid:gold', 'pyramid:vip'])[1 + i % 4]::tier AS t
FROM generate_series(0, 999) i;
ANALYZE pyr;
SET LOCAL enable_mergejoin = off;
SET LOCAL enable_nestloop = off;
SELECT ok(plan ~ 'Hash Join', 'join on tier = tier is a hash join: ' || plan)
FROM pg_temp.explain('SELECT * FROM pyr a JOIN all_tiers b ON a.t = b.t') plan;
SELECT is((SELECT count(*) FROM pyr a JOIN all_tiers b ON a.t = b.t), 1000::bigint, 'hash join matches every row once');
SELECT is((SELECT count(*) FROM members a JOIN all_tiers b ON a.t = b.t WHERE tier_name(b.t) = '钻石卡'), 100::bigint,
		  'hash join on the user-defined scheme');
RESET enable_mergejoin;
RESET enable_nestloop;
SET LOCAL enable_sort = off;
SELECT ok(plan ~ 'HashAggregate', 'GROUP BY hashes: ' || plan)
FROM pg_temp.explain('SELECT t, count(*) FROM pyr GROUP BY t') plan;
SELECT results_eq($$SELECT t::text AS s, count(*) FROM pyr GROUP BY t ORDER BY t$$,
	$$VALUES ('pyramid:bronze', 250::bigint), ('pyramid:silver', 250::bigint), ('pyramid:gold', 250::bigint), ('pyramid:vip', 250::bigint)$$,
	'hashed GROUP BY');
SELECT is((SELECT count(*) FROM (SELECT DISTINCT t FROM members) d), 5::bigint, 'hashed DISTINCT');
RESET enable_sort;
SET LOCAL enable_hashagg = off;
SELECT ok(plan ~ 'GroupAggregate', 'GROUP BY sorts: ' || plan)
FROM pg_temp.explain('SELECT t, count(*) FROM pyr GROUP BY t') plan;
SELECT results_eq($$SELECT t::text AS s, count(*) FROM pyr GROUP BY t ORDER BY t$$,
	$$VALUES ('pyramid:bronze', 250::bigint), ('pyramid:silver', 250::bigint), ('pyramid:gold', 250::bigint), ('pyramid:vip', 250::bigint)$$,
	'sorted GROUP BY');
SELECT is((SELECT count(*) FROM (SELECT DISTINCT t FROM members) d), 5::bigint, 'sorted DISTINCT');
RESET enable_hashagg;
CREATE INDEX pyr_t ON pyr (t);
SET LOCAL enable_seqscan = off;
SET LOCAL enable_bitmapscan = off;
SELECT ok(plan ~ 'Index Only Scan using pyr_t', 'tier equality uses the btree index: ' || plan)
FROM pg_temp.explain($$SELECT t FROM pyr WHERE t = 'pyramid:gold'$$) plan;
SELECT is((SELECT count(*) FROM pyr WHERE t >= 'pyramid:gold'), 500::bigint, 'index range count');
RESET enable_seqscan;
RESET enable_bitmapscan;
SELECT is_empty($$SELECT t FROM all_tiers WHERE tier_hash_extended(t, 0) & 4294967295 <> tier_hash(t)::bigint & 4294967295$$,
				'tier_hash_extended(t, 0) and tier_hash(t) agree');

-- Parallel workers start with an empty cache and read the tier tables
-- themselves (including this transaction's own, uncommitted scheme).
CREATE TABLE par AS SELECT i, (ARRAY['pyramid:gold', 'membership:金卡', 'value:A', 'lifecycle:new'])[1 + i % 4]::tier AS t
FROM generate_series(0, 19999) i;
ALTER TABLE par SET (parallel_workers = 2);
SELECT lives_ok('ANALYZE par', 'ANALYZE of a column that mixes schemes');
SELECT is((SELECT n_distinct FROM pg_stats WHERE tablename = 'par' AND attname = 't'), 4::real, 'and its statistics');
CREATE INDEX par_t ON par (t);
SET LOCAL enable_seqscan = off;
SET LOCAL enable_bitmapscan = off;
SELECT ok(plan ~ 'Index Only Scan using par_t', 'an index on a mixed column: ' || plan)
FROM pg_temp.explain($$SELECT t FROM par WHERE t = 'membership:金卡'$$) plan;
SELECT is((SELECT count(*) FROM par WHERE t = 'membership:金卡'), 5000::bigint, 'index equality in a mixed column');
SELECT is((SELECT count(*) FROM par WHERE t IN ('value:A', 'lifecycle:new')), 10000::bigint, 'index IN list in a mixed column');
RESET enable_seqscan;
RESET enable_bitmapscan;
DROP INDEX par_t;
SET LOCAL parallel_setup_cost = 0;
SET LOCAL parallel_tuple_cost = 0;
SET LOCAL min_parallel_table_scan_size = 0;
SET LOCAL max_parallel_workers_per_gather = 2;
SET LOCAL parallel_leader_participation = off;
CREATE FUNCTION pg_temp.explain_analyze(sql text) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
	line text;
	plan text := '';
BEGIN
	FOR line IN EXECUTE 'EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, SUMMARY OFF) ' || sql LOOP
		plan := plan || line || ' ';
	END LOOP;
	RETURN plan;
END $$;
SELECT ok(plan ~ 'Workers Launched: [12].*Parallel Seq Scan', 'tier functions run in parallel workers: ' || plan)
FROM pg_temp.explain_analyze($$SELECT count(*) FROM par WHERE tier_label(t, 'zh') IN ('金牌', '金卡')$$) plan;
SELECT is((SELECT count(*) FROM par WHERE tier_label(t, 'zh') IN ('金牌', '金卡')), 10000::bigint, 'labels read in workers');
SELECT is((SELECT count(*) FROM par WHERE tier_scheme(t) || tier_rank(t) IN ('value3', 'lifecycle2')), 10000::bigint,
		  'schemes and ranks read in workers');
SELECT is((SELECT count(*) FROM par WHERE t::text = 'membership:金卡'), 5000::bigint, 'output in workers');
RESET parallel_leader_participation;

-- Scheme changes are seen by another session that is already open.  The
-- changes must be committed, so they happen in a scratch database through
-- dblink (which commits each statement), and the database is dropped after.
CREATE EXTENSION dblink;
CREATE FUNCTION pg_temp.conninfo(db text) RETURNS text LANGUAGE sql AS $$
	SELECT format('host=%s port=%s user=%s dbname=%s',
				  split_part(current_setting('unix_socket_directories'), ',', 1),
				  current_setting('port'), current_user, db) $$;
SELECT is(dblink_connect('admin', pg_temp.conninfo(current_database())), 'OK', 'admin connection');
SELECT is(dblink_exec('admin', 'DROP DATABASE IF EXISTS segtier_tier_scratch WITH (FORCE)'), 'DROP DATABASE', 'no scratch database left');
SELECT is(dblink_exec('admin', 'CREATE DATABASE segtier_tier_scratch'), 'CREATE DATABASE', 'scratch database');
SELECT is(dblink_connect('changer', pg_temp.conninfo('segtier_tier_scratch')), 'OK', 'changer session');
SELECT is(dblink_exec('changer', $$
	CREATE EXTENSION segtier;
	INSERT INTO segtier.tier_scheme (name) VALUES ('membership');
	INSERT INTO segtier.tier_level (scheme_id, name, rank)
	SELECT scheme_id, l, r FROM segtier.tier_scheme, (VALUES ('普通', 10), ('银卡', 20), ('金卡', 30), ('黑卡', 40)) v(l, r)
	WHERE name = 'membership';
	CREATE TABLE m (id int PRIMARY KEY, t segtier.tier);
	INSERT INTO m VALUES (1, 'membership:银卡'), (2, 'membership:黑卡')$$), 'INSERT 0 2', 'membership scheme and table');
SELECT is(dblink_connect('reader', pg_temp.conninfo('segtier_tier_scratch') || ' options=-csearch_path=segtier,public'),
		  'OK', 'reader session');
CREATE FUNCTION pg_temp.reader(sql text) RETURNS text LANGUAGE sql AS $$
	SELECT x FROM dblink('reader', sql) AS t(x text) $$;
SELECT is(pg_temp.reader($$SELECT string_agg(t::text || '#' || tier_rank(t), ',' ORDER BY id) FROM m$$),
		  'membership:银卡#2,membership:黑卡#4', 'reader has read the scheme');
-- a new level, while the reader is inside a transaction
SELECT is(dblink_exec('reader', 'BEGIN'), 'BEGIN', 'reader opens a transaction');
SELECT is(pg_temp.reader($$SELECT tier_rank('membership:黑卡')::text$$), '4', 'reader: 黑卡 is 4th');
-- the same statement shape as below, so that no catalog cache miss (which
-- would take a lock and so read the invalidation) precedes the tier input
SELECT is(pg_temp.reader($$SELECT 'membership:金卡'::tier::text$$), 'membership:金卡', 'reader reads a level');
SELECT is(dblink_exec('changer', $$INSERT INTO segtier.tier_level (scheme_id, name, rank)
	SELECT scheme_id, '白金卡', 35 FROM segtier.tier_scheme WHERE name = 'membership'$$), 'INSERT 0 1', 'changer adds 白金卡');
SELECT is(pg_temp.reader($$SELECT 'membership:白金卡'::tier::text$$), 'membership:白金卡',
		  'reader, in its open transaction, reads the new level');
SELECT is(pg_temp.reader($$SELECT ('membership:白金卡'::tier > 'membership:金卡')::text$$), 'true',
		  'and orders it');
SELECT is(pg_temp.reader($$SELECT tier_rank('membership:黑卡')::text$$), '5', 'reader: 黑卡 is now 5th');
SELECT is(dblink_exec('reader', 'COMMIT'), 'COMMIT', 'reader commits');
-- a renamed level and a renamed scheme
SELECT is(dblink_exec('changer', $$UPDATE segtier.tier_level SET name = '钻石卡' WHERE name = '黑卡'$$), 'UPDATE 1',
		  'changer renames 黑卡');
SELECT is(pg_temp.reader('SELECT t::text FROM m WHERE id = 2'), 'membership:钻石卡', 'reader sees the renamed level');
SELECT throws_ok($$SELECT pg_temp.reader('SELECT ''membership:黑卡''::tier::text')$$, '22P02',
				 'invalid input syntax for type tier: "membership:黑卡"', 'reader: the old name is gone');
SELECT is(dblink_exec('changer', $$UPDATE segtier.tier_scheme SET name = 'club' WHERE name = 'membership'$$), 'UPDATE 1',
		  'changer renames the scheme');
SELECT is(pg_temp.reader($$SELECT string_agg(t::text, ',' ORDER BY id) FROM m$$), 'club:银卡,club:钻石卡',
		  'reader sees the renamed scheme');
SELECT is(dblink_exec('changer', $$UPDATE segtier.tier_level SET label_zh = '钻石会员' WHERE name = '钻石卡'$$), 'UPDATE 1',
		  'changer sets a label');
SELECT is(pg_temp.reader($$SELECT tier_label(t, 'zh') FROM m WHERE id = 2$$), '钻石会员', 'reader sees the new label');
SELECT throws_ok($$SELECT dblink_exec('changer', 'DELETE FROM segtier.tier_level WHERE name = ''钻石卡''')$$, '55006',
				 'tier level "钻石卡" cannot be removed', 'changer cannot delete a level');
SELECT is(pg_temp.reader('SELECT t::text FROM m WHERE id = 2'), 'club:钻石卡', 'reader still reads the level');
SELECT is(dblink_disconnect('reader') || dblink_disconnect('changer'), 'OKOK', 'sessions closed');
SELECT is(dblink_exec('admin', 'DROP DATABASE segtier_tier_scratch WITH (FORCE)'), 'DROP DATABASE', 'scratch database dropped');
SELECT is(dblink_disconnect('admin'), 'OK', 'admin connection closed');

-- < <= > >= on a column whose statistics hold several schemes: planning
-- compared the constant with them (an error); one scheme's still estimate
CREATE TEMP TABLE mixed (t tier);
INSERT INTO mixed SELECT unnest('{value:A,pyramid:vip}'::tier[]) FROM generate_series(1, 100);
ANALYZE mixed;
SELECT is((SELECT count(*) FROM (SELECT * FROM mixed WHERE tier_scheme(t) = 'value' OFFSET 0) s WHERE t >= 'value:B'),
	100::bigint, 'an inequality plans on a column whose statistics mix schemes');
CREATE TEMP TABLE one (t tier);
INSERT INTO one SELECT ('value:' || (ARRAY['A', 'B', 'C'])[1 + g % 3])::tier FROM generate_series(1, 3000) g;
ANALYZE one;
CREATE FUNCTION pg_temp.plan_rows(q text) RETURNS int LANGUAGE plpgsql AS $$
DECLARE
	j json;
BEGIN
	EXECUTE 'EXPLAIN (FORMAT JSON) ' || q INTO j;
	RETURN (j->0->'Plan'->>'Plan Rows')::int;
END $$;
SELECT is(pg_temp.plan_rows($$SELECT * FROM one WHERE t >= 'value:B'$$), 2000,
	'one scheme''s statistics estimate an inequality (2 of 3 levels)');
-- A join on tier = tier where one side's statistics mix schemes: the merge
-- join's estimate compares the two sides' values (that raised the error).
SELECT is((SELECT count(*) FROM mixed a JOIN one b ON a.t = b.t), 100000::bigint,
	'a join with a column whose statistics mix schemes plans and runs');
SELECT is((SELECT count(*) FROM mixed a JOIN mixed b USING (t)), 20000::bigint, 'and a self-join of that column');
SET LOCAL enable_hashjoin = off;
SET LOCAL enable_nestloop = off;
SELECT ok(plan ~ 'Merge Join', 'a merge join on it: ' || plan)
FROM pg_temp.explain('SELECT * FROM mixed a JOIN one b ON a.t = b.t') plan;
SELECT is((SELECT count(*) FROM mixed a JOIN one b ON a.t = b.t), 100000::bigint, 'the merge join matches the hash join');
RESET enable_hashjoin;
RESET enable_nestloop;
SELECT throws_ok($$SELECT count(*) FROM mixed WHERE t < 'value:B'$$, '22023',
				 'cannot compare tiers of different schemes: "pyramid:vip" and "value:B"',
				 'the inequality itself still raises the error on such a column');

SELECT * FROM finish();
ROLLBACK;
