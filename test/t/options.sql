BEGIN;
SET search_path = public, segtier;
SELECT plan(73);

-- four customers, as of 2025-07-01: a: 3 orders on 2 days, b: 1 big order,
-- c: 2 small orders long ago, d: refunds only
CREATE TABLE o (who text, at timestamptz, amount numeric, margin numeric);
INSERT INTO o VALUES
	('a', '2025-06-01 10:00+00', 100, 10), ('a', '2025-06-01 18:00+00', 50, 5), ('a', '2025-06-20 10:00+00', 30, 3),
	('b', '2025-05-15 10:00+00', 900, 450),
	('c', '2024-01-10 10:00+00', 20, 2), ('c', '2024-02-10 10:00+00', 10, 1),
	('d', '2025-06-10 10:00+00', -40, -4);
CREATE TABLE people (pid text, name text);
INSERT INTO people VALUES ('a', 'A'), ('b', 'B'), ('c', 'C'), ('d', 'D'), ('e', 'E never bought');

CREATE FUNCTION pg_temp.run(opts jsonb, q text) RETURNS SETOF text LANGUAGE plpgsql AS $$
BEGIN
	PERFORM segtier.create_model('opt', 'o', 'who', 'at', 'amount',
		'{"as_of": "2025-07-01 00:00+00", "time_zone": "UTC"}'::jsonb || opts);
	PERFORM segtier.refresh('opt');
	RETURN QUERY EXECUTE q;
	PERFORM segtier.drop_model('opt');
END $$;
CREATE FUNCTION pg_temp.col(opts jsonb, expr text) RETURNS text LANGUAGE sql AS $$
	SELECT string_agg(x, ' ') FROM pg_temp.run(opts,
		format('SELECT customer || ''='' || coalesce((%s)::text, ''-'') FROM segtier_data.opt_tiers ORDER BY customer', expr)) x
$$;

SELECT is(pg_temp.col('{}', 'frequency'), 'a=2 b=1 c=2 d=0', 'frequency counts purchase days by default');
SELECT is(pg_temp.col('{"frequency": "transactions"}', 'frequency'), 'a=3 b=1 c=2 d=0', 'frequency: transactions');
SELECT is(pg_temp.col('{"monetary": "average"}', 'monetary'), 'a=60.0000000000000000 b=900.0000000000000000 c=15.0000000000000000 d=-',
	'monetary: average per purchase');
SELECT is(pg_temp.col('{"rfm_bins": 3, "recency_cuts": [30, 100], "frequency_cuts": [1, 2], "monetary_cuts": [50, 500]}', 'rfm'),
	'a=322/3 b=213/3 c=121/3 d=-', 'fixed thresholds instead of quantiles');
-- with three buyers, quantiles give at most three groups; fixed thresholds use the whole scale
SELECT is(pg_temp.col('{"segment_scheme": "rfm8", "segment_lang": "zh", "rfm_bins": 3, "recency_cuts": [30, 100],
						"frequency_cuts": [1, 2], "monetary_cuts": [50, 500]}', 'rfm_segment'),
	'a=一般发展客户 b=重要挽留客户 c=一般挽留客户 d=-', 'rfm8 in Chinese, against the scale midpoint (322, 213, 121 on 1..3)');
SELECT is(pg_temp.col('{"segment_scheme": "rfm8", "rfm8_basis": "mean"}', 'rfm_segment'),
	'a=General Value b=Important Development c=General Retention d=-', 'rfm8 against the population means');
SELECT is(pg_temp.col('{}', 'value_class'), 'a=value:B b=value:A c=value:C d=value:C', 'ABC by value, 70/90 %');
SELECT is(pg_temp.col('{"value_basis": "count", "value_cutoffs": [0.3, 0.6]}', 'value_class'),
	'a=value:B b=value:A c=value:C d=value:C', 'ABC by head count (a starts at 1/3, c at 2/3)');
SELECT is(pg_temp.col('{"value_basis": "count", "value_cutoffs": [0.34, 0.67]}', 'value_class'),
	'a=value:A b=value:A c=value:B d=value:C', 'a customer starting just inside a class belongs to it');
SELECT is(pg_temp.col('{"value_cutoffs": [0.5, 0.99]}', 'value_class'), 'a=value:B b=value:A c=value:B d=value:C',
	'value cut-offs are options');
SELECT is(pg_temp.col('{"margin_column": "margin"}', 'value'), 'a=18 b=450 c=3 d=-4', 'margin_column is the value (refunds net)');

-- a five-level pyramid of a user scheme
INSERT INTO tier_scheme (name) VALUES ('stars');
INSERT INTO tier_level (scheme_id, name, rank, label_zh)
SELECT scheme_id, n, r, z FROM tier_scheme, (VALUES ('1', 1, '一星'), ('2', 2, '二星'), ('3', 3, '三星'), ('4', 4, '四星'), ('5', 5, '五星')) v(n, r, z)
WHERE name = 'stars';
SELECT is(pg_temp.col('{"pyramid_scheme": "stars", "pyramid_shares": [0.25, 0.5, 0.6, 0.9]}', 'pyramid'),
	'a=stars:4 b=stars:5 c=stars:2 d=stars:1', 'a pyramid of a user scheme with its own shares');
SELECT is(pg_temp.col('{"pyramid_scheme": "stars", "pyramid_shares": [0.25, 0.5, 0.6, 0.9]}', 'segtier.tier_label(pyramid, ''zh'')'),
	'a=四星 b=五星 c=二星 d=一星', 'with its Chinese labels');

-- lifecycle windows and churn rule
SELECT is(pg_temp.col('{}', 'segtier.tier_name(lifecycle)'), 'a=new b=new c=churned d=prospect', 'default lifecycle windows');
SELECT is(pg_temp.col('{"new_days": 20, "active_days": 100, "churn_days": 600}', 'segtier.tier_name(lifecycle)'),
	'a=active b=active c=at_risk d=prospect', 'lifecycle windows are options');
SELECT is(pg_temp.col('{"loyal_purchases": 2, "new_days": 0}', 'segtier.tier_name(lifecycle)'),
	'a=loyal b=active c=churned d=prospect', 'loyal_purchases');
SELECT is(pg_temp.col('{"customers_table": "people", "customers_key": "pid"}', 'segtier.tier_name(lifecycle)'),
	'a=new b=new c=churned d=prospect e=prospect', 'customers_table and customers_key add those who never bought');

-- the prospects' ids are made distinct unless a unique index of the key's
-- own type says they are (then the statistics may aggregate in parallel)
CREATE FUNCTION pg_temp.distinct_prospects(tbl text) RETURNS boolean LANGUAGE plpgsql AS $$
DECLARE
	f text;
BEGIN
	PERFORM segtier.create_model('dis', 'o', 'who', 'at', 'amount', jsonb_build_object('customers_table', tbl, 'customers_key', 'pid'));
	SELECT segtier._features(m, segtier._effective_options(m), now(), NULL, false) INTO f FROM segtier.model m WHERE m.name = 'dis';
	PERFORM segtier.drop_model('dis');
	RETURN f LIKE '%SELECT DISTINCT c.pid%';
END $$;
INSERT INTO people VALUES ('e', 'E again'), ('a', 'A again');
SELECT is(pg_temp.col('{"customers_table": "people", "customers_key": "pid"}', 'segtier.tier_name(lifecycle)'),
	'a=new b=new c=churned d=prospect e=prospect', 'a prospect listed twice in the customers table is one customer');
SELECT is(pg_temp.distinct_prospects('people'), true, 'no unique index: the prospects'' ids are made distinct');
CREATE UNIQUE INDEX people_some ON people (pid) WHERE name NOT LIKE '% again';
SELECT is(pg_temp.distinct_prospects('people'), true, 'a partial unique index does not make them distinct');
CREATE TABLE people_varchar (pid varchar PRIMARY KEY);
SELECT is(pg_temp.distinct_prospects('people_varchar'), true, 'nor one of another type than the customer id''s (varchar, not text)');
CREATE TABLE people_pair (pid text, name text, UNIQUE (pid, name));
SELECT is(pg_temp.distinct_prospects('people_pair'), true, 'nor one over the key and another column');
CREATE TABLE people_c (pid text);
CREATE UNIQUE INDEX ON people_c (pid COLLATE "C");
SELECT is(pg_temp.distinct_prospects('people_c'), true, 'nor one of another collation than the column''s');
CREATE TABLE people_pattern (pid text);
CREATE UNIQUE INDEX ON people_pattern (pid text_pattern_ops);
SELECT is(pg_temp.distinct_prospects('people_pattern'), true, 'nor one of another opclass than the type''s default');
CREATE TABLE people_deferred (pid text UNIQUE DEFERRABLE INITIALLY DEFERRED);
SELECT is(pg_temp.distinct_prospects('people_deferred'), true, 'nor a deferred unique constraint');
CREATE TABLE people_parent (pid text PRIMARY KEY);
CREATE TABLE people_child () INHERITS (people_parent);
INSERT INTO people_parent VALUES ('a'), ('e');
INSERT INTO people_child VALUES ('e');
SELECT is(pg_temp.col('{"customers_table": "people_parent", "customers_key": "pid"}', 'segtier.tier_name(lifecycle)'),
	'a=new b=new c=churned d=prospect e=prospect', 'nor the primary key of a parent whose child lists the same prospect');
CREATE TABLE people_parted (pid text PRIMARY KEY) PARTITION BY LIST (pid);
CREATE TABLE people_parted_a PARTITION OF people_parted FOR VALUES IN ('a', 'b');
CREATE TABLE people_parted_rest PARTITION OF people_parted DEFAULT;
SELECT is(pg_temp.distinct_prospects('people_parted'), false, 'a partitioned table''s primary key covers its partitions');
DELETE FROM people WHERE name LIKE '% again';
DROP INDEX people_some;
ALTER TABLE people ADD PRIMARY KEY (pid);
SELECT is(pg_temp.distinct_prospects('people'), false, 'a primary key of the id''s type: no DISTINCT');
SELECT is(pg_temp.col('{"customers_table": "people", "customers_key": "pid"}', 'segtier.tier_name(lifecycle)'),
	'a=new b=new c=churned d=prospect e=prospect', 'the same customers without it');
SELECT is(pg_temp.col('{"active_days": 25, "new_days": 10}', 'churn_reason'),
	'a=- b=no purchase for 46 days c=no purchase for 506 days d=-', 'the churn rule uses active_days');

-- monthly decline: e spends 100, 70, 49, 34 in March..June
INSERT INTO o SELECT 'e', t, x, 0 FROM (VALUES ('2025-03-05 10:00+00'::timestamptz, 100), ('2025-04-05 10:00+00', 70),
	('2025-05-05 10:00+00', 49), ('2025-06-05 10:00+00', 34)) v(t, x);
SELECT is((SELECT x FROM pg_temp.run('{}', 'SELECT churn_reason FROM segtier_data.opt_tiers WHERE customer = ''e''') x),
	'spend down at least 20% in each of the last 3 months', 'three months of 30 % decline');
SELECT is((SELECT x FROM pg_temp.run('{"churn_decline": 0.35}', 'SELECT coalesce(churn_reason, ''none'') FROM segtier_data.opt_tiers WHERE customer = ''e''') x),
	'none', 'churn_decline');
SELECT is((SELECT x FROM pg_temp.run('{"churn_months": 2, "churn_decline": 0.3}', 'SELECT churn_reason FROM segtier_data.opt_tiers WHERE customer = ''e''') x),
	'spend down at least 30% in each of the last 2 months', 'churn_months');
DELETE FROM o WHERE who = 'e';

-- predictive options
SELECT is((SELECT x FROM pg_temp.run('{"predict": true, "penalizer": 0.01, "p_alive_threshold": 0.999999}',
	'SELECT count(*) FILTER (WHERE churn_reason LIKE ''%p_alive%'')::text || '' '' || count(p_alive)::text FROM segtier_data.opt_tiers') x),
	'2 3', 'p_alive_threshold adds churn risk (a one-time buyer is alive for BG/NBD); p_alive for every buyer');
SELECT is((SELECT x FROM pg_temp.run('{"predict": true, "penalizer": 0.01, "horizon_days": 30}',
	$q$SELECT ((SELECT sum(expected_purchases) FROM segtier_data.opt_tiers) < 1 AND
			  (SELECT params->'bgnbd' ? 'r' FROM segtier.refresh_runs ORDER BY run_id DESC LIMIT 1))::text$q$) x), 'true',
	'horizon_days bounds expected purchases; fitted parameters are stored with the run');
SELECT is((SELECT x FROM pg_temp.run('{"clusters": 2}', 'SELECT count(DISTINCT cluster)::text FROM segtier_data.opt_tiers') x),
	'2', 'clusters');
SELECT is((SELECT x FROM pg_temp.run('{"refresh_interval": "5 minutes", "history_retention": "90 days", "capture": false}',
	$q$SELECT (options->>'refresh_interval') || ' ' || (options->>'history_retention') || ' ' ||
			  (SELECT count(*) FROM pg_trigger WHERE tgrelid = 'o'::regclass) FROM segtier.model WHERE name = 'opt'$q$) x),
	'5 minutes 90 days 0', 'refresh_interval and history_retention are kept; capture false makes no triggers');

-- every option rejects a bad value, naming the key
CREATE FUNCTION pg_temp.bad_value_errors(k text) RETURNS SETOF text LANGUAGE plpgsql AS $$
BEGIN
	PERFORM segtier.create_model('opt', 'o', 'who', 'at', 'amount', jsonb_build_object(k, '{"z": 1}'::jsonb));
	RAISE EXCEPTION 'no error for %', k;
EXCEPTION WHEN invalid_parameter_value THEN
	RETURN NEXT SQLERRM;
END $$;
SELECT is((SELECT count(*) FROM segtier.model_option k
		   WHERE NOT EXISTS (
			   SELECT 1 FROM pg_temp.bad_value_errors(k.key) e WHERE e LIKE '%"' || k.key || '"%')), 0::bigint,
	'every option with a checkable value rejects a bad one with its name');
SELECT throws_ok($$SELECT segtier.create_model('opt', 'o', 'who', 'at', 'amount', '{"as_of": "yesterday-ish"}')$$,
	'22023', 'invalid value for model option "as_of": "yesterday-ish"', 'as_of must be a timestamptz');
SELECT throws_ok($$SELECT segtier.create_model('opt', 'o', 'who', 'at', 'amount', '{"margin_column": "nope"}')$$,
	'42703', 'margin column "nope" does not exist in public.o', 'margin_column must exist');
SELECT throws_ok($$SELECT segtier.create_model('opt', 'o', 'who', 'at', 'amount', '{"customers_table": "people", "customers_key": "nope"}')$$,
	'42703', 'customers_key column "nope" does not exist in public.people', 'customers_key must exist');
SELECT throws_ok($$SELECT segtier.create_model('opt', 'o', 'who', 'at', 'amount', '{"customers_table": ""}')$$,
	'22023', 'invalid value for model option "customers_table": ""', 'customers_table must not be empty');
SELECT throws_ok($$SELECT segtier.create_model('opt', 'o', 'who', 'at', 'amount', '{"customers_table": "no such table"}')$$,
	'22023', 'invalid value for model option "customers_table": "no such table"', 'nor a name of invalid syntax');
SELECT throws_ok($$SELECT segtier.create_model('opt', 'o', 'who', 'at', 'amount', '{"rfm_bins": 4, "recency_cuts": [1, 2]}')$$,
	'22023', 'invalid value for model option "recency_cuts": [1, 2]', 'fixed thresholds must number rfm_bins - 1');
SELECT throws_ok($$SELECT segtier.create_model('opt', 'o', 'who', 'at', 'amount', '{"pyramid_shares": [0.1, 0.2]}')$$,
	'22023', 'invalid value for model option "pyramid_shares": [0.1, 0.2]', 'pyramid shares must fit the scheme''s levels');
SELECT throws_ok($$SELECT segtier.create_model('opt', 'o', 'who', 'at', 'amount', '{"p_alive_threshold": 0.5}')$$,
	'22023', 'invalid value for model option "p_alive_threshold": 0.5', 'p_alive_threshold needs predict');
SELECT throws_ok($$SELECT segtier.create_model('opt', 'o', 'who', 'at', 'amount', '{"statistics_interval": "-1 hour"}')$$,
	'22023', 'invalid value for model option "statistics_interval": "-1 hour"', 'statistics_interval must not be negative');
SELECT lives_ok($$SELECT segtier._check_option('statistics_interval', '"0"')$$, 'statistics_interval may be zero');
SELECT throws_like($$SELECT segtier.create_model('opt', 'o', 'who', 'at', 'amount', '{"bogus": 1}')$$,
	'unknown model option "bogus"', 'an unknown key');
SELECT is((SELECT count(*) FROM segtier.model_option k
		   WHERE segtier._check_option(k.key, k.default_value) IS DISTINCT FROM k.default_value), 0::bigint,
	'every documented default passes its own check');

-- alter_model: a JSON null removes any key (its default applies again); an
-- unknown key is refused, null or not
SELECT segtier.create_model('nul', 'o', 'who', 'at', 'amount', '{"as_of": "2025-07-01 00:00+00", "rfm_bins": 4}');
SELECT segtier.alter_model('nul', '{"rfm_bins": null, "clusters": null}');
SELECT is((SELECT options ? 'rfm_bins' FROM segtier.model WHERE name = 'nul'), false, 'a JSON null removes an option with a default');
SELECT throws_ok($$SELECT segtier.alter_model('nul', '{"bogus": null}')$$,
	'22023', 'unknown model option "bogus"', 'removing an unknown key is refused');
-- values no refresh could use
SELECT throws_ok($$SELECT segtier.alter_model('nul', '{"as_of": "infinity"}')$$,
	'22023', 'invalid value for model option "as_of": "infinity"', 'as_of must be finite');
SELECT throws_ok($$SELECT segtier.alter_model('nul', '{"time_zone": "PST"}')$$,
	'22023', 'invalid value for model option "time_zone": "PST"', 'time_zone must be a zone name, not an abbreviation');
SELECT throws_ok($$SELECT segtier.alter_model('nul', '{"refresh_interval": "100000000 years"}')$$,
	'22023', 'invalid value for model option "refresh_interval": "100000000 years"', 'refresh_interval at most 1000 years');
SELECT throws_ok($$SELECT segtier.alter_model('nul', '{"churn_decline": 1e400}')$$, '22023', NULL,
	'a number beyond float8 is a bad value');
CREATE TABLE ids (who int PRIMARY KEY);
SELECT throws_ok($$SELECT segtier.alter_model('nul', '{"customers_table": "ids"}')$$, '42804', NULL,
	'a customers_key that does not compare with the customer ids');
-- a char(n) customer id keeps its type: bpchar tables, captured inserts, whole ids
CREATE TABLE oc (who char(6), at timestamptz, amount numeric);
INSERT INTO oc VALUES ('C00001', '2025-06-01', 10);
SELECT segtier.create_model('chr', 'oc', 'who', 'at', 'amount', '{"as_of": "2025-07-01 00:00+00"}');
SELECT segtier.refresh('chr');
SELECT lives_ok($$INSERT INTO oc VALUES ('C00002', '2025-06-02', 20)$$, 'the capture trigger takes a char(n) id');
SELECT segtier.refresh('chr');
SELECT is((SELECT string_agg(format_type(a.atttypid, a.atttypmod), ',' ORDER BY c.relname)
		   FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
		   WHERE c.relname IN ('chr_tiers', 'chr_summary', 'chr_queue') AND a.attname = 'customer'),
	'bpchar,bpchar,bpchar', 'the model''s tables have bpchar ids');
SELECT is((SELECT string_agg(customer::text, ',' ORDER BY customer) FROM segtier_data.chr_tiers), 'C00001,C00002',
	'and whole ids');
-- an override on a char(n) id shorter than n: stored as id::text writes it
-- (no padding), matched the same way by the refresh (it never applied)
INSERT INTO oc VALUES ('C3', '2025-06-03', 1);
SELECT segtier.refresh('chr');
SELECT segtier.set_override('chr', 'C3', 'value:A', 'key account');
SELECT segtier.refresh('chr');
SELECT is((SELECT value_class::text || ' ' || overridden::text FROM segtier_data.chr_tiers WHERE customer = 'C3'),
	'value:A {value_class}', 'an override applies to a char(n) id shorter than n');

-- stored forms that every run reads alike: an integer written 5.0, as_of
-- read once in the session's TimeZone and kept with its offset
SET LOCAL TimeZone = 'Asia/Tokyo';
SELECT segtier.create_model('norm', 'o', 'who', 'at', 'amount', '{"as_of": "2025-07-01 09:00", "rfm_bins": 4.0, "clusters": 2.00}');
RESET TimeZone;
SELECT is((SELECT (options->'as_of') || (options->'rfm_bins') || (options->'clusters') FROM segtier.model WHERE name = 'norm'),
	'["2025-07-01T09:00:00+09:00", 4, 2]'::jsonb, 'as_of keeps its offset, integers are kept as integers');
SELECT is((SELECT (options->>'as_of')::timestamptz FROM segtier.model WHERE name = 'norm'), '2025-07-01 00:00+00'::timestamptz,
	'and as_of is the same instant in another TimeZone');
SELECT throws_ok(format($$SELECT segtier.alter_model('norm', '{"as_of": %s}')$$, to_json(v)),
	'22023', format('invalid value for model option "as_of": %s', to_json(v)), 'as_of must not move: ' || v)
FROM (VALUES ('now'), ('today'), ('Tomorrow'), ('yesterday 10:00')) t(v);
SELECT throws_ok(format($$SELECT segtier.alter_model('norm', '{"time_zone": %s}')$$, to_json(v)),
	'22023', format('invalid value for model option "time_zone": %s', to_json(v)), 'a POSIX rule is not a zone name: ' || v)
FROM (VALUES ('UTC+5'), ('+05'), ('<+05>-5')) t(v);
SELECT lives_ok($$SELECT segtier.alter_model('norm', '{"time_zone": "Etc/GMT+5"}')$$, 'a listed zone with a sign is taken');
-- a source must hold rows
CREATE TYPE not_rows AS (who int, at timestamptz, amount numeric);
CREATE INDEX o_who ON o (who);
SELECT throws_ok(format($$SELECT segtier.create_model('bad', %L, 'who', 'at', 'amount')$$, r), '42809',
	format('source public.%s is not a table, view, materialized view or foreign table', r), 'a source that holds no rows: ' || r)
FROM (VALUES ('not_rows'), ('o_who')) t(r);

SELECT * FROM finish();
ROLLBACK;
