-- segtier._summarize with parallel workers: each sums one hash partition of
-- the customers and the leader merges their summaries into the customer's
-- order.  The reference is the serial pass (test/t/summarize.sql checks it
-- against the grouped SQL): the same rows, written in the same order.
SET search_path = public, segtier;
SET TimeZone = 'UTC';
-- every scan is large enough for workers; indexes are built serially
SET min_parallel_table_scan_size = 0;
SET max_parallel_maintenance_workers = 0;

-- regular tables (a worker cannot read a temporary one): customers of
-- both signs (1,500), rows without a customer, time or amount, refunds, margins
SELECT setseed(0.7);
CREATE TABLE sw_src AS
SELECT CASE WHEN i % 997 = 0 THEN NULL
			ELSE (CASE WHEN i % 2 = 0 THEN -1 ELSE 1 END) * (1 + (i * 7919) % 1500) END::bigint AS c,
	   CASE WHEN i % 613 = 0 THEN NULL ELSE timestamptz '2024-01-01' + random() * interval '420 days' END AS ts,
	   CASE WHEN i % 701 = 0 THEN NULL
			WHEN i % 50 = 0 THEN -round((random() * 40)::numeric, 2)
			ELSE round((random() * 200)::numeric, 2) END AS amt,
	   CASE WHEN i % 3 = 0 THEN NULL ELSE round((random() * 30)::numeric, 1) END AS mg
FROM generate_series(1, 40000) i;
CREATE TABLE sw_int AS SELECT c::int AS c, ts, amt, mg FROM sw_src;
-- text customers whose order is the collation's, not their bytes'
CREATE TABLE sw_text AS
SELECT CASE WHEN c % 2 = 0 THEN 'Kunde ' ELSE 'kunde-' END || c AS c, ts, amt, mg FROM sw_src;

-- the rows written, numbered in the order written, and the count returned;
-- workers as given (0: the serial pass); the debug line says how many ran
CREATE FUNCTION sw_run(src text, ctype text, workers int, scan text DEFAULT NULL, debug text DEFAULT 'debug1')
RETURNS TABLE (pos bigint, summary text) LANGUAGE plpgsql AS $$
DECLARE
	n bigint;
BEGIN
	DROP TABLE IF EXISTS sw_out;
	EXECUTE format('CREATE TABLE sw_out (customer %s, first_purchase timestamptz,
		last_purchase timestamptz, transactions bigint, purchase_days bigint, total_amount numeric,
		repeat_amount numeric, refund_amount numeric, null_rows bigint, refunds bigint,
		future_rows bigint, margin numeric, month_spend numeric[])', ctype);
	PERFORM set_config('max_parallel_workers_per_gather', workers::text, true);
	PERFORM set_config('client_min_messages', debug, true);
	n := segtier._summarize('sw_out', coalesce(scan, format('SELECT c, ts, amt, mg FROM %s', src)),
		format('SELECT NULL::%s, NULL::timestamptz, NULL::timestamptz, -1::bigint, NULL::bigint,
			NULL::numeric, NULL::numeric, NULL::numeric, NULL::bigint, NULL::bigint, NULL::bigint,
			NULL::numeric, NULL::numeric[]', ctype),
		'Europe/Berlin', '2025-01-20 02:00+00',
		ARRAY(SELECT timestamptz '2024-01-01 00:00+01' + k * interval '1 month' FROM generate_series(0, 13) k));
	PERFORM set_config('client_min_messages', 'notice', true);
	RETURN QUERY SELECT row_number() OVER (ORDER BY ctid), g::text FROM sw_out g;
	RETURN QUERY SELECT NULL::bigint, 'without a customer: ' || n;
END $$;
-- rows of a and b at the same position that differ, of how many
CREATE FUNCTION sw_compare(a text, b text) RETURNS TABLE (summaries bigint, different bigint)
LANGUAGE plpgsql AS $$
BEGIN
	RETURN QUERY EXECUTE format('SELECT count(*), count(*) FILTER (WHERE a.summary IS DISTINCT FROM b.summary)
		FROM %I a FULL JOIN %I b ON coalesce(a.pos, 0) = coalesce(b.pos, 0)', a, b);
END $$;

CREATE TABLE sw_serial AS SELECT * FROM sw_run('sw_src', 'bigint', 0);
SELECT * FROM sw_serial WHERE pos IS NULL OR pos IN (1, 1500);

-- two and three workers (the leader only merges)
CREATE TABLE sw_two AS SELECT * FROM sw_run('sw_src', 'bigint', 2);
CREATE TABLE sw_three AS SELECT * FROM sw_run('sw_src', 'bigint', 3);
SELECT * FROM sw_compare('sw_serial', 'sw_two');
SELECT * FROM sw_compare('sw_serial', 'sw_three');

-- one worker of two launched: the leader sums the other partition
SET max_parallel_workers = 1;
CREATE TABLE sw_one AS SELECT * FROM sw_run('sw_src', 'bigint', 2);
-- none launched: the serial pass
SET max_parallel_workers = 0;
CREATE TABLE sw_none AS SELECT * FROM sw_run('sw_src', 'bigint', 2);
RESET max_parallel_workers;
SELECT * FROM sw_compare('sw_serial', 'sw_one');
SELECT * FROM sw_compare('sw_serial', 'sw_none');

-- integer customers; text customers merged in the collation's order
CREATE TABLE sw_int_two AS SELECT * FROM sw_run('sw_int', 'integer', 2);
SELECT * FROM sw_compare('sw_serial', 'sw_int_two');
CREATE TABLE sw_text_serial AS SELECT * FROM sw_run('sw_text', 'text', 0);
CREATE TABLE sw_text_two AS SELECT * FROM sw_run('sw_text', 'text', 2);
SELECT * FROM sw_compare('sw_text_serial', 'sw_text_two');
SELECT summary FROM sw_text_two WHERE pos IN (1, 2, 3);

-- beyond hash_mem in the workers: the grouped query (its marker: -1)
SET work_mem = '64kB';
SELECT * FROM sw_run('sw_src', 'bigint', 2);
RESET work_mem;

-- no workers for a temporary table, a function that is not parallel safe,
-- rows that could differ from one worker to the next (a volatile function,
-- LIMIT, TABLESAMPLE), or a scan the planner expects to be small
CREATE TEMP TABLE sw_temp AS SELECT * FROM sw_src;
SELECT count(*) FROM sw_run('sw_temp', 'bigint', 2);
SELECT count(*) FROM sw_run('sw_src', 'bigint', 2, 'SELECT c, ts, amt + random()::int, mg FROM sw_src');
SELECT count(*) FROM sw_run('sw_src', 'bigint', 2, 'SELECT c, ts, amt, mg FROM sw_src WHERE ts < clock_timestamp()');
SELECT count(*) FROM sw_run('sw_src', 'bigint', 2, 'SELECT c, ts, amt, mg FROM (SELECT * FROM sw_src LIMIT 30000) s');
SELECT count(*) FROM sw_run('sw_src', 'bigint', 2, 'SELECT c, ts, amt, mg FROM sw_src TABLESAMPLE SYSTEM (100)');
SET min_parallel_table_scan_size = '1GB';
SELECT count(*) FROM sw_run('sw_src', 'bigint', 2);
SET min_parallel_table_scan_size = 0;
-- nor for rows a window function or DISTINCT ON picks among ties: a
-- worker's scan may meet them in another order
SELECT count(*) FROM sw_run('sw_src', 'bigint', 2,
	'SELECT c, ts, amt, mg FROM (SELECT *, row_number() OVER (PARTITION BY c, ts) AS rn FROM sw_src) s WHERE rn = 1');
SELECT count(*) FROM sw_run('sw_src', 'bigint', 2, 'SELECT DISTINCT ON (c, ts) c, ts, amt, mg FROM sw_src');
-- a scan that is not a SELECT is an error, not a plan without a tree
\set VERBOSITY terse
SELECT count(*) FROM sw_run('sw_src', 'bigint', 2, 'SHOW work_mem');
SELECT count(*) FROM sw_run('sw_src', 'bigint', 2, 'EXPLAIN SELECT c, ts, amt, mg FROM sw_src');
\set VERBOSITY default

-- a worker's error is the call's, with its SQLSTATE
\set VERBOSITY terse
SELECT count(*) FROM sw_run('sw_src', 'bigint', 2, 'SELECT c, ts, amt / (c % 2), mg FROM sw_src');
SELECT count(*) FROM sw_run('sw_src', 'bigint', 2, 'SELECT c, ts, ''NaN''::numeric, mg FROM sw_src');
\set VERBOSITY default
-- caught in a subtransaction, it leaves no parallel mode behind: the
-- transaction writes on
DO $$
BEGIN
	BEGIN
		PERFORM count(*) FROM sw_run('sw_src', 'bigint', 2, 'SELECT c, ts, amt / (c % 2), mg FROM sw_src', 'notice');
	EXCEPTION WHEN division_by_zero THEN
		RAISE NOTICE 'caught: %', SQLERRM;
	END;
	INSERT INTO sw_out (customer) VALUES (1);
	RAISE NOTICE 'written';
END $$;

DROP TABLE sw_src, sw_int, sw_int_two, sw_text, sw_out, sw_serial, sw_two, sw_three, sw_one, sw_none, sw_text_serial, sw_text_two;
DROP FUNCTION sw_run(text, text, int, text, text), sw_compare(text, text);
