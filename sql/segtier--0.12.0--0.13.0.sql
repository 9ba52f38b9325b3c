-- segtier 0.12.0 -> 0.13.0
--
-- The tiers of existing models do not change.
-- * A capture trigger left on a child detached from the source (or on any
--   table that is not the model's) does nothing; it raised 42501 and so
--   failed every write to that table.  A refresh that sees the source's
--   children change, and drop_model, drop the model's triggers wherever
--   they are (on tables the role owns), by their exact names: model "a"
--   dropped model "a_b"'s triggers on a shared source.
-- * Options: an integer written 5.0 is kept as 5 (every refresh failed with
--   22P02); as_of is kept as an instant with its UTC offset, read once in
--   the session's TimeZone, so that every run reads the same instant, and
--   now, today, tomorrow and yesterday are refused (they move); time_zone
--   refuses POSIX rules such as "UTC+5" that are not in pg_timezone_names.
--   Stored options are normalised here the same way (as_of in this
--   session's TimeZone).
-- * A capture trigger on a source whose customer column was renamed,
--   dropped or retyped queues nothing and marks the model for a full
--   refresh instead of failing the write; the refresh says what changed (a
--   new type: 42804, drop and create the model).  _model_check checks a
--   model row only when what it checks changed.
-- * create_model refuses a source that is not a table, view, materialized
--   view or foreign table (an index, a composite type) with 42809.
\echo Use "ALTER EXTENSION segtier UPDATE TO '0.13.0'" to load this file. \quit

CREATE OR REPLACE FUNCTION segtier._model_check() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, segtier, pg_temp AS $$
DECLARE
	dba boolean := pg_has_role((SELECT c.relowner FROM pg_class c WHERE c.oid = 'segtier.model'::regclass), 'USAGE');
BEGIN
	IF TG_OP = 'INSERT' AND (NEW.since_run IS NULL OR NOT dba) THEN
		NEW.since_run := nextval('segtier.refresh_runs_run_id_seq');
	ELSIF TG_OP = 'UPDATE' AND NEW.since_run IS DISTINCT FROM OLD.since_run AND NOT dba THEN
		RAISE EXCEPTION 'only the owner of segtier.model may change since_run'
			USING ERRCODE = 'insufficient_privilege';
	END IF;
	-- what is checked must not have changed (an UPDATE of needs_full alone
	-- comes from a capture trigger, also when the source's columns are broken)
	IF TG_OP = 'INSERT' OR (NEW.source, NEW.customer_column, NEW.time_column, NEW.amount_column, NEW.options)
						   IS DISTINCT FROM (OLD.source, OLD.customer_column, OLD.time_column, OLD.amount_column, OLD.options) THEN
		NEW.options := segtier._check_options(NEW.options);
		PERFORM segtier._check_columns(NEW);
		PERFORM segtier._model_options(NEW);
	END IF;
	RETURN NEW;
END $$;

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
		-- kept as an instant with its offset, so that every run reads it the
		-- same whatever the session's TimeZone; now, today and the like move
		BEGIN
			IF t <> 'string' OR (v #>> '{}') ~* '\m(now|today|tomorrow|yesterday)\M'
			   OR NOT isfinite((v #>> '{}')::timestamptz) THEN
				RAISE invalid_datetime_format;
			END IF;
			v := to_jsonb((v #>> '{}')::timestamptz);
		EXCEPTION WHEN invalid_datetime_format OR datetime_field_overflow THEN
			PERFORM segtier._bad_option(key, v, 'a fixed, finite timestamptz such as "2025-01-01 00:00+00"');
		END;
	WHEN key = 'time_zone' THEN
		BEGIN
			IF t <> 'string' THEN RAISE invalid_parameter_value; END IF;
			-- as the refresh takes it: an IANA name, not an abbreviation; nor
			-- a POSIX rule such as UTC+5 (five hours west), which the zone
			-- parser takes too: a name with a digit or sign must be listed
			PERFORM segtier.purchase_summary(now(), 0, v #>> '{}');
			IF (v #>> '{}') ~ '[0-9+-]' AND NOT EXISTS (SELECT 1 FROM pg_timezone_names z WHERE z.name = v #>> '{}') THEN
				RAISE invalid_parameter_value;
			END IF;
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
		-- 5.0 is kept as 5, which the refresh reads with ::int
		v := to_jsonb((v #>> '{}')::numeric::int);
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

CREATE OR REPLACE FUNCTION segtier._capture() RETURNS trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, segtier, pg_temp AS $$
DECLARE
	m segtier.model;
BEGIN
	-- only the model's own tables feed its queue (the partitions are walked
	-- only for a trigger on a child, not on every write).  A trigger left on
	-- a detached child, or on a table another role pointed at this function,
	-- does nothing: it must never fail the application's write.
	SELECT * INTO m FROM segtier.model x WHERE x.name = TG_ARGV[0];
	IF NOT FOUND OR (TG_RELID <> m.source AND TG_RELID NOT IN (SELECT segtier._capture_targets(m))) THEN
		RETURN NULL;
	END IF;
	IF TG_OP = 'TRUNCATE' THEN
		UPDATE segtier.model SET needs_full = true WHERE name = TG_ARGV[0];
		RETURN NULL;
	END IF;
	-- a customer column renamed, dropped or retyped since: the write must not
	-- fail, so nothing is queued and the next refresh is full (or says why
	-- it cannot run)
	IF NOT EXISTS (SELECT 1 FROM pg_attribute a
				   WHERE a.attrelid = TG_RELID AND a.attname = TG_ARGV[1] AND NOT a.attisdropped
					 AND a.atttypid = (SELECT b.atttypid FROM pg_attribute b
									   WHERE b.attrelid = format('segtier_data.%I', TG_ARGV[0] || '_queue')::regclass
										 AND b.attname = 'customer')) THEN
		IF NOT m.needs_full THEN
			UPDATE segtier.model SET needs_full = true WHERE name = TG_ARGV[0];
		END IF;
		RETURN NULL;
	END IF;
	IF TG_OP IN ('INSERT', 'UPDATE') THEN
		EXECUTE format('INSERT INTO segtier_data.%I SELECT DISTINCT %I FROM segtier_new WHERE %2$I IS NOT NULL',
					   TG_ARGV[0] || '_queue', TG_ARGV[1]);
	END IF;
	IF TG_OP IN ('DELETE', 'UPDATE') THEN
		EXECUTE format('INSERT INTO segtier_data.%I SELECT DISTINCT %I FROM segtier_old WHERE %2$I IS NOT NULL',
					   TG_ARGV[0] || '_queue', TG_ARGV[1]);
	END IF;
	RETURN NULL;
END $$;

CREATE OR REPLACE FUNCTION segtier._set_capture(m segtier.model, enable boolean) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, segtier, pg_temp AS $$
DECLARE
	trg text := 'segtier_' || m.name;
	rel regclass;
	ev text;
BEGIN
	FOR rel, ev IN SELECT t.tgrelid::regclass, t.tgname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
				   WHERE t.tgfoid = 'segtier._capture'::regproc AND pg_has_role(c.relowner, 'USAGE')
					 AND t.tgname IN (trg || '_insert', trg || '_update', trg || '_delete', trg || '_truncate') LOOP
		EXECUTE format('DROP TRIGGER %I ON %s', ev, rel);
	END LOOP;
	IF NOT enable THEN
		RETURN;
	END IF;
	FOR rel IN SELECT * FROM segtier._capture_targets(m) LOOP
		EXECUTE format('CREATE TRIGGER %I AFTER INSERT ON %s REFERENCING NEW TABLE AS segtier_new
						FOR EACH STATEMENT EXECUTE FUNCTION segtier._capture(%L, %L)', trg || '_insert', rel, m.name, m.customer_column);
		EXECUTE format('CREATE TRIGGER %I AFTER UPDATE ON %s REFERENCING OLD TABLE AS segtier_old NEW TABLE AS segtier_new
						FOR EACH STATEMENT EXECUTE FUNCTION segtier._capture(%L, %L)', trg || '_update', rel, m.name, m.customer_column);
		EXECUTE format('CREATE TRIGGER %I AFTER DELETE ON %s REFERENCING OLD TABLE AS segtier_old
						FOR EACH STATEMENT EXECUTE FUNCTION segtier._capture(%L, %L)', trg || '_delete', rel, m.name, m.customer_column);
		EXECUTE format('CREATE TRIGGER %I AFTER TRUNCATE ON %s
						FOR EACH STATEMENT EXECUTE FUNCTION segtier._capture(%L, %L)', trg || '_truncate', rel, m.name, m.customer_column);
	END LOOP;
END $$;

CREATE OR REPLACE FUNCTION segtier._create_model(name text, source regclass, customer_column name, time_column name,
	amount_column name, options jsonb) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, segtier, pg_temp AS $$
DECLARE
	m segtier.model;
	o jsonb;
BEGIN
	IF name IS NULL OR name !~ '^[a-z][a-z0-9_]{0,47}$' THEN
		RAISE EXCEPTION 'invalid model name "%"', name
			USING ERRCODE = 'invalid_name',
				  DETAIL = 'A model name is a lower-case letter followed by up to 47 lower-case letters, digits or underscores.';
	END IF;
	IF source IS NULL OR customer_column IS NULL OR time_column IS NULL OR amount_column IS NULL THEN
		RAISE EXCEPTION 'source and column names of a model must not be NULL' USING ERRCODE = 'null_value_not_allowed';
	END IF;
	IF EXISTS (SELECT 1 FROM segtier.model x WHERE x.name = _create_model.name) THEN
		RAISE EXCEPTION 'model "%" already exists', name USING ERRCODE = 'duplicate_object';
	END IF;
	IF (SELECT c.relkind FROM pg_class c WHERE c.oid = source) NOT IN ('r', 'p', 'v', 'm', 'f') THEN
		RAISE EXCEPTION 'source % is not a table, view, materialized view or foreign table', source
			USING ERRCODE = 'wrong_object_type';
	END IF;
	IF NOT has_table_privilege(source, 'SELECT') THEN
		RAISE EXCEPTION 'permission denied for % (the model owner must be able to read the source)', source
			USING ERRCODE = 'insufficient_privilege';
	END IF;
	o := segtier._check_options(coalesce(options, '{}'));
	IF NOT o ? 'time_zone' OR o->'time_zone' = 'null' THEN
		o := o || jsonb_build_object('time_zone', current_setting('TimeZone'));
	END IF;
	m := ROW(name, source, customer_column, time_column, amount_column, o, quote_ident(current_user)::regrole,
			 now(), now(), true, NULL)::segtier.model;
	PERFORM segtier._check_columns(m);
	PERFORM segtier._effective_options(m);
	-- capture puts triggers on the source, which needs its TRIGGER privilege
	IF (SELECT c.relkind FROM pg_class c WHERE c.oid = source) IN ('r', 'p')
	   AND NOT has_table_privilege(source, 'TRIGGER') THEN
		IF (o->>'capture')::boolean THEN
			RAISE EXCEPTION 'capture needs the TRIGGER privilege on %', source
				USING ERRCODE = 'insufficient_privilege',
					  HINT = 'Grant it, or create the model with "capture": false (every refresh is then full).';
		END IF;
		m.options := m.options || '{"capture": false}';
		RAISE NOTICE 'model "%" refreshes fully each time: capturing changes needs the TRIGGER privilege on %', name, source;
	END IF;
	INSERT INTO segtier.model VALUES (m.*);
	PERFORM segtier._create_relations(m.name);
	PERFORM segtier._set_capture(m, (segtier._effective_options(m)->>'capture')::boolean);
END $$;

CREATE OR REPLACE FUNCTION segtier.drop_model(name text) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, segtier, pg_temp AS $$
DECLARE
	m segtier.model;
BEGIN
	PERFORM pg_advisory_xact_lock(1936024946, hashtext(name));
	m := segtier._get_model(name);
	PERFORM segtier._set_capture(m, false);
	DELETE FROM segtier.model x WHERE x.name = m.name;
	PERFORM segtier._drop_relations(m.name);
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
	ctype_held text;			-- the customer type of the model's tables
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
	ctype_held := (SELECT format_type(a.atttypid, -1) FROM pg_attribute a WHERE a.attrelid = q::regclass AND a.attname = 'customer');
	IF ctype <> ctype_held THEN
		RAISE EXCEPTION 'customer column "%" of % is now of type %, but the tables of model "%" hold %',
			m.customer_column, m.source, ctype, m.name, ctype_held
			USING ERRCODE = 'datatype_mismatch', HINT = 'Drop the model and create it again.';
	END IF;
	SELECT * INTO last FROM segtier.refresh_runs r
	WHERE r.model = m.name AND r.run_id > m.since_run AND r.status = 'succeeded' ORDER BY r.run_id DESC LIMIT 1;
	-- month buckets are relative to the as-of month, so a new month rescans
	-- a child attached since the last run has no capture triggers yet, and
	-- the rows of a child dropped or detached were never seen leaving
	targets := ARRAY(SELECT t::oid FROM segtier._capture_targets(m) t);
	IF last.params->'capture_targets' IS DISTINCT FROM to_jsonb(targets)
	   OR ((o->>'capture')::boolean
		   AND EXISTS (SELECT 1 FROM unnest(targets) t(relid)
					   WHERE NOT EXISTS (SELECT 1 FROM pg_trigger g
										 WHERE g.tgrelid = t.relid AND g.tgname = 'segtier_' || m.name || '_insert'))) THEN
		-- the triggers go on the children there are now, off those detached
		IF (o->>'capture')::boolean THEN
			PERFORM segtier._set_capture(m, true);
		END IF;
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

ALTER TABLE segtier.model DISABLE TRIGGER model_check;
UPDATE segtier.model m
SET options = m.options || (SELECT coalesce(jsonb_object_agg(o.key, CASE WHEN o.key = 'as_of'
							THEN to_jsonb((o.value #>> '{}')::timestamptz) ELSE to_jsonb((o.value #>> '{}')::numeric::int) END), '{}')
							FROM jsonb_each(m.options) o
							WHERE (o.key = 'as_of' AND jsonb_typeof(o.value) = 'string'
								   AND o.value #>> '{}' !~* '\m(now|today|tomorrow|yesterday)\M')
							   OR (o.key IN ('rfm_bins', 'new_days', 'active_days', 'churn_days', 'loyal_purchases',
											 'churn_months', 'hysteresis_runs', 'hysteresis_days', 'horizon_days', 'clusters')
								   AND jsonb_typeof(o.value) = 'number'));
ALTER TABLE segtier.model ENABLE TRIGGER model_check;
