-- segtier.score, and catalog sanity of the extension's functions and types.
BEGIN;
SET search_path = public, segtier;
SELECT plan(48);

-- 1 + the number of cut points strictly below the value.
SELECT is(score(v, '{1,5,10}'), want, format('score(%s, {1,5,10}) = %s', v, want))
FROM (VALUES (-100::float8, 1), (0, 1), (1, 1), (1.000001, 2), (4.999, 2), (5, 2), (5.5, 3),
	  (10, 3), (10.000001, 4), (1e300, 4), ('infinity', 4), ('-infinity', 1)) AS t(v, want);
-- Reversed when lower is better: (len + 2) - that.
SELECT is(score(v, '{1,5,10}', false), want, format('score(%s, {1,5,10}, false) = %s', v, want))
FROM (VALUES (0::float8, 4), (1, 4), (3, 3), (5, 3), (7, 2), (10, 2), (11, 1), ('infinity', 1)) AS t(v, want);
SELECT is(score(v, '{}'), 1, 'empty cuts: everything scores 1') FROM (VALUES (-1::float8), (0), (1e9)) AS t(v);
SELECT is(score(42, '{}', false), 1, 'empty cuts, reversed: 1');
SELECT is(ARRAY[score(4, '{5,5,10}'), score(5, '{5,5,10}'), score(6, '{5,5,10}'), score(6, '{5,5,10}', false)],
		  ARRAY[1, 1, 3, 2], 'equal cuts make an empty group');
SELECT is(ARRAY[score(0, '{0}'), score(-0.0, '{0}'), score(1e-300, '{0}')], ARRAY[1, 1, 2], 'one cut at zero');
SELECT is(score(5, '[0:2]={1,5,10}'), 2, 'array lower bound does not matter');
SELECT is(ARRAY[score(5, '{-infinity,infinity}'), score('-infinity', '{-infinity,infinity}')], ARRAY[2, 1], 'infinite cuts');
SELECT is(score(5, '{1,5,10}', true) + score(5, '{1,5,10}', false), 5, 'score + reversed score = len + 2');

-- The binary search agrees with counting, on 1000 values and 500 cuts.
SELECT is_empty($$
	WITH c AS (SELECT array_agg(round(x::numeric / 7, 2)::float8 ORDER BY x) AS cuts
			   FROM generate_series(1, 1000, 2) x),
		 v AS (SELECT (i * 0.1437)::float8 AS v FROM generate_series(-10, 1000) i)
	SELECT v FROM v, c
	WHERE score(v, cuts) <> 1 + (SELECT count(*) FROM unnest(cuts) u WHERE u < v)
	   OR score(v, cuts, false) <> array_length(cuts, 1) + 1 - (SELECT count(*) FROM unnest(cuts) u WHERE u < v)
$$, 'score agrees with counting the cuts below');

-- Errors.
SELECT throws_ok($$SELECT segtier.score(5, '{10,5,1}')$$, '22023', 'cut points must be in ascending order', 'descending cuts');
SELECT throws_ok($$SELECT segtier.score(5, '{1,5,4.9}')$$, '22023', 'cut points must be in ascending order', 'unsorted cuts');
SELECT throws_ok($$SELECT segtier.score('NaN', '{1,5,10}')$$, '22023', 'cannot score NaN', 'NaN value');
SELECT throws_ok($$SELECT segtier.score('NaN', '{}', false)$$, '22023', 'cannot score NaN', 'NaN value, empty cuts');
SELECT throws_ok($$SELECT segtier.score(5, '{1,NaN}')$$, '22023', 'cut points must not contain NaN', 'NaN cut');
SELECT throws_ok($$SELECT segtier.score(5, '{1,NULL,10}')$$, '22004', 'cut points must not contain NULLs', 'NULL inside cuts');
SELECT throws_ok($$SELECT segtier.score(5, '{NULL}')$$, '22004', 'cut points must not contain NULLs', 'only a NULL cut');
SELECT throws_ok($$SELECT segtier.score(5, '{{1,2},{3,4}}')$$, '22023', 'cut points must be a one-dimensional array',
				 'two-dimensional cuts');

-- NULLs: STRICT.
SELECT is(score(NULL, '{1,5,10}'), NULL, 'NULL value gives NULL');
SELECT is(score(5, NULL), NULL, 'NULL cuts give NULL');
SELECT is(score(5, '{1,5,10}', NULL), NULL, 'NULL direction gives NULL');

-- Catalog sanity: every function of the extension says what it is.
-- (segtier is off the search path here so that names come out qualified.)
SET LOCAL search_path = public;
-- Only triggers, functions that write and the worker's signalling and
-- shared-memory writers may be parallel unsafe; add a function here only
-- with a reason.
SELECT results_eq($$
	SELECT p.oid::regprocedure::text FROM pg_proc p
	JOIN pg_depend d ON d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e'
	JOIN pg_extension e ON e.oid = d.refobjid AND e.extname = 'segtier'
	WHERE p.proparallel <> 's' ORDER BY 1$$,
	$$VALUES ('segtier._alter_model(text,jsonb)'),
			 ('segtier._capture()'),
			 ('segtier._close_stale_runs()'),
			 ('segtier._create_model(text,regclass,name,name,name,jsonb)'),
			 ('segtier._create_relations(text)'),
			 ('segtier._drop_relations(text)'),
			 ('segtier._grant_views(regrole)'),
			 ('segtier._model_check()'),
			 ('segtier._refresh_model(text,boolean,bigint)'),
			 ('segtier._rescore(segtier._scoring,text)'),
			 ('segtier._run_failed(bigint,text)'),
			 ('segtier._run_start(text)'),
			 ('segtier._set_capture(segtier.model,boolean)'),
			 ('segtier._summarize(regclass,text,text,text,timestamp with time zone,timestamp with time zone[])'),
			 ('segtier.alter_model(text,jsonb)'),
			 ('segtier.clear_override(text,text,text)'),
			 ('segtier.create_model(text,regclass,name,name,name,jsonb)'),
			 ('segtier.drop_model(text)'),
			 ('segtier.grant_admin(regrole)'),
			 ('segtier.grant_reader(regrole)'),
			 ('segtier.purge_history(text)'),
			 ('segtier.refresh(text,boolean)'),
			 ('segtier.report_progress(text,text,bigint,bigint)'),
			 ('segtier.report_progress_done()'),
			 ('segtier.set_override(text,text,segtier.tier,text,timestamp with time zone)'),
			 ('segtier.tier_catalog_changed()'),
			 ('segtier.tier_catalog_restore()'),
			 ('segtier.tier_level_guard()'),
			 ('segtier.tier_no_truncate()'),
			 ('segtier.tier_renamed()'),
			 ('segtier.tier_scheme_guard()'),
			 ('segtier.wake()')$$,
	'the functions of the extension that are not PARALLEL SAFE');
SELECT is_empty($$
	SELECT p.oid::regprocedure FROM pg_proc p
	JOIN pg_depend d ON d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e'
	JOIN pg_extension e ON e.oid = d.refobjid AND e.extname = 'segtier'
	WHERE obj_description(p.oid, 'pg_proc') IS NULL
	  AND NOT EXISTS (SELECT 1 FROM pg_type t WHERE p.oid IN (t.typinput, t.typoutput, t.typreceive, t.typsend))$$,
	'every function of the extension but type I/O has a COMMENT');
SELECT is_empty($$
	SELECT t.oid::regtype FROM pg_type t
	JOIN pg_depend d ON d.classid = 'pg_type'::regclass AND d.objid = t.oid AND d.deptype = 'e'
	JOIN pg_extension e ON e.oid = d.refobjid AND e.extname = 'segtier'
	WHERE t.typtype <> 'c' AND t.typelem = 0 AND obj_description(t.oid, 'pg_type') IS NULL$$,
	'every type of the extension has a COMMENT');
-- The flags of the rfm, tier and score functions, one by one.
SELECT set_eq($$
	SELECT p.oid::regprocedure::text, p.provolatile::text, p.proisstrict, p.proparallel::text, p.proleakproof
	FROM pg_proc p WHERE p.pronamespace = 'segtier'::regnamespace
	  AND (p.proname ~ '^(rfm|tier)' OR p.proname = 'score')
	  AND p.proname NOT IN ('rfm_segment', 'rfm8_segment', 'tiers')$$,
	$$VALUES
	('segtier.rfm_in(cstring)', 'i', true, 's', false),
	('segtier.rfm_out(segtier.rfm)', 'i', true, 's', false),
	('segtier.rfm_recv(internal)', 'i', true, 's', false),
	('segtier.rfm_send(segtier.rfm)', 'i', true, 's', false),
	('segtier.rfm(integer,integer,integer,integer)', 'i', true, 's', false),
	('segtier.rfm(text)', 'i', true, 's', false),
	('segtier.rfm_r(segtier.rfm)', 'i', true, 's', false),
	('segtier.rfm_f(segtier.rfm)', 'i', true, 's', false),
	('segtier.rfm_m(segtier.rfm)', 'i', true, 's', false),
	('segtier.rfm_scale(segtier.rfm)', 'i', true, 's', false),
	('segtier.rfm_eq(segtier.rfm,segtier.rfm)', 'i', true, 's', true),
	('segtier.rfm_ne(segtier.rfm,segtier.rfm)', 'i', true, 's', true),
	('segtier.rfm_lt(segtier.rfm,segtier.rfm)', 'i', true, 's', true),
	('segtier.rfm_le(segtier.rfm,segtier.rfm)', 'i', true, 's', true),
	('segtier.rfm_gt(segtier.rfm,segtier.rfm)', 'i', true, 's', true),
	('segtier.rfm_ge(segtier.rfm,segtier.rfm)', 'i', true, 's', true),
	('segtier.rfm_cmp(segtier.rfm,segtier.rfm)', 'i', true, 's', true),
	('segtier.rfm_hash(segtier.rfm)', 'i', true, 's', true),
	('segtier.rfm_hash_extended(segtier.rfm,bigint)', 'i', true, 's', true),
	('segtier.tier_catalog_changed()', 'v', false, 'u', false),
	('segtier.tier_catalog_restore()', 'v', false, 'u', false),
	('segtier.tier_level_guard()', 'v', false, 'u', false),
	('segtier.tier_scheme_guard()', 'v', false, 'u', false),
	('segtier.tier_no_truncate()', 'v', false, 'u', false),
	('segtier.tier_renamed()', 'v', false, 'u', false),
	('segtier.tier_in(cstring)', 's', true, 's', false),
	('segtier.tier_out(segtier.tier)', 's', true, 's', false),
	('segtier.tier_recv(internal)', 's', true, 's', false),
	('segtier.tier_send(segtier.tier)', 's', true, 's', false),
	('segtier.tier(text,text)', 's', true, 's', false),
	('segtier.tier_scheme(segtier.tier)', 's', true, 's', false),
	('segtier.tier_name(segtier.tier)', 's', true, 's', false),
	('segtier.tier_rank(segtier.tier)', 's', true, 's', false),
	('segtier.tier_label(segtier.tier,text)', 's', true, 's', false),
	('segtier.tier_eq(segtier.tier,segtier.tier)', 'i', true, 's', true),
	('segtier.tier_ne(segtier.tier,segtier.tier)', 'i', true, 's', true),
	('segtier.tier_lt(segtier.tier,segtier.tier)', 'i', true, 's', false),
	('segtier.tier_le(segtier.tier,segtier.tier)', 'i', true, 's', false),
	('segtier.tier_gt(segtier.tier,segtier.tier)', 'i', true, 's', false),
	('segtier.tier_ge(segtier.tier,segtier.tier)', 'i', true, 's', false),
	('segtier.tier_cmp(segtier.tier,segtier.tier)', 'i', true, 's', false),
	('segtier.tier_hash(segtier.tier)', 'i', true, 's', true),
	('segtier.tier_hash_extended(segtier.tier,bigint)', 'i', true, 's', true),
	('segtier.tier_ltsel(internal,oid,internal,integer)', 's', true, 's', false),
	('segtier.tier_lesel(internal,oid,internal,integer)', 's', true, 's', false),
	('segtier.tier_gtsel(internal,oid,internal,integer)', 's', true, 's', false),
	('segtier.tier_gesel(internal,oid,internal,integer)', 's', true, 's', false),
	('segtier.score(double precision,double precision[],boolean)', 'i', true, 's', false)$$,
	'volatility, STRICT, PARALLEL and LEAKPROOF of every rfm, tier and score function');
-- Both types have default btree and hash operator classes.
SELECT is((SELECT string_agg(c.opcintype::regtype || ' ' || a.amname, ', ' ORDER BY c.opcintype::regtype::text, a.amname)
		   FROM pg_opclass c JOIN pg_am a ON a.oid = c.opcmethod
		   WHERE c.opcdefault AND c.opcintype IN ('segtier.rfm'::regtype, 'segtier.tier'::regtype)),
		  'segtier.rfm btree, segtier.rfm hash, segtier.tier btree, segtier.tier hash',
		  'default btree and hash operator classes');
SELECT is(typbyval, true, typname || ' is passed by value') FROM pg_type
WHERE oid IN ('segtier.rfm'::regtype, 'segtier.tier'::regtype) ORDER BY typname;

SELECT * FROM finish();
ROLLBACK;
