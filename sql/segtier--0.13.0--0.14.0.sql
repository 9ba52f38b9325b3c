-- segtier 0.13.0 -> 0.14.0
--
-- The tiers of existing models do not change.
-- * A restore keeps every model row as it was dumped: a row the DBA inserts
--   with its since_run is not checked (its refresh checks it).  One model
--   whose source or a column had gone made the whole COPY of segtier.model
--   fail, and so lost every model and override.
-- * pg_dump keeps the built-in tier schemes and levels too (renamed,
--   relabelled, levels added); a restored built-in row updates the one
--   CREATE EXTENSION made (trigger tier_catalog_restore).
-- * An override follows a renamed tier scheme or level (its tier is text:
--   every refresh failed with 22P02 after a rename).
-- * The capture targets a run records are relation names, not oids: the
--   first refresh after a restore is incremental, as it would have been.
--   Stored targets are rewritten here.
-- * Capture triggers already in place stay: an admin with only the TRIGGER
--   privilege on a source could create them but not drop them, so every
--   refresh that re-placed them failed with 42710.  drop_model warns about
--   the triggers it cannot drop.
-- * grant_admin grants _run_start and _run_failed, which refresh(NULL)
--   needs to record a failing model (it failed with 42501 and rolled back
--   the others); granted here to the roles grant_admin was run for.
-- * customers_table must be readable by the model owner (42501 at
--   create_model/alter_model, not at every refresh).
-- * tiers() works for readers; a name taken by a model row security hides
--   is 42710, not 23505.
-- * NULL model names and roles are 22004; clear_override with a NULL
--   customer is 22004; purge_history of an unknown model is 42704;
--   alter_model with a JSON scalar says options must be an object; a model
--   whose owner role was dropped says so (42704).
\echo Use "ALTER EXTENSION segtier UPDATE TO '0.14.0'" to load this file. \quit

CREATE OR REPLACE FUNCTION segtier._model_check() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog, segtier, pg_temp AS $$
DECLARE
	dba boolean := pg_has_role((SELECT c.relowner FROM pg_class c WHERE c.oid = 'segtier.model'::regclass), 'USAGE');
	restored boolean;
BEGIN
	-- a row the DBA inserts with its since_run is a restore's: kept as it was
	-- dumped, broken or not (its refresh checks it), not to lose the others
	restored := TG_OP = 'INSERT' AND dba AND NEW.since_run IS NOT NULL;
	IF TG_OP = 'INSERT' AND NOT restored THEN
		NEW.since_run := nextval('segtier.refresh_runs_run_id_seq');
	ELSIF TG_OP = 'UPDATE' AND NEW.since_run IS DISTINCT FROM OLD.since_run AND NOT dba THEN
		RAISE EXCEPTION 'only the owner of segtier.model may change since_run'
			USING ERRCODE = 'insufficient_privilege';
	END IF;
	-- what is checked must not have changed (an UPDATE of needs_full alone
	-- comes from a capture trigger, also when the source's columns are broken)
	IF (TG_OP = 'INSERT' AND NOT restored)
	   OR (TG_OP = 'UPDATE' AND (NEW.source, NEW.customer_column, NEW.time_column, NEW.amount_column, NEW.options)
		   IS DISTINCT FROM (OLD.source, OLD.customer_column, OLD.time_column, OLD.amount_column, OLD.options)) THEN
		NEW.options := segtier._check_options(NEW.options);
		PERFORM segtier._check_columns(NEW);
		PERFORM segtier._model_options(NEW);
	END IF;
	RETURN NEW;
END $$;

CREATE OR REPLACE FUNCTION segtier._set_capture(m segtier.model, enable boolean) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, segtier, pg_temp AS $$
DECLARE
	trg text := 'segtier_' || m.name;
	args bytea := convert_to(m.name, getdatabaseencoding()) || '\x00'::bytea
				  || convert_to(m.customer_column, getdatabaseencoding()) || '\x00'::bytea;
	targets oid[] := CASE WHEN enable THEN ARRAY(SELECT t::oid FROM segtier._capture_targets(m) t) ELSE '{}' END;
	rel regclass;
	ev text;
BEGIN
	FOR rel, ev IN SELECT t.tgrelid::regclass, t.tgname FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
				   WHERE t.tgfoid = 'segtier._capture'::regproc AND pg_has_role(c.relowner, 'USAGE')
					 AND t.tgname IN (trg || '_insert', trg || '_update', trg || '_delete', trg || '_truncate')
					 AND NOT (t.tgrelid = ANY (targets) AND t.tgargs = args) LOOP
		EXECUTE format('DROP TRIGGER %I ON %s', ev, rel);
	END LOOP;
	FOR rel, ev IN SELECT t::regclass, e FROM unnest(targets) t, unnest(ARRAY['insert', 'update', 'delete', 'truncate']) e
				   WHERE NOT EXISTS (SELECT 1 FROM pg_trigger g WHERE g.tgrelid = t AND g.tgname = trg || '_' || e
										AND g.tgfoid = 'segtier._capture'::regproc AND g.tgargs = args) LOOP
		EXECUTE format('CREATE TRIGGER %I AFTER %s ON %s %s FOR EACH STATEMENT EXECUTE FUNCTION segtier._capture(%L, %L)',
					   trg || '_' || ev, upper(ev), rel,
					   CASE ev WHEN 'insert' THEN 'REFERENCING NEW TABLE AS segtier_new'
							   WHEN 'update' THEN 'REFERENCING OLD TABLE AS segtier_old NEW TABLE AS segtier_new'
							   WHEN 'delete' THEN 'REFERENCING OLD TABLE AS segtier_old' ELSE '' END,
					   m.name, m.customer_column);
	END LOOP;
END $$;

CREATE OR REPLACE FUNCTION segtier.drop_model(name text) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, segtier, pg_temp AS $$
DECLARE
	m segtier.model;
	left_behind text;
BEGIN
	PERFORM pg_advisory_xact_lock(1936024946, hashtext(name));
	m := segtier._get_model(name);
	PERFORM segtier._set_capture(m, false);
	SELECT string_agg(format('DROP TRIGGER %I ON %s;', t.tgname, t.tgrelid::regclass), ' ' ORDER BY t.tgrelid, t.tgname)
	INTO left_behind FROM pg_trigger t
	WHERE t.tgfoid = 'segtier._capture'::regproc
	  AND t.tgname IN ('segtier_' || m.name || '_insert', 'segtier_' || m.name || '_update',
					   'segtier_' || m.name || '_delete', 'segtier_' || m.name || '_truncate');
	IF left_behind IS NOT NULL THEN
		RAISE WARNING 'capture triggers of model "%" stay on tables whose owner the role is not', m.name
			USING DETAIL = 'They do nothing once the model is gone.',
				  HINT = 'Their owner can drop them: ' || left_behind;
	END IF;
	DELETE FROM segtier.model x WHERE x.name = m.name;
	PERFORM segtier._drop_relations(m.name);
END $$;

CREATE OR REPLACE FUNCTION segtier.tiers(model text) RETURNS regclass
LANGUAGE plpgsql STABLE PARALLEL SAFE SET search_path = pg_catalog, segtier, pg_temp AS $$
BEGIN
	IF model IS NULL THEN
		RAISE EXCEPTION 'model name must not be NULL' USING ERRCODE = 'null_value_not_allowed';
	END IF;
	IF NOT EXISTS (SELECT 1 FROM segtier._readable_models() r WHERE r = model) THEN
		RAISE EXCEPTION 'model "%" does not exist', model USING ERRCODE = 'undefined_object';
	END IF;
	RETURN format('segtier_data.%I', model || '_tiers')::regclass;
END $$;

CREATE OR REPLACE FUNCTION segtier._get_model(model text) RETURNS segtier.model
LANGUAGE plpgsql STABLE PARALLEL SAFE SET search_path = pg_catalog, segtier, pg_temp AS $$
DECLARE
	m segtier.model;
BEGIN
	IF model IS NULL THEN
		RAISE EXCEPTION 'model name must not be NULL' USING ERRCODE = 'null_value_not_allowed';
	END IF;
	SELECT * INTO m FROM segtier.model x WHERE x.name = model;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'model "%" does not exist', model USING ERRCODE = 'undefined_object';
	END IF;
	RETURN m;
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
	targets text[];
	subset text;
	seqscan text;
	feat text;
BEGIN
	-- lock, then read: a change committed while we waited is seen
	PERFORM pg_advisory_xact_lock(1936024946, hashtext(model));
	m := segtier._get_model(model);
	IF NOT EXISTS (SELECT 1 FROM pg_roles r WHERE r.oid = m.owner) THEN
		RAISE EXCEPTION 'the owner of model "%" no longer exists', m.name
			USING ERRCODE = 'undefined_object', HINT = 'Drop the model and create it again.';
	END IF;
	IF m.owner <> quote_ident(current_user)::regrole THEN
		PERFORM set_config('role', pg_get_userbyid(m.owner), true);
	END IF;
	o := segtier._effective_options(m);
	IF NOT EXISTS (SELECT 1 FROM pg_class c WHERE c.oid = m.source) THEN
		RAISE EXCEPTION 'source of model "%" no longer exists', m.name USING ERRCODE = 'undefined_table';
	END IF;
	PERFORM segtier._check_columns(m);
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
	-- the rows of a child dropped or detached were never seen leaving (by
	-- name: a restore keeps the names, not the oids)
	targets := ARRAY(SELECT t::text COLLATE "C" FROM segtier._capture_targets(m) t ORDER BY 1);
	IF last.params->'capture_targets' IS DISTINCT FROM to_jsonb(targets)
	   OR ((o->>'capture')::boolean
		   AND EXISTS (SELECT 1 FROM unnest(targets) t(rel)
					   WHERE NOT EXISTS (SELECT 1 FROM pg_trigger g
										 WHERE g.tgrelid = t.rel::regclass AND g.tgname = 'segtier_' || m.name || '_insert'))) THEN
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
		segtier._refresh_model(text, boolean, bigint), segtier._run_start(text), segtier._run_failed(bigint, text),
		segtier._rescore(segtier._scoring, text),
		segtier._summarize(regclass, text, text, text, timestamptz, timestamptz[]),
		segtier._create_relations(text), segtier._drop_relations(text), segtier._set_capture(segtier.model, boolean),
		segtier._capture(), segtier.alter_model(text, jsonb), segtier.drop_model(text), segtier.refresh(text, boolean),
		segtier.set_override(text, text, segtier.tier, text, timestamptz),
		segtier.clear_override(text, text, text) TO %s', role);
END $$;

CREATE OR REPLACE FUNCTION segtier._model_options(m segtier.model) RETURNS jsonb
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
		IF NOT has_table_privilege((o->>'customers_table')::regclass, 'SELECT') THEN
			RAISE EXCEPTION 'permission denied for % (the model owner must be able to read customers_table)',
				o->>'customers_table' USING ERRCODE = 'insufficient_privilege';
		END IF;
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
	-- also another owner's, which row security hides
	IF EXISTS (SELECT 1 FROM segtier._model_names() x WHERE x = _create_model.name) THEN
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

CREATE OR REPLACE FUNCTION segtier._grant_views(role regrole) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, segtier, pg_temp AS $$
BEGIN
	IF role IS NULL THEN
		RAISE EXCEPTION 'role must not be NULL' USING ERRCODE = 'null_value_not_allowed';
	END IF;
	EXECUTE format('GRANT SELECT ON segtier.customer_tiers, segtier.tier_summary, segtier.tier_transitions,
		segtier.tier_history, segtier.refresh_runs, segtier.tier_scheme, segtier.tier_level, segtier.model_option TO %s', role);
	EXECUTE format('GRANT USAGE ON SCHEMA segtier_data TO %s', role);
END $$;

CREATE OR REPLACE FUNCTION segtier.clear_override(model text, customer text, scheme text DEFAULT NULL) RETURNS bigint
LANGUAGE plpgsql SET search_path = pg_catalog, segtier, pg_temp AS $$
DECLARE
	n bigint;
BEGIN
	IF clear_override.scheme NOT IN ('value_class', 'pyramid', 'lifecycle') THEN
		RAISE EXCEPTION 'no tier column "%" takes overrides', clear_override.scheme
			USING ERRCODE = 'invalid_parameter_value', HINT = 'The tier columns are value_class, pyramid and lifecycle.';
	END IF;
	IF clear_override.customer IS NULL THEN
		RAISE EXCEPTION 'customer must not be NULL' USING ERRCODE = 'null_value_not_allowed';
	END IF;
	PERFORM pg_advisory_xact_lock(1936024946, hashtext(clear_override.model));
	UPDATE segtier.tier_override o SET cleared_by = current_user
	WHERE o.model = (segtier._get_model(clear_override.model)).name
	  AND o.customer = segtier._customer_text(clear_override.model, clear_override.customer)
	  AND (clear_override.scheme IS NULL OR o.scheme = clear_override.scheme)
	  AND o.cleared_by IS NULL;
	GET DIAGNOSTICS n = ROW_COUNT;
	RETURN n;
END $$;

CREATE OR REPLACE FUNCTION segtier.purge_history(model text DEFAULT NULL) RETURNS bigint
LANGUAGE plpgsql SET search_path = pg_catalog, segtier, pg_temp AS $$
DECLARE
	n bigint := 0;
	k bigint;
	r record;
BEGIN
	IF purge_history.model IS NOT NULL THEN
		PERFORM segtier._get_model(purge_history.model);
	END IF;
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

CREATE OR REPLACE FUNCTION segtier._alter_model(name text, options jsonb) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, segtier, pg_temp AS $$
DECLARE
	m segtier.model;
	gone text[] := CASE WHEN jsonb_typeof(options) = 'object'
		THEN ARRAY(SELECT e.key FROM jsonb_each(options) e WHERE jsonb_typeof(e.value) = 'null') END;
	o jsonb := segtier._check_options(CASE WHEN gone IS NULL THEN options ELSE options - gone END);
	before jsonb;
	after jsonb;
BEGIN
	PERFORM segtier._option_key(k) FROM unnest(gone) k;
	-- wait for a running refresh of the model rather than deadlock with it,
	-- then read the model as it is now
	PERFORM pg_advisory_xact_lock(1936024946, hashtext(name));
	m := segtier._get_model(name);
	-- not checked against the tier schemes: a level added since may be what
	-- this change of options follows
	before := segtier._model_options(m);
	m.options := (m.options || o) - gone;
	IF NOT m.options ? 'time_zone' THEN
		m.options := m.options || jsonb_build_object('time_zone', current_setting('TimeZone'));
	END IF;
	after := segtier._effective_options(m);
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
	IF (after->>'capture')::boolean IS DISTINCT FROM (before->>'capture')::boolean THEN
		PERFORM segtier._set_capture(m, (after->>'capture')::boolean);
	END IF;
	-- overrides of a column whose tier scheme changed no longer fit it
	UPDATE segtier.tier_override x SET cleared_by = current_user
	WHERE x.model = m.name AND x.cleared_by IS NULL
	  AND ((x.scheme = 'value_class' AND before->>'value_scheme' <> after->>'value_scheme')
		OR (x.scheme = 'pyramid' AND before->>'pyramid_scheme' <> after->>'pyramid_scheme'));
END $$;

-- Overrides keep their tier as text: a renamed scheme or level renames them.
CREATE FUNCTION segtier.tier_renamed() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog AS $$
BEGIN
	IF TG_TABLE_NAME = 'tier_scheme' THEN
		UPDATE segtier.tier_override o SET tier = NEW.name || substr(o.tier, length(OLD.name) + 1)
		WHERE starts_with(o.tier, OLD.name || ':');
	ELSE
		UPDATE segtier.tier_override o SET tier = s.name || ':' || NEW.name
		FROM segtier.tier_scheme s WHERE s.scheme_id = NEW.scheme_id AND o.tier = s.name || ':' || OLD.name;
	END IF;
	RETURN NULL;
END $$;
COMMENT ON FUNCTION segtier.tier_renamed() IS 'trigger: overrides follow a renamed tier scheme or level';
CREATE TRIGGER tier_scheme_renamed AFTER UPDATE OF name ON segtier.tier_scheme
	FOR EACH ROW WHEN (OLD.name <> NEW.name) EXECUTE FUNCTION segtier.tier_renamed();
CREATE TRIGGER tier_level_renamed AFTER UPDATE OF name ON segtier.tier_level
	FOR EACH ROW WHEN (OLD.name <> NEW.name) EXECUTE FUNCTION segtier.tier_renamed();

CREATE FUNCTION segtier.tier_catalog_restore() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog AS $$
BEGIN
	IF TG_TABLE_NAME = 'tier_scheme' THEN
		UPDATE segtier.tier_scheme s SET name = NEW.name, description = NEW.description
		WHERE s.scheme_id = NEW.scheme_id AND s.builtin AND NEW.builtin;
	ELSE
		UPDATE segtier.tier_level l SET name = NEW.name, label_en = NEW.label_en, label_zh = NEW.label_zh
		WHERE l.level_id = NEW.level_id AND l.scheme_id = NEW.scheme_id AND l.rank = NEW.rank;
	END IF;
	IF FOUND THEN
		RETURN NULL;
	END IF;
	RETURN NEW;
END $$;
COMMENT ON FUNCTION segtier.tier_catalog_restore() IS 'trigger: a restored built-in tier scheme or level updates the one CREATE EXTENSION made';
CREATE TRIGGER tier_scheme_restore BEFORE INSERT ON segtier.tier_scheme
	FOR EACH ROW EXECUTE FUNCTION segtier.tier_catalog_restore();
CREATE TRIGGER tier_level_restore BEFORE INSERT ON segtier.tier_level
	FOR EACH ROW EXECUTE FUNCTION segtier.tier_catalog_restore();
SELECT pg_catalog.pg_extension_config_dump('segtier.tier_scheme', '');
SELECT pg_catalog.pg_extension_config_dump('segtier.tier_level', '');

-- the roles grant_admin was run for (they may run _refresh_model) get
-- _run_start and _run_failed
DO $$
DECLARE
	r regrole;
BEGIN
	FOR r IN SELECT DISTINCT a.grantee::regrole FROM pg_proc p, aclexplode(p.proacl) a
			 WHERE p.oid = 'segtier._refresh_model(text, boolean, bigint)'::regprocedure AND a.privilege_type = 'EXECUTE'
			   AND a.grantee <> 0 AND a.grantee <> p.proowner LOOP
		EXECUTE format('GRANT EXECUTE ON FUNCTION segtier._run_start(text), segtier._run_failed(bigint, text) TO %s', r);
	END LOOP;
END $$;

-- capture targets by name, as _refresh_model now records them
SET LOCAL search_path = pg_catalog, segtier, pg_temp;
UPDATE segtier.refresh_runs r
SET params = jsonb_set(r.params, '{capture_targets}',
	to_jsonb(ARRAY(SELECT (e #>> '{}')::oid::regclass::text COLLATE "C"
				   FROM jsonb_array_elements(r.params->'capture_targets') e ORDER BY 1)))
WHERE jsonb_typeof(r.params->'capture_targets') = 'array';
