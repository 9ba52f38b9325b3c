BEGIN;
SET search_path = public, segtier;
SELECT plan(30);

-- an independent statement of the rfm11 map, cell by cell
CREATE TEMP TABLE rfm11_ref (rr int, fm int, segment text);
INSERT INTO rfm11_ref VALUES
	(1,1,'Lost'),(1,2,'Hibernating'),(2,1,'Hibernating'),(2,2,'Hibernating'),
	(1,3,'At Risk'),(1,4,'At Risk'),(2,3,'At Risk'),(2,4,'At Risk'),
	(1,5,'Can''t Lose Them'),(2,5,'Can''t Lose Them'),
	(3,1,'About To Sleep'),(3,2,'About To Sleep'),(3,3,'Need Attention'),
	(3,4,'Loyal Customers'),(3,5,'Loyal Customers'),(4,4,'Loyal Customers'),(4,5,'Loyal Customers'),
	(4,1,'Promising'),(5,1,'New Customers'),
	(4,2,'Potential Loyalist'),(4,3,'Potential Loyalist'),(5,2,'Potential Loyalist'),(5,3,'Potential Loyalist'),
	(5,4,'Champions'),(5,5,'Champions');
SELECT is((SELECT count(*) FROM rfm11_ref), 25::bigint, 'the reference map has 25 (R, FM) cells');
SELECT is(
	(SELECT count(*) FROM generate_series(1,5) r, generate_series(1,5) f, generate_series(1,5) m, rfm11_ref x
	 WHERE x.rr = r AND x.fm = floor((f + m) / 2.0 + 0.5) AND rfm_segment(rfm(r, f, m)) = x.segment),
	125::bigint, 'all 125 rfm11 cells match the reference map');
-- scales other than 5 go through ceil(score * 5 / n) first
SELECT is(
	(SELECT count(*) FROM generate_series(2,9) n, generate_series(1,n) r, generate_series(1,n) f, generate_series(1,n) m, rfm11_ref x
	 WHERE x.rr = ceil(r * 5.0 / n)
		AND x.fm = floor((ceil(f * 5.0 / n) + ceil(m * 5.0 / n)) / 2.0 + 0.5)
		AND rfm_segment(rfm(r, f, m, n)) = x.segment),
	(SELECT sum(n * n * n) FROM generate_series(2,9) n),
	'every cell of every scale matches the reference map');
SELECT is(
	(SELECT count(*) FROM generate_series(2,9) n, generate_series(1,n) r, generate_series(1,n) f, generate_series(1,n) m
	 WHERE rfm_segment(rfm(r, f, m, n), 'rfm8') =
		   rfm8_segment(r > (n + 1) / 2.0, f > (n + 1) / 2.0, m > (n + 1) / 2.0)),
	(SELECT sum(n * n * n) FROM generate_series(2,9) n),
	'rfm8 high means above the midpoint on every scale');
SELECT is(rfm_segment('455', 'rfm8', 'zh'), '重要价值客户', 'rfm8 zh 455');
SELECT is(rfm_segment('355', 'rfm8', 'en'), 'Important Retention', 'rfm8: 3 is low on 1..5');
SELECT is(rfm_segment('543', 'rfm11', 'zh'), '冠军客户', 'rfm11 zh 543');
SELECT is(rfm_segment(NULL), NULL, 'NULL rfm gives NULL');
SELECT is(rfm_segment('543', NULL), NULL, 'NULL scheme gives NULL');
SELECT throws_ok($$SELECT segtier.rfm_segment('543', 'rfm10')$$, '22023',
	'unknown segment scheme "rfm10"', 'unknown scheme');
SELECT throws_ok($$SELECT segtier.rfm_segment('543', 'rfm11', 'de')$$, '22023',
	'unsupported language "de"', 'unknown language');

-- lifecycle boundaries: windows are "more than" (silent exactly active_days is still active)
SELECT is(lifecycle_stage('2024-01-01', '2024-03-01', 3, '2024-03-01'::timestamptz + interval '180 days'),
	'active', 'silent exactly active_days: active');
SELECT is(lifecycle_stage('2024-01-01', '2024-03-01', 3, '2024-03-01'::timestamptz + interval '180 days 1 second'),
	'at_risk', 'silent a second longer: at_risk');
SELECT is(lifecycle_stage('2024-01-01', '2024-03-01', 3, '2024-03-01'::timestamptz + interval '366 days'),
	'churned', 'silent more than churn_days: churned');
SELECT is(lifecycle_stage('2024-01-01', '2024-01-01', 1, '2024-03-31'), 'new', 'first purchase exactly new_days ago: new');
SELECT is(lifecycle_stage('2024-01-01', '2024-01-01', 1, '2024-04-01'), 'active', 'a day later: active');
SELECT is(lifecycle_stage('2024-01-01', '2024-01-01', 1, '2024-04-01', new_days => 120), 'new', 'new_days is a parameter');
SELECT is(lifecycle_stage('2020-01-01', '2024-03-01', 9, '2024-04-01', previous_stage => 'reactivated'),
	'reactivated', 'reactivated stays while the customer is active');
SELECT is(lifecycle_stage('2020-01-01', '2024-03-01', 9, '2024-12-01', previous_stage => 'churned'),
	'at_risk', 'a churned customer silent again is at risk, not reactivated');
SELECT is(lifecycle_stage(NULL, NULL, NULL, now()), 'prospect', 'NULL purchases: prospect');
SELECT is(lifecycle_stage('2024-01-01', '2024-01-01', 1, NULL), NULL, 'NULL as_of gives NULL');
SELECT throws_ok($$SELECT segtier.lifecycle_stage('2024-01-01', '2024-01-01', 1, now(), 200, 100)$$, '22023',
	'invalid lifecycle windows: new_days 200, active_days 100, churn_days 365, loyal_purchases 5', 'windows out of order');
SELECT throws_ok($$SELECT segtier.lifecycle_stage('2024-01-01', '2024-01-01', 1, now(), previous_stage => 'gone')$$, '22023',
	'unknown lifecycle stage "gone"', 'unknown previous stage');

-- churn rule: exactly 20 % down counts; a zero month breaks the run
SELECT is((churn_rule('{100, 80, 64, 51.2}', 0)).at_risk, true, 'three 20 % declines');
SELECT is((churn_rule('{100, 80, 64.01, 51.2}', 0)).at_risk, false, 'one decline short of 20 %');
SELECT is((churn_rule('{0, 0, 0, 0}', 10)).at_risk, false, 'no spend is not a decline');
SELECT throws_ok($$SELECT segtier.churn_rule('{1,2}', 1, 180, 1.5)$$, '22023',
	'min_decline must be in (0, 1], not 1.5', 'bad min_decline');
SELECT throws_ok($$SELECT segtier.churn_rule('{1,NaN}', 1)$$, '22023',
	'monthly spend must not contain NaN', 'NaN spend');
SELECT throws_ok($$SELECT segtier.churn_rule(NULL, -1)$$, '22023',
	'days must not be negative or NaN, not -1 and 180', 'a last purchase after the as-of time');
SELECT throws_ok($$SELECT segtier.churn_rule(NULL, 1, 'NaN')$$, '22023',
	'days must not be negative or NaN, not 1 and NaN', 'NaN at_risk_days');

SELECT * FROM finish();
ROLLBACK;
