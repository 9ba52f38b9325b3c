-- Seeded CRM data generator, shared by `make demo` and the benchmark.
-- psql variables: customers (buyers, default 5000), seed (default 0.42),
-- as_of (default '2025-01-01 00:00+00') and, for the benchmark, transactions
-- (the expected number of orders: purchase rates are scaled to reach it;
-- unset, the rates are as drawn).  Makes schema crm with
--   crm.customers(customer_id, name, signed_up)  -- 10 % more who never bought
--   crm.orders(order_id, customer_id, ordered_at, amount)
-- Shape: each buyer has a Pareto(alpha 1.5) typical basket, a purchase rate
-- drawn from a log-normal (median one order per 60 days), Poisson timing
-- (uniform order times given a Poisson count) and an exponential lifetime
-- (mean 400 days) after which it buys no more; about 2 % of orders are
-- later refunded in part.
\if :{?customers} \else \set customers 5000 \endif
\if :{?seed} \else \set seed 0.42 \endif
\if :{?as_of} \else \set as_of '2025-01-01 00:00+00' \endif

SET client_min_messages = warning;
DROP SCHEMA IF EXISTS crm CASCADE;
CREATE SCHEMA crm;

-- Knuth's method for small means, a rounded normal for large ones.
CREATE FUNCTION crm.poisson(mu float8) RETURNS int LANGUAGE plpgsql VOLATILE AS $$
DECLARE
	l float8;
	p float8 := 1;
	k int := 0;
BEGIN
	IF mu > 30 THEN
		RETURN greatest(0, round(mu + sqrt(mu) * sqrt(-2 * ln(1 - random())) * cos(2 * pi() * random())))::int;
	END IF;
	l := exp(-mu);
	LOOP
		p := p * random();
		EXIT WHEN p <= l;
		k := k + 1;
	END LOOP;
	RETURN k;
END $$;

SELECT setseed(:seed) \gset

CREATE TABLE crm.customers (
	customer_id bigint PRIMARY KEY,
	name text NOT NULL,
	signed_up timestamptz NOT NULL
);
CREATE TABLE crm.orders (
	order_id bigserial PRIMARY KEY,
	customer_id bigint NOT NULL,
	ordered_at timestamptz NOT NULL,
	amount numeric(12, 2) NOT NULL
);

CREATE TEMP TABLE buyer AS
SELECT id,
	   first_at,
	   least(:'as_of'::timestamptz, first_at + lifetime_days * interval '1 day') AS active_until,
	   basket,
	   rate
FROM (
	SELECT id,
		   :'as_of'::timestamptz - (random() * 730) * interval '1 day' AS first_at,
		   -ln(1 - random()) * 400 AS lifetime_days,
		   round((15 / power(1 - random(), 1 / 1.5))::numeric, 2) AS basket,
		   exp(ln(1 / 60.0) + sqrt(-2 * ln(1 - random())) * cos(2 * pi() * random())) AS rate
	FROM generate_series(1, :customers) AS id
	ORDER BY id
) b;

\if :{?transactions}
SELECT greatest(0, (:transactions / 1.02 - :customers) / sum(rate * extract(epoch FROM active_until - first_at) / 86400))
	   AS rate_scale FROM buyer \gset
\else
\set rate_scale 1
\endif

INSERT INTO crm.customers
SELECT id, 'customer ' || id, first_at - random() * interval '30 days' FROM buyer ORDER BY id;
INSERT INTO crm.customers
SELECT id, 'prospect ' || id, :'as_of'::timestamptz - random() * interval '365 days'
FROM generate_series(:customers + 1, :customers + :customers / 10) AS id;

-- the first order, then a Poisson number of repeat orders while alive
INSERT INTO crm.orders (customer_id, ordered_at, amount)
SELECT id, ordered_at, greatest(0, round(basket * exp(0.3 * sqrt(-2 * ln(1 - random())) * cos(2 * pi() * random()))::numeric, 2))
FROM (
	SELECT id, basket, first_at AS ordered_at FROM buyer
	UNION ALL
	SELECT id, basket, first_at + random() * (active_until - first_at)
	FROM (SELECT b.*, crm.poisson(:rate_scale * rate * extract(epoch FROM active_until - first_at) / 86400) AS n
		  FROM buyer b ORDER BY id) c,
		 generate_series(1, n)
) o
ORDER BY ordered_at, id;

-- partial refunds of about 2 % of orders, a few days later
INSERT INTO crm.orders (customer_id, ordered_at, amount)
SELECT customer_id, least(ordered_at + interval '3 days', :'as_of'::timestamptz), -round(amount * 0.5, 2)
FROM crm.orders WHERE random() < 0.02 AND amount > 0 ORDER BY order_id;

CREATE INDEX ON crm.orders (customer_id);
ANALYZE crm.customers;
ANALYZE crm.orders;
DROP TABLE buyer;
