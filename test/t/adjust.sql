BEGIN;
SET search_path = public, segtier;
SELECT plan(30);

-- ten customers with value 10, 20, ... 100: by value A = {100, 90, 80, 70, 60}
CREATE TABLE sales (who text, at timestamptz, amount numeric);
INSERT INTO sales SELECT 'c' || g, '2025-03-01 12:00+00', g * 10 FROM generate_series(1, 10) g;
SELECT create_model('adj', 'sales', 'who', 'at', 'amount',
	'{"as_of": "2025-03-10 00:00+00", "time_zone": "UTC", "hysteresis_runs": 2, "statistics_interval": "0"}');
SELECT lives_ok($$SELECT segtier.refresh('adj')$$, 'first run');
SELECT is((SELECT value_class::text FROM segtier_data.adj_tiers WHERE customer = 'c6'), 'value:A', 'c6 starts in A');
SELECT is((SELECT count(*) FROM segtier_data.adj_tiers
		   WHERE run_id = (SELECT min(run_id) FROM refresh_runs WHERE model = 'adj') AND computed_at = now()),
	10::bigint, 'the scoring pass inserted every new row with the run and its time');

-- c11 arrives with 2000 and pushes everyone else down
INSERT INTO sales VALUES ('c11', '2025-03-02 12:00+00', 2000);
SELECT lives_ok($$SELECT segtier.refresh('adj')$$, 'second run');
SELECT is((SELECT value_class::text || ' ' || held::text FROM segtier_data.adj_tiers WHERE customer = 'c6'),
	'value:A {value_class}', 'a downgrade is held on the first run below');
SELECT is((SELECT from_tier::text || '>' || to_tier::text || ' ' || reason FROM tier_history
		   WHERE model = 'adj' AND customer = 'c6' AND scheme = 'value_class' ORDER BY run_id DESC LIMIT 1),
	'value:A>value:A hysteresis hold: scored value:C, run 1', 'the hold is in the history');
SELECT is((SELECT value_class::text FROM segtier_data.adj_tiers WHERE customer = 'c11'), 'value:A', 'an upgrade is immediate');
SELECT lives_ok($$SELECT segtier.refresh('adj')$$, 'third run');
SELECT is((SELECT value_class::text || ' ' || held::text FROM segtier_data.adj_tiers WHERE customer = 'c6'),
	'value:C {}', 'released on the second consecutive run below');
SELECT is((SELECT from_tier::text || '>' || to_tier::text || ' ' || reason FROM tier_history
		   WHERE model = 'adj' AND customer = 'c6' AND scheme = 'value_class' ORDER BY run_id DESC LIMIT 1),
	'value:A>value:C hysteresis release', 'the release is in the history');
-- the scoring pass updated the rows itself: the run and time, index entries
-- for the rows whose held set changed (not HOT), none missing
SELECT is((SELECT run_id = (SELECT max(run_id) FROM refresh_runs WHERE model = 'adj') AND computed_at = now()
		   FROM segtier_data.adj_tiers WHERE customer = 'c6'), true, 'an updated row has the run and its time');
CREATE EXTENSION amcheck;
SELECT lives_ok($$SELECT bt_index_check('segtier_data.adj_tiers_pkey', true), bt_index_check('segtier_data.adj_tiers_pending', true)$$,
	'the updated rows are in both indexes');

-- hysteresis by days
SELECT alter_model('adj', '{"hysteresis_runs": 0, "hysteresis_days": 10}');
DELETE FROM sales WHERE who = 'c11';
SELECT refresh('adj');
INSERT INTO sales VALUES ('c11', '2025-03-02 12:00+00', 2000);
SELECT refresh('adj');
SELECT alter_model('adj', '{"as_of": "2025-03-15 00:00+00"}');
SELECT refresh('adj');
SELECT is((SELECT value_class::text FROM segtier_data.adj_tiers WHERE customer = 'c7'), 'value:A', 'held 5 days later');
SELECT alter_model('adj', '{"as_of": "2025-03-21 00:00+00"}');
SELECT refresh('adj');
SELECT is((SELECT value_class::text FROM segtier_data.adj_tiers WHERE customer = 'c7'), 'value:B', 'released 11 days later (start share 2270/2550 < 0.9: B)');

-- overrides
SELECT alter_model('adj', '{"hysteresis_days": 0}');
SELECT throws_ok($$SELECT segtier.set_override('adj', 'c1', 'membership_x:gold', 'x')$$, '22P02', NULL,
	'an unknown scheme is a tier input error');
SELECT throws_ok($$SELECT segtier.set_override('adj', 'c1', 'pyramid:vip', 'x', now() - interval '1 day')$$, '22023',
	NULL, 'an expiry in the past is refused');
SELECT lives_ok($$SELECT segtier.set_override('adj', 'c1', 'pyramid:vip', 'key account')$$, 'set an override');
SELECT refresh('adj');
SELECT is((SELECT pyramid::text || ' ' || overridden::text FROM segtier_data.adj_tiers WHERE customer = 'c1'),
	'pyramid:vip {pyramid}', 'the override wins over the score');
SELECT is((SELECT reason || ' by ' || changed_by FROM tier_history
		   WHERE model = 'adj' AND customer = 'c1' AND scheme = 'pyramid' ORDER BY run_id DESC LIMIT 1),
	'override: key account by ' || current_user, 'the override is in the history with who set it');
SELECT throws_ok($$SELECT segtier.clear_override('adj', 'c1', 'pyramid_scheme')$$, '22023',
	'no tier column "pyramid_scheme" takes overrides', 'clearing an unknown tier column is an error');
SELECT is(clear_override('adj', 'c1', 'value_class'), 0::bigint, 'clearing another column clears nothing');
SELECT is(clear_override('adj', 'c1'), 1::bigint, 'clear it');
SELECT refresh('adj');
SELECT is((SELECT pyramid::text || ' ' || reason FROM segtier_data.adj_tiers t JOIN tier_history h
			 ON h.customer = t.customer AND h.model = 'adj' AND h.scheme = 'pyramid'
		   WHERE t.customer = 'c1' ORDER BY h.run_id DESC LIMIT 1),
	'pyramid:bronze override cleared', 'cleared: back to the score, recorded');
SELECT set_override('adj', 'c2', 'value:A', 'promo', now() + interval '1 day');
SELECT refresh('adj');
UPDATE tier_override SET expires = now() - interval '1 second' WHERE model = 'adj' AND customer = 'c2';
SELECT refresh('adj');
SELECT is((SELECT to_tier::text || ' ' || reason FROM tier_history
		   WHERE model = 'adj' AND customer = 'c2' AND scheme = 'value_class' ORDER BY run_id DESC LIMIT 1),
	'value:C override expired', 'an expired override returns to the score');
SELECT is((SELECT count(*) FROM tier_override WHERE model = 'adj'), 0::bigint, 'ended overrides are removed once recorded');

-- retention
SELECT alter_model('adj', '{"history_retention": "30 days"}');
UPDATE tier_history SET changed_at = now() - interval '31 days' WHERE model = 'adj' AND customer IN ('c1', 'c2');
SELECT is(purge_history('adj'), (SELECT count(*) FROM tier_history WHERE model = 'adj' AND customer IN ('c1', 'c2')),
	'purge_history deletes the rows older than history_retention');
SELECT is((SELECT count(*) FROM tier_history WHERE model = 'adj' AND customer IN ('c1', 'c2')), 0::bigint, 'and only those');

-- a failing model is recorded and the others go on
CREATE TABLE doomed (who text, at timestamptz, amount numeric);
SELECT create_model('doomed', 'doomed', 'who', 'at', 'amount');
DROP TABLE doomed;
SELECT is((SELECT count(*) FROM (SELECT refresh()) r), 1::bigint, 'refresh(NULL) returns');
SELECT is((SELECT status || ': ' || error FROM refresh_runs WHERE model = 'doomed' ORDER BY run_id DESC LIMIT 1),
	'failed: source of model "doomed" no longer exists', 'the failing model is recorded as a failed run');
SELECT is((SELECT status FROM refresh_runs WHERE model = 'adj' ORDER BY run_id DESC LIMIT 1), 'succeeded',
	'the other model was refreshed');

SELECT * FROM finish();
ROLLBACK;
