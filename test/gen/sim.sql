-- Samplers of the BG/NBD and Gamma-Gamma processes for the model tests
-- (pg_temp functions; draw from random(), so setseed() makes them repeatable).

-- Gamma(k, 1): Marsaglia & Tsang (2000); for k < 1 the (k + 1) variate
-- times U^(1/k)
CREATE FUNCTION pg_temp.rgamma(k float8) RETURNS float8 LANGUAGE plpgsql AS $$
DECLARE d float8; c float8; z float8; v float8;
BEGIN
	IF k < 1 THEN
		RETURN pg_temp.rgamma(k + 1) * power(1 - random(), 1 / k);
	END IF;
	d := k - 1.0 / 3; c := 1 / sqrt(9 * d);
	LOOP
		z := sqrt(-2 * ln(1 - random())) * cos(2 * pi() * random());
		v := power(1 + c * z, 3);
		CONTINUE WHEN v <= 0;
		IF ln(1 - random()) < 0.5 * z * z + d - d * v + d * ln(v) THEN
			RETURN d * v;
		END IF;
	END LOOP;
END $$;

-- One BG/NBD customer observed for T: rate ~ Gamma(r, 1/alpha); after each
-- repeat purchase it drops out with probability p ~ Beta(a, b)
CREATE FUNCTION pg_temp.rbgnbd(r float8, alpha float8, a float8, b float8, T float8,
	OUT x float8, OUT t_x float8) LANGUAGE plpgsql AS $$
DECLARE lam float8 := pg_temp.rgamma(r) / alpha; g1 float8 := pg_temp.rgamma(a);
	p float8 := g1 / (g1 + pg_temp.rgamma(b)); clock float8 := 0;
BEGIN
	x := 0; t_x := 0;
	LOOP
		clock := clock - ln(1 - random()) / lam;
		EXIT WHEN clock > T;
		x := x + 1; t_x := clock;
		EXIT WHEN random() < p;
	END LOOP;
END $$;
