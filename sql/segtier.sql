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
COMMENT ON FUNCTION segtier.rfm_in(cstring) IS 'rfm text input: 543, 5-4-3 or R5F4M3, optionally /n';
COMMENT ON FUNCTION segtier.rfm_out(segtier.rfm) IS 'rfm text output: 543, or 543/n when the scale n is not 5';
COMMENT ON FUNCTION segtier.rfm_recv(internal) IS 'rfm binary input (version byte, r, f, m, scale), validated like text input';
COMMENT ON FUNCTION segtier.rfm_send(segtier.rfm) IS 'rfm binary output (version byte 0, r, f, m, scale)';

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
COMMENT ON FUNCTION segtier.rfm_eq(segtier.rfm, segtier.rfm) IS 'rfm equality (same r, f, m and scale)';
COMMENT ON FUNCTION segtier.rfm_ne(segtier.rfm, segtier.rfm) IS 'rfm inequality';
COMMENT ON FUNCTION segtier.rfm_lt(segtier.rfm, segtier.rfm) IS 'rfm less than (by r, then f, then m)';
COMMENT ON FUNCTION segtier.rfm_le(segtier.rfm, segtier.rfm) IS 'rfm less than or equal (by r, then f, then m)';
COMMENT ON FUNCTION segtier.rfm_gt(segtier.rfm, segtier.rfm) IS 'rfm greater than (by r, then f, then m)';
COMMENT ON FUNCTION segtier.rfm_ge(segtier.rfm, segtier.rfm) IS 'rfm greater than or equal (by r, then f, then m)';
COMMENT ON FUNCTION segtier.rfm_cmp(segtier.rfm, segtier.rfm) IS 'btree support: -1, 0 or 1 by r, then f, then m, then scale';
COMMENT ON FUNCTION segtier.rfm_hash(segtier.rfm) IS 'hash support for rfm';
COMMENT ON FUNCTION segtier.rfm_hash_extended(segtier.rfm, bigint) IS 'seeded hash support for rfm';

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
COMMENT ON FUNCTION segtier.tier_catalog_changed() IS 'trigger: tells every session to reread the tier schemes and levels';
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
COMMENT ON FUNCTION segtier.tier_level_guard() IS 'trigger: refuses to delete a tier level or change its id, scheme or rank';

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
COMMENT ON FUNCTION segtier.tier_scheme_guard() IS 'trigger: refuses to delete or renumber a tier scheme';
CREATE FUNCTION segtier.tier_no_truncate() RETURNS trigger
LANGUAGE plpgsql SET search_path = pg_catalog AS $$
BEGIN
	RAISE EXCEPTION 'segtier tier catalogs cannot be truncated' USING ERRCODE = 'object_in_use';
END $$;
COMMENT ON FUNCTION segtier.tier_no_truncate() IS 'trigger: refuses to truncate the tier catalogs';
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
COMMENT ON FUNCTION segtier.tier_in(cstring) IS 'tier text input: scheme:level';
COMMENT ON FUNCTION segtier.tier_out(segtier.tier) IS 'tier text output: scheme:level';
COMMENT ON FUNCTION segtier.tier_recv(internal) IS 'tier binary input: version byte 0, then the text form';
COMMENT ON FUNCTION segtier.tier_send(segtier.tier) IS 'tier binary output: version byte 0, then the text form';

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
-- Ranks never change, so the order is immutable.  The operators < <= > >=
-- raise an error across schemes; tier_cmp, which sorting, btree indexes and
-- ANALYZE use, orders tiers of different schemes by scheme id.
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
COMMENT ON FUNCTION segtier.tier_eq(segtier.tier, segtier.tier) IS 'tier equality (same scheme and level)';
COMMENT ON FUNCTION segtier.tier_ne(segtier.tier, segtier.tier) IS 'tier inequality';
COMMENT ON FUNCTION segtier.tier_lt(segtier.tier, segtier.tier) IS 'tier less than, by rank within one scheme';
COMMENT ON FUNCTION segtier.tier_le(segtier.tier, segtier.tier) IS 'tier less than or equal, by rank within one scheme';
COMMENT ON FUNCTION segtier.tier_gt(segtier.tier, segtier.tier) IS 'tier greater than, by rank within one scheme';
COMMENT ON FUNCTION segtier.tier_ge(segtier.tier, segtier.tier) IS 'tier greater than or equal, by rank within one scheme';
COMMENT ON FUNCTION segtier.tier_cmp(segtier.tier, segtier.tier) IS 'btree support: -1, 0 or 1 by rank within a scheme; tiers of two schemes by scheme id';
COMMENT ON FUNCTION segtier.tier_hash(segtier.tier) IS 'hash support for tier';
COMMENT ON FUNCTION segtier.tier_hash_extended(segtier.tier, bigint) IS 'seeded hash support for tier';

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

------------------------------------------------------------------------------
-- @segment: rfm_segment, value classes, pyramid, lifecycle, churn (segment.c)
------------------------------------------------------------------------------

------------------------------------------------------------------------------
-- @bgnbd: BG/NBD model (bgnbd.c)
------------------------------------------------------------------------------

------------------------------------------------------------------------------
-- @gammagamma: Gamma-Gamma spend model and CLV (gammagamma.c)
------------------------------------------------------------------------------

------------------------------------------------------------------------------
-- @kmeans: k-means clusters (kmeans.c)
------------------------------------------------------------------------------
