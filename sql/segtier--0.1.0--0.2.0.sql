-- segtier 0.1.0 -> 0.2.0
--
-- The scoring pass of a refresh moves into C (segtier._rescore): it returns
-- only the rows to write.  Population statistics are kept between runs
-- (option statistics_interval), so an incremental refresh scores only the
-- changed customers.  The monthly spend of the churn rule comes from the new
-- aggregate segtier.period_spend.  Tiers tables get fillfactor 45 so that
-- daily rewrites are HOT updates.
\echo Use "ALTER EXTENSION segtier UPDATE TO '0.2.0'" to load this file. \quit

-- period_spend: amounts per period (periodspend.c)
CREATE FUNCTION segtier.period_spend_add(internal, timestamptz, numeric, timestamptz[]) RETURNS internal
	AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION segtier.period_spend_add(internal, timestamptz, numeric, timestamptz[]) IS 'period_spend transition';
CREATE FUNCTION segtier.period_spend_combine(internal, internal) RETURNS internal
	AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION segtier.period_spend_combine(internal, internal) IS 'merge two period_spend states';
CREATE FUNCTION segtier.period_spend_final(internal) RETURNS numeric[]
	AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION segtier.period_spend_final(internal) IS 'the sums of a period_spend state';
CREATE FUNCTION segtier.period_spend_serialize(internal) RETURNS bytea
	AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION segtier.period_spend_serialize(internal) IS 'period_spend state for parallel aggregation';
CREATE FUNCTION segtier.period_spend_deserialize(bytea, internal) RETURNS internal
	AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION segtier.period_spend_deserialize(bytea, internal) IS 'period_spend state from parallel aggregation';
CREATE AGGREGATE segtier.period_spend(ts timestamptz, amount numeric, bounds timestamptz[]) (
	SFUNC = segtier.period_spend_add,
	STYPE = internal,
	SSPACE = 128,  -- a few periods; the default (8 kB) keeps the planner off hash aggregation
	FINALFUNC = segtier.period_spend_final,
	COMBINEFUNC = segtier.period_spend_combine,
	SERIALFUNC = segtier.period_spend_serialize,
	DESERIALFUNC = segtier.period_spend_deserialize,
	PARALLEL = SAFE
);
COMMENT ON AGGREGATE segtier.period_spend(timestamptz, numeric, timestamptz[]) IS 'exact sum of the amounts in each period [bounds[i], bounds[i + 1]): numeric[] of one element per period, 0 for a period without rows; rows with a NULL time or amount, or outside the periods, are skipped; bounds (at least two, finite, strictly increasing, the same for every row of a group) are read from the first row; a NaN or infinite amount in a period is an error (22023)';

UPDATE segtier.model_option SET description = 'fit BG/NBD and Gamma-Gamma with the population statistics and fill p_alive, expected_purchases and clv' WHERE key = 'predict';
INSERT INTO segtier.model_option VALUES
	('statistics_interval', '"1 day"', 'population statistics (cut points, means, fits, centroids) are recomputed once the as-of time has moved this far since they were, on a full refresh and when a scoring option changes; in between, a refresh scores against the kept ones (an interval; "0" recomputes them every run)');

CREATE OR REPLACE FUNCTION segtier._check_option(key text, v jsonb) RETURNS jsonb
LANGUAGE plpgsql STABLE PARALLEL SAFE SET search_path = pg_catalog, segtier, pg_temp AS $$
DECLARE
	t text := jsonb_typeof(v);
	x float8;
	lo int;
	hi int;
BEGIN
	IF t = 'null' THEN
		IF key IN ('refresh_interval', 'rfm_bins', 'frequency', 'monetary', 'segment_scheme', 'segment_lang',
				   'rfm8_basis', 'value_basis', 'value_scheme', 'pyramid_shares', 'pyramid_scheme', 'new_days',
				   'active_days', 'churn_days', 'loyal_purchases', 'churn_decline', 'churn_months',
				   'hysteresis_runs', 'hysteresis_days', 'predict', 'horizon_days', 'discount_rate', 'clusters',
				   'capture', 'penalizer', 'statistics_interval') THEN
			PERFORM segtier._bad_option(key, v, 'a value (this option cannot be null)');
		END IF;
		RETURN v;
	END IF;
	CASE
	WHEN key IN ('refresh_interval', 'history_retention') THEN
		BEGIN
			IF t <> 'string' OR (v #>> '{}')::interval <= interval '0' THEN
				PERFORM segtier._bad_option(key, v, 'a positive interval such as "1 hour"');
			END IF;
		EXCEPTION WHEN invalid_datetime_format OR datetime_field_overflow OR interval_field_overflow THEN
			PERFORM segtier._bad_option(key, v, 'a positive interval such as "1 hour"');
		END;
	WHEN key = 'statistics_interval' THEN
		BEGIN
			IF t <> 'string' OR (v #>> '{}')::interval < interval '0' THEN
				PERFORM segtier._bad_option(key, v, 'an interval of zero or more such as "1 day"');
			END IF;
		EXCEPTION WHEN invalid_datetime_format OR datetime_field_overflow OR interval_field_overflow THEN
			PERFORM segtier._bad_option(key, v, 'an interval of zero or more such as "1 day"');
		END;
	WHEN key = 'as_of' THEN
		BEGIN
			IF t <> 'string' THEN RAISE invalid_datetime_format; END IF;
			PERFORM (v #>> '{}')::timestamptz;
		EXCEPTION WHEN invalid_datetime_format OR datetime_field_overflow THEN
			PERFORM segtier._bad_option(key, v, 'a timestamptz such as "2025-01-01 00:00+00"');
		END;
	WHEN key = 'time_zone' THEN
		BEGIN
			IF t <> 'string' THEN RAISE invalid_parameter_value; END IF;
			PERFORM now() AT TIME ZONE (v #>> '{}');
		EXCEPTION WHEN invalid_parameter_value THEN
			PERFORM segtier._bad_option(key, v, 'a time zone name such as "Asia/Shanghai"');
		END;
	WHEN key IN ('rfm_bins', 'new_days', 'active_days', 'churn_days', 'loyal_purchases', 'churn_months',
				 'hysteresis_runs', 'hysteresis_days', 'horizon_days', 'clusters') THEN
		lo := CASE key WHEN 'rfm_bins' THEN 2 WHEN 'loyal_purchases' THEN 1 WHEN 'churn_months' THEN 1
						WHEN 'horizon_days' THEN 1 ELSE 0 END;
		hi := CASE key WHEN 'rfm_bins' THEN 9 WHEN 'churn_months' THEN 24 WHEN 'clusters' THEN 20 ELSE 100000 END;
		IF t <> 'number' OR (v #>> '{}')::numeric <> trunc((v #>> '{}')::numeric)
		   OR (v #>> '{}')::numeric < lo OR (v #>> '{}')::numeric > hi THEN
			PERFORM segtier._bad_option(key, v, format('an integer from %s to %s', lo, hi));
		END IF;
	WHEN key IN ('churn_decline', 'discount_rate', 'p_alive_threshold', 'penalizer') THEN
		IF t <> 'number' THEN
			PERFORM segtier._bad_option(key, v, 'a number');
		END IF;
		x := (v #>> '{}')::float8;
		IF (key = 'churn_decline' AND NOT (x > 0 AND x <= 1)) OR (key = 'discount_rate' AND NOT (x >= 0 AND x < 1))
		   OR (key = 'p_alive_threshold' AND NOT (x >= 0 AND x <= 1)) OR (key = 'penalizer' AND NOT (x >= 0)) THEN
			PERFORM segtier._bad_option(key, v, CASE key WHEN 'churn_decline' THEN 'a number in (0, 1]'
				WHEN 'discount_rate' THEN 'a number in [0, 1)' WHEN 'penalizer' THEN 'a number >= 0'
				ELSE 'a number in [0, 1]' END);
		END IF;
	WHEN key IN ('recency_cuts', 'frequency_cuts', 'monetary_cuts', 'value_cutoffs', 'pyramid_shares') THEN
		IF t <> 'array' OR jsonb_array_length(v) = 0
		   OR EXISTS (SELECT 1 FROM jsonb_array_elements(v) e WHERE jsonb_typeof(e) <> 'number') THEN
			PERFORM segtier._bad_option(key, v, 'a non-empty array of numbers');
		END IF;
		IF EXISTS (SELECT 1 FROM (SELECT e::text::float8 AS val, lag(e::text::float8) OVER (ORDER BY n) AS prev
								  FROM jsonb_array_elements(v) WITH ORDINALITY a(e, n)) s
				   WHERE s.val <= s.prev OR (key IN ('value_cutoffs', 'pyramid_shares') AND NOT (s.val > 0 AND s.val < 1))) THEN
			PERFORM segtier._bad_option(key, v, CASE WHEN key IN ('value_cutoffs', 'pyramid_shares')
				THEN 'strictly ascending shares between 0 and 1' ELSE 'strictly ascending numbers' END);
		END IF;
	WHEN key = 'frequency' THEN
		IF v #>> '{}' NOT IN ('days', 'transactions') OR t <> 'string' THEN
			PERFORM segtier._bad_option(key, v, '"days" or "transactions"');
		END IF;
	WHEN key = 'monetary' THEN
		IF v #>> '{}' NOT IN ('total', 'average') OR t <> 'string' THEN
			PERFORM segtier._bad_option(key, v, '"total" or "average"');
		END IF;
	WHEN key = 'segment_scheme' THEN
		IF v #>> '{}' NOT IN ('rfm11', 'rfm8') OR t <> 'string' THEN
			PERFORM segtier._bad_option(key, v, '"rfm11" or "rfm8"');
		END IF;
	WHEN key = 'segment_lang' THEN
		IF v #>> '{}' NOT IN ('en', 'zh') OR t <> 'string' THEN
			PERFORM segtier._bad_option(key, v, '"en" or "zh"');
		END IF;
	WHEN key = 'rfm8_basis' THEN
		IF v #>> '{}' NOT IN ('scale', 'mean') OR t <> 'string' THEN
			PERFORM segtier._bad_option(key, v, '"scale" or "mean"');
		END IF;
	WHEN key = 'value_basis' THEN
		IF v #>> '{}' NOT IN ('value', 'count') OR t <> 'string' THEN
			PERFORM segtier._bad_option(key, v, '"value" or "count"');
		END IF;
	WHEN key IN ('value_scheme', 'pyramid_scheme') THEN
		IF t <> 'string' OR NOT EXISTS (SELECT 1 FROM segtier.tier_scheme s WHERE s.name = v #>> '{}') THEN
			PERFORM segtier._bad_option(key, v, 'the name of a tier scheme in segtier.tier_scheme');
		END IF;
	WHEN key IN ('margin_column', 'customers_key') THEN
		IF t <> 'string' THEN
			PERFORM segtier._bad_option(key, v, 'a column name');
		END IF;
	WHEN key = 'customers_table' THEN
		IF t <> 'string' OR to_regclass(v #>> '{}') IS NULL THEN
			PERFORM segtier._bad_option(key, v, 'the name of an existing table or view');
		END IF;
		v := to_jsonb(to_regclass(v #>> '{}')::text);
	WHEN key IN ('predict', 'capture') THEN
		IF t <> 'boolean' THEN
			PERFORM segtier._bad_option(key, v, 'true or false');
		END IF;
	ELSE
		RAISE EXCEPTION 'unknown model option "%"', key
			USING ERRCODE = 'invalid_parameter_value',
				  DETAIL = 'Valid options: ' || (SELECT string_agg(o.key, ', ' ORDER BY o.key) FROM segtier.model_option o) || '.';
	END CASE;
	RETURN v;
END $$;

CREATE OR REPLACE FUNCTION segtier._create_relations(model text) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, segtier, pg_temp AS $$
DECLARE
	m segtier.model;
	ctype regtype;
	t text := model || '_tiers';
	s text := model || '_summary';
	q text := model || '_queue';
BEGIN
	SELECT * INTO STRICT m FROM segtier.model x WHERE x.name = model;
	ctype := segtier._column_type(m.source, m.customer_column, 'customer');
	EXECUTE format($f$
		CREATE TABLE segtier_data.%I (
			customer %s PRIMARY KEY,
			first_purchase timestamptz,
			last_purchase timestamptz,
			recency_days float8,
			frequency bigint,
			monetary numeric,
			value numeric,
			rfm segtier.rfm,
			rfm_segment text,
			value_class segtier.tier,
			pyramid segtier.tier,
			lifecycle segtier.tier,
			churn_risk boolean,
			churn_reason text,
			p_alive float8,
			expected_purchases float8,
			clv float8,
			cluster int,
			cluster_label text,
			held text[],
			overridden text[],
			hold jsonb,
			computed_at timestamptz,
			run_id bigint) WITH (fillfactor = 45)$f$, t, ctype);
	-- the few rows an incremental run rescores whatever changed
	EXECUTE format('CREATE INDEX %I ON segtier_data.%I (customer) WHERE held <> ''{}'' OR overridden <> ''{}''',
				   t || '_pending', t);
	EXECUTE format('COMMENT ON TABLE segtier_data.%I IS %L', t,
		format('segtier model %s: current tiers, one row per customer', m.name));
	EXECUTE format($f$
		COMMENT ON COLUMN segtier_data.%1$I.customer IS 'customer id (the source''s own type)';
		COMMENT ON COLUMN segtier_data.%1$I.first_purchase IS 'first purchase';
		COMMENT ON COLUMN segtier_data.%1$I.last_purchase IS 'last purchase';
		COMMENT ON COLUMN segtier_data.%1$I.recency_days IS 'days from the last purchase to the run''s as-of time';
		COMMENT ON COLUMN segtier_data.%1$I.frequency IS 'purchase days (or transactions, option frequency)';
		COMMENT ON COLUMN segtier_data.%1$I.monetary IS 'net amount (or average per purchase, option monetary)';
		COMMENT ON COLUMN segtier_data.%1$I.value IS 'value ranked by value_class and pyramid: net amount, or margin';
		COMMENT ON COLUMN segtier_data.%1$I.rfm IS 'RFM scores';
		COMMENT ON COLUMN segtier_data.%1$I.rfm_segment IS 'RFM segment (option segment_scheme)';
		COMMENT ON COLUMN segtier_data.%1$I.value_class IS 'ABC / Pareto value class';
		COMMENT ON COLUMN segtier_data.%1$I.pyramid IS 'value pyramid tier';
		COMMENT ON COLUMN segtier_data.%1$I.lifecycle IS 'lifecycle stage';
		COMMENT ON COLUMN segtier_data.%1$I.churn_risk IS 'churn rule fired (or p_alive below the threshold)';
		COMMENT ON COLUMN segtier_data.%1$I.churn_reason IS 'why churn_risk is set';
		COMMENT ON COLUMN segtier_data.%1$I.p_alive IS 'BG/NBD probability that the customer is alive (option predict)';
		COMMENT ON COLUMN segtier_data.%1$I.expected_purchases IS 'BG/NBD expected purchases over horizon_days';
		COMMENT ON COLUMN segtier_data.%1$I.clv IS 'predicted discounted value over horizon_days (BG/NBD + Gamma-Gamma)';
		COMMENT ON COLUMN segtier_data.%1$I.cluster IS 'k-means cluster, 1..k (option clusters)';
		COMMENT ON COLUMN segtier_data.%1$I.cluster_label IS 'what the cluster''s centroid looks like';
		COMMENT ON COLUMN segtier_data.%1$I.held IS 'tier columns kept up by hysteresis';
		COMMENT ON COLUMN segtier_data.%1$I.overridden IS 'tier columns set by a manual override';
		COMMENT ON COLUMN segtier_data.%1$I.hold IS 'hysteresis counters per tier column';
		COMMENT ON COLUMN segtier_data.%1$I.computed_at IS 'when this row was last written';
		COMMENT ON COLUMN segtier_data.%1$I.run_id IS 'run that last wrote this row';
	$f$, t);
	EXECUTE format($f$
		CREATE TABLE segtier_data.%I (
			customer %s PRIMARY KEY,
			first_purchase timestamptz,
			last_purchase timestamptz,
			transactions bigint,
			purchase_days bigint,
			total_amount numeric,
			repeat_amount numeric,
			refund_amount numeric,
			null_rows bigint,
			refunds bigint,
			future_rows bigint,
			margin numeric,
			month_spend numeric[])$f$, s, ctype);
	EXECUTE format('COMMENT ON TABLE segtier_data.%I IS %L', s,
		format('segtier model %s: per-customer purchase summary as of the last run', m.name));
	EXECUTE format($f$
		COMMENT ON COLUMN segtier_data.%1$I.customer IS 'customer id';
		COMMENT ON COLUMN segtier_data.%1$I.first_purchase IS 'first purchase up to the as-of time';
		COMMENT ON COLUMN segtier_data.%1$I.last_purchase IS 'last purchase up to the as-of time';
		COMMENT ON COLUMN segtier_data.%1$I.transactions IS 'purchases (amount >= 0)';
		COMMENT ON COLUMN segtier_data.%1$I.purchase_days IS 'distinct calendar days with a purchase, in the model''s time zone';
		COMMENT ON COLUMN segtier_data.%1$I.total_amount IS 'net amount: purchases minus refunds';
		COMMENT ON COLUMN segtier_data.%1$I.repeat_amount IS 'purchases on days after the first purchase day';
		COMMENT ON COLUMN segtier_data.%1$I.refund_amount IS 'refunds (negative amounts), as a negative sum';
		COMMENT ON COLUMN segtier_data.%1$I.null_rows IS 'rows ignored for a NULL time or amount';
		COMMENT ON COLUMN segtier_data.%1$I.refunds IS 'refund rows';
		COMMENT ON COLUMN segtier_data.%1$I.future_rows IS 'rows after the as-of time, ignored';
		COMMENT ON COLUMN segtier_data.%1$I.margin IS 'sum of the margin column (option margin_column)';
		COMMENT ON COLUMN segtier_data.%1$I.month_spend IS 'net spend in each of the churn_months + 1 complete calendar months before the as-of month';
	$f$, s);
	EXECUTE format('CREATE TABLE segtier_data.%I (customer %s)', q, ctype);
	EXECUTE format('COMMENT ON COLUMN segtier_data.%I.customer IS %L', q, 'customer whose transactions changed');
	EXECUTE format('COMMENT ON TABLE segtier_data.%I IS %L', q,
		format('segtier model %s: customers whose transactions changed since the last run', m.name));
	EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE, TRUNCATE ON segtier_data.%I, segtier_data.%I TO %s',
				   t, s, m.owner);
	EXECUTE format('GRANT SELECT, DELETE ON segtier_data.%I TO %s', q, m.owner);
END $$;

CREATE OR REPLACE FUNCTION segtier._jsonb_floats(v jsonb) RETURNS float8[]
LANGUAGE sql IMMUTABLE PARALLEL SAFE SET search_path = pg_catalog, segtier, pg_temp AS $$
	SELECT CASE WHEN jsonb_typeof(v) = 'array' THEN
		coalesce((SELECT array_agg((e #>> '{}')::float8 ORDER BY n)
				  FROM jsonb_array_elements(v) WITH ORDINALITY a(e, n)), '{}') END
$$;

/*
 * What the scoring pass (segtier._rescore, rescore.c) needs besides the
 * rows: the model's options and the population statistics of a run (its
 * params: cut points, means, fitted models, centroids).
 */
CREATE TYPE segtier._scoring AS (
	model text,
	as_of timestamptz,
	bins int,
	recency_cuts float8[],
	frequency_cuts float8[],
	monetary_cuts float8[],
	value_levels segtier.tier[],
	value_cuts float8[],
	pyramid_levels segtier.tier[],
	pyramid_cuts float8[],
	segment_scheme text,
	rfm8_mean boolean,
	means float8[],
	lang text,
	new_days int,
	active_days int,
	churn_days int,
	loyal_purchases int,
	churn_decline float8,
	churn_months int,
	p_alive_threshold float8,
	bgnbd segtier.bgnbd,
	gamma_gamma segtier.gamma_gamma,
	horizon_days float8,
	horizon_months float8,
	discount_rate float8,
	stdz float8[],
	centroids float8[],
	cluster_labels text[],
	hysteresis_runs int,
	hysteresis_days int
);
COMMENT ON TYPE segtier._scoring IS 'internal: the settings and population statistics of one scoring pass';

CREATE FUNCTION segtier._rescore(cfg segtier._scoring, query text) RETURNS SETOF record
	AS 'MODULE_PATHNAME', 'segtier_rescore' LANGUAGE C VOLATILE STRICT;
COMMENT ON FUNCTION segtier._rescore(segtier._scoring, text) IS
'internal: scores the rows of query (features beside the current tiers row) and returns the rows to write, with their history';

-- The scoring settings from the options and the statistics in a run's params.
CREATE FUNCTION segtier._scoring_settings(m segtier.model, o jsonb, as_of timestamptz, params jsonb)
RETURNS segtier._scoring
LANGUAGE sql STABLE PARALLEL SAFE SET search_path = pg_catalog, segtier, pg_temp AS $$
	SELECT ROW(m.name, as_of, (o->>'rfm_bins')::int,
		segtier._jsonb_floats(params->'recency_cuts'), segtier._jsonb_floats(params->'frequency_cuts'),
		segtier._jsonb_floats(params->'monetary_cuts'),
		segtier._levels(o->>'value_scheme'), segtier._jsonb_floats(params->'value_cuts'),
		segtier._levels(o->>'pyramid_scheme'), segtier._jsonb_floats(params->'pyramid_cuts'),
		o->>'segment_scheme', o->>'rfm8_basis' = 'mean', segtier._jsonb_floats(params->'means'), o->>'segment_lang',
		(o->>'new_days')::int, (o->>'active_days')::int, (o->>'churn_days')::int, (o->>'loyal_purchases')::int,
		(o->>'churn_decline')::float8, (o->>'churn_months')::int, (o->>'p_alive_threshold')::float8,
		-- a fit without data is NULL
		CASE WHEN jsonb_typeof(params->'bgnbd') = 'object' THEN jsonb_populate_record(NULL::segtier.bgnbd, params->'bgnbd') END,
		CASE WHEN jsonb_typeof(params->'gamma_gamma') = 'object'
			 THEN jsonb_populate_record(NULL::segtier.gamma_gamma, params->'gamma_gamma') END,
		(o->>'horizon_days')::int, (o->>'horizon_days')::int / 30.0, (o->>'discount_rate')::float8,
		segtier._jsonb_floats(params->'stdz'),
		(SELECT array_agg(segtier._jsonb_floats(c->'centroid')
						  ORDER BY (c->>'cluster')::int)
		 FROM jsonb_array_elements(CASE WHEN jsonb_typeof(params->'clusters') = 'array' THEN params->'clusters' END) c),
		(SELECT array_agg(c->>'label' ORDER BY (c->>'cluster')::int)
		 FROM jsonb_array_elements(CASE WHEN jsonb_typeof(params->'clusters') = 'array' THEN params->'clusters' END) c),
		(o->>'hysteresis_runs')::int, (o->>'hysteresis_days')::int)::segtier._scoring
$$;

/*
 * The features of the customers in <model>_summary (and, with a customers
 * table, of the prospects) as SQL text: one definition for the statistics
 * and for the scoring pass.  subset names a table of the customers to keep.
 */
CREATE FUNCTION segtier._features(m segtier.model, o jsonb, as_of timestamptz, subset text) RETURNS text
LANGUAGE plpgsql STABLE PARALLEL SAFE SET search_path = pg_catalog, segtier, pg_temp AS $$
DECLARE
	sumt text := format('segtier_data.%I', m.name || '_summary');
	key text := coalesce(o->>'customers_key', m.customer_column);
	ctype regtype := segtier._column_type(m.source, m.customer_column, 'customer');
	f text;
BEGIN
	f := format($f$
		SELECT s.customer, s.first_purchase, s.last_purchase,
			   date_part('epoch', %1$L::timestamptz - s.last_purchase) / 86400 AS recency_days,
			   %2$s AS frequency, %3$s AS monetary, %4$s AS value, s.transactions,
			   s.month_spend,
			   -- BG/NBD and Gamma-Gamma in whole days (so the fit's histogram of
			   -- distinct histories stays small): repeat purchase days, days from
			   -- the first to the last purchase and to as_of, mean repeat spend
			   (s.purchase_days - 1)::float8 AS x,
			   floor(date_part('epoch', s.last_purchase - s.first_purchase) / 86400) AS t_x,
			   floor(date_part('epoch', %1$L::timestamptz - s.first_purchase) / 86400) AS t_age,
			   (s.repeat_amount / nullif(s.purchase_days - 1, 0))::float8 AS mean_repeat
		FROM %5$s s %6$s$f$,
		as_of,
		CASE WHEN o->>'frequency' = 'days' THEN 's.purchase_days' ELSE 's.transactions' END,
		CASE WHEN o->>'monetary' = 'total' THEN 's.total_amount' ELSE 's.total_amount / nullif(s.transactions, 0)' END,
		CASE WHEN o->>'margin_column' IS NOT NULL THEN 'coalesce(s.margin, 0)' ELSE 's.total_amount' END,
		sumt, CASE WHEN subset IS NOT NULL THEN format('WHERE s.customer = ANY (ARRAY(SELECT customer FROM %s))', subset) ELSE '' END);
	IF o->>'customers_table' IS NOT NULL THEN
		f := f || format($f$
			UNION ALL
			SELECT DISTINCT c.%1$I::%5$s, NULL::timestamptz, NULL::timestamptz, NULL::float8, 0::bigint, 0::numeric,
				   0::numeric, 0::bigint, NULL::numeric[], NULL::float8, NULL::float8, NULL::float8, NULL::float8
			FROM %2$s c
			WHERE c.%1$I IS NOT NULL AND NOT EXISTS (SELECT 1 FROM %3$s s WHERE s.customer = c.%1$I) %4$s$f$,
			key, o->>'customers_table', sumt,
			CASE WHEN subset IS NOT NULL THEN format('AND c.%I = ANY (ARRAY(SELECT customer FROM %s))', key, subset) ELSE '' END,
			ctype);
	END IF;
	RETURN f;
END $$;

/*
 * One refresh of one model, in the caller's transaction, as the model owner.
 *
 * 1. Consume the change queue and re-aggregate the changed customers (all
 *    of them on a full refresh) into <model>_summary: one pass over the
 *    source.
 * 2. Population statistics (cut points, means, the BG/NBD and Gamma-Gamma
 *    fits, k-means centroids) are recomputed from the summaries on a full
 *    refresh, when a scoring option changed and once the as-of time moved
 *    statistics_interval past them; otherwise the run keeps those of the
 *    last run, so that a few changed customers do not move everybody's
 *    scores.
 * 3. The scoring pass (segtier._rescore) scores the changed customers (and
 *    those with overrides), or everybody when the statistics or the as-of
 *    time moved, applies overrides and hysteresis, and returns only the
 *    rows that differ from <model>_tiers, with their history.
 * 4. Write those rows, and one tier_history row per changed tier.
 *
 * Readers of <model>_tiers see the old rows until commit.  A second refresh
 * of the model waits on the advisory lock.
 */
CREATE OR REPLACE FUNCTION segtier._refresh_model(model text, force_full boolean, run_id bigint) RETURNS bigint
LANGUAGE plpgsql SET search_path = pg_catalog, segtier, pg_temp
-- statistics make a round trip through refresh_runs.params: exact float8 text
SET extra_float_digits = 3 AS $$
DECLARE
	m segtier.model;
	o jsonb;
	prev_role text := current_setting('role');
	v_run bigint := run_id;
	v_as_of timestamptz;
	v_tz text;
	v_full boolean;
	v_restat boolean;
	v_all boolean;
	last segtier.refresh_runs;
	src text;
	cust text;
	tcol text;
	amt text;
	margin text;
	months int;
	mstarts timestamptz[];
	filter text := '';
	null_customer_rows bigint;
	tbl text := format('segtier_data.%I', model || '_tiers');
	sumt text := format('segtier_data.%I', model || '_summary');
	q text := format('segtier_data.%I', model || '_queue');
	ctype regtype;
	scoring_options jsonb;
	stats record;
	centroids float8[];
	params jsonb;
	n_customers bigint;
	n_changed bigint;
	targets oid[];
	subset text;
	seqscan text;
	feat text;
	cols text := 'first_purchase, last_purchase, recency_days, frequency, monetary, value, rfm, rfm_segment, '
		'value_class, pyramid, lifecycle, churn_risk, churn_reason, p_alive, expected_purchases, clv, cluster, '
		'cluster_label, held, overridden, hold';
BEGIN
	-- lock, then read: a change committed while we waited is seen
	PERFORM pg_advisory_xact_lock(1936024946, hashtext(model));
	m := segtier._get_model(model);
	IF m.owner <> quote_ident(current_user)::regrole THEN
		PERFORM set_config('role', pg_get_userbyid(m.owner), true);
	END IF;
	o := segtier._effective_options(m);
	IF NOT EXISTS (SELECT 1 FROM pg_class c WHERE c.oid = m.source) THEN
		RAISE EXCEPTION 'source of model "%" no longer exists', m.name USING ERRCODE = 'undefined_table';
	END IF;
	IF v_run IS NULL THEN
		INSERT INTO segtier.refresh_runs (model) VALUES (m.name) RETURNING refresh_runs.run_id INTO v_run;
	END IF;
	v_as_of := coalesce((o->>'as_of')::timestamptz, now());
	v_tz := o->>'time_zone';
	months := (o->>'churn_months')::int;
	ctype := segtier._column_type(m.source, m.customer_column, 'customer');
	SELECT * INTO last FROM segtier.refresh_runs r
	WHERE r.model = m.name AND r.status = 'succeeded' ORDER BY r.run_id DESC LIMIT 1;
	-- month buckets are relative to the as-of month, so a new month rescans
	-- a child attached since the last run has no capture triggers yet, and
	-- the rows of a child dropped or detached were never seen leaving
	targets := ARRAY(SELECT t::oid FROM segtier._capture_targets(m) t);
	IF (o->>'capture')::boolean
	   AND EXISTS (SELECT 1 FROM unnest(targets) t(relid)
				   WHERE NOT EXISTS (SELECT 1 FROM pg_trigger g
									 WHERE g.tgrelid = t.relid AND g.tgname = 'segtier_' || m.name || '_insert')) THEN
		PERFORM segtier._set_capture(m, true);
		m.needs_full := true;
	END IF;
	IF last.params->'capture_targets' IS DISTINCT FROM to_jsonb(targets) THEN
		m.needs_full := true;
	END IF;
	v_full := force_full OR m.needs_full OR last.run_id IS NULL OR v_as_of < last.as_of
		OR NOT (o->>'capture')::boolean OR (SELECT c.relkind FROM pg_class c WHERE c.oid = m.source) NOT IN ('r', 'p')
		OR date_trunc('month', v_as_of, v_tz) <> date_trunc('month', last.as_of, v_tz);
	-- the statistics are kept while the options that shape scoring stay put
	scoring_options := o - 'as_of' - 'refresh_interval' - 'statistics_interval' - 'history_retention';
	v_restat := v_full OR last.params->'scoring_options' IS DISTINCT FROM scoring_options
		OR NOT coalesce(v_as_of - (last.params->>'statistics_as_of')::timestamptz
						< (o->>'statistics_interval')::interval, false);
	v_all := v_restat OR v_as_of <> last.as_of;
	PERFORM segtier.report_progress(m.name, 'aggregate', NULL, NULL);

	src := m.source::text;
	cust := format('%I', m.customer_column);
	tcol := segtier._time_expr(m, v_tz);
	amt := format('%I::numeric', m.amount_column);
	margin := CASE WHEN o->>'margin_column' IS NULL THEN 'NULL::numeric'
				   ELSE format('sum(%I::numeric) FILTER (WHERE %s <= $2 AND %s IS NOT NULL)', o->>'margin_column', tcol, amt) END;
	-- spend in the months + 1 complete calendar months before the as-of month
	SELECT array_agg((date_trunc('month', v_as_of AT TIME ZONE v_tz) - (months + 1 - k) * interval '1 month') AT TIME ZONE v_tz ORDER BY k)
	INTO mstarts FROM generate_series(0, months + 1) k;

	-- consume the queue first: changes committed after this are either in
	-- the scan below or stay queued for the next run
	EXECUTE format('CREATE TEMP TABLE segtier_changed AS WITH d AS (DELETE FROM %s RETURNING customer) SELECT DISTINCT customer FROM d', q);
	IF v_full THEN
		EXECUTE format('TRUNCATE %s', sumt);
	ELSE
		-- customers with transactions after the previous as-of time
		IF v_as_of > last.as_of THEN
			EXECUTE format('INSERT INTO segtier_changed SELECT customer FROM %s WHERE future_rows > 0', sumt);
		END IF;
		-- = ANY (an array) lets the planner use the indexes for a few customers
		EXECUTE format('DELETE FROM %s s WHERE s.customer = ANY (ARRAY(SELECT customer FROM segtier_changed))', sumt);
		filter := format('WHERE %s = ANY (ARRAY(SELECT customer FROM segtier_changed))', cust);
	END IF;
	EXECUTE format($f$
		WITH g AS (
			SELECT %1$s AS customer, segtier.purchase_summary(%2$s, %3$s, $1, $2) AS s,
				   %4$s AS margin, segtier.period_spend(%2$s, %3$s, $3) AS month_spend
			FROM %5$s %6$s GROUP BY 1
		), ins AS (
			INSERT INTO %7$s
			SELECT customer, (s).first_purchase, (s).last_purchase, (s).transactions, (s).purchase_days,
				   (s).total_amount, (s).repeat_amount, (s).refund_amount, (s).null_rows, (s).refunds,
				   (s).future_rows, margin, month_spend
			FROM g WHERE customer IS NOT NULL
			ORDER BY customer  -- the primary key index grows at its right edge
		)
		SELECT coalesce(sum((s).transactions + (s).refunds + (s).null_rows + (s).future_rows), 0) FROM g WHERE customer IS NULL$f$,
		cust, tcol, amt, margin, src, filter, sumt)
	INTO null_customer_rows USING v_tz, v_as_of, mstarts;

	IF v_restat THEN
		-- population statistics over the buyers, in one pass over the summaries
		PERFORM segtier.report_progress(m.name, 'score', 0, NULL);
		feat := segtier._features(m, o, v_as_of, NULL);
		EXECUTE format($f$
			SELECT count(*) AS customers,
				   segtier.cuts(recency_days, $1) FILTER (WHERE b) AS r_cuts,
				   segtier.cuts(frequency::float8, $1) FILTER (WHERE b) AS f_cuts,
				   segtier.cuts(monetary::float8, $1) FILTER (WHERE b AND monetary > 0) AS m_cuts,
				   segtier.share_cuts(value::float8, $2, $3) FILTER (WHERE b) AS v_cuts,
				   segtier.share_cuts(value::float8, $4, 'count') FILTER (WHERE b) AS p_cuts,
				   ARRAY[avg(recency_days) FILTER (WHERE b), avg(frequency) FILTER (WHERE b),
						 avg(monetary) FILTER (WHERE b)]::float8[] AS means,
				   %2$s AS bg, %3$s AS gg, %4$s AS stdz
			FROM (SELECT f.*, f.last_purchase IS NOT NULL AS b FROM (%1$s) f) f$f$,
			feat,
			CASE WHEN (o->>'predict')::boolean THEN 'segtier.bgnbd_fit(x, t_x, t_age, $5) FILTER (WHERE b)'
				 ELSE 'NULL::segtier.bgnbd' END,
			CASE WHEN (o->>'predict')::boolean THEN 'segtier.gamma_gamma_fit(x, mean_repeat, $5) FILTER (WHERE b)'
				 ELSE 'NULL::segtier.gamma_gamma' END,
			-- standardized log(1 + x) of recency, frequency and monetary, for k-means
			CASE WHEN (o->>'clusters')::int > 0 THEN
				'ARRAY[avg(ln(1 + recency_days)) FILTER (WHERE b), stddev_pop(ln(1 + recency_days)) FILTER (WHERE b),
					   avg(ln(1 + frequency::float8)) FILTER (WHERE b), stddev_pop(ln(1 + frequency::float8)) FILTER (WHERE b),
					   avg(ln(1 + greatest(monetary, 0)::float8)) FILTER (WHERE b),
					   stddev_pop(ln(1 + greatest(monetary, 0)::float8)) FILTER (WHERE b)]'
				 ELSE 'NULL::float8[]' END)
		INTO stats
		USING (o->>'rfm_bins')::int, segtier._jsonb_floats(o->'value_cutoffs'), o->>'value_basis',
			  segtier._jsonb_floats(o->'pyramid_shares'), (o->>'penalizer')::float8;
		n_customers := stats.customers;
		params := jsonb_build_object(
			'recency_cuts', coalesce(segtier._jsonb_floats(o->'recency_cuts'), stats.r_cuts),
			'frequency_cuts', coalesce(segtier._jsonb_floats(o->'frequency_cuts'), stats.f_cuts),
			'monetary_cuts', coalesce(segtier._jsonb_floats(o->'monetary_cuts'), stats.m_cuts),
			'value_cuts', stats.v_cuts, 'pyramid_cuts', stats.p_cuts, 'means', stats.means,
			'statistics_run', v_run, 'statistics_as_of', v_as_of);
		IF (o->>'predict')::boolean THEN
			params := params || jsonb_build_object('bgnbd', to_jsonb(stats.bg), 'gamma_gamma', to_jsonb(stats.gg));
		END IF;
		IF (o->>'clusters')::int > 0 THEN
			EXECUTE format('SELECT segtier.kmeans(segtier._cluster_features(recency_days, frequency, monetary, $1), $2, 0)
							FROM (%s) f WHERE last_purchase IS NOT NULL', feat)
			INTO centroids USING stats.stdz, (o->>'clusters')::int;
			params := params || jsonb_build_object('stdz', stats.stdz, 'clusters', (
				SELECT jsonb_agg(jsonb_build_object('cluster', i, 'centroid', c.centroid,
													'label', segtier._cluster_label(c.centroid)) ORDER BY i)
				FROM generate_subscripts(centroids, 1) i,
					 LATERAL (SELECT array_agg(centroids[i][j] ORDER BY j) AS centroid
							  FROM generate_subscripts(centroids, 2) j) c));
		END IF;
	ELSE
		params := (SELECT jsonb_object_agg(k, last.params->k)
				   FROM unnest(ARRAY['recency_cuts', 'frequency_cuts', 'monetary_cuts', 'value_cuts', 'pyramid_cuts',
									 'means', 'bgnbd', 'gamma_gamma', 'stdz', 'clusters', 'statistics_run',
									 'statistics_as_of']) k
				   WHERE last.params ? k);
		n_customers := last.customers;
	END IF;
	params := params || jsonb_build_object('capture_targets', targets, 'scoring_options', scoring_options,
		'null_customer_rows', CASE WHEN v_full THEN null_customer_rows END,
		'incremental_customers', CASE WHEN v_full THEN NULL ELSE (SELECT count(*) FROM segtier_changed) END);

	-- whom to score: everybody, or the changed customers, those with overrides
	-- set, cleared or deleted, and those held by hysteresis (counting runs)
	IF NOT v_all THEN
		-- the partial index <model>_tiers_pending has those rows; without
		-- statistics the planner would scan the whole table for them
		seqscan := current_setting('enable_seqscan');
		PERFORM set_config('enable_seqscan', 'off', true);
		EXECUTE format('CREATE TEMP TABLE segtier_rescore AS
						SELECT customer FROM segtier_changed
						UNION SELECT o.customer::%s FROM segtier.tier_override o WHERE o.model = $1
						UNION SELECT t.customer FROM %s t WHERE t.held <> ''{}'' OR t.overridden <> ''{}''', ctype, tbl)
		USING m.name;
		PERFORM set_config('enable_seqscan', seqscan, true);
		subset := 'segtier_rescore';
	END IF;
	PERFORM segtier.report_progress(m.name, 'score', 0, n_customers);
	EXECUTE format($f$
		CREATE TEMP TABLE segtier_out AS
		SELECT * FROM segtier._rescore($1, $q$
			SELECT coalesce(n.customer, t.customer), n.first_purchase, n.last_purchase, n.recency_days, n.frequency,
				   n.monetary, n.value, n.transactions, n.month_spend, n.x, n.t_x, n.t_age, n.mean_repeat,
				   n.customer IS NOT NULL, t.customer IS NOT NULL, %4$s
			FROM (%1$s) n FULL JOIN (SELECT * FROM %2$s t %3$s) t ON t.customer = n.customer$q$)
		AS x(op "char", customer %5$s, first_purchase timestamptz, last_purchase timestamptz, recency_days float8,
			 frequency bigint, monetary numeric, value numeric, rfm segtier.rfm, rfm_segment text,
			 value_class segtier.tier, pyramid segtier.tier, lifecycle segtier.tier, churn_risk boolean,
			 churn_reason text, p_alive float8, expected_purchases float8, clv float8, cluster int,
			 cluster_label text, held text[], overridden text[], hold jsonb,
			 h_scheme text[], h_from text[], h_to text[], h_reason text[], h_by text[])$f$,
		segtier._features(m, o, v_as_of, subset), tbl,
		CASE WHEN subset IS NOT NULL THEN format('WHERE t.customer = ANY (ARRAY(SELECT customer FROM %s))', subset) ELSE '' END,
		regexp_replace(cols, '(\w+)', 't.\1', 'g'), ctype)
	USING segtier._scoring_settings(m, o, v_as_of, params);

	PERFORM segtier.report_progress(m.name, 'write', n_customers, n_customers);
	ANALYZE segtier_out (op, customer);
	INSERT INTO segtier.tier_history (model, customer, scheme, from_tier, to_tier, run_id, reason, changed_by)
	SELECT m.name, x.customer::text, h.scheme, h.from_tier, h.to_tier, v_run, h.reason, coalesce(h.by, current_user)
	FROM segtier_out x, unnest(x.h_scheme, x.h_from, x.h_to, x.h_reason, x.h_by) h(scheme, from_tier, to_tier, reason, by)
	WHERE x.h_scheme <> '{}';
	GET DIAGNOSTICS n_changed = ROW_COUNT;
	EXECUTE format('DELETE FROM %s t USING segtier_out x WHERE x.op = %L AND t.customer = x.customer', tbl, 'd');
	EXECUTE format('UPDATE %s t SET (%s, computed_at, run_id) = (%s, now(), $1)
					FROM segtier_out x WHERE x.op = %L AND t.customer = x.customer',
				   tbl, cols, regexp_replace(cols, '(\w+)', 'x.\1', 'g'), 'u')
	USING v_run;
	EXECUTE format('INSERT INTO %s (customer, %s, computed_at, run_id)
					SELECT customer, %s, now(), $1 FROM segtier_out WHERE op = %L', tbl, cols, cols, 'i')
	USING v_run;
	IF NOT v_restat THEN
		n_customers := n_customers + (SELECT count(*) FILTER (WHERE op = 'i') - count(*) FILTER (WHERE op = 'd')
									  FROM segtier_out);
	END IF;

	-- cleared and expired overrides are done with once recorded
	DELETE FROM segtier.tier_override x
	WHERE x.model = m.name AND (x.cleared_by IS NOT NULL OR x.expires <= now());
	IF v_full AND m.needs_full THEN
		UPDATE segtier.model x SET needs_full = false WHERE x.name = m.name;
	END IF;
	UPDATE segtier.refresh_runs r SET finished = clock_timestamp(), status = 'succeeded', full_refresh = v_full,
		as_of = v_as_of, customers = n_customers, changed = n_changed, params = refresh_runs_params.p
	FROM (SELECT params AS p) refresh_runs_params
	WHERE r.run_id = v_run;
	PERFORM pg_notify('segtier', jsonb_build_object('model', m.name, 'run_id', v_run, 'status', 'succeeded',
		'customers', n_customers, 'changed', n_changed)::text);
	DROP TABLE segtier_changed, segtier_out;
	IF subset IS NOT NULL THEN
		DROP TABLE segtier_rescore;
	END IF;
	PERFORM segtier.report_progress_done();
	PERFORM set_config('role', prev_role, true);
	RETURN v_run;
END $$;

COMMENT ON FUNCTION segtier._scoring_settings(segtier.model, jsonb, timestamptz, jsonb) IS 'the settings of a scoring pass: the model''s options and the statistics in a run''s params';
COMMENT ON FUNCTION segtier._features(segtier.model, jsonb, timestamptz, text) IS 'SQL text of the per-customer features of a model (optionally of the customers in a table)';

CREATE OR REPLACE FUNCTION segtier._alter_model(name text, options jsonb) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, segtier, pg_temp AS $$
DECLARE
	m segtier.model;
	o jsonb := segtier._check_options(options);
	before jsonb;
	capture_was boolean;
BEGIN
	-- wait for a running refresh of the model rather than deadlock with it,
	-- then read the model as it is now
	PERFORM pg_advisory_xact_lock(1936024946, hashtext(name));
	m := segtier._get_model(name);
	before := segtier._effective_options(m);
	capture_was := (segtier._effective_options(m)->>'capture')::boolean;
	m.options := jsonb_strip_nulls(m.options || o);
	IF NOT m.options ? 'time_zone' THEN
		m.options := m.options || jsonb_build_object('time_zone', current_setting('TimeZone'));
	END IF;
	PERFORM segtier._effective_options(m);
	IF (o->>'capture')::boolean AND NOT has_table_privilege(m.source, 'TRIGGER') THEN
		RAISE EXCEPTION 'capture needs the TRIGGER privilege on %', m.source USING ERRCODE = 'insufficient_privilege';
	END IF;
	-- options that shape the stored per-customer summaries need a rescan;
	-- the others only change scoring: the next run recomputes the statistics
	UPDATE segtier.model x SET options = m.options, changed_at = now(),
		needs_full = x.needs_full OR EXISTS (
			SELECT 1 FROM unnest(ARRAY['time_zone', 'churn_months', 'margin_column', 'capture']) k
			WHERE x.options->k IS DISTINCT FROM m.options->k)
	WHERE x.name = m.name;
	IF (segtier._effective_options(m)->>'capture')::boolean IS DISTINCT FROM capture_was THEN
		PERFORM segtier._set_capture(m, (segtier._effective_options(m)->>'capture')::boolean);
	END IF;
	-- overrides of a column whose tier scheme changed no longer fit it
	UPDATE segtier.tier_override x SET cleared_by = current_user
	WHERE x.model = m.name AND x.cleared_by IS NULL
	  AND ((x.scheme = 'value_class' AND before->>'value_scheme' <> segtier._effective_options(m)->>'value_scheme')
		OR (x.scheme = 'pyramid' AND before->>'pyramid_scheme' <> segtier._effective_options(m)->>'pyramid_scheme'));
END $$;

DROP FUNCTION segtier._apply_overrides_and_hysteresis(text, timestamptz, int, int);

CREATE OR REPLACE FUNCTION segtier.grant_admin(role regrole) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, segtier, pg_temp AS $$
BEGIN
	PERFORM segtier._grant_views(role);
	EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON segtier.model TO %s', role);
	EXECUTE format('GRANT INSERT, UPDATE ON segtier.refresh_runs TO %s', role);
	EXECUTE format('GRANT USAGE ON SEQUENCE segtier.refresh_runs_run_id_seq TO %s', role);
	EXECUTE format('GRANT INSERT ON segtier.tier_history TO %s', role);
	EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON segtier.tier_override TO %s', role);
	EXECUTE format('GRANT EXECUTE ON FUNCTION segtier.create_model(text, regclass, name, name, name, jsonb),
		segtier._create_model(text, regclass, name, name, name, jsonb), segtier._alter_model(text, jsonb),
		segtier._refresh_model(text, boolean, bigint), segtier._rescore(segtier._scoring, text),
		segtier._create_relations(text), segtier._drop_relations(text), segtier._set_capture(segtier.model, boolean),
		segtier._capture(), segtier.alter_model(text, jsonb), segtier.drop_model(text), segtier.refresh(text, boolean),
		segtier.set_override(text, text, segtier.tier, text, timestamptz),
		segtier.clear_override(text, text, text) TO %s', role);
END $$;

REVOKE ALL ON FUNCTION segtier._rescore(segtier._scoring, text) FROM PUBLIC;

-- roles grant_admin was given to before run the new function too
DO $$
DECLARE
	r regrole;
BEGIN
	FOR r IN SELECT DISTINCT a.grantee::regrole
			 FROM pg_proc p, aclexplode(p.proacl) a
			 WHERE p.oid = 'segtier._refresh_model(text, boolean, bigint)'::regprocedure
			   AND a.privilege_type = 'EXECUTE' AND a.grantee <> p.proowner AND a.grantee <> 0 LOOP
		EXECUTE format('GRANT EXECUTE ON FUNCTION segtier._rescore(segtier._scoring, text) TO %s', r);
	END LOOP;
END $$;

-- existing tiers tables: room for HOT updates, and the index of the rows
-- an incremental run rescores whatever changed
DO $$
DECLARE
	m text;
BEGIN
	FOR m IN SELECT name FROM segtier.model LOOP
		EXECUTE format('ALTER TABLE segtier_data.%I SET (fillfactor = 45)', m || '_tiers');
		EXECUTE format('CREATE INDEX %I ON segtier_data.%I (customer) WHERE held <> ''{}'' OR overridden <> ''{}''',
					   m || '_tiers_pending', m || '_tiers');
	END LOOP;
END $$;
