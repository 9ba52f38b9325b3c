-- segtier 0.10.0 -> 0.11.0
--
-- The tiers of existing models do not change.
-- * Row security: the history and runs of a model are read by the roles
--   that may read its tiers (its owner, readers, a role granted its tiers
--   table), those of a dropped model by the roles that read every model
--   (grant_reader); an admin read every model's.  tier_transitions reads the
--   history with the caller's rights (security_invoker).
-- * clear_override refuses a tier column other than value_class, pyramid
--   and lifecycle (it cleared nothing and returned 0).
-- * alter_model computes the model's effective options once before and once
--   after the change (it recomputed them up to six times, twice for each
--   override row it looked at).
-- The library of 0.11.0 (no SQL change): expected_purchases and clv without
-- cancellation for a large b or a large r; 22003 for fits and k-means whose sums
-- overflow; purchase_state input checks its times and sums; churn_rule
-- refuses NaN spend and negative days.
\echo Use "ALTER EXTENSION segtier UPDATE TO '0.11.0'" to load this file. \quit

CREATE FUNCTION segtier._readable_models() RETURNS SETOF text
LANGUAGE sql STABLE PARALLEL SAFE SET search_path = pg_catalog, segtier, pg_temp AS $$
	-- pg_class, not to_regclass: a role need not have USAGE on segtier_data
	SELECT x.name FROM segtier._model_names() x(name)
	JOIN pg_class c ON c.relname = x.name || '_tiers' AND c.relnamespace = to_regnamespace('segtier_data')
	WHERE has_table_privilege(c.oid, 'SELECT')
$$;

CREATE FUNCTION segtier._reads_every_model() RETURNS boolean
LANGUAGE sql STABLE PARALLEL SAFE SET search_path = pg_catalog, segtier, pg_temp AS $$
	SELECT EXISTS (
		SELECT FROM pg_default_acl d, aclexplode(d.defaclacl) a
		WHERE d.defaclnamespace = to_regnamespace('segtier_data')
		  AND d.defaclrole = (SELECT e.extowner FROM pg_extension e WHERE e.extname = 'segtier')
		  AND d.defaclobjtype = 'r' AND a.privilege_type = 'SELECT'
		  AND (a.grantee = 0 OR pg_has_role(a.grantee, 'USAGE')))
$$;

ALTER POLICY runs_read ON segtier.refresh_runs
	USING (CASE WHEN model = ANY (ARRAY(SELECT segtier._model_names()))
				THEN model = ANY (ARRAY(SELECT segtier._readable_models()))
				ELSE (SELECT segtier._reads_every_model()) END);
DROP POLICY runs_owner ON segtier.refresh_runs;
CREATE POLICY runs_insert ON segtier.refresh_runs FOR INSERT
	WITH CHECK (model = ANY (ARRAY(SELECT m.name FROM segtier.model m)));
CREATE POLICY runs_update ON segtier.refresh_runs FOR UPDATE
	USING (model = ANY (ARRAY(SELECT m.name FROM segtier.model m)))
	WITH CHECK (model = ANY (ARRAY(SELECT m.name FROM segtier.model m)));
ALTER POLICY history_read ON segtier.tier_history
	USING (CASE WHEN model = ANY (ARRAY(SELECT segtier._model_names()))
				THEN model = ANY (ARRAY(SELECT segtier._readable_models()))
				ELSE (SELECT segtier._reads_every_model()) END);
ALTER VIEW segtier.tier_transitions SET (security_invoker);

COMMENT ON FUNCTION segtier._model_names() IS 'names of all models, for customer_tiers and the row security of the history and runs (which show the ones the caller may read)';
COMMENT ON FUNCTION segtier._readable_models() IS 'models whose tiers the caller may read, and so their history and runs';
COMMENT ON FUNCTION segtier._reads_every_model() IS 'whether the caller reads every model (grant_reader), and so the history and runs of dropped models';

CREATE OR REPLACE FUNCTION segtier.clear_override(model text, customer text, scheme text DEFAULT NULL) RETURNS bigint
LANGUAGE plpgsql SET search_path = pg_catalog, segtier, pg_temp AS $$
DECLARE
	n bigint;
BEGIN
	IF clear_override.scheme NOT IN ('value_class', 'pyramid', 'lifecycle') THEN
		RAISE EXCEPTION 'no tier column "%" takes overrides', clear_override.scheme
			USING ERRCODE = 'invalid_parameter_value', HINT = 'The tier columns are value_class, pyramid and lifecycle.';
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
COMMENT ON FUNCTION segtier.clear_override(text, text, text) IS
'end a customer''s overrides (of one tier column: value_class, pyramid or lifecycle; NULL: all); the next refresh returns it to its score and records who cleared it';

CREATE OR REPLACE FUNCTION segtier._alter_model(name text, options jsonb) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, segtier, pg_temp AS $$
DECLARE
	m segtier.model;
	gone text[] := CASE WHEN jsonb_typeof(options) = 'object'
		THEN ARRAY(SELECT e.key FROM jsonb_each(options) e WHERE jsonb_typeof(e.value) = 'null') END;
	o jsonb := segtier._check_options(options - coalesce(gone, '{}'));
	before jsonb;
	after jsonb;
BEGIN
	PERFORM segtier._option_key(k) FROM unnest(gone) k;
	-- wait for a running refresh of the model rather than deadlock with it,
	-- then read the model as it is now
	PERFORM pg_advisory_xact_lock(1936024946, hashtext(name));
	m := segtier._get_model(name);
	before := segtier._effective_options(m);
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
