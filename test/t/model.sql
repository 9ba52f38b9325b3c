BEGIN;
SET search_path = public, segtier;
SELECT plan(58);

CREATE TABLE shop_orders (cust bigint, at timestamptz, amount numeric(10,2), note text);
INSERT INTO shop_orders VALUES
	(1, '2024-06-01 10:00+00', 100, NULL), (1, '2024-06-20 10:00+00', 50, NULL),
	(2, '2024-01-05 10:00+00', 20, NULL),
	(3, '2023-03-01 10:00+00', 500, NULL);

-- names and columns are checked
SELECT throws_ok($$SELECT segtier.create_model('Bad Name', 'shop_orders', 'cust', 'at', 'amount')$$,
	'42602', 'invalid model name "Bad Name"', 'model names are lower-case identifiers');
SELECT throws_ok($$SELECT segtier.create_model('m', 'shop_orders', 'customer', 'at', 'amount')$$,
	'42703', 'customer column "customer" does not exist in public.shop_orders', 'missing customer column');
SELECT throws_ok($$SELECT segtier.create_model('m', 'shop_orders', 'cust', 'note', 'amount')$$,
	'42804', 'time column "note" has type text', 'time column of the wrong type');
SELECT throws_ok($$SELECT segtier.create_model('m', 'shop_orders', 'cust', 'at', 'note')$$,
	'42804', 'amount column "note" has type text', 'amount column of the wrong type');
SELECT throws_ok($$SELECT segtier.create_model('m', 'shop_orders', 'cust', 'at', 'amount', '{"colour": 1}')$$,
	'22023', 'unknown model option "colour"', 'unknown option');
SELECT throws_like($$SELECT segtier.create_model('m', 'shop_orders', 'cust', 'at', 'amount', '{"rfm_bins": 12}')$$,
	'%model option "rfm_bins"%', 'a bad value names the option');
SELECT throws_ok($$SELECT segtier.create_model('m', 'shop_orders', 'cust', 'at', 'amount', '{"new_days": 400}')$$,
	'22023', 'model options new_days, active_days and churn_days must be in ascending order', 'windows checked together');
SELECT throws_ok($$SELECT segtier.refresh('nope')$$, '42704', 'model "nope" does not exist', 'unknown model');

SELECT lives_ok($$SELECT segtier.create_model('shop', 'shop_orders', 'cust', 'at', 'amount',
	'{"as_of": "2024-07-01 00:00+00", "rfm_bins": 3, "time_zone": "UTC"}')$$, 'create a model');
SELECT throws_ok($$SELECT segtier.create_model('shop', 'shop_orders', 'cust', 'at', 'amount')$$,
	'42710', 'model "shop" already exists', 'duplicate model');
SELECT is(segtier.tiers('shop'), 'segtier_data.shop_tiers'::regclass, 'tiers() names the relation');
SELECT is((SELECT format_type(atttypid, atttypmod) FROM pg_attribute
		   WHERE attrelid = segtier.tiers('shop') AND attname = 'customer'), 'bigint', 'customer id keeps its type');

SELECT isnt(segtier.refresh('shop'), NULL, 'first refresh');
SELECT results_eq($$SELECT customer, frequency, monetary, round(recency_days::numeric, 3), value_class::text, pyramid::text, lifecycle::text
				   FROM segtier_data.shop_tiers ORDER BY customer$$,
	$$VALUES (1::bigint, 2::bigint, 150::numeric, 10.583, 'value:B', 'pyramid:bronze', 'lifecycle:new'),
			 (2, 1, 20, 177.583, 'value:C', 'pyramid:bronze', 'lifecycle:active'),
			 (3, 1, 500, 487.583, 'value:A', 'pyramid:vip', 'lifecycle:churned')$$,
	'tiers of the first run');
SELECT results_eq($$SELECT rfm::text, rfm_segment, churn_risk, churn_reason FROM segtier_data.shop_tiers ORDER BY customer$$,
	$$VALUES ('322/3', 'Champions', false, NULL), ('211/3', 'Potential Loyalist', false, NULL),
			 ('113/3', 'At Risk', true, 'no purchase for 487 days')$$,
	'rfm scores, segments and churn of the first run');
SELECT is((SELECT count(*) FROM segtier.tier_history WHERE model = 'shop' AND reason = 'new customer'), 9::bigint,
	'a new customer gets one history row per tier column');
SELECT is((SELECT status || ' ' || full_refresh || ' ' || customers || ' ' || changed FROM segtier.refresh_runs
		   WHERE model = 'shop' ORDER BY run_id DESC LIMIT 1), 'succeeded true 3 9', 'run recorded');

-- nothing changed: nothing written
SELECT isnt(segtier.refresh('shop'), NULL, 'second refresh');
SELECT is((SELECT full_refresh || ' ' || changed FROM segtier.refresh_runs WHERE model = 'shop' ORDER BY run_id DESC LIMIT 1),
	'false 0', 'an unchanged source gives an incremental run with no changes');

-- captured changes: customer 2 buys a lot, customer 3's orders go away
INSERT INTO shop_orders VALUES (2, '2024-06-30 10:00+00', 1000, NULL);
DELETE FROM shop_orders WHERE cust = 3;
SELECT is((SELECT array_agg(DISTINCT customer ORDER BY customer) FROM segtier_data.shop_queue), '{2,3}'::bigint[],
	'the queue holds the changed customers');
SELECT isnt(segtier.refresh('shop'), NULL, 'incremental refresh');
SELECT results_eq($$SELECT customer::text, scheme, from_tier::text, to_tier::text, reason FROM segtier.tier_history
				   WHERE run_id = (SELECT max(run_id) FROM segtier.refresh_runs) ORDER BY 1, 2$$,
	$$VALUES ('2', 'pyramid', 'pyramid:bronze', 'pyramid:vip', 'score'),
			 ('2', 'value_class', 'value:C', 'value:A', 'score'),
			 ('3', 'lifecycle', 'lifecycle:churned', NULL, 'customer removed'),
			 ('3', 'pyramid', 'pyramid:vip', NULL, 'customer removed'),
			 ('3', 'value_class', 'value:A', NULL, 'customer removed')$$,
	'history of the incremental run');
SELECT is((SELECT count(*) FROM segtier_data.shop_queue), 0::bigint, 'the queue is consumed');

-- every column of every relation segtier made has a COMMENT
SELECT is_empty($$SELECT c.oid::regclass || '.' || a.attname FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid
				 WHERE c.relnamespace IN ('segtier'::regnamespace, 'segtier_data'::regnamespace)
				   AND c.relkind IN ('r', 'v', 'p') AND a.attnum > 0 AND NOT a.attisdropped
				   AND col_description(c.oid, a.attnum) IS NULL$$, 'every column has a COMMENT');

-- a view and a partitioned table as sources
CREATE VIEW shop_view AS SELECT cust, at, amount FROM shop_orders;
SELECT create_model('shopv', 'shop_view', 'cust', 'at', 'amount', '{"as_of": "2024-07-01 00:00+00"}');
SELECT refresh('shopv');
INSERT INTO shop_orders VALUES (9, '2024-06-15 10:00+00', 10, NULL);
SELECT refresh('shopv');
SELECT is((SELECT full_refresh::text || ' ' || customers FROM refresh_runs WHERE model = 'shopv' ORDER BY run_id DESC LIMIT 1),
	'true 3', 'a view source is rescanned on every refresh and sees new rows');
CREATE TABLE parted (cust text, at date, amount numeric) PARTITION BY RANGE (at);
CREATE TABLE parted_2024 PARTITION OF parted FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');
CREATE TABLE parted_2025 PARTITION OF parted FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
INSERT INTO parted VALUES ('a', '2024-05-01', 10), ('b', '2025-02-01', 20);
SELECT create_model('shopp', 'parted', 'cust', 'at', 'amount', '{"as_of": "2025-06-01 00:00+00"}');
SELECT refresh('shopp');
INSERT INTO parted_2025 VALUES ('c', '2025-03-01', 30);
SELECT refresh('shopp');
SELECT is((SELECT full_refresh::text || ' ' || customers FROM refresh_runs WHERE model = 'shopp' ORDER BY run_id DESC LIMIT 1),
	'false 3', 'a partitioned source is captured, also for rows written straight into a partition');
CREATE TABLE parted_2026 (cust text, at date, amount numeric);
INSERT INTO parted_2026 VALUES ('d', '2025-05-01', 5);
ALTER TABLE parted_2026 ADD CHECK (at < '2026-01-01');
DROP TABLE parted_2025 CASCADE;
CREATE TABLE parted_2025 PARTITION OF parted FOR VALUES FROM ('2025-01-01') TO ('2025-04-01');
ALTER TABLE parted ATTACH PARTITION parted_2026 FOR VALUES FROM ('2025-04-01') TO ('2026-01-01');
SELECT refresh('shopp');
SELECT is((SELECT full_refresh::text || ' ' || customers FROM refresh_runs WHERE model = 'shopp' ORDER BY run_id DESC LIMIT 1),
	'true 2', 'attached partitions get capture triggers and force a full refresh');
INSERT INTO parted_2026 VALUES ('e', '2025-05-02', 5);
SELECT refresh('shopp');
SELECT is((SELECT full_refresh::text || ' ' || customers FROM refresh_runs WHERE model = 'shopp' ORDER BY run_id DESC LIMIT 1),
	'false 3', 'and are captured from then on');
-- a detached child keeps no duty: writing to it never fails, the next
-- refresh (full: a child left) drops its triggers, and a second model on the
-- same source, named with the first one's prefix, keeps its own
SELECT create_model('shopp_b', 'parted', 'cust', 'at', 'amount', '{"as_of": "2025-06-01 00:00+00"}');
SELECT refresh('shopp_b');
ALTER TABLE parted DETACH PARTITION parted_2024;
SELECT lives_ok($$INSERT INTO parted_2024 VALUES ('z', '2024-06-01', 1); DELETE FROM parted_2024 WHERE cust = 'z'$$,
	'a child detached from the source takes writes');
SELECT refresh('shopp');
SELECT is((SELECT string_agg(tgname, ',' ORDER BY tgname) FROM pg_trigger WHERE tgrelid = 'parted_2024'::regclass),
	'segtier_shopp_b_delete,segtier_shopp_b_insert,segtier_shopp_b_truncate,segtier_shopp_b_update',
	'the refresh dropped the model''s triggers on the detached child, not the other model''s');
SELECT drop_model('shopp');
SELECT is((SELECT count(*) FROM pg_trigger WHERE tgname LIKE 'segtier\_shopp\_b\_%'), 16::bigint,
	'dropping the model leaves the other model''s triggers on the source and its children');
SELECT drop_model('shopp_b');
SELECT is((SELECT count(*) FROM pg_trigger WHERE tgfoid = 'segtier._capture'::regproc AND tgname LIKE 'segtier\_shopp%'), 0::bigint,
	'drop_model drops the triggers on a child detached since, too');

-- the customer column renamed or retyped: writes go on, nothing is queued,
-- the refresh says why it cannot run, and once it can it is full
CREATE TABLE rn (c int, t timestamptz, a numeric);
INSERT INTO rn VALUES (1, '2024-12-01', 5);
SELECT create_model('rn', 'rn', 'c', 't', 'a', '{"as_of": "2025-01-01 00:00+00"}');
SELECT refresh('rn');
ALTER TABLE rn RENAME COLUMN c TO customer_id;
SELECT lives_ok($$INSERT INTO rn VALUES (2, '2024-12-31', 5)$$, 'a write after the customer column was renamed');
SELECT throws_ok($$SELECT segtier.refresh('rn')$$, '42703', 'customer column "c" does not exist in public.rn',
	'the refresh says the column is gone');
ALTER TABLE rn RENAME COLUMN customer_id TO c;
SELECT refresh('rn');
SELECT is((SELECT full_refresh::text || ' ' || customers FROM refresh_runs WHERE model = 'rn' ORDER BY run_id DESC LIMIT 1),
	'true 2', 'renamed back, the next refresh is full and sees the row written meanwhile');
ALTER TABLE rn ALTER COLUMN c TYPE bigint;
SELECT lives_ok($$INSERT INTO rn VALUES (3, '2024-12-31', 5)$$, 'a write after the customer column was retyped');
SELECT throws_ok($$SELECT segtier.refresh('rn')$$, '42804',
	'customer column "c" of public.rn is now of type bigint, but the tables of model "rn" hold integer',
	'the refresh says the type changed');
SELECT drop_model('rn');

-- a shop's first day: nobody has been a customer for a whole day, so BG/NBD
-- identifies nothing; the refresh scores everything else (the fit was ~0
-- and the CLV's series then failed the whole refresh)
CREATE TABLE launch (c int, t timestamptz, a numeric);
INSERT INTO launch SELECT g, '2025-01-01 08:00+00'::timestamptz + g * interval '1 minute', 10 + g % 7 FROM generate_series(1, 300) g;
SELECT create_model('launch', 'launch', 'c', 't', 'a',
	'{"as_of": "2025-01-01 18:00+00", "time_zone": "UTC", "predict": true, "penalizer": 0.001}');
SELECT refresh('launch');
SELECT is((SELECT count(*) || ' ' || count(p_alive) || ' ' || count(clv) || ' ' || count(DISTINCT lifecycle) FROM segtier_data.launch_tiers),
	'300 0 0 1', 'launch day: every customer scored, no prediction');
-- a month later nobody has bought twice: still no BG/NBD fit (it was r near
-- 0 and alpha near infinity, and p_alive 1 for everyone)
SELECT alter_model('launch', '{"as_of": "2025-02-01 00:00+00"}');
SELECT refresh('launch');
SELECT is((SELECT count(*) || ' ' || count(p_alive) || ' ' || count(expected_purchases) FROM segtier_data.launch_tiers),
	'300 0 0', 'nobody repeated: every customer scored, no prediction');

-- NULLs and unknown names (found by review)
SELECT throws_ok($$SELECT segtier.tiers(NULL)$$, '22004', 'model name must not be NULL', 'tiers(NULL)');
SELECT throws_ok($$SELECT segtier.drop_model(NULL)$$, '22004', 'model name must not be NULL', 'drop_model(NULL)');
SELECT throws_ok($$SELECT segtier.grant_reader(NULL)$$, '22004', 'role must not be NULL', 'grant_reader(NULL)');
SELECT throws_ok($$SELECT segtier.clear_override('launch', NULL)$$, '22004', 'customer must not be NULL',
	'clear_override of a NULL customer');
SELECT throws_ok($$SELECT segtier.purge_history('no_such')$$, '42704', 'model "no_such" does not exist',
	'purge_history of an unknown model');
SELECT throws_ok($$SELECT segtier.alter_model('launch', '"x"')$$, '22023', 'model options must be a JSON object',
	'alter_model with a JSON scalar');

-- truncate makes the next run full
TRUNCATE shop_orders;
SELECT is((SELECT needs_full FROM segtier.model WHERE name = 'shop'), true, 'TRUNCATE marks the model for a full refresh');
SELECT lives_ok($$SELECT segtier.drop_model('shop')$$, 'drop the model');

CREATE TABLE nulls_src (who int, at timestamptz, amount numeric);
INSERT INTO nulls_src VALUES (1, '2025-01-01', 10), (NULL, '2025-01-01', 5), (NULL, NULL, 5), (NULL, '2025-01-01', -2),
	(NULL, '2030-01-01', 1);
SELECT create_model('nulls', 'nulls_src', 'who', 'at', 'amount', '{"as_of": "2025-02-01 00:00+00", "time_zone": "UTC"}');
SELECT refresh('nulls');
SELECT is((SELECT params->>'null_customer_rows' FROM refresh_runs WHERE model = 'nulls' ORDER BY run_id DESC LIMIT 1), '4',
	'rows without a customer are counted, NULL-time, refund and future rows among them');

-- found by review of the C scoring pass
CREATE TABLE once_src (who int, at timestamptz, amount numeric);
INSERT INTO once_src VALUES (1, '2025-01-01', 0.70), (2, '2025-01-05', 0.10), (3, '2025-01-09', 0.40);
CREATE TABLE once_people (id numeric PRIMARY KEY);
INSERT INTO once_people SELECT g FROM generate_series(1, 5) g;
SELECT create_model('once', 'once_src', 'who', 'at', 'amount',
	'{"as_of": "2025-02-01 00:00+00", "time_zone": "UTC", "predict": true, "customers_table": "once_people", "customers_key": "id"}');
SELECT lives_ok($$SELECT segtier.refresh('once')$$,
	'predict on customers without repeat purchases (no Gamma-Gamma fit): the refresh goes on');
SELECT is((SELECT array_agg(rfm::text ORDER BY customer) FROM segtier_data.once_tiers WHERE rfm IS NOT NULL),
	'{113,211,312}', 'one purchase each: F has no cut points (all score 1), R and M are still scored, as in 0.1.0');
SELECT is((SELECT count(*) FROM segtier_data.once_tiers WHERE last_purchase IS NOT NULL AND clv IS NULL), 3::bigint,
	'no CLV without a spend model');
SELECT is((SELECT array_agg(customer ORDER BY customer) FROM segtier_data.once_tiers), '{1,2,3,4,5}',
	'prospects keyed by a numeric column keep their ids in the int customer column');
SELECT throws_ok($$SELECT * FROM segtier._rescore(
		segtier._scoring_settings((SELECT m FROM segtier.model m WHERE name = 'once'),
			segtier._effective_options((SELECT m FROM segtier.model m WHERE name = 'once')), now(), '{}', 1),
		'SELECT ' || (SELECT string_agg(g::text, ', ') FROM generate_series(1, 15) g))
	AS x(op "char", customer int, h_scheme text[], h_from text[], h_to text[], h_reason text[], h_by text[])$$,
	'42804', 'input column 2 of segtier._rescore has type integer, not timestamp with time zone',
	'the scoring pass checks the types of what it reads');
-- it updates rows at the ctid its query read: one that is not a row is an error, not a write
CREATE FUNCTION pg_temp.rescore_at(tid text) RETURNS bigint LANGUAGE plpgsql AS $f$
DECLARE
	m segtier.model := (SELECT m FROM segtier.model m WHERE name = 'once');
	n bigint;
BEGIN
	EXECUTE $q$SELECT count(*) FROM segtier._rescore(
			segtier._scoring_settings($1, segtier._effective_options($1), now(), (SELECT params FROM segtier.refresh_runs
				WHERE model = 'once' AND status = 'succeeded' ORDER BY run_id DESC LIMIT 1), 1), $2)
		AS x(op "char", customer int, h_scheme text[], h_from text[], h_to text[], h_reason text[], h_by text[])$q$
	INTO n USING m, format($q$SELECT t.customer, t.first_purchase, t.last_purchase, 12345::float8, t.frequency,
			t.monetary, t.value, 1::bigint, NULL::numeric[], NULL::float8, NULL::float8, NULL::float8, NULL::float8,
			true, %s::tid
		FROM segtier_data.once_tiers t WHERE t.last_purchase IS NOT NULL$q$, tid);
	RETURN n;
END $f$;
SELECT throws_ok($$SELECT pg_temp.rescore_at('''(0,999)''')$$, 'XX000',
	'the scoring query of segtier._rescore read no row of "once_tiers" at its ctid', 'a ctid past the rows of a page');
SELECT throws_ok($$SELECT pg_temp.rescore_at('NULL')$$, '23505', 'duplicate key value violates unique constraint "once_tiers_pkey"',
	'no ctid: a new customer, inserted (here the table has them: refused)');
SELECT is((SELECT count(*) FROM segtier_data.once_tiers WHERE recency_days = 12345), 0::bigint, 'and no row updated');
SELECT lives_ok($$SELECT pg_temp.rescore_at('t.ctid')$$, 'the ctid of the row read: updated');
SELECT is((SELECT count(*) FROM segtier_data.once_tiers WHERE recency_days = 12345), 3::bigint,
	'the rows read were updated');

SELECT * FROM finish();
ROLLBACK;
