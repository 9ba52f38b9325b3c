-- segtier 0.5.0 -> 0.6.0
--
-- segtier._summarize writes a refresh's summaries straight into the model's
-- summary table (heap multi-inserts and their index entries, as COPY does)
-- and returns the count of rows without a customer, instead of returning
-- the summaries as a set that the refresh copied into the table; and
-- segtier._rescore inserts the new and updates the changed rows of
-- <model>_tiers itself (the latter at the ctid the scoring query read) and
-- returns only the new and removed customers and the history, instead of
-- every row for an INSERT and an UPDATE that joined them back.  Same rows.
\echo Use "ALTER EXTENSION segtier UPDATE TO '0.6.0'" to load this file. \quit

DROP FUNCTION segtier._summarize(text, text, text, timestamptz, timestamptz[]);

-- A refresh's per-customer sums (purchase_summary, the margin, period_spend
-- by month) in one pass over scan's rows, or by the grouped query when they
-- outgrow hash_mem, written into target; see summarize.c and _refresh_model.
CREATE FUNCTION segtier._summarize(target regclass, scan text, grouped text, time_zone text,
								   as_of timestamptz, month_starts timestamptz[]) RETURNS bigint
	AS 'MODULE_PATHNAME', 'segtier_summarize_into' LANGUAGE C VOLATILE STRICT;

COMMENT ON FUNCTION segtier._summarize(regclass, text, text, text, timestamptz, timestamptz[]) IS 'internal: writes the per-customer sums of a refresh into target (a table without triggers, rules, row security, checks, generated columns or type modifiers) from the rows of scan (customer, time, amount, margin) in one pass, or the rows of grouped ($1 time_zone, $2 as_of, $3 month_starts) when they outgrow hash_mem; returns the source rows without a customer';

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
		segtier._summarize(regclass, text, text, text, timestamptz, timestamptz[]),
		segtier._create_relations(text), segtier._drop_relations(text), segtier._set_capture(segtier.model, boolean),
		segtier._capture(), segtier.alter_model(text, jsonb), segtier.drop_model(text), segtier.refresh(text, boolean),
		segtier.set_override(text, text, segtier.tier, text, timestamptz),
		segtier.clear_override(text, text, text) TO %s', role);
END $$;

-- it writes into a table: like _rescore, for the roles a refresh runs as
REVOKE ALL ON FUNCTION segtier._summarize(regclass, text, text, text, timestamptz, timestamptz[]) FROM PUBLIC;
DO $$
DECLARE
	r regrole;
BEGIN
	FOR r IN SELECT DISTINCT a.grantee::regrole
			 FROM pg_proc p, aclexplode(p.proacl) a
			 WHERE p.oid = 'segtier._refresh_model(text, boolean, bigint)'::regprocedure
			   AND a.privilege_type = 'EXECUTE' AND a.grantee <> p.proowner AND a.grantee <> 0 LOOP
		EXECUTE format('GRANT EXECUTE ON FUNCTION segtier._summarize(regclass, text, text, text, timestamptz, timestamptz[]) TO %s', r);
	END LOOP;
END $$;

-- the scoring pass writes into the tiers table of its run
ALTER TYPE segtier._scoring ADD ATTRIBUTE tiers regclass, ADD ATTRIBUTE run_id bigint;
COMMENT ON FUNCTION segtier._rescore(segtier._scoring, text) IS
'internal: scores the rows of query (features and the ctid of the customer''s current tiers row), inserts the new and updates the changed rows of the tiers table, and returns the new and removed customers and the history of all';

DROP FUNCTION segtier._scoring_settings(segtier.model, jsonb, timestamptz, jsonb);
-- The scoring settings from the options and the statistics in a run's params.
CREATE FUNCTION segtier._scoring_settings(m segtier.model, o jsonb, as_of timestamptz, params jsonb, run_id bigint)
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
		(o->>'hysteresis_runs')::int, (o->>'hysteresis_days')::int,
		format('segtier_data.%I', m.name || '_tiers')::regclass, run_id)::segtier._scoring
$$;
COMMENT ON FUNCTION segtier._scoring_settings(segtier.model, jsonb, timestamptz, jsonb, bigint) IS 'the settings of a scoring pass: the model''s options, the statistics in a run''s params, its tiers table and run';

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
		feat := segtier._features(m, o, v_as_of, NULL);
		EXECUTE format($f$
			SELECT count(*) AS customers,
				   segtier.cuts(recency_days, $1) FILTER (WHERE b) AS r_cuts,
				   segtier.cuts(frequency::float8, $1) FILTER (WHERE b) AS f_cuts,
				   segtier.cuts(segtier._float8(monetary), $1) FILTER (WHERE b AND monetary > 0) AS m_cuts,
				   segtier.share_cuts(segtier._float8(value), $2, $3) FILTER (WHERE b) AS v_cuts,
				   segtier.share_cuts(segtier._float8(value), $4, 'count') FILTER (WHERE b) AS p_cuts,
				   ARRAY[avg(recency_days) FILTER (WHERE b), avg(frequency) FILTER (WHERE b),
						 avg(monetary) FILTER (WHERE b)]::float8[] AS means,
				   %2$s AS bg, %3$s AS gg, %4$s AS stdz
			FROM (SELECT f.*, f.last_purchase IS NOT NULL AS b FROM (%1$s) f) f$f$,
			feat,
			CASE WHEN (o->>'predict')::boolean THEN 'segtier.bgnbd_fit(x, t_x, t_age, $5) FILTER (WHERE b)'
				 ELSE 'NULL::segtier.bgnbd' END,
			CASE WHEN (o->>'predict')::boolean THEN 'segtier.gamma_gamma_fit(x, mean_repeat, $5) FILTER (WHERE b)'
				 ELSE 'NULL::segtier.gamma_gamma' END,
			-- mean and sd of log(1 + x) of recency, frequency and monetary, for
			-- k-means; sd 0 exactly for a feature the same for every buyer
			-- (stddev_pop leaves a rounding residue that grows with the count)
			CASE WHEN (o->>'clusters')::int > 0 THEN
				(SELECT 'ARRAY[' || string_agg(format('avg(ln(1 + %1$s)) FILTER (WHERE b),
					CASE WHEN min(%1$s) FILTER (WHERE b) = max(%1$s) FILTER (WHERE b) THEN 0
						 ELSE stddev_pop(ln(1 + %1$s)) FILTER (WHERE b) END', e), ', ' ORDER BY k) || ']'
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
				   n.customer IS NOT NULL, t.ctid
			FROM (%1$s) n FULL JOIN (SELECT t.customer, t.ctid FROM %2$s t %3$s) t ON t.customer = n.customer$q$)
		AS x(op "char", customer %4$s, h_scheme text[], h_from text[], h_to text[], h_reason text[], h_by text[])$f$,
		segtier._features(m, o, v_as_of, subset), tbl,
		CASE WHEN subset IS NOT NULL THEN format('WHERE t.customer = ANY (ARRAY(SELECT customer FROM %s))', subset) ELSE '' END,
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

COMMENT ON COLUMN segtier.refresh_progress.phase IS 'aggregate, score (which also writes the new and changed tiers rows) or write';
