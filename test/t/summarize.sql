-- segtier._summarize, the aggregation pass of a refresh: its rows against the
-- grouped SQL of the three aggregates it replaces, its fallback to that SQL
-- beyond hash_mem, and its errors.
BEGIN;
SET search_path = public, segtier;
SET TimeZone = 'UTC';
SET work_mem = '4MB';
SET hash_mem_multiplier = 2;
SELECT plan(40);

-- 3,000 customers, 40,000 rows: refunds, zero amounts, NULL customers, times,
-- amounts and margins, rows after as_of, 20 customers with 200 distinct days
-- (their states grow), amounts of 40 decimals and sums beyond int128 (numeric
-- sums), NaN and infinite margins
SELECT setseed(0.42);
CREATE TEMP TABLE src AS
SELECT CASE WHEN i % 997 = 0 THEN NULL ELSE 1 + (i * 7919) % 3000 END::bigint AS c,
	   CASE WHEN i % 613 = 0 THEN NULL
			ELSE timestamptz '2024-01-01' + random() * interval '420 days' END AS ts,
	   CASE WHEN i % 701 = 0 THEN NULL
			WHEN i % 50 = 0 THEN -round((random() * 40)::numeric, 2)
			WHEN i % 333 = 0 THEN 0
			ELSE round((random() * 200)::numeric, 2) END AS amt,
	   CASE WHEN i % 3 = 0 THEN NULL ELSE round((random() * 30)::numeric, 1) END AS mg
FROM generate_series(1, 40000) i;
INSERT INTO src
SELECT c, timestamptz '2024-01-01 10:00' + d * interval '1 day', 5.5, 1
FROM generate_series(1, 20) c, generate_series(1, 200) d;
INSERT INTO src VALUES
	(5001, '2024-03-01', 1e-40, 0.000000000000000000000000000000000000001),
	(5001, '2024-03-02', 2.5, 1),
	(5002, '2024-03-01', 9e37, 1), (5002, '2024-03-05', 9e37, 1), (5002, '2024-03-09', -9e37, 1),
	(5003, '2024-03-01', 1, 'NaN'), (5004, '2024-03-01', 1, 'Infinity'),
	(5005, '2024-03-01', 1, 'Infinity'), (5005, '2024-03-02', 1, '-Infinity');

CREATE FUNCTION pg_temp.scan(src text) RETURNS text LANGUAGE sql AS
$$ SELECT format('SELECT c, ts, amt, mg FROM %s', src) $$;
CREATE FUNCTION pg_temp.grouped(src text) RETURNS text LANGUAGE sql AS $$
	SELECT format($f$
		SELECT customer, (s).first_purchase, (s).last_purchase, (s).transactions, (s).purchase_days,
			   (s).total_amount, (s).repeat_amount, (s).refund_amount, (s).null_rows, (s).refunds,
			   (s).future_rows, margin, month_spend
		FROM (SELECT c AS customer, segtier.purchase_summary(ts, amt, $1, $2) AS s,
					 sum(mg) FILTER (WHERE ts <= $2 AND amt IS NOT NULL) AS margin,
					 segtier.period_spend(ts, amt, $3) AS month_spend
			  FROM %s GROUP BY 1) g ORDER BY 1$f$, src) $$;
-- a grouped query whose one row says that the pass gave up: -1 rows
-- without a customer
CREATE FUNCTION pg_temp.marker(ctype text) RETURNS text LANGUAGE sql AS $$
	SELECT format('SELECT NULL::%s, NULL::timestamptz, NULL::timestamptz, -1::bigint, NULL::bigint,
		NULL::numeric, NULL::numeric, NULL::numeric, NULL::bigint, NULL::bigint, NULL::bigint,
		NULL::numeric, NULL::numeric[]', ctype) $$;
CREATE FUNCTION pg_temp.month_starts() RETURNS timestamptz[] LANGUAGE sql AS $$
	SELECT array_agg(timestamptz '2024-01-01 00:00+01' + k * interval '1 month' ORDER BY k)
	FROM generate_series(0, 13) k $$;
-- the columns of a summary table
CREATE FUNCTION pg_temp.columns(ctype text) RETURNS text LANGUAGE sql AS $$
	SELECT format('customer %s PRIMARY KEY, first_purchase timestamptz, last_purchase timestamptz,
		transactions bigint, purchase_days bigint, total_amount numeric, repeat_amount numeric,
		refund_amount numeric, null_rows bigint, refunds bigint, future_rows bigint, margin numeric,
		month_spend numeric[]', ctype) $$;
-- a new empty summary table, pg_temp.summ_out
CREATE FUNCTION pg_temp.target(ctype text) RETURNS regclass LANGUAGE plpgsql AS $$
BEGIN
	DROP TABLE IF EXISTS pg_temp.summ_out;
	EXECUTE format('CREATE TEMP TABLE summ_out (%s)', pg_temp.columns(ctype));
	RETURN 'pg_temp.summ_out'::regclass;
END $$;
-- the rows written, as text (a different scale of a numeric shows) in the
-- order written, then the count returned
CREATE FUNCTION pg_temp.summarize(src text, ctype text, grouped text) RETURNS SETOF text
LANGUAGE plpgsql AS $$
DECLARE
	n bigint := segtier._summarize(pg_temp.target(ctype), pg_temp.scan(src), grouped, 'Europe/Berlin',
								   timestamptz '2025-01-20 02:00+00', pg_temp.month_starts());
BEGIN
	RETURN QUERY EXECUTE 'SELECT g::text FROM pg_temp.summ_out g ORDER BY ctid';
	RETURN NEXT 'without a customer: ' || n;
END $$;
CREATE FUNCTION pg_temp.reference(src text) RETURNS SETOF text LANGUAGE plpgsql AS $$
BEGIN
	RETURN QUERY EXECUTE format('SELECT g::text FROM (%s) g WHERE customer IS NOT NULL', pg_temp.grouped(src))
	USING 'Europe/Berlin', timestamptz '2025-01-20 02:00+00', pg_temp.month_starts();
	RETURN QUERY EXECUTE format($f$SELECT 'without a customer: ' || coalesce(sum(transactions + refunds + null_rows + future_rows), 0)
								 FROM (%s) g WHERE customer IS NULL$f$, pg_temp.grouped(src))
	USING 'Europe/Berlin', timestamptz '2025-01-20 02:00+00', pg_temp.month_starts();
END $$;
-- a call into a target with the test's arguments
CREATE FUNCTION pg_temp.into(target regclass, src text) RETURNS bigint LANGUAGE sql AS $$
	SELECT segtier._summarize(target, pg_temp.scan(src), pg_temp.marker('bigint'), 'UTC', now(), pg_temp.month_starts()) $$;

-- the pass itself (the marker would show a fallback), row for row and
-- written in the customer's order
SELECT results_eq($$SELECT * FROM pg_temp.summarize('src', 'bigint', pg_temp.marker('bigint'))$$,
	$$SELECT * FROM pg_temp.reference('src')$$, 'bigint customers: the rows of the grouped SQL, in order');
SELECT is((SELECT count(*) FROM pg_temp.summ_out), 3005::bigint, '3,005 customers');
SELECT is((SELECT s FROM pg_temp.summarize('src', 'bigint', pg_temp.marker('bigint')) s WHERE s LIKE 'without%'),
	'without a customer: ' || (SELECT count(*) FROM src WHERE c IS NULL), 'every row without a customer counted');
-- every row has its index entry (amcheck's heapallindexed), the index works
CREATE EXTENSION amcheck;
SELECT lives_ok($$SELECT bt_index_check('pg_temp.summ_out_pkey', true)$$, 'the primary key indexes every row written');
SET LOCAL enable_seqscan = off;
SELECT is((SELECT count(*) FROM src s WHERE EXISTS (SELECT 1 FROM pg_temp.summ_out o WHERE o.customer = s.c)),
	(SELECT count(*) FROM src WHERE c IS NOT NULL), 'every customer found through the index');
RESET enable_seqscan;
SELECT ok((SELECT s FROM pg_temp.summarize('src', 'bigint', pg_temp.marker('bigint')) s WHERE s LIKE '(5002,%')
	LIKE '(5002,%,2,2,90000000000000000000000000000000000000,90000000000000000000000000000000000000,-90000000000000000000000000000000000000,0,1,0,3,%',
	'sums beyond int128 are exact');
SELECT ok((SELECT s FROM pg_temp.summarize('src', 'bigint', pg_temp.marker('bigint')) s WHERE s LIKE '(5005,%')
	LIKE '%,NaN,%', 'infinite margins of both signs: NaN');
SELECT ok((SELECT min(n) FROM (SELECT count(DISTINCT ts::date) AS n FROM src WHERE c <= 20 GROUP BY c) x) >= 200,
	'the data: 20 customers of 200 days and more, whose states grow');

CREATE TEMP TABLE src_int AS SELECT c::int AS c, ts, amt, mg FROM src;
SELECT results_eq($$SELECT * FROM pg_temp.summarize('src_int', 'integer', pg_temp.marker('integer'))$$,
	$$SELECT * FROM pg_temp.reference('src_int')$$, 'integer customers');
CREATE TEMP TABLE src_small AS SELECT (c - 1500)::smallint AS c, ts, amt, mg FROM src;
SELECT results_eq($$SELECT * FROM pg_temp.summarize('src_small', 'smallint', pg_temp.marker('smallint'))$$,
	$$SELECT * FROM pg_temp.reference('src_small')$$, 'smallint customers, negative ones too');
-- keys of both signs that differ in every byte, for the sort into key order
CREATE TEMP TABLE src_wide AS SELECT (c - 2500) * 3074457345618258::bigint + c AS c, ts, amt, mg FROM src;
SELECT results_eq($$SELECT * FROM pg_temp.summarize('src_wide', 'bigint', pg_temp.marker('bigint'))$$,
	$$SELECT * FROM pg_temp.reference('src_wide')$$, 'bigint customers across the whole range, in order');
CREATE TEMP TABLE src_text AS SELECT 'customer-' || c AS c, ts, amt, mg FROM src;
SELECT results_eq($$SELECT * FROM pg_temp.summarize('src_text', 'text', pg_temp.marker('text'))$$,
	$$SELECT * FROM pg_temp.reference('src_text')$$, 'text customers, in the collation''s order');
-- 1.0 and 1.00 are one customer; the first row's spelling names it, as in GROUP BY
CREATE TEMP TABLE src_num AS
SELECT CASE WHEN i % 2 = 0 THEN (c / 10.0)::numeric(10, 1) ELSE (c / 10.0)::numeric(10, 2) END AS c, ts, amt, mg
FROM (SELECT row_number() OVER () AS i, * FROM src) s;
SELECT results_eq($$SELECT * FROM pg_temp.summarize('src_num', 'numeric', pg_temp.marker('numeric'))$$,
	$$SELECT * FROM pg_temp.reference('src_num')$$, 'numeric customers: equal values of two scales group');
-- a nondeterministic collation groups 'A' with 'a'
CREATE COLLATION pg_temp.ci (provider = icu, locale = 'und-u-ks-level2', deterministic = false);
CREATE TEMP TABLE src_ci AS
SELECT (CASE WHEN random() < 0.5 THEN upper('c' || c) ELSE 'c' || c END) COLLATE pg_temp.ci AS c, ts, amt, mg FROM src;
SELECT results_eq($$SELECT * FROM pg_temp.summarize('src_ci', 'text', pg_temp.marker('text'))$$,
	$$SELECT * FROM pg_temp.reference('src_ci')$$, 'case-insensitive text customers');
SELECT is((SELECT count(*) FROM pg_temp.summarize('src_ci', 'text', pg_temp.marker('text'))), 3006::bigint,
	'one group per customer whatever its case');
SELECT results_eq($$SELECT * FROM pg_temp.summarize('src WHERE false', 'bigint', pg_temp.marker('bigint'))$$,
	$$SELECT 'without a customer: 0'$$, 'no rows, no groups');

-- beyond hash_mem the grouped query runs (the marker), with the arguments
SET LOCAL work_mem = '64kB';
SELECT results_eq($$SELECT * FROM pg_temp.summarize('src', 'bigint', pg_temp.marker('bigint'))$$,
	$$SELECT 'without a customer: -1'$$, 'beyond hash_mem: the grouped query');
SELECT results_eq($$SELECT * FROM pg_temp.summarize('src', 'bigint', pg_temp.grouped('src'))$$,
	$$SELECT * FROM pg_temp.reference('src')$$, 'beyond hash_mem: the grouped rows with the arguments');
RESET work_mem;
-- a customer type without hashing: the grouped query
CREATE TEMP TABLE src_bit AS SELECT c::bit(12)::varbit AS c, ts, amt, mg FROM src;
SELECT results_eq($$SELECT * FROM pg_temp.summarize('src_bit', 'varbit', pg_temp.marker('varbit'))$$,
	$$SELECT 'without a customer: -1'$$, 'a customer type without a hash opclass: the grouped query');

-- errors
SELECT throws_ok($$SELECT * FROM pg_temp.summarize('src', 'integer', pg_temp.marker('integer'))$$,
	'42804', 'scan column 1 of segtier._summarize has type bigint, not integer', 'customer type of the target');
CREATE TEMP TABLE bad_type (LIKE pg_temp.summ_out);
ALTER TABLE bad_type ALTER transactions TYPE int;
SELECT throws_ok($$SELECT pg_temp.into('bad_type', 'src')$$,
	'42804', 'target column 4 of segtier._summarize has type integer, not bigint', 'types of the target');
CREATE TEMP TABLE short_target (customer bigint PRIMARY KEY, first_purchase timestamptz);
SELECT throws_ok($$SELECT pg_temp.into('short_target', 'src')$$,
	'42804', 'the target of segtier._summarize has 2 columns, not 13', 'columns of the target');
ALTER TABLE bad_type DROP transactions, ADD transactions bigint;
SELECT throws_ok($$SELECT pg_temp.into('bad_type', 'src')$$,
	'42804', 'column 4 of "bad_type" is dropped', 'a dropped column of the target');
SELECT throws_ok($$SELECT segtier._summarize(pg_temp.target('int'), 'SELECT 1, now(), 1::numeric', 'x', 'UTC', now(), pg_temp.month_starts())$$,
	'XX000', 'the scan of segtier._summarize returns 3 columns, not 4', 'columns of the scan');
CREATE TEMP TABLE src_nan AS SELECT * FROM src;
INSERT INTO src_nan VALUES (7, '2024-05-01', 'NaN', NULL);
SELECT throws_ok($$SELECT * FROM pg_temp.summarize('src_nan', 'bigint', pg_temp.marker('bigint'))$$,
	'22023', 'purchase amount is NaN', 'a NaN amount, as in purchase_summary');
SELECT throws_ok($$SELECT segtier._summarize(pg_temp.target('bigint'), 'SELECT 1::bigint, now(), 1::numeric, 1::numeric', 'x', 'Mars/Olympus', now(), pg_temp.month_starts())$$,
	'22023', 'time zone "Mars/Olympus" not recognized', 'an unknown zone');
SELECT throws_ok($$SELECT segtier._summarize(pg_temp.target('bigint'), 'SELECT 1::bigint, now(), 1::numeric, 1::numeric', 'x', 'UTC', now(), ARRAY[now()])$$,
	'22023', 'period bounds need at least two times', 'one period bound');
-- what it writes into: the checks an INSERT would make, and no more
SELECT pg_temp.into(pg_temp.target('bigint'), 'src');
SELECT throws_ok($$SELECT pg_temp.into('pg_temp.summ_out', 'src')$$,
	'23505', 'duplicate key value violates unique constraint "summ_out_pkey"', 'a customer already there');
-- into a table new in the transaction and empty the indexes are built at
-- the end (amcheck above checked one); they still refuse a duplicate
SET LOCAL work_mem = '64kB';
SELECT throws_ok(format($$SELECT segtier._summarize(pg_temp.target('bigint'), pg_temp.scan('src'), %L, 'UTC', now(), pg_temp.month_starts())$$,
	'SELECT 1::bigint, NULL::timestamptz, NULL::timestamptz, 1::bigint, NULL::bigint, NULL::numeric, NULL::numeric,
		NULL::numeric, NULL::bigint, NULL::bigint, NULL::bigint, NULL::numeric, NULL::numeric[] FROM generate_series(1, 2)'),
	'23505', 'could not create unique index "summ_out_pkey"', 'a customer twice in one call');
RESET work_mem;
CREATE TEMP TABLE typmod_target (LIKE pg_temp.summ_out);
ALTER TABLE typmod_target ALTER total_amount TYPE numeric(12, 2);
SELECT throws_ok($$SELECT pg_temp.into('typmod_target', 'src')$$,
	'42804', 'column 6 of "typmod_target" is of a type with a modifier', 'a column whose values an INSERT would coerce');
CREATE TEMP TABLE ruled_target (LIKE pg_temp.summ_out);
CREATE RULE r AS ON INSERT TO ruled_target DO INSTEAD NOTHING;
SELECT throws_ok($$SELECT pg_temp.into('ruled_target', 'src')$$,
	'0A000', 'segtier._summarize cannot write into "ruled_target"', 'a table with rules');
CREATE TEMP VIEW summ_view AS SELECT * FROM pg_temp.summ_out;
SELECT throws_ok($$SELECT pg_temp.into('summ_view', 'src')$$,
	'42809', 'segtier._summarize writes into a table, not into "summ_view"', 'a view');
CREATE FUNCTION pg_temp.no_op() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$;
CREATE TRIGGER t BEFORE INSERT ON pg_temp.summ_out FOR EACH ROW EXECUTE FUNCTION pg_temp.no_op();
TRUNCATE pg_temp.summ_out;
SELECT throws_ok($$SELECT pg_temp.into('pg_temp.summ_out', 'src')$$,
	'0A000', 'segtier._summarize cannot write into "summ_out"', 'a table with triggers');
CREATE FUNCTION pg_temp.read_only() RETURNS bigint LANGUAGE plpgsql AS $$
BEGIN
	PERFORM set_config('transaction_read_only', 'on', true);
	RETURN pg_temp.into('pg_temp.summ_out', 'src');
END $$;
SELECT throws_ok($$SELECT pg_temp.read_only()$$,
	'25006', 'cannot execute segtier._summarize in a read-only transaction', 'a read-only transaction');
CREATE ROLE summ_reader NOLOGIN;
SELECT ok(NOT has_function_privilege('summ_reader', 'segtier._summarize(regclass, text, text, text, timestamptz, timestamptz[])', 'EXECUTE'),
	'only the roles a refresh runs as (grant_admin) may call it');
GRANT EXECUTE ON FUNCTION segtier._summarize(regclass, text, text, text, timestamptz, timestamptz[]) TO summ_reader;
GRANT SELECT ON src, pg_temp.summ_out TO summ_reader;
SET LOCAL ROLE summ_reader;
SELECT throws_ok($$SELECT segtier._summarize('pg_temp.summ_out', 'SELECT c, ts, amt, mg FROM src', 'x', 'UTC', now(),
	ARRAY[now(), now() + interval '1 day'])$$,
	'42501', 'permission denied for table summ_out', 'a table the caller may not insert into');
RESET ROLE;

-- a refresh gives the same summaries through the pass and, beyond
-- hash_mem, through its grouped query; the margin too (a finite one: a
-- margin is the value the classes rank)
CREATE TABLE public.summ_tx AS
SELECT c AS cust, ts, amt AS amount, mg AS margin FROM src WHERE coalesce(c, 0) NOT IN (5003, 5004, 5005);
SELECT segtier.create_model('summ', 'public.summ_tx', 'cust', 'ts', 'amount',
	'{"time_zone": "Europe/Berlin", "as_of": "2025-01-20 02:00+00", "margin_column": "margin"}');
SELECT segtier.refresh('summ', full => true);
CREATE TEMP TABLE summ_pass AS SELECT * FROM segtier_data.summ_summary;
SET LOCAL work_mem = '64kB';
SELECT segtier.refresh('summ', full => true);
RESET work_mem;
SELECT is((SELECT count(*) FROM summ_pass), 3002::bigint, 'the refresh: 3,002 summaries');
SELECT bag_eq($$SELECT s::text FROM segtier_data.summ_summary s$$, $$SELECT s::text FROM summ_pass s$$,
	'the refresh: the same summaries beyond hash_mem');
SELECT is((SELECT (params->>'null_customer_rows')::bigint FROM segtier.refresh_runs WHERE model = 'summ' ORDER BY run_id DESC LIMIT 1),
	(SELECT count(*) FROM src WHERE c IS NULL), 'the refresh: rows without a customer counted beyond hash_mem');
SELECT is((SELECT count(DISTINCT params->>'null_customer_rows') FROM segtier.refresh_runs WHERE model = 'summ'), 1::bigint,
	'the refresh: and through the pass');

SELECT * FROM finish();
ROLLBACK;
