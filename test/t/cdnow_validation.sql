BEGIN;
SET search_path = public, segtier;
SELECT plan(24);

-- Validation against the published CDNOW figures (FHL 2005; lifetimes and
-- BTYD tests; ../shared/data/cdnow/README.md).  The harness loads
-- public.cdnow_sample when the data is there; otherwise every test skips.
CREATE FUNCTION pg_temp.cdnow_tests() RETURNS SETOF text LANGUAGE plpgsql AS $f$
DECLARE
	bg segtier.bgnbd;
	gg segtier.gamma_gamma;
BEGIN
	IF to_regclass('public.cdnow_sample') IS NULL THEN
		RETURN NEXT skip('CDNOW sample not loaded (../shared/data/cdnow/CDNOW_sample.txt absent)', 24);
		RETURN;
	END IF;
	-- The summary as the README, built with segtier's own purchase_summary:
	-- distinct purchase days merge same-day purchases; the as-of time ends
	-- the calibration on 1997-09-30 (later rows are future rows); x = purchase
	-- days - 1, t_x and T in weeks rounded to 2 dp, zbar = repeat_amount / x,
	-- the mean value of the repeat purchase days.
	CREATE TEMP TABLE cd AS
	SELECT id, ((s).purchase_days - 1)::float8 AS x,
		   round((extract(epoch FROM (s).last_purchase - (s).first_purchase) / 86400 / 7)::numeric, 2)::float8 AS t_x,
		   round((extract(epoch FROM timestamptz '1997-09-30 00:00+00' - (s).first_purchase) / 86400 / 7)::numeric, 2)::float8 AS t,
		   coalesce((s).repeat_amount / nullif((s).purchase_days - 1, 0), 0)::float8 AS zbar
	FROM (SELECT customer_id AS id,
				 segtier.purchase_summary(day::timestamp AT TIME ZONE 'UTC', dollars, 'UTC', timestamptz '1997-09-30 00:00+00') AS s
		  FROM public.cdnow_sample GROUP BY customer_id) AS c;

	RETURN NEXT is((SELECT (count(*), sum(x), count(*) FILTER (WHERE x > 0))::text FROM cd),
				   '(2357,2457,946)', 'summary: 2357 customers, 2457 repeat purchases, 946 repeaters');

	SELECT * INTO bg FROM (SELECT (bgnbd_fit(x, t_x, t)).* FROM cd) AS s;
	RETURN NEXT is(round(bg.r::numeric, 3), 0.243, 'BG/NBD r = 0.243');
	RETURN NEXT is(round(bg.alpha::numeric, 3), 4.414, 'BG/NBD alpha = 4.414');
	RETURN NEXT is(round(bg.a::numeric, 3), 0.793, 'BG/NBD a = 0.793');
	RETURN NEXT is(round(bg.b::numeric, 3), 2.426, 'BG/NBD b = 2.426');
	RETURN NEXT is(round(bg.loglik::numeric, 1), -9582.4, 'BG/NBD loglik = -9582.4');
	RETURN NEXT ok(abs(bg.r - 0.242593) < 1e-5 AND abs(bg.alpha - 4.413532) < 1e-5 AND
				   abs(bg.a - 0.792886) < 1e-5 AND abs(bg.b - 2.425754) < 1e-5,
				   'BG/NBD at the MLE (0.242593, 4.413532, 0.792886, 2.425754) within 1e-5');
	RETURN NEXT is(round(bg.loglik::numeric, 4), -9582.4256, 'BG/NBD loglik at the MLE = -9582.4256');
	RETURN NEXT is(bg.customers, 2357::bigint, 'BG/NBD customers');

	RETURN NEXT ok(bool_and(abs(expected_purchases(bg, t) - e) < 1e-3),
				   'E[X(t)] = 0.0078, 0.0532, 0.1506, 1.0405, 1.0437, 1.8576 within 1e-3')
		FROM unnest('{0.1429,1,3,31.8571,32,78}'::float8[], '{0.0078,0.0532,0.1506,1.0405,1.0437,1.8576}'::float8[]) AS v(t, e);
	RETURN NEXT is(round(expected_purchases(bg, 39, 2, 30.43, 38.86)::numeric, 3), 1.226,
				   'E[Y(39) | x=2, t_x=30.43, T=38.86] = 1.226');
	RETURN NEXT is(round(p_alive(bg, 2, 30.43, 38.86)::numeric, 4), 0.7266, 'P(alive | 2, 30.43, 38.86) = 0.7266');
	RETURN NEXT ok(abs((SELECT sum(bgnbd_loglik(bg, x, t_x, t)) FROM cd) - bg.loglik) < 1e-6,
				   'per-customer log-likelihoods sum to loglik');

	SELECT * INTO gg FROM (SELECT (gamma_gamma_fit(x, zbar)).* FROM cd) AS s;
	RETURN NEXT is(round(gg.p::numeric, 2), 6.25, 'Gamma-Gamma p = 6.25');
	RETURN NEXT is(round(gg.q::numeric, 2), 3.74, 'Gamma-Gamma q = 3.74');
	RETURN NEXT is(round(gg.v::numeric, 2), 15.44, 'Gamma-Gamma v = 15.44');
	RETURN NEXT is(round(gg.loglik::numeric, 2), -4055.92, 'Gamma-Gamma loglik = -4055.92');
	RETURN NEXT is((gg.customers, gg.skipped)::text, '(946,1411)', 'Gamma-Gamma fits the 946 repeaters and skips 1411');
	RETURN NEXT ok(bool_and(abs(expected_spend((6.25, 3.74, 15.44, 0, 0, 0), x, zbar) - e) < 0.1),
				   'E[M | x, zbar] of customers 1..10 within 0.1')
		FROM cd JOIN unnest('{1,2,3,4,5,6,7,8,9,10}'::int[],
							'{24.65,18.91,35.17,35.17,35.17,71.46,18.91,35.17,27.28,35.17}'::float8[]) AS v(id, e) USING (id);
	RETURN NEXT is(round(expected_spend(gg, 0, 0)::numeric, 1), 35.2, 'population mean spend p v / (q - 1) = 35.2');

	-- a second fit of the same data is identical (the sums run in key order)
	RETURN NEXT is((SELECT bgnbd_fit(x, t_x, t) FROM cd), bg, 'same BG/NBD fit twice');
	RETURN NEXT is((SELECT gamma_gamma_fit(x, zbar) FROM cd), gg, 'same Gamma-Gamma fit twice');
	-- CLV is positive, grows with the horizon, falls with the discount rate
	RETURN NEXT ok(bool_and(clv(bg, gg, x, t_x, t, zbar, 12, 0.01, 1, 4.345) > 0), 'CLV positive') FROM cd;
	RETURN NEXT ok(bool_and(clv(bg, gg, x, t_x, t, zbar, 24, 0.01, 1, 4.345) > clv(bg, gg, x, t_x, t, zbar, 12, 0.01, 1, 4.345)
					AND clv(bg, gg, x, t_x, t, zbar, 12, 0.05, 1, 4.345) < clv(bg, gg, x, t_x, t, zbar, 12, 0.01, 1, 4.345)),
				   'CLV grows with the horizon and falls with the discount rate') FROM cd WHERE id <= 50;
END
$f$;
SELECT * FROM pg_temp.cdnow_tests();
SELECT * FROM finish();
ROLLBACK;
