-- segtier.rfm: every input form, output, errors, constructor and accessors,
-- text and binary round trips, ordering, btree, hash, NULLs, and a fuzz of
-- rfm_in against an independent (regular expression) oracle.
BEGIN;
SET search_path = public, segtier;
SELECT plan(154);

CREATE FUNCTION pg_temp.run(sql text) RETURNS void LANGUAGE plpgsql AS $$ BEGIN EXECUTE sql; END $$;
CREATE FUNCTION pg_temp.explain(sql text) RETURNS SETOF text LANGUAGE plpgsql AS
$$ BEGIN RETURN QUERY EXECUTE 'EXPLAIN (COSTS OFF) ' || sql; END $$;

-- Input forms and output: 543 (with /n only when n is not 5).
SELECT is(v::rfm::text, want, format('input %s reads as %s', to_json(v), want))
FROM (VALUES
	('543', '543'), ('5-4-3', '543'), ('R5F4M3', '543'), ('r5f4m3', '543'),
	('R5f4M3', '543'), ('r5F4m3', '543'), ('  543  ', '543'),
	(E'\t5-4-3\n', '543'), (' R5F4M3 ', '543'),
	('543/5', '543'), ('5-4-3/5', '543'), ('r5f4m3/5', '543'),
	('543/7', '543/7'), ('5-4-3/7', '543/7'), ('R5F4M3/7', '543/7'),
	(' r5F4m3/7 ', '543/7'), ('  1-2-2/2  ', '122/2'), ('999/9', '999/9'),
	('111/2', '111/2'), ('R1f1M1', '111'), ('555', '555')
) AS t(v, want);

-- Malformed text: 22P02, and the message quotes the input as given.
SELECT throws_ok(format('SELECT %L::segtier.rfm', v), '22P02',
				 format('invalid input syntax for type rfm: "%s"', v),
				 format('malformed %L', v))
FROM (VALUES (''), ('   '), ('x'), ('54'), ('5432'), ('5-43'), ('54-3'),
	  ('5-4-3-'), ('5--4-3'), ('5-4--3'), ('R5F4'), ('R5F4M'), ('F5R4M3'),
	  ('R5M4F3'), ('RFM543'), ('R 5F4M3'), ('R5F4M3x'), ('5 4 3'), ('543/'),
	  ('543 /5'), ('543/ 5'), ('543/x'), ('543//5'), ('-543'),
	  ('5.4.3'), ('R5-F4-M3'), ('543x'), ('x543'), ('５４３'), ('5-4-3/'),
	  ('r5f4m3/'), ('r5f4m3 /7')) AS t(v);

-- A score outside 1..scale: 22003; a scale outside 2..9: 22023.
SELECT throws_ok(format('SELECT %L::segtier.rfm', v), '22003', msg, format('score out of range %L', v))
FROM (VALUES ('043', 'rfm score r = 0 is out of range for scale 5'),
	  ('503', 'rfm score f = 0 is out of range for scale 5'),
	  ('540', 'rfm score m = 0 is out of range for scale 5'),
	  ('643', 'rfm score r = 6 is out of range for scale 5'),
	  ('5-6-3', 'rfm score f = 6 is out of range for scale 5'),
	  ('R5F4M9', 'rfm score m = 9 is out of range for scale 5'),
	  ('999', 'rfm score r = 9 is out of range for scale 5'),
	  ('413/3', 'rfm score r = 4 is out of range for scale 3'),
	  ('1-1-3/2', 'rfm score m = 3 is out of range for scale 2'),
	  ('10-1-1', 'rfm score r = 10 is out of range for scale 5'),
	  ('543-2-1', 'rfm score r = 543 is out of range for scale 5'),
	  ('R1F1M12/9', 'rfm score m = 12 is out of range for scale 9'),
	  ('r1f99999999999m1', 'rfm score f = 2147483647 is out of range for scale 5')) AS t(v, msg);
SELECT throws_ok(format('SELECT %L::segtier.rfm', v), '22023', msg, format('scale out of range %L', v))
FROM (VALUES ('543/0', 'rfm scale 0 is out of range'),
	  ('543/1', 'rfm scale 1 is out of range'),
	  ('111/1', 'rfm scale 1 is out of range'),
	  ('R1F1M1/0', 'rfm scale 0 is out of range'),
	  ('543/10', 'rfm scale 10 is out of range'),
	  ('1-1-1/12345678901', 'rfm scale 2147483647 is out of range')) AS t(v, msg);

-- Constructor: the same checks.
SELECT is(rfm(5, 4, 3), '543'::rfm, 'rfm(5, 4, 3) defaults to scale 5');
SELECT is(rfm(1, 2, 3, 3)::text, '123/3', 'rfm(1, 2, 3, 3)');
SELECT is(rfm(r => 9, f => 1, m => 9, scale => 9)::text, '919/9', 'named arguments');
SELECT is(rfm(2, 2, 2, 2)::text, '222/2', 'smallest scale');
SELECT throws_ok(format('SELECT segtier.rfm(%s)', a), code, msg, format('rfm(%s)', a))
FROM (VALUES ('0, 1, 1', '22003', 'rfm score r = 0 is out of range for scale 5'),
	  ('1, 6, 1', '22003', 'rfm score f = 6 is out of range for scale 5'),
	  ('1, 1, -1', '22003', 'rfm score m = -1 is out of range for scale 5'),
	  ('3, 1, 1, 2', '22003', 'rfm score r = 3 is out of range for scale 2'),
	  ('1, 1, 1, 1', '22023', 'rfm scale 1 is out of range'),
	  ('1, 1, 1, 10', '22023', 'rfm scale 10 is out of range'),
	  ('1, 1, 1, -5', '22023', 'rfm scale -5 is out of range'),
	  ('0, 0, 0, 0', '22023', 'rfm scale 0 is out of range')) AS t(a, code, msg);

-- Accessors.
SELECT is(ARRAY[rfm_r(v), rfm_f(v), rfm_m(v), rfm_scale(v)], want, format('accessors of %s', v))
FROM (VALUES ('543'::rfm, ARRAY[5, 4, 3, 5]), ('123/3', ARRAY[1, 2, 3, 3]),
	  ('919/9', ARRAY[9, 1, 9, 9]), ('212/2', ARRAY[2, 1, 2, 2])) AS t(v, want);

-- Every value of every scale: the three text forms, the constructor and the
-- accessors agree, and the output reads back to the same value.
CREATE TEMP TABLE every_rfm AS
SELECT r, f, m, n, rfm(r, f, m, n) AS v
FROM generate_series(2, 9) n, generate_series(1, n) r, generate_series(1, n) f, generate_series(1, n) m;
SELECT is(count(*), 2024::bigint, 'sum of n^3 for n = 2..9 values') FROM every_rfm;
SELECT is_empty($$
	SELECT v FROM every_rfm
	WHERE v::text::rfm <> v
	   OR format('%s-%s-%s/%s', r, f, m, n)::rfm <> v
	   OR format('r%sF%sm%s/%s', r, f, m, n)::rfm <> v
	   OR format('%s%s%s/%s', r, f, m, n)::rfm <> v
	   OR (rfm_r(v), rfm_f(v), rfm_m(v), rfm_scale(v)) <> (r, f, m, n)
	   OR v::text <> format('%s%s%s', r, f, m) || CASE WHEN n = 5 THEN '' ELSE '/' || n END
$$, 'text round trip, forms and accessors for all 2024 values');
SELECT is(count(DISTINCT v), 2024::bigint, 'all 2024 values are distinct') FROM every_rfm;

-- Casts to and from text (rfm -> text is an assignment cast).
CREATE TEMP TABLE rfm_text (s text);
INSERT INTO rfm_text VALUES ('543/7'::rfm);
SELECT is(s, '543/7', 'assignment cast rfm -> text') FROM rfm_text;
SELECT is(CAST('5-4-3'::text AS rfm), '543'::rfm, 'cast text -> rfm');
-- text -> rfm is a function cast (no cstring copy); it parses as rfm_in does
SELECT is((SELECT castfunc FROM pg_cast WHERE castsource = 'text'::regtype AND casttarget = 'rfm'::regtype),
		  'segtier.rfm(text)'::regprocedure::oid, 'text -> rfm casts through segtier.rfm(text)');
SELECT is(rfm(repeat(' ', 40) || 'R5F4M3/7' || repeat(' ', 40)), '543/7'::rfm, 'rfm(text) of a text longer than its stack buffer');
SELECT throws_ok($$SELECT ('5-4-3' || repeat('x', 40))::text::segtier.rfm$$, '22P02',
				 'invalid input syntax for type rfm: "5-4-3' || repeat('x', 40) || '"', 'a long malformed text is quoted whole');
SELECT is('5-4-3'::varchar::rfm, '543'::rfm, 'cast varchar -> rfm');

-- Binary: send is a version byte 0 then r, f, m, scale.
SELECT is(rfm_send('543'), '\x0005040305'::bytea, 'rfm_send 543');
SELECT is(rfm_send('123/3'), '\x0001020303'::bytea, 'rfm_send 123/3');

-- COPY (FORMAT binary) of every value to a server file and back.
CREATE TEMP TABLE copy_target (v rfm);
CREATE FUNCTION pg_temp.copy_file(tag text) RETURNS text LANGUAGE sql AS
$$ SELECT format('/tmp/segtier_rfm_%s_%s_%s.copy', current_setting('port'), pg_backend_pid(), tag) $$;
SELECT pg_temp.run(format('COPY (SELECT v FROM every_rfm) TO %L (FORMAT binary)', pg_temp.copy_file('all')));
SELECT pg_temp.run(format('COPY copy_target FROM %L (FORMAT binary)', pg_temp.copy_file('all')));
SELECT is((SELECT count(*) FROM copy_target), 2024::bigint, 'binary COPY read back every row');
SELECT is_empty($$(SELECT v FROM every_rfm EXCEPT ALL SELECT v FROM copy_target)
	UNION ALL (SELECT v FROM copy_target EXCEPT ALL SELECT v FROM every_rfm)$$,
	'binary COPY round trip gives the same values');

-- rfm_recv re-validates: COPY binary files crafted byte by byte.
CREATE FUNCTION pg_temp.copy_bad(tag text, field bytea) RETURNS void LANGUAGE plpgsql AS $$
DECLARE
	lo oid;
BEGIN
	-- header: signature, flags, extension length; one row of one field; trailer
	lo := lo_from_bytea(0, '\x5047434f50590aff0d0a00'::bytea
		|| '\x0000000000000000'::bytea || '\x0001'::bytea
		|| int4send(length(field)) || field || '\xffff'::bytea);
	PERFORM lo_export(lo, pg_temp.copy_file(tag));
	PERFORM lo_unlink(lo);
	EXECUTE format('COPY copy_target FROM %L (FORMAT binary)', pg_temp.copy_file(tag));
END $$;
SELECT lives_ok($$SELECT pg_temp.copy_bad('good', '\x0005040305')$$, 'a crafted valid field is read');
SELECT is((SELECT count(*) FROM copy_target WHERE v = '543'), 2::bigint, 'the crafted value is 543');
SELECT throws_ok(format('SELECT pg_temp.copy_bad(%L, %L)', tag, field), code, msg, 'rfm_recv rejects ' || tag)
FROM (VALUES ('version', '\x0105040305'::bytea, '22P03', 'unsupported binary rfm version 1'),
	  ('r0', '\x0000040305', '22003', 'rfm score r = 0 is out of range for scale 5'),
	  ('f9', '\x0005090305', '22003', 'rfm score f = 9 is out of range for scale 5'),
	  ('m255', '\x000504ff05', '22003', 'rfm score m = 255 is out of range for scale 5'),
	  ('scale1', '\x0001010101', '22023', 'rfm scale 1 is out of range'),
	  ('scale10', '\x000101010a', '22023', 'rfm scale 10 is out of range'),
	  ('long', '\x000504030500', '22P03', 'incorrect binary data format'),
	  ('short', '\x00050403', '08P01', 'no data left in message')
) AS t(tag, field, code, msg);
SELECT pg_temp.run(format('COPY (SELECT 1 WHERE false) TO PROGRAM %L', 'rm -f ' || pg_temp.copy_file('*')));  -- no rows: rm never reads, so nothing can break the pipe

-- Ordering: r, then f, then m (then the scale).
SELECT is(array_agg(v ORDER BY v)::text[],
		  '{155,511,515,534,543,543/7,543/9,544,551}'::text[], 'ORDER BY: r, then f, then m, then scale')
FROM unnest('{543,155,544,511,543/9,534,551,515,543/7}'::rfm[]) v;
SELECT is(ARRAY['543'::rfm = '5-4-3', '543'::rfm <> '543', '543'::rfm = '543/7',
				'155'::rfm < '511', '515'::rfm < '551', '553'::rfm < '554',
				'543/9'::rfm < '544', '543'::rfm < '543/6', '543'::rfm <= '543',
				'544'::rfm > '543/9', '543'::rfm >= '543', '543'::rfm >= '544'],
		  ARRAY[true, false, false, true, true, true, true, true, true, true, true, false],
		  'comparison operators');
-- Every operator agrees with rfm_cmp and with the (r, f, m, scale) row order.
SELECT is_empty($$
	SELECT a.v, b.v FROM every_rfm a, every_rfm b
	WHERE a.n <= 4 AND b.n <= 4
	  AND (rfm_cmp(a.v, b.v) <> CASE WHEN (a.r, a.f, a.m, a.n) < (b.r, b.f, b.m, b.n) THEN -1
									   WHEN (a.r, a.f, a.m, a.n) > (b.r, b.f, b.m, b.n) THEN 1 ELSE 0 END
		OR (a.v < b.v) <> (rfm_cmp(a.v, b.v) < 0) OR (a.v <= b.v) <> (rfm_cmp(a.v, b.v) <= 0)
		OR (a.v = b.v) <> (rfm_cmp(a.v, b.v) = 0) OR (a.v <> b.v) <> (rfm_cmp(a.v, b.v) <> 0)
		OR (a.v >= b.v) <> (rfm_cmp(a.v, b.v) >= 0) OR (a.v > b.v) <> (rfm_cmp(a.v, b.v) > 0))
$$, 'operators, rfm_cmp and the row order agree on 99 x 99 pairs');

-- btree index scans.
CREATE TABLE rfm_idx AS SELECT v, r FROM every_rfm;
CREATE INDEX rfm_idx_v ON rfm_idx (v);
ANALYZE rfm_idx;
SET LOCAL enable_seqscan = off;
SET LOCAL enable_bitmapscan = off;
SELECT ok(plan ~ 'Index Only Scan using rfm_idx_v', 'equality uses the btree index: ' || plan)
FROM (SELECT string_agg(p, ' ') AS plan FROM pg_temp.explain('SELECT v FROM rfm_idx WHERE v = ''543''') p) e;
SELECT results_eq($$SELECT v::text FROM rfm_idx WHERE v = '543'$$, $$VALUES ('543')$$, 'index equality');
SELECT ok(plan ~ 'Index Only Scan using rfm_idx_v', 'range uses the btree index: ' || plan)
FROM (SELECT string_agg(p, ' ') AS plan FROM pg_temp.explain('SELECT v FROM rfm_idx WHERE v > ''543'' AND v < ''545''') p) e;
SELECT results_eq($$SELECT v::text AS s FROM rfm_idx WHERE v > '543' AND v < '545' ORDER BY v$$,
	$$VALUES ('543/6'), ('543/7'), ('543/8'), ('543/9'), ('544'), ('544/6'), ('544/7'), ('544/8'), ('544/9')$$,
	'index range scan');
SELECT results_eq($$SELECT v::text AS s FROM rfm_idx ORDER BY v LIMIT 4$$,
	$$VALUES ('111/2'), ('111/3'), ('111/4'), ('111')$$, 'index ordered scan');
SELECT results_eq($$SELECT v::text AS s FROM rfm_idx ORDER BY v DESC LIMIT 2$$,
	$$VALUES ('999/9'), ('998/9')$$, 'index backward scan');
RESET enable_seqscan;
RESET enable_bitmapscan;

-- Hash joins, GROUP BY and DISTINCT (hashed and sorted).
SET LOCAL enable_mergejoin = off;
SET LOCAL enable_nestloop = off;
SELECT ok(plan ~ 'Hash Join', 'join on rfm = rfm is a hash join: ' || plan)
FROM (SELECT string_agg(p, ' ') AS plan FROM pg_temp.explain('SELECT * FROM rfm_idx a JOIN every_rfm b ON a.v = b.v') p) e;
SELECT is((SELECT count(*) FROM rfm_idx a JOIN every_rfm b ON a.v = b.v), 2024::bigint, 'hash join matches every row once');
SELECT is((SELECT count(*) FROM rfm_idx a JOIN (SELECT v FROM every_rfm WHERE n = 5) b ON a.v = b.v), 125::bigint,
	'hash join with the scale-5 values');
RESET enable_mergejoin;
RESET enable_nestloop;
CREATE TEMP TABLE rfm_dups AS SELECT rfm(1 + i % 5, 1 + i % 3, 1 + i % 2) AS v FROM generate_series(0, 999) i;
ANALYZE rfm_dups;
SET LOCAL enable_sort = off;
SELECT ok(plan ~ 'HashAggregate', 'GROUP BY hashes: ' || plan)
FROM (SELECT string_agg(p, ' ') AS plan FROM pg_temp.explain('SELECT v, count(*) FROM rfm_dups GROUP BY v') p) e;
SELECT results_eq($$SELECT v::text, count(*) FROM rfm_dups GROUP BY v ORDER BY v::text LIMIT 3$$,
	$$VALUES ('111', 34::bigint), ('112', 33::bigint), ('121', 33::bigint)$$, 'hashed GROUP BY counts');
SELECT is((SELECT count(*) FROM (SELECT DISTINCT v FROM rfm_dups) d), 30::bigint, 'hashed DISTINCT');
RESET enable_sort;
SET LOCAL enable_hashagg = off;
SELECT ok(plan ~ 'GroupAggregate', 'GROUP BY sorts: ' || plan)
FROM (SELECT string_agg(p, ' ') AS plan FROM pg_temp.explain('SELECT v, count(*) FROM rfm_dups GROUP BY v') p) e;
SELECT results_eq($$SELECT v::text AS s, count(*) FROM rfm_dups GROUP BY v ORDER BY v LIMIT 3$$,
	$$VALUES ('111', 34::bigint), ('112', 33::bigint), ('121', 33::bigint)$$, 'sorted GROUP BY counts');
SELECT is((SELECT count(*) FROM (SELECT DISTINCT v FROM rfm_dups) d), 30::bigint, 'sorted DISTINCT');
RESET enable_hashagg;
-- Hash support: the seed-0 extended hash agrees with the plain one.
SELECT is_empty($$SELECT v FROM every_rfm
	WHERE rfm_hash_extended(v, 0) & 4294967295 <> rfm_hash(v)::bigint & 4294967295$$,
	'rfm_hash_extended(v, 0) and rfm_hash(v) agree');

-- STRICT: NULL in, NULL out, for every function.
SELECT is(x, NULL, 'NULL gives NULL: ' || what)
FROM (VALUES ('rfm(NULL, 1, 1)', rfm(NULL, 1, 1)::text), ('rfm(1, NULL, 1)', rfm(1, NULL, 1)::text),
	  ('rfm(1, 1, NULL)', rfm(1, 1, NULL)::text), ('rfm(1, 1, 1, NULL)', rfm(1, 1, 1, NULL)::text),
	  ('rfm_r', rfm_r(NULL)::text), ('rfm_f', rfm_f(NULL)::text), ('rfm_m', rfm_m(NULL)::text),
	  ('rfm_scale', rfm_scale(NULL)::text), ('rfm_in', rfm_in(NULL)::text), ('rfm_out', rfm_out(NULL)::text),
	  ('rfm_send', rfm_send(NULL)::text), ('rfm_cmp', rfm_cmp(NULL, '543')::text),
	  ('rfm_eq', rfm_eq('543', NULL)::text), ('=', ('543'::rfm = NULL)::text),
	  ('<', (NULL::rfm < '543')::text), ('rfm_hash', rfm_hash(NULL)::text),
	  ('rfm_hash_extended', rfm_hash_extended('543', NULL)::text),
	  ('text cast', NULL::text::rfm::text)) AS t(what, x);

-- Fuzz: random short strings from "0123456789rfmRFM-/ x", half of them
-- mutated valid forms.  Each must parse to the value an independent regular
-- expression oracle predicts (and print as it re-reads), or fail with exactly
-- the SQLSTATE the oracle predicts; nothing else.
CREATE TEMP TABLE fuzz (s text, expected text, actual text, input text);
-- mostly a score that fits the scale n, sometimes any digit
CREATE FUNCTION pg_temp.fuzz_digit(n int) RETURNS int LANGUAGE sql AS $$
	SELECT CASE WHEN random() < 0.15 THEN floor(random() * 10)::int ELSE 1 + floor(random() * greatest(n, 1))::int END $$;
DO $$
DECLARE
	alphabet CONSTANT text := '0123456789rfmRFM-/ x';
	s text;
	pos int;
	n int;
	got text;
	inp text;
	v rfm;
BEGIN
	PERFORM setseed(0.20240601);
	FOR i IN 1 .. 6000 LOOP
		IF i % 2 = 0 THEN
			s := '';
			FOR j IN 1 .. floor(random() * 10)::int LOOP
				s := s || substr(alphabet, 1 + floor(random() * 20)::int, 1);
			END LOOP;
		ELSE
			n := CASE WHEN random() < 0.1 THEN floor(random() * 2)::int ELSE 2 + floor(random() * 8)::int END;
			s := format((ARRAY['%s%s%s', '%s-%s-%s', 'R%sF%sM%s', 'r%sf%sm%s', 'R%sf%sM%s'])[1 + floor(random() * 5)::int],
						pg_temp.fuzz_digit(n), pg_temp.fuzz_digit(n), pg_temp.fuzz_digit(n))
				|| CASE WHEN n = 5 AND random() < 0.5 THEN '' ELSE '/' || n END;
			IF random() < 0.3 THEN s := repeat(' ', 1 + floor(random() * 2)::int) || s || ' '; END IF;
			FOR j IN 1 .. floor(random() * 1.6)::int LOOP
				pos := 1 + floor(random() * (length(s) + 1))::int;
				s := CASE floor(random() * 3)::int
					WHEN 0 THEN overlay(s PLACING substr(alphabet, 1 + floor(random() * 20)::int, 1) FROM pos FOR 1)
					WHEN 1 THEN overlay(s PLACING substr(alphabet, 1 + floor(random() * 20)::int, 1) FROM pos FOR 0)
					ELSE overlay(s PLACING '' FROM pos FOR 1) END;
			END LOOP;
		END IF;
		BEGIN
			v := s::rfm;
			got := CASE WHEN v::text::rfm = v THEN v::text ELSE 'reparse ' || v::text END;
		EXCEPTION WHEN OTHERS THEN
			got := SQLSTATE;
		END;
		-- the same string through the type's input function
		BEGIN
			inp := rfm_in(s::cstring)::text;
		EXCEPTION WHEN OTHERS THEN
			inp := SQLSTATE;
		END;
		INSERT INTO fuzz VALUES (s, NULL, got, inp);
	END LOOP;
END $$;
UPDATE fuzz SET expected = o.expected
FROM (SELECT s, CASE
		WHEN g IS NULL THEN '22P02'
		WHEN n NOT BETWEEN 2 AND 9 THEN '22023'
		WHEN least(r, f, m) < 1 OR greatest(r, f, m) > n THEN '22003'
		ELSE format('%s%s%s', r, f, m) || CASE WHEN n = 5 THEN '' ELSE '/' || n END END AS expected
	  FROM (SELECT s, g, coalesce(g[1], g[4], g[7])::numeric AS r, coalesce(g[2], g[5], g[8])::numeric AS f,
				   coalesce(g[3], g[6], g[9])::numeric AS m, coalesce(g[10], '5')::numeric AS n
			FROM (SELECT DISTINCT s, regexp_match(s,
					'^ *(?:([0-9])([0-9])([0-9])|([0-9]+)-([0-9]+)-([0-9]+)|[rR]([0-9]+)[fF]([0-9]+)[mM]([0-9]+))(?:/([0-9]+))? *$') AS g
				  FROM fuzz) q) p) o
WHERE fuzz.s = o.s;
SELECT is_empty($$SELECT s, expected, actual FROM fuzz WHERE actual IS DISTINCT FROM expected$$,
	'6000 fuzzed inputs: every outcome is what the oracle predicts');
SELECT is_empty($$SELECT s, actual, input FROM fuzz WHERE actual IS DISTINCT FROM input$$,
	'the text cast and rfm_in give the same outcome for every fuzzed input');
SELECT ok((SELECT count(*) FROM fuzz WHERE actual = '22P02') > 1000, 'fuzz reached 22P02');
SELECT ok((SELECT count(*) FROM fuzz WHERE actual = '22003') > 100, 'fuzz reached 22003');
SELECT ok((SELECT count(*) FROM fuzz WHERE actual = '22023') > 100, 'fuzz reached 22023');
SELECT ok((SELECT count(*) FROM fuzz WHERE actual ~ '^[1-9]{3}(/[2-9])?$') > 1000, 'fuzz parsed many values');

SELECT * FROM finish();
ROLLBACK;
