-- segtier 0.9.0 -> 0.10.0
--
-- Fixes found by a review and a fuzz run; the tiers of existing models do
-- not change.
-- * A char(n) customer column made char(1) tables (the regtype's name,
--   "character", is char(1)): the tables and casts now spell the customer
--   type without a modifier (_customer_type: bpchar).  A model made on such a
--   column under 0.9.0 never refreshed; drop and create it again.
-- * A model naming a user-defined tier scheme was lost by pg_dump/restore:
--   segtier.model's data loads before tier_scheme's, and its trigger checked
--   the scheme.  The trigger now leaves the schemes to create_model,
--   alter_model and every refresh (_model_options / _effective_options).
-- * alter_model: a JSON null removes any option (it was refused for options
--   with a non-null default); an unknown key is refused, null or not.
-- * Options refused when no refresh could use them: a non-finite as_of, a
--   time_zone abbreviation, intervals past 1000 years (the worker's due time
--   overflowed and stopped it for every model), a customers_key whose type
--   does not compare with the customer ids; numbers beyond float8 and an
--   empty customers_table name are 22023 like other bad values.
-- * < <= > >= on tiers no longer fail while planning when the column's
--   statistics hold tiers of other schemes (segtier.tier_ltsel, ...).
-- * expected_purchases and clv: NaN past a = 1000-10000 (a fit of customers
--   who all drop out alike); the library sums the untransformed series there.
\echo Use "ALTER EXTENSION segtier UPDATE TO '0.10.0'" to load this file. \quit


CREATE FUNCTION segtier.tier_ltsel(internal, oid, internal, integer) RETURNS float8
	AS 'MODULE_PATHNAME' LANGUAGE C STABLE STRICT PARALLEL SAFE;

CREATE FUNCTION segtier.tier_lesel(internal, oid, internal, integer) RETURNS float8
	AS 'MODULE_PATHNAME' LANGUAGE C STABLE STRICT PARALLEL SAFE;

CREATE FUNCTION segtier.tier_gtsel(internal, oid, internal, integer) RETURNS float8
	AS 'MODULE_PATHNAME' LANGUAGE C STABLE STRICT PARALLEL SAFE;

CREATE FUNCTION segtier.tier_gesel(internal, oid, internal, integer) RETURNS float8
	AS 'MODULE_PATHNAME' LANGUAGE C STABLE STRICT PARALLEL SAFE;

COMMENT ON FUNCTION segtier.tier_ltsel(internal, oid, internal, integer) IS 'selectivity of tier <: scalarltsel, or the default when the statistics hold other schemes';

COMMENT ON FUNCTION segtier.tier_lesel(internal, oid, internal, integer) IS 'selectivity of tier <=: scalarlesel, or the default when the statistics hold other schemes';

COMMENT ON FUNCTION segtier.tier_gtsel(internal, oid, internal, integer) IS 'selectivity of tier >: scalargtsel, or the default when the statistics hold other schemes';

COMMENT ON FUNCTION segtier.tier_gesel(internal, oid, internal, integer) IS 'selectivity of tier >=: scalargesel, or the default when the statistics hold other schemes';

ALTER OPERATOR segtier.< (segtier.tier, segtier.tier) SET (RESTRICT = segtier.tier_ltsel);

ALTER OPERATOR segtier.<= (segtier.tier, segtier.tier) SET (RESTRICT = segtier.tier_lesel);

ALTER OPERATOR segtier.> (segtier.tier, segtier.tier) SET (RESTRICT = segtier.tier_gtsel);

ALTER OPERATOR segtier.>= (segtier.tier, segtier.tier) SET (RESTRICT = segtier.tier_gesel);

-- 22023 for a key that is not a model option.
CREATE FUNCTION segtier._option_key(key text) RETURNS void
LANGUAGE plpgsql STABLE PARALLEL SAFE SET search_path = pg_catalog, segtier, pg_temp AS $$
BEGIN
	IF NOT EXISTS (SELECT 1 FROM segtier.model_option o WHERE o.key = _option_key.key) THEN
		RAISE EXCEPTION 'unknown model option "%"', key
			USING ERRCODE = 'invalid_parameter_value',
				  DETAIL = 'Valid options: ' || (SELECT string_agg(o.key, ', ' ORDER BY o.key) FROM segtier.model_option o) || '.';
	END IF;
END $$;

-- Checks one option value; returns it normalised.
CREATE OR REPLACE FUNCTION segtier._check_option(key text, v jsonb) RETURNS jsonb
LANGUAGE plpgsql STABLE PARALLEL SAFE SET search_path = pg_catalog, segtier, pg_temp AS $$
DECLARE
	t text := jsonb_typeof(v);
	x float8;
	lo int;
	hi int;
BEGIN
	PERFORM segtier._option_key(key);
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
		-- at most 1000 years: the worker's due times and purge_history's
		-- cut-off add it to timestamps
		BEGIN
			IF t <> 'string' OR (v #>> '{}')::interval <= interval '0' OR (v #>> '{}')::interval > interval '1000 years' THEN
				PERFORM segtier._bad_option(key, v, 'a positive interval of at most 1000 years such as "1 hour"');
			END IF;
		EXCEPTION WHEN invalid_datetime_format OR datetime_field_overflow OR interval_field_overflow THEN
			PERFORM segtier._bad_option(key, v, 'a positive interval of at most 1000 years such as "1 hour"');
		END;
	WHEN key = 'statistics_interval' THEN
		BEGIN
			IF t <> 'string' OR (v #>> '{}')::interval < interval '0' OR (v #>> '{}')::interval > interval '1000 years' THEN
				PERFORM segtier._bad_option(key, v, 'an interval from zero to 1000 years such as "1 day"');
			END IF;
		EXCEPTION WHEN invalid_datetime_format OR datetime_field_overflow OR interval_field_overflow THEN
			PERFORM segtier._bad_option(key, v, 'an interval from zero to 1000 years such as "1 day"');
		END;
	WHEN key = 'as_of' THEN
		BEGIN
			IF t <> 'string' OR NOT isfinite((v #>> '{}')::timestamptz) THEN RAISE invalid_datetime_format; END IF;
		EXCEPTION WHEN invalid_datetime_format OR datetime_field_overflow THEN
			PERFORM segtier._bad_option(key, v, 'a finite timestamptz such as "2025-01-01 00:00+00"');
		END;
	WHEN key = 'time_zone' THEN
		BEGIN
			IF t <> 'string' THEN RAISE invalid_parameter_value; END IF;
			-- as the refresh takes it: an IANA name, not an abbreviation
			PERFORM segtier.purchase_summary(now(), 0, v #>> '{}');
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
		-- that it exists: _effective_options
		IF t <> 'string' THEN
			PERFORM segtier._bad_option(key, v, 'the name of a tier scheme in segtier.tier_scheme');
		END IF;
	WHEN key IN ('margin_column', 'customers_key') THEN
		IF t <> 'string' THEN
			PERFORM segtier._bad_option(key, v, 'a column name');
		END IF;
	WHEN key = 'customers_table' THEN
		BEGIN
			IF t <> 'string' OR to_regclass(v #>> '{}') IS NULL THEN
				RAISE invalid_name;
			END IF;
		EXCEPTION WHEN invalid_name THEN
			PERFORM segtier._bad_option(key, v, 'the name of an existing table or view');
		END;
		v := to_jsonb(to_regclass(v #>> '{}')::text);
	WHEN key IN ('predict', 'capture') THEN
		IF t <> 'boolean' THEN
			PERFORM segtier._bad_option(key, v, 'true or false');
		END IF;
	END CASE;
	RETURN v;
EXCEPTION WHEN numeric_value_out_of_range THEN
	-- a JSON number beyond float8
	PERFORM segtier._bad_option(key, v, 'numbers within the range of float8');
END $$;

-- The customer id type as SQL spells it without a modifier: the tables and
-- casts take it, and a char(n) column's is bpchar ("character" is char(1)).
CREATE FUNCTION segtier._customer_type(m segtier.model) RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE SET search_path = pg_catalog, segtier, pg_temp AS $$
	SELECT format_type(segtier._column_type(m.source, m.customer_column, 'customer'), -1)
$$;

-- Defaults overlaid with the model's own options, checked together but for
-- the tier schemes they name (see _effective_options).
CREATE FUNCTION segtier._model_options(m segtier.model) RETURNS jsonb
LANGUAGE plpgsql STABLE PARALLEL SAFE SET search_path = pg_catalog, segtier, pg_temp AS $$
DECLARE
	o jsonb;
	base regtype;
	k text;
BEGIN
	SELECT jsonb_object_agg(key, default_value) INTO o FROM segtier.model_option;
	o := o || m.options;
	IF o->'value_cutoffs' = 'null' THEN
		o := jsonb_set(o, '{value_cutoffs}', CASE o->>'value_basis' WHEN 'count' THEN '[0.1, 0.3]' ELSE '[0.7, 0.9]' END::jsonb);
	END IF;
	IF NOT ((o->>'new_days')::int <= (o->>'active_days')::int AND (o->>'active_days')::int <= (o->>'churn_days')::int) THEN
		RAISE EXCEPTION 'model options new_days, active_days and churn_days must be in ascending order'
			USING ERRCODE = 'invalid_parameter_value',
				  DETAIL = format('new_days %s, active_days %s, churn_days %s.', o->'new_days', o->'active_days', o->'churn_days');
	END IF;
	FOREACH k IN ARRAY ARRAY['recency_cuts', 'frequency_cuts', 'monetary_cuts'] LOOP
		IF o->k <> 'null' AND jsonb_array_length(o->k) <> (o->>'rfm_bins')::int - 1 THEN
			PERFORM segtier._bad_option(k, o->k, format('rfm_bins - 1 = %s thresholds', (o->>'rfm_bins')::int - 1));
		END IF;
	END LOOP;
	IF o->>'margin_column' IS NOT NULL THEN
		base := segtier._column_type(m.source, (o->>'margin_column')::name, 'margin');
		IF base NOT IN ('numeric'::regtype, 'int2'::regtype, 'int4'::regtype, 'int8'::regtype,
						'float4'::regtype, 'float8'::regtype) THEN
			RAISE EXCEPTION 'margin column "%" has type %, not a number', o->>'margin_column', base
				USING ERRCODE = 'datatype_mismatch';
		END IF;
	END IF;
	IF o->>'customers_table' IS NOT NULL THEN
		base := segtier._column_type((o->>'customers_table')::regclass,
			coalesce(o->>'customers_key', m.customer_column)::name, 'customers_key');
		-- the prospects' query casts the key to the customer id type and compares the two
		BEGIN
			EXECUTE format('SELECT NULL::%1$s::%2$s, NULL::%1$s = NULL::%2$s, NULL::%2$s = NULL::%1$s',
						   format_type(base, -1), segtier._customer_type(m));
		EXCEPTION WHEN undefined_function OR cannot_coerce THEN
			RAISE EXCEPTION 'customers_key column "%" of % has type %, which does not compare with the customer ids (%)',
				coalesce(o->>'customers_key', m.customer_column), o->>'customers_table', base, segtier._customer_type(m)
				USING ERRCODE = 'datatype_mismatch';
		END;
	END IF;
	IF (o->>'p_alive_threshold') IS NOT NULL AND NOT (o->>'predict')::boolean THEN
		PERFORM segtier._bad_option('p_alive_threshold', o->'p_alive_threshold', 'predict to be true as well');
	END IF;
	RETURN o;
END $$;

-- Effective options: _model_options, and the tier schemes they name exist
-- with one level more than the cut-offs.  Rows written into segtier.model
-- directly are checked without these (a restore loads the models before the
-- user-defined schemes); create_model, alter_model and every refresh check them.
CREATE OR REPLACE FUNCTION segtier._effective_options(m segtier.model) RETURNS jsonb
LANGUAGE plpgsql STABLE PARALLEL SAFE SET search_path = pg_catalog, segtier, pg_temp AS $$
DECLARE
	o jsonb := segtier._model_options(m);
	k text;
BEGIN
	FOREACH k IN ARRAY ARRAY['value_scheme', 'pyramid_scheme'] LOOP
		IF NOT EXISTS (SELECT 1 FROM segtier.tier_scheme s WHERE s.name = o->>k) THEN
			PERFORM segtier._bad_option(k, o->k, 'the name of a tier scheme in segtier.tier_scheme');
		END IF;
	END LOOP;
	IF (SELECT count(*) FROM segtier.tier_level l JOIN segtier.tier_scheme s USING (scheme_id)
		WHERE s.name = o->>'value_scheme') <> jsonb_array_length(o->'value_cutoffs') + 1 THEN
		PERFORM segtier._bad_option('value_cutoffs', o->'value_cutoffs',
			format('one cut-off fewer than the levels of tier scheme "%s"', o->>'value_scheme'));
	END IF;
	IF (SELECT count(*) FROM segtier.tier_level l JOIN segtier.tier_scheme s USING (scheme_id)
		WHERE s.name = o->>'pyramid_scheme') <> jsonb_array_length(o->'pyramid_shares') + 1 THEN
		PERFORM segtier._bad_option('pyramid_shares', o->'pyramid_shares',
			format('one share fewer than the levels of tier scheme "%s"', o->>'pyramid_scheme'));
	END IF;
	RETURN o;
END $$;

-- Rows written directly (admins have DML on the table) are checked as
-- create_model and alter_model check them, but for the tier schemes they
-- name: a restore loads segtier.model before segtier.tier_scheme.
CREATE OR REPLACE FUNCTION segtier._model_check() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, segtier, pg_temp AS $$
BEGIN
	NEW.options := segtier._check_options(NEW.options);
	PERFORM segtier._check_columns(NEW);
	PERFORM segtier._model_options(NEW);
	RETURN NEW;
END $$;

-- Options are merged into the model's own; a JSON null removes a key (its
-- default applies again).
CREATE OR REPLACE FUNCTION segtier._alter_model(name text, options jsonb) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, segtier, pg_temp AS $$
DECLARE
	m segtier.model;
	gone text[] := CASE WHEN jsonb_typeof(options) = 'object'
		THEN ARRAY(SELECT e.key FROM jsonb_each(options) e WHERE jsonb_typeof(e.value) = 'null') END;
	o jsonb := segtier._check_options(options - coalesce(gone, '{}'));
	before jsonb;
	capture_was boolean;
BEGIN
	PERFORM segtier._option_key(k) FROM unnest(gone) k;
	-- wait for a running refresh of the model rather than deadlock with it,
	-- then read the model as it is now
	PERFORM pg_advisory_xact_lock(1936024946, hashtext(name));
	m := segtier._get_model(name);
	before := segtier._effective_options(m);
	capture_was := (segtier._effective_options(m)->>'capture')::boolean;
	m.options := (m.options || o) - gone;
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

-- The model's relations: <name>_tiers (current tiers), <name>_summary
-- (per-customer summary, the input of incremental rescoring) and
-- <name>_queue (customers whose transactions changed since the last run).
-- The extension owner owns them (so no model owner can swap them for views
-- or hang triggers on them); the model owner gets DML on its own.  Safe for
-- anyone to call: it only makes the missing relations of an existing model.
CREATE OR REPLACE FUNCTION segtier._create_relations(model text) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, segtier, pg_temp AS $$
DECLARE
	m segtier.model;
	ctype text;
	t text := model || '_tiers';
	s text := model || '_summary';
	q text := model || '_queue';
BEGIN
	SELECT * INTO STRICT m FROM segtier.model x WHERE x.name = model;
	ctype := segtier._customer_type(m);
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

CREATE OR REPLACE FUNCTION segtier._features(m segtier.model, o jsonb, as_of timestamptz, subset text, parted boolean)
RETURNS text
LANGUAGE plpgsql STABLE PARALLEL SAFE SET search_path = pg_catalog, segtier, pg_temp AS $$
DECLARE
	sumt text := format('segtier_data.%I', m.name || '_summary');
	key text := coalesce(o->>'customers_key', m.customer_column);
	ctype text := segtier._customer_type(m);
	f text;
	distinct_keys boolean;
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
		sumt, CASE WHEN subset IS NOT NULL OR parted THEN 'WHERE ' || concat_ws(' AND ',
			CASE WHEN subset IS NOT NULL THEN format('s.customer = ANY (ARRAY(SELECT customer FROM %s))', subset) END,
			CASE WHEN parted THEN '($2 = 1 OR segtier._in_part(s.customer, $1, $2))' END) ELSE '' END);
	IF o->>'customers_table' IS NOT NULL THEN
		-- a unique index of the key's own type, collation and default btree
		-- equality makes DISTINCT a no-op; without it, the statistics could
		-- not aggregate in parallel (a DISTINCT branch needs a Gather of its own).
		-- A partitioned table's covers its partitions, a parent's of plain
		-- inheritance not its children.
		SELECT EXISTS (
			SELECT 1 FROM pg_index i
			JOIN pg_class r ON r.oid = i.indrelid
			JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]
			JOIN pg_opclass oc ON oc.oid = i.indclass[0]
			JOIN pg_am am ON am.oid = oc.opcmethod
			WHERE i.indrelid = (o->>'customers_table')::regclass AND i.indisunique AND i.indimmediate
			  AND i.indisvalid AND i.indnkeyatts = 1 AND i.indpred IS NULL AND i.indexprs IS NULL
			  AND a.attname = key AND a.atttypid = ctype::regtype AND i.indcollation[0] = a.attcollation
			  AND am.amname = 'btree' AND oc.opcdefault AND oc.opcintype = ctype::regtype
			  AND (r.relkind = 'p' OR NOT EXISTS (SELECT 1 FROM pg_inherits h WHERE h.inhparent = r.oid)))
		INTO distinct_keys;
		f := f || format($f$
			UNION ALL
			SELECT %7$s c.%1$I::%5$s, NULL::timestamptz, NULL::timestamptz, NULL::float8, 0::bigint, 0::numeric,
				   0::numeric, 0::bigint, NULL::numeric[], NULL::float8, NULL::float8, NULL::float8, NULL::float8
			FROM %2$s c
			WHERE c.%1$I IS NOT NULL AND NOT EXISTS (SELECT 1 FROM %3$s s WHERE s.customer = c.%1$I) %4$s %6$s$f$,
			key, o->>'customers_table', sumt,
			CASE WHEN subset IS NOT NULL THEN format('AND c.%I = ANY (ARRAY(SELECT customer FROM %s))', key, subset) ELSE '' END,
			ctype,
			CASE WHEN parted THEN format('AND ($2 = 1 OR segtier._in_part(c.%I::%s, $1, $2))', key, ctype) ELSE '' END,
			CASE WHEN distinct_keys THEN '' ELSE 'DISTINCT' END);
	END IF;
	RETURN f;
END $$;

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
	ctype text;
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
	ctype := segtier._customer_type(m);
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
	margin := CASE WHEN o->>'margin_column' IS NULL THEN 'NULL::numeric' ELSE format('%I::numeric', o->>'margin_column') END;
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
	-- the summaries in one pass of the module (segtier._summarize), or, when
	-- they outgrow hash_mem, by the grouped query, whose hash aggregation
	-- spills; written in the customer's order, which the table's pages and
	-- its primary key then follow
	null_customer_rows := segtier._summarize(sumt::regclass,
		format('SELECT %s, %s, %s, %s FROM %s %s', cust, tcol, amt, margin, src, filter),
		format($f$
			SELECT customer, (s).first_purchase, (s).last_purchase, (s).transactions, (s).purchase_days,
				   (s).total_amount, (s).repeat_amount, (s).refund_amount, (s).null_rows, (s).refunds,
				   (s).future_rows, margin, month_spend
			FROM (SELECT %1$s AS customer, segtier.purchase_summary(%2$s, %3$s, $1, $2) AS s,
						 sum(%4$s) FILTER (WHERE %2$s <= $2 AND %3$s IS NOT NULL) AS margin,
						 segtier.period_spend(%2$s, %3$s, $3) AS month_spend
				  FROM %5$s %6$s GROUP BY 1) g ORDER BY 1$f$, cust, tcol, amt, margin, src, filter),
		v_tz, v_as_of, mstarts);

	IF v_restat THEN
		-- population statistics over the buyers, in one pass over the summaries
		PERFORM segtier.report_progress(m.name, 'score', 0, NULL);
		feat := segtier._features(m, o, v_as_of, NULL, false);
		EXECUTE format($f$
			SELECT count(*) AS customers,
				   segtier.cuts(recency_days, $1) FILTER (WHERE b) AS r_cuts,
				   segtier.cuts(frequency::float8, $1) FILTER (WHERE b) AS f_cuts,
				   segtier.cuts(segtier._float8(monetary), $1) FILTER (WHERE b AND monetary > 0) AS m_cuts,
				   segtier.share_cuts(segtier._float8(value), $2, $3) FILTER (WHERE b) AS v_cuts,
				   segtier.share_cuts(segtier._float8(value), $4, 'count') FILTER (WHERE b) AS p_cuts,
				   ARRAY[avg((recency_days * 1048576)::int8) FILTER (WHERE b) / 1048576,
						 avg(frequency) FILTER (WHERE b), avg(monetary) FILTER (WHERE b)]::float8[] AS means,
				   %2$s AS bg, %3$s AS gg, %4$s AS stdz
			FROM (SELECT f.*, f.last_purchase IS NOT NULL AS b FROM (%1$s) f) f$f$,
			feat,
			CASE WHEN (o->>'predict')::boolean THEN 'segtier.bgnbd_fit(x, t_x, t_age, $5) FILTER (WHERE b)'
				 ELSE 'NULL::segtier.bgnbd' END,
			CASE WHEN (o->>'predict')::boolean THEN 'segtier.gamma_gamma_fit(x, mean_repeat, $5) FILTER (WHERE b)'
				 ELSE 'NULL::segtier.gamma_gamma' END,
			-- mean and sd of log(1 + x) of recency, frequency and monetary, for
			-- k-means; sd 0 exactly for a feature the same for every buyer.
			-- Float sums depend on the order of the rows, which parallel workers
			-- vary from run to run: these (and the mean recency above) sum
			-- values rounded to 2^-20 as integers, exactly.
			CASE WHEN (o->>'clusters')::int > 0 THEN
				(SELECT 'ARRAY[' || string_agg(format('avg(%2$s) FILTER (WHERE b) / 1048576,
					CASE WHEN min(%1$s) FILTER (WHERE b) = max(%1$s) FILTER (WHERE b) THEN 0
						 ELSE sqrt(count(*) FILTER (WHERE b) * sum(%2$s * %2$s) FILTER (WHERE b)
								   - sum(%2$s) FILTER (WHERE b) * sum(%2$s) FILTER (WHERE b))
							  / count(*) FILTER (WHERE b) / 1048576 END', e, format('(ln(1 + %s) * 1048576)::int8', e)),
					', ' ORDER BY k) || ']::float8[]'
				 FROM unnest(ARRAY['recency_days', 'frequency::float8', 'greatest(segtier._float8(monetary), 0)'])
					  WITH ORDINALITY u(e, k))
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
		'incremental_customers', CASE WHEN v_full THEN NULL ELSE (SELECT count(DISTINCT customer) FROM segtier_changed) END);

	-- whom to score: everybody, or the changed customers, those with overrides
	-- set, cleared or deleted, and those held by hysteresis (counting runs)
	IF NOT v_all THEN
		-- the partial index <model>_tiers_pending has those rows; without
		-- statistics the planner would scan the whole table for them.  UNION
		-- ALL, as the = ANY (array) conditions below take duplicates: UNION's
		-- hash table is sized by the estimate of held rows (all of them
		-- without statistics), tens of megabytes cleared every run.
		seqscan := current_setting('enable_seqscan');
		PERFORM set_config('enable_seqscan', 'off', true);
		EXECUTE format('CREATE TEMP TABLE segtier_rescore AS
						SELECT customer FROM segtier_changed
						UNION ALL SELECT o.customer::%s FROM segtier.tier_override o WHERE o.model = $1
						UNION ALL SELECT t.customer FROM %s t WHERE t.held <> ''{}'' OR t.overridden <> ''{}''', ctype, tbl)
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
				   n.customer IS NOT NULL, t.ctid
			FROM (%1$s) n FULL JOIN (SELECT t.customer, t.ctid FROM %2$s t %3$s) t ON t.customer = n.customer$q$)
		AS x(op "char", customer %4$s, h_scheme text[], h_from text[], h_to text[], h_reason text[], h_by text[])$f$,
		segtier._features(m, o, v_as_of, subset, true), tbl,
		'WHERE ' || concat_ws(' AND ',
			CASE WHEN subset IS NOT NULL THEN format('t.customer = ANY (ARRAY(SELECT customer FROM %s))', subset) END,
			'($2 = 1 OR segtier._in_part(t.customer, $1, $2))'),
		ctype)
	USING segtier._scoring_settings(m, o, v_as_of, params, v_run);

	PERFORM segtier.report_progress(m.name, 'write', n_customers, n_customers);
	ANALYZE segtier_out (op, customer);
	INSERT INTO segtier.tier_history (model, customer, scheme, from_tier, to_tier, run_id, reason, changed_by)
	SELECT m.name, x.customer::text, h.scheme, h.from_tier, h.to_tier, v_run, h.reason, coalesce(h.by, current_user)
	FROM segtier_out x, unnest(x.h_scheme, x.h_from, x.h_to, x.h_reason, x.h_by) h(scheme, from_tier, to_tier, reason, by)
	WHERE x.h_scheme <> '{}';
	GET DIAGNOSTICS n_changed = ROW_COUNT;
	-- the new and changed rows _rescore wrote itself
	EXECUTE format('DELETE FROM %s t USING segtier_out x WHERE x.op = %L AND t.customer = x.customer', tbl, 'd');
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

CREATE OR REPLACE FUNCTION segtier._customer_text(model text, customer text) RETURNS text
LANGUAGE plpgsql STABLE PARALLEL SAFE SET search_path = pg_catalog, segtier, pg_temp AS $$
DECLARE
	m segtier.model := segtier._get_model(model);
	v text;
BEGIN
	-- the id in the type of the customer column, written back as text
	EXECUTE format('SELECT $1::%s::text', segtier._customer_type(m))
	INTO v USING customer;
	RETURN v;
END $$;

COMMENT ON FUNCTION segtier._option_key(text) IS 'raise 22023 listing the valid keys for a key that is not a model option';

COMMENT ON FUNCTION segtier._customer_type(segtier.model) IS 'a model''s customer id type as SQL text without a modifier (bpchar for char(n))';

COMMENT ON FUNCTION segtier._model_options(segtier.model) IS 'a model''s options over the defaults, checked together but for the tier schemes they name';

COMMENT ON FUNCTION segtier._effective_options(segtier.model) IS 'a model''s options over the defaults, checked together with the tier schemes they name';

COMMENT ON FUNCTION segtier._alter_model(text, jsonb) IS 'alter_model once relation names in options are resolved';
