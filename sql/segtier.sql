-- segtier install script.  Edit this file; the Makefile makes the versioned
-- sql/segtier--<version>.sql from it.  Upgrades go in sql/segtier--A--B.sql.
\echo Use "CREATE EXTENSION segtier" to load this file. \quit

COMMENT ON SCHEMA segtier IS 'segtier: customer tiering (RFM, value classes, pyramid, lifecycle, churn, CLV, clusters)';
REVOKE ALL ON SCHEMA segtier FROM PUBLIC;
GRANT USAGE ON SCHEMA segtier TO PUBLIC;

------------------------------------------------------------------------------
-- rfm: a packed (r, f, m, scale) score triple
------------------------------------------------------------------------------
CREATE TYPE segtier.rfm;

CREATE FUNCTION segtier.rfm_in(cstring) RETURNS segtier.rfm
	AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION segtier.rfm_out(segtier.rfm) RETURNS cstring
	AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION segtier.rfm_recv(internal) RETURNS segtier.rfm
	AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION segtier.rfm_send(segtier.rfm) RETURNS bytea
	AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

CREATE TYPE segtier.rfm (
	INPUT = segtier.rfm_in,
	OUTPUT = segtier.rfm_out,
	RECEIVE = segtier.rfm_recv,
	SEND = segtier.rfm_send,
	INTERNALLENGTH = 4,
	PASSEDBYVALUE,
	ALIGNMENT = int4,
	STORAGE = plain
);
COMMENT ON TYPE segtier.rfm IS 'RFM score triple: r, f, m in 1..n on a scale n of 2..9 (default 5); text 543, 5-4-3 or R5F4M3, optionally /n';

CREATE FUNCTION segtier.rfm(r int, f int, m int, scale int DEFAULT 5) RETURNS segtier.rfm
	AS 'MODULE_PATHNAME', 'rfm_construct' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION segtier.rfm(int, int, int, int) IS 'build an rfm value from its three scores and the scale';
CREATE FUNCTION segtier.rfm_r(segtier.rfm) RETURNS int
	AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION segtier.rfm_r(segtier.rfm) IS 'recency score';
CREATE FUNCTION segtier.rfm_f(segtier.rfm) RETURNS int
	AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION segtier.rfm_f(segtier.rfm) IS 'frequency score';
CREATE FUNCTION segtier.rfm_m(segtier.rfm) RETURNS int
	AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION segtier.rfm_m(segtier.rfm) IS 'monetary score';
CREATE FUNCTION segtier.rfm_scale(segtier.rfm) RETURNS int
	AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION segtier.rfm_scale(segtier.rfm) IS 'the scale n the scores run on (1..n)';

CREATE FUNCTION segtier.rfm_eq(segtier.rfm, segtier.rfm) RETURNS bool
	AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE LEAKPROOF;
CREATE FUNCTION segtier.rfm_ne(segtier.rfm, segtier.rfm) RETURNS bool
	AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE LEAKPROOF;
CREATE FUNCTION segtier.rfm_lt(segtier.rfm, segtier.rfm) RETURNS bool
	AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE LEAKPROOF;
CREATE FUNCTION segtier.rfm_le(segtier.rfm, segtier.rfm) RETURNS bool
	AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE LEAKPROOF;
CREATE FUNCTION segtier.rfm_gt(segtier.rfm, segtier.rfm) RETURNS bool
	AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE LEAKPROOF;
CREATE FUNCTION segtier.rfm_ge(segtier.rfm, segtier.rfm) RETURNS bool
	AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE LEAKPROOF;
CREATE FUNCTION segtier.rfm_cmp(segtier.rfm, segtier.rfm) RETURNS int
	AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE LEAKPROOF;
CREATE FUNCTION segtier.rfm_hash(segtier.rfm) RETURNS int
	AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE LEAKPROOF;
CREATE FUNCTION segtier.rfm_hash_extended(segtier.rfm, bigint) RETURNS bigint
	AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE LEAKPROOF;

CREATE OPERATOR segtier.= (LEFTARG = segtier.rfm, RIGHTARG = segtier.rfm, PROCEDURE = segtier.rfm_eq,
	COMMUTATOR = OPERATOR(segtier.=), NEGATOR = OPERATOR(segtier.<>),
	RESTRICT = eqsel, JOIN = eqjoinsel, HASHES, MERGES);
CREATE OPERATOR segtier.<> (LEFTARG = segtier.rfm, RIGHTARG = segtier.rfm, PROCEDURE = segtier.rfm_ne,
	COMMUTATOR = OPERATOR(segtier.<>), NEGATOR = OPERATOR(segtier.=),
	RESTRICT = neqsel, JOIN = neqjoinsel);
CREATE OPERATOR segtier.< (LEFTARG = segtier.rfm, RIGHTARG = segtier.rfm, PROCEDURE = segtier.rfm_lt,
	COMMUTATOR = OPERATOR(segtier.>), NEGATOR = OPERATOR(segtier.>=),
	RESTRICT = scalarltsel, JOIN = scalarltjoinsel);
CREATE OPERATOR segtier.<= (LEFTARG = segtier.rfm, RIGHTARG = segtier.rfm, PROCEDURE = segtier.rfm_le,
	COMMUTATOR = OPERATOR(segtier.>=), NEGATOR = OPERATOR(segtier.>),
	RESTRICT = scalarlesel, JOIN = scalarlejoinsel);
CREATE OPERATOR segtier.> (LEFTARG = segtier.rfm, RIGHTARG = segtier.rfm, PROCEDURE = segtier.rfm_gt,
	COMMUTATOR = OPERATOR(segtier.<), NEGATOR = OPERATOR(segtier.<=),
	RESTRICT = scalargtsel, JOIN = scalargtjoinsel);
CREATE OPERATOR segtier.>= (LEFTARG = segtier.rfm, RIGHTARG = segtier.rfm, PROCEDURE = segtier.rfm_ge,
	COMMUTATOR = OPERATOR(segtier.<=), NEGATOR = OPERATOR(segtier.<),
	RESTRICT = scalargesel, JOIN = scalargejoinsel);

CREATE OPERATOR CLASS segtier.rfm_ops DEFAULT FOR TYPE segtier.rfm USING btree AS
	OPERATOR 1 segtier.<,
	OPERATOR 2 segtier.<=,
	OPERATOR 3 segtier.=,
	OPERATOR 4 segtier.>=,
	OPERATOR 5 segtier.>,
	FUNCTION 1 segtier.rfm_cmp(segtier.rfm, segtier.rfm);
CREATE OPERATOR CLASS segtier.rfm_hash_ops DEFAULT FOR TYPE segtier.rfm USING hash AS
	OPERATOR 1 segtier.=,
	FUNCTION 1 segtier.rfm_hash(segtier.rfm),
	FUNCTION 2 segtier.rfm_hash_extended(segtier.rfm, bigint);

CREATE CAST (segtier.rfm AS text) WITH INOUT AS ASSIGNMENT;
CREATE CAST (text AS segtier.rfm) WITH INOUT;

------------------------------------------------------------------------------
-- tier: an ordered level inside a named tier scheme
------------------------------------------------------------------------------
CREATE SEQUENCE segtier.tier_id_seq;

CREATE TABLE segtier.tier_scheme (
	scheme_id int PRIMARY KEY DEFAULT nextval('segtier.tier_id_seq'),
	name text NOT NULL UNIQUE
		CHECK (name <> '' AND strpos(name, ':') = 0 AND name = btrim(name)),
	description text,
	builtin boolean NOT NULL DEFAULT false
);
COMMENT ON TABLE segtier.tier_scheme IS 'tier schemes: each names an ordered set of levels in segtier.tier_level';
COMMENT ON COLUMN segtier.tier_scheme.scheme_id IS 'stable id stored inside tier values';
COMMENT ON COLUMN segtier.tier_scheme.name IS 'scheme name, the part before the colon in scheme:level';
COMMENT ON COLUMN segtier.tier_scheme.description IS 'what the scheme classifies';
COMMENT ON COLUMN segtier.tier_scheme.builtin IS 'true for the schemes segtier ships (value, pyramid, lifecycle)';

CREATE TABLE segtier.tier_level (
	level_id int PRIMARY KEY DEFAULT nextval('segtier.tier_id_seq'),
	scheme_id int NOT NULL REFERENCES segtier.tier_scheme ON DELETE RESTRICT,
	name text NOT NULL CHECK (name <> '' AND name = btrim(name)),
	rank int NOT NULL,
	label_en text,
	label_zh text,
	UNIQUE (scheme_id, name),
	UNIQUE (scheme_id, rank)
);
COMMENT ON TABLE segtier.tier_level IS 'levels of each tier scheme, lowest rank first; ranks never change and levels are never removed';
COMMENT ON COLUMN segtier.tier_level.level_id IS 'stable id stored inside tier values';
COMMENT ON COLUMN segtier.tier_level.scheme_id IS 'the scheme the level belongs to';
COMMENT ON COLUMN segtier.tier_level.name IS 'level name, the part after the colon in scheme:level';
COMMENT ON COLUMN segtier.tier_level.rank IS 'sort key within the scheme (higher is better); leave gaps to add levels between';
COMMENT ON COLUMN segtier.tier_level.label_en IS 'English label (tier_label(t, ''en''))';
COMMENT ON COLUMN segtier.tier_level.label_zh IS 'Chinese label (tier_label(t, ''zh''))';

CREATE FUNCTION segtier.tier_catalog_changed() RETURNS trigger
	AS 'MODULE_PATHNAME' LANGUAGE C;
CREATE TRIGGER tier_scheme_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE
	ON segtier.tier_scheme FOR EACH STATEMENT EXECUTE FUNCTION segtier.tier_catalog_changed();
CREATE TRIGGER tier_level_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE
	ON segtier.tier_level FOR EACH STATEMENT EXECUTE FUNCTION segtier.tier_catalog_changed();

-- Stored tier values hold ids and are ordered by rank: ids and ranks are
-- fixed once made, and a level (or a scheme with levels) never disappears.
CREATE FUNCTION segtier.tier_level_guard() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog AS $$
BEGIN
	IF TG_OP = 'DELETE' THEN
		RAISE EXCEPTION 'tier level "%" cannot be removed', OLD.name
			USING ERRCODE = 'object_in_use',
			      DETAIL = 'Tier values that refer to it may be stored anywhere in the database.',
			      HINT = 'Rename it or change its labels instead.';
	ELSIF NEW.level_id <> OLD.level_id OR NEW.scheme_id <> OLD.scheme_id OR NEW.rank <> OLD.rank THEN
		RAISE EXCEPTION 'the id, scheme and rank of tier level "%" cannot change', OLD.name
			USING ERRCODE = 'object_in_use',
			      DETAIL = 'Stored tier values and indexes on them depend on them.',
			      HINT = 'Only the name and the labels of a level can change.';
	END IF;
	RETURN NEW;
END $$;
CREATE TRIGGER tier_level_guard BEFORE UPDATE OR DELETE ON segtier.tier_level
	FOR EACH ROW EXECUTE FUNCTION segtier.tier_level_guard();

CREATE FUNCTION segtier.tier_scheme_guard() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog AS $$
BEGIN
	IF TG_OP = 'UPDATE' AND NEW.scheme_id = OLD.scheme_id THEN
		RETURN NEW;
	END IF;
	RAISE EXCEPTION 'tier scheme "%" cannot be removed or renumbered', OLD.name
		USING ERRCODE = 'object_in_use',
		      DETAIL = 'Tier values that refer to it may be stored anywhere in the database.';
END $$;
CREATE TRIGGER tier_scheme_guard BEFORE UPDATE OR DELETE ON segtier.tier_scheme
	FOR EACH ROW EXECUTE FUNCTION segtier.tier_scheme_guard();
CREATE FUNCTION segtier.tier_no_truncate() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog AS $$
BEGIN
	RAISE EXCEPTION 'segtier tier catalogs cannot be truncated' USING ERRCODE = 'object_in_use';
END $$;
CREATE TRIGGER tier_scheme_no_truncate BEFORE TRUNCATE ON segtier.tier_scheme
	FOR EACH STATEMENT EXECUTE FUNCTION segtier.tier_no_truncate();
CREATE TRIGGER tier_level_no_truncate BEFORE TRUNCATE ON segtier.tier_level
	FOR EACH STATEMENT EXECUTE FUNCTION segtier.tier_no_truncate();

INSERT INTO segtier.tier_scheme (name, description, builtin) VALUES
	('value', 'ABC / Pareto value classes', true),
	('pyramid', 'customer value pyramid by value percentile', true),
	('lifecycle', 'customer lifecycle stage', true);
INSERT INTO segtier.tier_level (scheme_id, name, rank, label_en, label_zh)
SELECT s.scheme_id, l.name, l.rank, l.en, l.zh
FROM (VALUES
	('value', 'C', 1, 'C class', 'C类客户'),
	('value', 'B', 2, 'B class', 'B类客户'),
	('value', 'A', 3, 'A class', 'A类客户'),
	('pyramid', 'bronze', 1, 'Bronze', '铜牌'),
	('pyramid', 'silver', 2, 'Silver', '银牌'),
	('pyramid', 'gold', 3, 'Gold', '金牌'),
	('pyramid', 'vip', 4, 'VIP', '贵宾'),
	('lifecycle', 'prospect', 1, 'Prospect', '潜在客户'),
	('lifecycle', 'new', 2, 'New', '新客户'),
	('lifecycle', 'active', 3, 'Active', '活跃客户'),
	('lifecycle', 'loyal', 4, 'Loyal', '忠诚客户'),
	('lifecycle', 'at_risk', 5, 'At risk', '流失风险客户'),
	('lifecycle', 'churned', 6, 'Churned', '流失客户'),
	('lifecycle', 'reactivated', 7, 'Reactivated', '回流客户')
) AS l(scheme, name, rank, en, zh)
JOIN segtier.tier_scheme s ON s.name = l.scheme;

-- pg_dump keeps user-defined schemes and levels (the built-ins come with
-- CREATE EXTENSION).
SELECT pg_catalog.pg_extension_config_dump('segtier.tier_scheme', 'WHERE NOT builtin');
SELECT pg_catalog.pg_extension_config_dump('segtier.tier_level',
	'WHERE scheme_id IN (SELECT scheme_id FROM segtier.tier_scheme WHERE NOT builtin)');
SELECT pg_catalog.pg_extension_config_dump('segtier.tier_id_seq', '');

CREATE TYPE segtier.tier;

CREATE FUNCTION segtier.tier_in(cstring) RETURNS segtier.tier
	AS 'MODULE_PATHNAME' LANGUAGE C STABLE STRICT PARALLEL SAFE;
CREATE FUNCTION segtier.tier_out(segtier.tier) RETURNS cstring
	AS 'MODULE_PATHNAME' LANGUAGE C STABLE STRICT PARALLEL SAFE;
CREATE FUNCTION segtier.tier_recv(internal) RETURNS segtier.tier
	AS 'MODULE_PATHNAME' LANGUAGE C STABLE STRICT PARALLEL SAFE;
CREATE FUNCTION segtier.tier_send(segtier.tier) RETURNS bytea
	AS 'MODULE_PATHNAME' LANGUAGE C STABLE STRICT PARALLEL SAFE;

CREATE TYPE segtier.tier (
	INPUT = segtier.tier_in,
	OUTPUT = segtier.tier_out,
	RECEIVE = segtier.tier_recv,
	SEND = segtier.tier_send,
	INTERNALLENGTH = 8,
	PASSEDBYVALUE,
	ALIGNMENT = double,
	STORAGE = plain
);
COMMENT ON TYPE segtier.tier IS 'a level inside a tier scheme, written scheme:level (e.g. pyramid:gold); ordered by rank within its scheme';

CREATE FUNCTION segtier.tier(scheme text, level text) RETURNS segtier.tier
	AS 'MODULE_PATHNAME', 'tier_construct' LANGUAGE C STABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION segtier.tier(text, text) IS 'the tier of a scheme and level name';
CREATE FUNCTION segtier.tier_scheme(segtier.tier) RETURNS text
	AS 'MODULE_PATHNAME' LANGUAGE C STABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION segtier.tier_scheme(segtier.tier) IS 'the scheme name of a tier';
CREATE FUNCTION segtier.tier_name(segtier.tier) RETURNS text
	AS 'MODULE_PATHNAME' LANGUAGE C STABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION segtier.tier_name(segtier.tier) IS 'the level name of a tier';
CREATE FUNCTION segtier.tier_rank(segtier.tier) RETURNS int
	AS 'MODULE_PATHNAME' LANGUAGE C STABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION segtier.tier_rank(segtier.tier) IS 'position of the level in its scheme, 1 = lowest';
CREATE FUNCTION segtier.tier_label(segtier.tier, lang text DEFAULT 'en') RETURNS text
	AS 'MODULE_PATHNAME' LANGUAGE C STABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION segtier.tier_label(segtier.tier, text) IS 'display label of a tier in ''en'' or ''zh''';

CREATE FUNCTION segtier.tier_eq(segtier.tier, segtier.tier) RETURNS bool
	AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE LEAKPROOF;
CREATE FUNCTION segtier.tier_ne(segtier.tier, segtier.tier) RETURNS bool
	AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE LEAKPROOF;
-- Ranks never change, so the order is immutable; it errors across schemes.
CREATE FUNCTION segtier.tier_lt(segtier.tier, segtier.tier) RETURNS bool
	AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION segtier.tier_le(segtier.tier, segtier.tier) RETURNS bool
	AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION segtier.tier_gt(segtier.tier, segtier.tier) RETURNS bool
	AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION segtier.tier_ge(segtier.tier, segtier.tier) RETURNS bool
	AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION segtier.tier_cmp(segtier.tier, segtier.tier) RETURNS int
	AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION segtier.tier_hash(segtier.tier) RETURNS int
	AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE LEAKPROOF;
CREATE FUNCTION segtier.tier_hash_extended(segtier.tier, bigint) RETURNS bigint
	AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE LEAKPROOF;

CREATE OPERATOR segtier.= (LEFTARG = segtier.tier, RIGHTARG = segtier.tier, PROCEDURE = segtier.tier_eq,
	COMMUTATOR = OPERATOR(segtier.=), NEGATOR = OPERATOR(segtier.<>),
	RESTRICT = eqsel, JOIN = eqjoinsel, HASHES, MERGES);
CREATE OPERATOR segtier.<> (LEFTARG = segtier.tier, RIGHTARG = segtier.tier, PROCEDURE = segtier.tier_ne,
	COMMUTATOR = OPERATOR(segtier.<>), NEGATOR = OPERATOR(segtier.=),
	RESTRICT = neqsel, JOIN = neqjoinsel);
CREATE OPERATOR segtier.< (LEFTARG = segtier.tier, RIGHTARG = segtier.tier, PROCEDURE = segtier.tier_lt,
	COMMUTATOR = OPERATOR(segtier.>), NEGATOR = OPERATOR(segtier.>=),
	RESTRICT = scalarltsel, JOIN = scalarltjoinsel);
CREATE OPERATOR segtier.<= (LEFTARG = segtier.tier, RIGHTARG = segtier.tier, PROCEDURE = segtier.tier_le,
	COMMUTATOR = OPERATOR(segtier.>=), NEGATOR = OPERATOR(segtier.>),
	RESTRICT = scalarlesel, JOIN = scalarlejoinsel);
CREATE OPERATOR segtier.> (LEFTARG = segtier.tier, RIGHTARG = segtier.tier, PROCEDURE = segtier.tier_gt,
	COMMUTATOR = OPERATOR(segtier.<), NEGATOR = OPERATOR(segtier.<=),
	RESTRICT = scalargtsel, JOIN = scalargtjoinsel);
CREATE OPERATOR segtier.>= (LEFTARG = segtier.tier, RIGHTARG = segtier.tier, PROCEDURE = segtier.tier_ge,
	COMMUTATOR = OPERATOR(segtier.<=), NEGATOR = OPERATOR(segtier.<),
	RESTRICT = scalargesel, JOIN = scalargejoinsel);

CREATE OPERATOR CLASS segtier.tier_ops DEFAULT FOR TYPE segtier.tier USING btree AS
	OPERATOR 1 segtier.<,
	OPERATOR 2 segtier.<=,
	OPERATOR 3 segtier.=,
	OPERATOR 4 segtier.>=,
	OPERATOR 5 segtier.>,
	FUNCTION 1 segtier.tier_cmp(segtier.tier, segtier.tier);
CREATE OPERATOR CLASS segtier.tier_hash_ops DEFAULT FOR TYPE segtier.tier USING hash AS
	OPERATOR 1 segtier.=,
	FUNCTION 1 segtier.tier_hash(segtier.tier),
	FUNCTION 2 segtier.tier_hash_extended(segtier.tier, bigint);

CREATE CAST (segtier.tier AS text) WITH INOUT AS ASSIGNMENT;
CREATE CAST (text AS segtier.tier) WITH INOUT;

------------------------------------------------------------------------------
-- scoring primitive
------------------------------------------------------------------------------
CREATE FUNCTION segtier.score(value float8, cuts float8[], higher_is_better bool DEFAULT true) RETURNS int
	AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION segtier.score(float8, float8[], bool) IS '1 + the number of cut points below the value (reversed when lower is better)';

------------------------------------------------------------------------------
-- @summary: purchase_summary aggregate (summary.c)
------------------------------------------------------------------------------

------------------------------------------------------------------------------
-- @cuts: cuts aggregate (cuts.c)
------------------------------------------------------------------------------
CREATE TYPE segtier.cuts_state;

CREATE FUNCTION segtier.cuts_state_in(cstring) RETURNS segtier.cuts_state
	AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION segtier.cuts_state_out(segtier.cuts_state) RETURNS cstring
	AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION segtier.cuts_state_recv(internal) RETURNS segtier.cuts_state
	AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION segtier.cuts_state_send(segtier.cuts_state) RETURNS bytea
	AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

CREATE TYPE segtier.cuts_state (
	INPUT = segtier.cuts_state_in,
	OUTPUT = segtier.cuts_state_out,
	RECEIVE = segtier.cuts_state_recv,
	SEND = segtier.cuts_state_send,
	INTERNALLENGTH = VARIABLE,
	ALIGNMENT = double,
	STORAGE = extended
);
COMMENT ON TYPE segtier.cuts_state IS 'state of the cuts aggregate: the number of groups and the values seen, text n=5 {1,2.5,3}';

CREATE FUNCTION segtier.cuts_trans(segtier.cuts_state, float8, int) RETURNS segtier.cuts_state
	AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION segtier.cuts_trans(segtier.cuts_state, float8, int) IS 'cuts transition: adds a value (NULL skipped)';
CREATE FUNCTION segtier.cuts_combine(segtier.cuts_state, segtier.cuts_state) RETURNS segtier.cuts_state
	AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION segtier.cuts_combine(segtier.cuts_state, segtier.cuts_state) IS 'cuts combine: concatenates two partial states';
CREATE FUNCTION segtier.cuts_final(segtier.cuts_state) RETURNS float8[]
	AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION segtier.cuts_final(segtier.cuts_state) IS 'cuts final: picks the cut points (see the cuts aggregate)';

CREATE AGGREGATE segtier.cuts(value float8, n int) (
	SFUNC = segtier.cuts_trans,
	STYPE = segtier.cuts_state,
	COMBINEFUNC = segtier.cuts_combine,
	FINALFUNC = segtier.cuts_final,
	PARALLEL = SAFE
);
COMMENT ON AGGREGATE segtier.cuts(float8, int) IS 'ascending cut points that split the values into n (2..9) groups as equal as ties allow, for score(v, cuts). '
	'Rule: sort the N values; a boundary b splits them into the b lowest and the rest and is allowed only between different values (or at 0 or N). '
	'For k = 1..n-1 the ideal boundary k*N/n moves to the nearest allowed boundary, the lower one when two are equally near; '
	'boundaries at 0 or N or repeating the previous one are dropped, so fewer distinct values give fewer cuts. '
	'Each kept boundary b gives the cut point = the b-th smallest value (the largest value of the lower group). '
	'NULL values are ignored, NaN is an error, infinities are ordinary values; n must be the same in every row; no values -> NULL, one distinct value -> {}.';


------------------------------------------------------------------------------
-- @segment: rfm_segment, value classes, pyramid, lifecycle, churn (segment.c)
------------------------------------------------------------------------------
CREATE FUNCTION segtier.rfm_segment(rfm segtier.rfm, scheme text DEFAULT 'rfm11', lang text DEFAULT 'en') RETURNS text
	AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION segtier.rfm_segment(segtier.rfm, text, text) IS
'segment of an rfm score: scheme rfm11 (Champions ... Lost, over R and FM = round-half-up((F+M)/2) on a 1..5 scale) or rfm8 (high/low of R, F, M against the scale midpoint); lang en or zh';

CREATE FUNCTION segtier.rfm8_segment(r_high bool, f_high bool, m_high bool, lang text DEFAULT 'en') RETURNS text
	AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION segtier.rfm8_segment(bool, bool, bool, text) IS
'rfm8 segment from high/low flags decided elsewhere, e.g. against population means (recency inverted)';

CREATE FUNCTION segtier.lifecycle_stage(first_purchase timestamptz, last_purchase timestamptz,
	purchases bigint, as_of timestamptz, new_days int DEFAULT 90, active_days int DEFAULT 180,
	churn_days int DEFAULT 365, loyal_purchases int DEFAULT 5, previous_stage text DEFAULT NULL)
	RETURNS text
	AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION segtier.lifecycle_stage(timestamptz, timestamptz, bigint, timestamptz, int, int, int, int, text) IS
'lifecycle stage, first rule that matches: prospect (no purchase), churned (no purchase for more than churn_days), at_risk (more than active_days), reactivated (previous stage churned or reactivated), new (first purchase within new_days), loyal (purchases >= loyal_purchases), else active';

CREATE TYPE segtier.churn_risk AS (
	at_risk boolean,
	reason text
);
COMMENT ON TYPE segtier.churn_risk IS 'result of the rule-based churn check';
COMMENT ON COLUMN segtier.churn_risk.at_risk IS 'true when either churn rule fires';
COMMENT ON COLUMN segtier.churn_risk.reason IS 'which rule fired (both joined by "; "), NULL when not at risk';

CREATE FUNCTION segtier.churn_rule(monthly_spend float8[], days_since_last_purchase float8,
	at_risk_days float8 DEFAULT 180, min_decline float8 DEFAULT 0.2, months int DEFAULT 3)
	RETURNS segtier.churn_risk
	AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION segtier.churn_rule(float8[], float8, float8, float8, int) IS
'churn rule of the seed documents: spend (complete calendar months, oldest first) down by at least min_decline in each of the last months months against the month before, or no purchase for more than at_risk_days; NULL monthly_spend means no spend history';

------------------------------------------------------------------------------
-- share_cuts: classes by share of the population (valueclass.c)
------------------------------------------------------------------------------
CREATE TYPE segtier.share_state;
CREATE FUNCTION segtier.share_state_in(cstring) RETURNS segtier.share_state
	AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION segtier.share_state_out(segtier.share_state) RETURNS cstring
	AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION segtier.share_state_recv(internal) RETURNS segtier.share_state
	AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION segtier.share_state_send(segtier.share_state) RETURNS bytea
	AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE TYPE segtier.share_state (
	INPUT = segtier.share_state_in,
	OUTPUT = segtier.share_state_out,
	RECEIVE = segtier.share_state_recv,
	SEND = segtier.share_state_send,
	INTERNALLENGTH = VARIABLE,
	ALIGNMENT = double,
	STORAGE = extended
);
COMMENT ON TYPE segtier.share_state IS 'state of the share_cuts aggregate: basis (0 value, 1 count), the boundaries in billionths, and the values seen';

CREATE FUNCTION segtier.share_trans(segtier.share_state, float8, float8[], text) RETURNS segtier.share_state
	AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION segtier.share_trans(segtier.share_state, float8, float8[], text) IS 'share_cuts transition: adds a value (NULL skipped)';
CREATE FUNCTION segtier.share_combine(segtier.share_state, segtier.share_state) RETURNS segtier.share_state
	AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION segtier.share_combine(segtier.share_state, segtier.share_state) IS 'share_cuts combine: concatenates two partial states';
CREATE FUNCTION segtier.share_final(segtier.share_state) RETURNS float8[]
	AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION segtier.share_final(segtier.share_state) IS 'share_cuts final: the class cut points (see the share_cuts aggregate)';
CREATE AGGREGATE segtier.share_cuts(value float8, bounds float8[], basis text) (
	SFUNC = segtier.share_trans,
	STYPE = segtier.share_state,
	COMBINEFUNC = segtier.share_combine,
	FINALFUNC = segtier.share_final,
	PARALLEL = SAFE
);
COMMENT ON AGGREGATE segtier.share_cuts(float8, float8[], text) IS
'cut points of classes by share, for score(v, cuts) = class counted from the bottom: customers sorted by value, highest first, each start at the share of total positive value (basis ''value'') or of customers (basis ''count'') before them; bounds are the ascending cumulative shares from the top that end each class (ABC: {0.7,0.9}; pyramid: {0.01,0.05,0.2}); a customer belongs to the class its start lies in, equal values to the class of the first of them (ties at a boundary go up), values <= 0 to the bottom class; cut j is the largest value of the bottom j classes (-Infinity when empty)';

------------------------------------------------------------------------------
-- @bgnbd: BG/NBD model (bgnbd.c)
------------------------------------------------------------------------------
CREATE TYPE segtier.bgnbd AS (
	r float8,
	alpha float8,
	a float8,
	b float8,
	loglik float8,
	customers bigint
);
COMMENT ON TYPE segtier.bgnbd IS 'fitted BG/NBD purchase model (Fader, Hardie & Lee 2005); alpha is in the time unit of the data';
COMMENT ON COLUMN segtier.bgnbd.r IS 'shape of the gamma distribution of purchase rates';
COMMENT ON COLUMN segtier.bgnbd.alpha IS 'scale of the gamma distribution of purchase rates, in the time unit of recency and t';
COMMENT ON COLUMN segtier.bgnbd.a IS 'first shape of the beta distribution of the drop-out probability after each purchase';
COMMENT ON COLUMN segtier.bgnbd.b IS 'second shape of the beta distribution of the drop-out probability after each purchase';
COMMENT ON COLUMN segtier.bgnbd.loglik IS 'log-likelihood of the data at the fitted parameters (without the penalty)';
COMMENT ON COLUMN segtier.bgnbd.customers IS 'number of customers (rows without NULLs) in the fit';

CREATE TYPE segtier.bgnbd_state;
CREATE FUNCTION segtier.bgnbd_state_in(cstring) RETURNS segtier.bgnbd_state
	AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION segtier.bgnbd_state_out(segtier.bgnbd_state) RETURNS cstring
	AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION segtier.bgnbd_state_recv(internal) RETURNS segtier.bgnbd_state
	AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION segtier.bgnbd_state_send(segtier.bgnbd_state) RETURNS bytea
	AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE TYPE segtier.bgnbd_state (
	INPUT = segtier.bgnbd_state_in,
	OUTPUT = segtier.bgnbd_state_out,
	RECEIVE = segtier.bgnbd_state_recv,
	SEND = segtier.bgnbd_state_send,
	INTERNALLENGTH = VARIABLE,
	ALIGNMENT = double,
	STORAGE = extended
);
COMMENT ON TYPE segtier.bgnbd_state IS 'state of bgnbd_fit: histogram of distinct (frequency, recency, t) with counts; text penalizer;skipped then ;frequency,recency,t,count per entry';

CREATE FUNCTION segtier.bgnbd_accum(segtier.bgnbd_state, float8, float8, float8) RETURNS segtier.bgnbd_state
	AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION segtier.bgnbd_accum(segtier.bgnbd_state, float8, float8, float8) IS 'bgnbd_fit transition: adds one customer (frequency, recency, t); rows with a NULL are skipped';
CREATE FUNCTION segtier.bgnbd_accum(segtier.bgnbd_state, float8, float8, float8, float8) RETURNS segtier.bgnbd_state
	AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION segtier.bgnbd_accum(segtier.bgnbd_state, float8, float8, float8, float8) IS 'bgnbd_fit transition with a penalizer (the same on every row)';
CREATE FUNCTION segtier.bgnbd_combine(segtier.bgnbd_state, segtier.bgnbd_state) RETURNS segtier.bgnbd_state
	AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION segtier.bgnbd_combine(segtier.bgnbd_state, segtier.bgnbd_state) IS 'bgnbd_fit combine: merges two histograms';
CREATE FUNCTION segtier.bgnbd_final(segtier.bgnbd_state) RETURNS segtier.bgnbd
	AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION segtier.bgnbd_final(segtier.bgnbd_state) IS 'bgnbd_fit final: maximum-likelihood fit of the histogram';

CREATE AGGREGATE segtier.bgnbd_fit(frequency float8, recency float8, t float8) (
	SFUNC = segtier.bgnbd_accum,
	STYPE = segtier.bgnbd_state,
	COMBINEFUNC = segtier.bgnbd_combine,
	FINALFUNC = segtier.bgnbd_final,
	PARALLEL = SAFE
);
COMMENT ON AGGREGATE segtier.bgnbd_fit(float8, float8, float8) IS 'maximum-likelihood BG/NBD fit (FHL 2005) of per-customer frequency (repeat purchases), recency (time of the last purchase since the first) and t (age), in one time unit; NULL for no rows';
CREATE AGGREGATE segtier.bgnbd_fit(frequency float8, recency float8, t float8, penalizer float8) (
	SFUNC = segtier.bgnbd_accum,
	STYPE = segtier.bgnbd_state,
	COMBINEFUNC = segtier.bgnbd_combine,
	FINALFUNC = segtier.bgnbd_final,
	PARALLEL = SAFE
);
COMMENT ON AGGREGATE segtier.bgnbd_fit(float8, float8, float8, float8) IS 'BG/NBD fit maximising loglik - penalizer * customers * (r^2 + (alpha * 10 / max t)^2 + a^2 + b^2), the objective of lifetimes'' BetaGeoFitter(penalizer_coef)';

CREATE FUNCTION segtier.bgnbd_loglik(model segtier.bgnbd, frequency float8, recency float8, t float8) RETURNS float8
	AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION segtier.bgnbd_loglik(segtier.bgnbd, float8, float8, float8) IS 'log-likelihood of one customer history under the model (FHL 2005 eq. 6, overflow-free form of Fader & Hardie note 027)';
CREATE FUNCTION segtier.p_alive(model segtier.bgnbd, frequency float8, recency float8, t float8) RETURNS float8
	AS 'MODULE_PATHNAME', 'bgnbd_p_alive' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION segtier.p_alive(segtier.bgnbd, float8, float8, float8) IS 'probability that the customer is still alive at t (1 without repeat purchases)';
CREATE FUNCTION segtier.expected_purchases(model segtier.bgnbd, horizon float8, frequency float8, recency float8, t float8) RETURNS float8
	AS 'MODULE_PATHNAME', 'bgnbd_expected_purchases' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION segtier.expected_purchases(segtier.bgnbd, float8, float8, float8, float8) IS 'expected purchases of this customer in the next horizon time units, E[Y(horizon) | frequency, recency, t] (FHL 2005 eq. 10)';
CREATE FUNCTION segtier.expected_purchases(model segtier.bgnbd, horizon float8) RETURNS float8
	AS 'MODULE_PATHNAME', 'bgnbd_expected_purchases_new' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION segtier.expected_purchases(segtier.bgnbd, float8) IS 'expected repeat purchases of a new customer in its first horizon time units, E[X(horizon)] (FHL 2005 eq. 9)';

------------------------------------------------------------------------------
-- @gammagamma: Gamma-Gamma spend model and CLV (gammagamma.c)
------------------------------------------------------------------------------
CREATE TYPE segtier.gamma_gamma AS (
	p float8,
	q float8,
	v float8,
	loglik float8,
	customers bigint,
	skipped bigint
);
COMMENT ON TYPE segtier.gamma_gamma IS 'fitted Gamma-Gamma spend model (Fader, Hardie & Lee 2005; Fader & Hardie note 025)';
COMMENT ON COLUMN segtier.gamma_gamma.p IS 'shape of the gamma distribution of one transaction value';
COMMENT ON COLUMN segtier.gamma_gamma.q IS 'shape of the gamma distribution of the customers'' scale parameters';
COMMENT ON COLUMN segtier.gamma_gamma.v IS 'scale of the gamma distribution of the customers'' scale parameters (lifetimes'' v, the papers'' gamma), in money';
COMMENT ON COLUMN segtier.gamma_gamma.loglik IS 'log-likelihood of the fitted customers at the fitted parameters (without the penalty)';
COMMENT ON COLUMN segtier.gamma_gamma.customers IS 'number of customers fitted (frequency > 0 and monetary > 0)';
COMMENT ON COLUMN segtier.gamma_gamma.skipped IS 'number of rows skipped because frequency = 0 or monetary <= 0';

CREATE TYPE segtier.gamma_gamma_state;
CREATE FUNCTION segtier.gamma_gamma_state_in(cstring) RETURNS segtier.gamma_gamma_state
	AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION segtier.gamma_gamma_state_out(segtier.gamma_gamma_state) RETURNS cstring
	AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION segtier.gamma_gamma_state_recv(internal) RETURNS segtier.gamma_gamma_state
	AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION segtier.gamma_gamma_state_send(segtier.gamma_gamma_state) RETURNS bytea
	AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE TYPE segtier.gamma_gamma_state (
	INPUT = segtier.gamma_gamma_state_in,
	OUTPUT = segtier.gamma_gamma_state_out,
	RECEIVE = segtier.gamma_gamma_state_recv,
	SEND = segtier.gamma_gamma_state_send,
	INTERNALLENGTH = VARIABLE,
	ALIGNMENT = double,
	STORAGE = extended
);
COMMENT ON TYPE segtier.gamma_gamma_state IS 'state of gamma_gamma_fit: histogram of distinct (frequency, monetary) with counts; text penalizer;skipped then ;frequency,monetary,count per entry';

CREATE FUNCTION segtier.gamma_gamma_accum(segtier.gamma_gamma_state, float8, float8) RETURNS segtier.gamma_gamma_state
	AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION segtier.gamma_gamma_accum(segtier.gamma_gamma_state, float8, float8) IS 'gamma_gamma_fit transition: adds one repeat customer, counts others as skipped; rows with a NULL are ignored';
CREATE FUNCTION segtier.gamma_gamma_accum(segtier.gamma_gamma_state, float8, float8, float8) RETURNS segtier.gamma_gamma_state
	AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION segtier.gamma_gamma_accum(segtier.gamma_gamma_state, float8, float8, float8) IS 'gamma_gamma_fit transition with a penalizer (the same on every row)';
CREATE FUNCTION segtier.gamma_gamma_combine(segtier.gamma_gamma_state, segtier.gamma_gamma_state) RETURNS segtier.gamma_gamma_state
	AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION segtier.gamma_gamma_combine(segtier.gamma_gamma_state, segtier.gamma_gamma_state) IS 'gamma_gamma_fit combine: merges two histograms';
CREATE FUNCTION segtier.gamma_gamma_final(segtier.gamma_gamma_state) RETURNS segtier.gamma_gamma
	AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION segtier.gamma_gamma_final(segtier.gamma_gamma_state) IS 'gamma_gamma_fit final: maximum-likelihood fit of the histogram';

CREATE AGGREGATE segtier.gamma_gamma_fit(frequency float8, monetary float8) (
	SFUNC = segtier.gamma_gamma_accum,
	STYPE = segtier.gamma_gamma_state,
	COMBINEFUNC = segtier.gamma_gamma_combine,
	FINALFUNC = segtier.gamma_gamma_final,
	PARALLEL = SAFE
);
COMMENT ON AGGREGATE segtier.gamma_gamma_fit(float8, float8) IS 'maximum-likelihood Gamma-Gamma fit of frequency (repeat purchases) and monetary (mean value of the repeat purchases) over customers with frequency > 0 and monetary > 0; NULL when there are none';
CREATE AGGREGATE segtier.gamma_gamma_fit(frequency float8, monetary float8, penalizer float8) (
	SFUNC = segtier.gamma_gamma_accum,
	STYPE = segtier.gamma_gamma_state,
	COMBINEFUNC = segtier.gamma_gamma_combine,
	FINALFUNC = segtier.gamma_gamma_final,
	PARALLEL = SAFE
);
COMMENT ON AGGREGATE segtier.gamma_gamma_fit(float8, float8, float8) IS 'Gamma-Gamma fit maximising loglik - penalizer * customers * (p^2 + q^2 + v^2), the objective of lifetimes'' GammaGammaFitter(penalizer_coef)';

CREATE FUNCTION segtier.expected_spend(model segtier.gamma_gamma, frequency float8, monetary float8) RETURNS float8
	AS 'MODULE_PATHNAME', 'gamma_gamma_expected_spend' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION segtier.expected_spend(segtier.gamma_gamma, float8, float8) IS 'expected value of a future transaction of this customer, E[M | frequency, monetary]; the population mean p v / (q - 1) when frequency = 0';

CREATE FUNCTION segtier.clv(model segtier.bgnbd, spend segtier.gamma_gamma, frequency float8, recency float8, t float8,
		monetary float8, horizon float8, discount_rate float8, margin float8 DEFAULT 1,
		time_units_per_month float8 DEFAULT 30) RETURNS float8
	AS 'MODULE_PATHNAME', 'segtier_clv' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION segtier.clv(segtier.bgnbd, segtier.gamma_gamma, float8, float8, float8, float8, float8, float8, float8, float8) IS 'discounted predictive CLV as lifetimes'' customer_lifetime_value: horizon in months, discount_rate per month, month i adds expected_spend * (E[Y(i u)] - E[Y((i-1) u)]) / (1 + discount_rate)^i with u = time_units_per_month (30 for days, 4.345 for weeks), all times margin; a fractional last month ends at the horizon';

------------------------------------------------------------------------------
-- @kmeans: k-means clusters (kmeans.c)
------------------------------------------------------------------------------
CREATE TYPE segtier.kmeans_state;

CREATE FUNCTION segtier.kmeans_state_in(cstring) RETURNS segtier.kmeans_state
	AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION segtier.kmeans_state_out(segtier.kmeans_state) RETURNS cstring
	AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION segtier.kmeans_state_recv(internal) RETURNS segtier.kmeans_state
	AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION segtier.kmeans_state_send(segtier.kmeans_state) RETURNS bytea
	AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

CREATE TYPE segtier.kmeans_state (
	INPUT = segtier.kmeans_state_in,
	OUTPUT = segtier.kmeans_state_out,
	RECEIVE = segtier.kmeans_state_recv,
	SEND = segtier.kmeans_state_send,
	INTERNALLENGTH = VARIABLE,
	ALIGNMENT = double,
	STORAGE = extended
);
COMMENT ON TYPE segtier.kmeans_state IS 'state of the kmeans aggregate: k, seed, dimension d and the points seen, flattened; text k=2 seed=0 d=2 {1,2,3,4}';

CREATE FUNCTION segtier.kmeans_trans(segtier.kmeans_state, float8[], int, int) RETURNS segtier.kmeans_state
	AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION segtier.kmeans_trans(segtier.kmeans_state, float8[], int, int) IS 'kmeans transition: adds a point (NULL skipped)';
CREATE FUNCTION segtier.kmeans_combine(segtier.kmeans_state, segtier.kmeans_state) RETURNS segtier.kmeans_state
	AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION segtier.kmeans_combine(segtier.kmeans_state, segtier.kmeans_state) IS 'kmeans combine: concatenates two partial states';
CREATE FUNCTION segtier.kmeans_final(segtier.kmeans_state) RETURNS float8[]
	AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION segtier.kmeans_final(segtier.kmeans_state) IS 'kmeans final: seeds and iterates (see the kmeans aggregate)';

CREATE AGGREGATE segtier.kmeans(features float8[], k int, seed int) (
	SFUNC = segtier.kmeans_trans,
	STYPE = segtier.kmeans_state,
	COMBINEFUNC = segtier.kmeans_combine,
	FINALFUNC = segtier.kmeans_final,
	PARALLEL = SAFE
);
COMMENT ON AGGREGATE segtier.kmeans(float8[], int, int) IS 'k-means centroids as a k x d array, rows in ascending lexicographic order. '
	'Deterministic: the points are sorted and duplicates merged (weighted) before k-means++ seeding drawn from splitmix64(seed), '
	'then Lloyd iterations until no assignment changes (at most 300); a centre left without points keeps its place. '
	'Every row must have the same dimension d; NULL rows are skipped; NULL, NaN or infinite elements, k < 1 or a varying k or seed are errors. '
	'Fewer distinct points than k gives one centroid per distinct point; no points -> NULL.';

-- Aggregates take no DEFAULT arguments: seed DEFAULT 0 is this overload.
CREATE FUNCTION segtier.kmeans_trans(segtier.kmeans_state, float8[], int) RETURNS segtier.kmeans_state
	AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION segtier.kmeans_trans(segtier.kmeans_state, float8[], int) IS 'kmeans transition with seed 0';
CREATE AGGREGATE segtier.kmeans(features float8[], k int) (
	SFUNC = segtier.kmeans_trans,
	STYPE = segtier.kmeans_state,
	COMBINEFUNC = segtier.kmeans_combine,
	FINALFUNC = segtier.kmeans_final,
	PARALLEL = SAFE
);
COMMENT ON AGGREGATE segtier.kmeans(float8[], int) IS 'kmeans(features, k, seed) with seed 0';

CREATE FUNCTION segtier.nearest_centroid(features float8[], centroids float8[]) RETURNS int
	AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION segtier.nearest_centroid(float8[], float8[]) IS '1-based row of the k x d centroids array nearest to the features (squared Euclidean distance; ties go to the lowest row)';
