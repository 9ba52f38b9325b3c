-- segtier 0.8.0 -> 0.9.0
--
-- An incremental refresh collects the customers to rescore (the changed
-- ones, those with overrides, those held by hysteresis) with UNION ALL: the
-- scoring query's = ANY (array) conditions do not mind duplicates, and
-- UNION's hash aggregation, sized by the planner's estimate of the held rows
-- (the whole tiers table while it has no statistics), allocated and cleared
-- tens of megabytes each run.  params.incremental_customers counts a queued
-- customer who also has transactions after the previous as-of time once.
-- The row security policies find the role's models with an InitPlan, once a
-- statement, instead of a subquery for each row.
\echo Use "ALTER EXTENSION segtier UPDATE TO '0.9.0'" to load this file. \quit

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
 *    time moved, applies overrides and hysteresis, inserts the new rows of
 *    <model>_tiers and updates those whose values changed, and returns the
 *    new and removed customers and the history of all.
 * 4. Delete the removed customers' rows; one tier_history row per changed
 *    tier.
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

ALTER POLICY runs_owner ON segtier.refresh_runs
	USING (model = ANY (ARRAY(SELECT m.name FROM segtier.model m)))
	WITH CHECK (model = ANY (ARRAY(SELECT m.name FROM segtier.model m)));
ALTER POLICY history_owner ON segtier.tier_history
	WITH CHECK (model = ANY (ARRAY(SELECT m.name FROM segtier.model m)));
ALTER POLICY override_owner ON segtier.tier_override
	USING (model = ANY (ARRAY(SELECT m.name FROM segtier.model m)));
