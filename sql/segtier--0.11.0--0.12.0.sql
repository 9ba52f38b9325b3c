-- segtier 0.11.0 -> 0.12.0
--
-- The tiers of existing models do not change.
-- * A model created with a dropped model's name no longer takes over its
--   runs and history: segtier.model.since_run, a run id taken when the model
--   is created, separates the two (the model's rows have greater run ids).
--   Before, the new model's owner read the old model's history and runs and
--   could change the runs, the worker scheduled the new model by the old
--   one's last run and failures, and purge_history deleted the old model's
--   rows by the new one's history_retention.  Existing models get the last
--   run id of their name from before they were created.
-- * Only the DBA (the owner of segtier.model, e.g. a restore) sets since_run.
-- * create_model and alter_model refuse a customers_table that is not a
--   valid name ("", "a b") with 22023 naming the option (was 42602).
\echo Use "ALTER EXTENSION segtier UPDATE TO '0.12.0'" to load this file. \quit

ALTER TABLE segtier.model ADD COLUMN since_run bigint NOT NULL DEFAULT 0;
ALTER TABLE segtier.model DISABLE TRIGGER model_check;
UPDATE segtier.model m SET since_run = coalesce((SELECT max(r.run_id) FROM segtier.refresh_runs r
												 WHERE r.model = m.name AND r.started < m.created_at), 0);
ALTER TABLE segtier.model ENABLE TRIGGER model_check;
ALTER TABLE segtier.model ALTER COLUMN since_run DROP DEFAULT;

COMMENT ON COLUMN segtier.model.since_run IS 'the model''s runs and history rows have greater run ids; rows of its name up to this one are a dropped model''s';

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
	NEW.options := segtier._check_options(NEW.options);
	PERFORM segtier._check_columns(NEW);
	PERFORM segtier._model_options(NEW);
	RETURN NEW;
END $$;

CREATE FUNCTION segtier._model_since_runs() RETURNS jsonb
LANGUAGE sql STABLE PARALLEL SAFE SECURITY DEFINER SET search_path = pg_catalog, segtier, pg_temp AS $$
	SELECT coalesce(jsonb_object_agg(name, since_run), '{}') FROM segtier.model
$$;

ALTER POLICY runs_read ON segtier.refresh_runs
	USING (CASE WHEN run_id > ((SELECT segtier._model_since_runs()) ->> model)::bigint
				THEN model = ANY (ARRAY(SELECT segtier._readable_models()))
				ELSE (SELECT segtier._reads_every_model()) END);
ALTER POLICY runs_insert ON segtier.refresh_runs
	WITH CHECK (run_id > ((SELECT jsonb_object_agg(m.name, m.since_run) FROM segtier.model m) ->> model)::bigint);
ALTER POLICY runs_update ON segtier.refresh_runs
	USING (run_id > ((SELECT jsonb_object_agg(m.name, m.since_run) FROM segtier.model m) ->> model)::bigint)
	WITH CHECK (run_id > ((SELECT jsonb_object_agg(m.name, m.since_run) FROM segtier.model m) ->> model)::bigint);
ALTER POLICY history_read ON segtier.tier_history
	USING (CASE WHEN run_id > ((SELECT segtier._model_since_runs()) ->> model)::bigint
				THEN model = ANY (ARRAY(SELECT segtier._readable_models()))
				ELSE (SELECT segtier._reads_every_model()) END);
ALTER POLICY history_owner ON segtier.tier_history
	WITH CHECK (run_id > ((SELECT jsonb_object_agg(m.name, m.since_run) FROM segtier.model m) ->> model)::bigint);

CREATE OR REPLACE FUNCTION segtier._resolve_options(o jsonb) RETURNS jsonb
LANGUAGE plpgsql STABLE PARALLEL SAFE AS $$
BEGIN
	RETURN CASE WHEN pg_catalog.jsonb_typeof(o OPERATOR(pg_catalog.->) 'customers_table') OPERATOR(pg_catalog.=) 'string'
		THEN o OPERATOR(pg_catalog.||) pg_catalog.jsonb_build_object('customers_table', COALESCE(
			(SELECT pg_catalog.format('%I.%I', n.nspname, c.relname)
			 FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace
			 WHERE c.oid OPERATOR(pg_catalog.=) pg_catalog.to_regclass(o OPERATOR(pg_catalog.->>) 'customers_table')),
			o OPERATOR(pg_catalog.->>) 'customers_table'))
		ELSE o END;
EXCEPTION WHEN invalid_name THEN
	RETURN o;
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
	WHERE r.model = m.name AND r.run_id > m.since_run AND r.status = 'succeeded' ORDER BY r.run_id DESC LIMIT 1;
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

CREATE OR REPLACE FUNCTION segtier._worker_due_models() RETURNS TABLE (model text)
LANGUAGE sql STABLE PARALLEL SAFE SET search_path = pg_catalog, segtier, pg_temp AS $$
	SELECT m.name
	FROM segtier.model m
	CROSS JOIN LATERAL (SELECT coalesce(m.options->>'refresh_interval',
										(SELECT default_value #>> '{}' FROM segtier.model_option WHERE key = 'refresh_interval'))::interval AS iv) i
	LEFT JOIN LATERAL (SELECT r.started FROM segtier.refresh_runs r WHERE r.model = m.name AND r.run_id > m.since_run
					   ORDER BY r.run_id DESC LIMIT 1) l ON true
	LEFT JOIN LATERAL (SELECT least(count(*), 6) AS n FROM segtier.refresh_runs r
					   WHERE r.model = m.name AND r.status = 'failed'
						 AND r.run_id > coalesce((SELECT max(k.run_id) FROM segtier.refresh_runs k
												  WHERE k.model = m.name AND k.status = 'succeeded'), m.since_run)) f ON true
	CROSS JOIN LATERAL (SELECT coalesce(l.started, '-infinity'::timestamptz)
							   + least(i.iv * power(2, coalesce(f.n, 0)), greatest(i.iv, interval '1 day')) AS due) d
	WHERE d.due <= now()
	ORDER BY d.due, m.name
$$;

CREATE OR REPLACE FUNCTION segtier.purge_history(model text DEFAULT NULL) RETURNS bigint
LANGUAGE plpgsql SET search_path = pg_catalog, segtier, pg_temp AS $$
DECLARE
	n bigint := 0;
	k bigint;
	r record;
BEGIN
	FOR r IN SELECT m.name, m.since_run, (segtier._effective_options(m)->>'history_retention')::interval AS keep
			 FROM segtier.model m WHERE purge_history.model IS NULL OR m.name = purge_history.model LOOP
		CONTINUE WHEN r.keep IS NULL;
		DELETE FROM segtier.tier_history h
		WHERE h.model = r.name AND h.run_id > r.since_run AND h.changed_at < now() - r.keep;
		GET DIAGNOSTICS k = ROW_COUNT;
		n := n + k;
	END LOOP;
	RETURN n;
END $$;

COMMENT ON FUNCTION segtier.purge_history(text) IS
'delete tier_history rows older than each model''s history_retention option (a dropped model''s rows stay, also under a re-used name); returns the rows deleted (only roles with DELETE on tier_history, i.e. the DBA, can run it)';
COMMENT ON FUNCTION segtier._model_names() IS 'names of all models, for customer_tiers and the models whose history and runs the caller may read';
COMMENT ON FUNCTION segtier._model_since_runs() IS 'every model''s since_run by name, for the row security of the history and runs (rows of a name up to it are a dropped model''s)';
