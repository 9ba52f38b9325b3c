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

CREATE FUNCTION segtier.rfm(text) RETURNS segtier.rfm
	AS 'MODULE_PATHNAME', 'rfm_from_text' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION segtier.rfm(text) IS 'the text -> rfm cast: the forms rfm_in accepts';

CREATE CAST (segtier.rfm AS text) WITH INOUT AS ASSIGNMENT;
CREATE CAST (text AS segtier.rfm) WITH FUNCTION segtier.rfm(text);

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

-- pg_dump keeps every scheme and level, the built-ins too: their names and
-- labels may have changed, and levels may have been added to them.  A
-- restore's row for one that CREATE EXTENSION made (the same id, and for a
-- level the same scheme and rank) updates it instead.
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
	RESTRICT = segtier.tier_ltsel, JOIN = scalarltjoinsel);
CREATE OPERATOR segtier.<= (LEFTARG = segtier.tier, RIGHTARG = segtier.tier, PROCEDURE = segtier.tier_le,
	COMMUTATOR = OPERATOR(segtier.>=), NEGATOR = OPERATOR(segtier.>),
	RESTRICT = segtier.tier_lesel, JOIN = scalarlejoinsel);
CREATE OPERATOR segtier.> (LEFTARG = segtier.tier, RIGHTARG = segtier.tier, PROCEDURE = segtier.tier_gt,
	COMMUTATOR = OPERATOR(segtier.<), NEGATOR = OPERATOR(segtier.<=),
	RESTRICT = segtier.tier_gtsel, JOIN = scalargtjoinsel);
CREATE OPERATOR segtier.>= (LEFTARG = segtier.tier, RIGHTARG = segtier.tier, PROCEDURE = segtier.tier_ge,
	COMMUTATOR = OPERATOR(segtier.<=), NEGATOR = OPERATOR(segtier.<),
	RESTRICT = segtier.tier_gesel, JOIN = scalargejoinsel);

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

CREATE TYPE segtier.purchase_state;

CREATE FUNCTION segtier.purchase_state_in(cstring) RETURNS segtier.purchase_state
	AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION segtier.purchase_state_out(segtier.purchase_state) RETURNS cstring
	AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION segtier.purchase_state_recv(internal) RETURNS segtier.purchase_state
	AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
CREATE FUNCTION segtier.purchase_state_send(segtier.purchase_state) RETURNS bytea
	AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

CREATE TYPE segtier.purchase_state (
	INPUT = segtier.purchase_state_in,
	OUTPUT = segtier.purchase_state_out,
	RECEIVE = segtier.purchase_state_recv,
	SEND = segtier.purchase_state_send,
	INTERNALLENGTH = VARIABLE,
	ALIGNMENT = double,
	STORAGE = extended
);
COMMENT ON TYPE segtier.purchase_state IS 'state of purchase_summary; text form 1;first;last;transactions;null_rows;refunds;future_rows;purchase_sum;refund_sum;first_day_sum;days, times in microseconds since 2000-01-01 UTC (empty without purchases), days = local calendar days since 2000-01-01, comma separated';

CREATE TYPE segtier.purchase_summary AS (
	first_purchase timestamptz,
	last_purchase timestamptz,
	transactions bigint,
	purchase_days bigint,
	total_amount numeric,
	repeat_amount numeric,
	refund_amount numeric,
	null_rows bigint,
	refunds bigint,
	future_rows bigint
);
COMMENT ON TYPE segtier.purchase_summary IS 'one customer''s purchases: first/last purchase time, purchases, distinct purchase days, net total, repeat amount (purchases on days after the first purchase day), refund total, and counts of NULL, refund and future rows';

-- The session's TimeZone decides the days of the two-argument form: STABLE.
CREATE FUNCTION segtier.purchase_state_add(segtier.purchase_state, timestamptz, numeric)
	RETURNS segtier.purchase_state
	AS 'MODULE_PATHNAME' LANGUAGE C STABLE PARALLEL SAFE;
COMMENT ON FUNCTION segtier.purchase_state_add(segtier.purchase_state, timestamptz, numeric) IS 'purchase_summary transition, days in the session time zone';
CREATE FUNCTION segtier.purchase_state_add(segtier.purchase_state, timestamptz, numeric, text)
	RETURNS segtier.purchase_state
	AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION segtier.purchase_state_add(segtier.purchase_state, timestamptz, numeric, text) IS 'purchase_summary transition, days in the given time zone';
CREATE FUNCTION segtier.purchase_state_add(segtier.purchase_state, timestamptz, numeric, text, timestamptz)
	RETURNS segtier.purchase_state
	AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION segtier.purchase_state_add(segtier.purchase_state, timestamptz, numeric, text, timestamptz) IS 'purchase_summary transition, days in the given time zone, rows after as_of ignored';
CREATE FUNCTION segtier.purchase_state_combine(segtier.purchase_state, segtier.purchase_state)
	RETURNS segtier.purchase_state
	AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION segtier.purchase_state_combine(segtier.purchase_state, segtier.purchase_state) IS 'merge two purchase_summary states (parallel and distributed aggregation)';
CREATE FUNCTION segtier.purchase_state_summary(segtier.purchase_state)
	RETURNS segtier.purchase_summary
	AS 'MODULE_PATHNAME' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION segtier.purchase_state_summary(segtier.purchase_state) IS 'the purchase_summary of a state (purchase_summary final function)';

CREATE AGGREGATE segtier.purchase_summary(ts timestamptz, amount numeric) (
	SFUNC = segtier.purchase_state_add,
	STYPE = segtier.purchase_state,
	FINALFUNC = segtier.purchase_state_summary,
	COMBINEFUNC = segtier.purchase_state_combine,
	PARALLEL = SAFE
);
CREATE AGGREGATE segtier.purchase_summary(ts timestamptz, amount numeric, time_zone text) (
	SFUNC = segtier.purchase_state_add,
	STYPE = segtier.purchase_state,
	FINALFUNC = segtier.purchase_state_summary,
	COMBINEFUNC = segtier.purchase_state_combine,
	PARALLEL = SAFE
);
CREATE AGGREGATE segtier.purchase_summary(ts timestamptz, amount numeric, time_zone text, as_of timestamptz) (
	SFUNC = segtier.purchase_state_add,
	STYPE = segtier.purchase_state,
	FINALFUNC = segtier.purchase_state_summary,
	COMBINEFUNC = segtier.purchase_state_combine,
	PARALLEL = SAFE
);
COMMENT ON AGGREGATE segtier.purchase_summary(timestamptz, numeric) IS 'per-customer purchase summary, calendar days in the session TimeZone.  Rules: a row with NULL ts or NULL amount is ignored and counted in null_rows; a NaN or infinite amount or an infinite ts is an error (22023); a negative amount is a refund: it lowers total_amount and refund_amount, is counted in refunds, and is not a transaction, a purchase day, a first/last purchase or part of repeat_amount; a zero amount is a purchase; repeat_amount = the non-negative amounts on calendar days after the first purchase day; without purchases first/last are NULL and transactions 0; no rows gives NULL';
COMMENT ON AGGREGATE segtier.purchase_summary(timestamptz, numeric, text) IS 'per-customer purchase summary, calendar days in time_zone (an IANA name, else 22023; NULL is 22004; the same zone for all rows of a group).  Rules: a row with NULL ts or NULL amount is ignored and counted in null_rows; a NaN or infinite amount or an infinite ts is an error (22023); a negative amount is a refund: it lowers total_amount and refund_amount, is counted in refunds, and is not a transaction, a purchase day, a first/last purchase or part of repeat_amount; a zero amount is a purchase; repeat_amount = the non-negative amounts on calendar days after the first purchase day; without purchases first/last are NULL and transactions 0; no rows gives NULL';
COMMENT ON AGGREGATE segtier.purchase_summary(timestamptz, numeric, text, timestamptz) IS 'per-customer purchase summary as of a time, calendar days in time_zone (an IANA name, else 22023; NULL zone or as_of is 22004).  Rules: a row with NULL ts or NULL amount is ignored and counted in null_rows; a NaN or infinite amount or an infinite ts is an error (22023); then a row with ts > as_of (purchase or refund) is ignored and counted in future_rows; a negative amount is a refund: it lowers total_amount and refund_amount, is counted in refunds, and is not a transaction, a purchase day, a first/last purchase or part of repeat_amount; a zero amount is a purchase; repeat_amount = the non-negative amounts on calendar days after the first purchase day; without purchases first/last are NULL and transactions 0; no rows gives NULL';

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
------------------------------------------------------------------------------
-- @pipeline: models, refresh, history, runs, overrides, BI views
------------------------------------------------------------------------------
-- Per-model relations live in schema segtier_data, owned by the model owner.
CREATE SCHEMA segtier_data;
COMMENT ON SCHEMA segtier_data IS 'segtier: per-model relations (current tiers, customer summaries, change queues)';
REVOKE ALL ON SCHEMA segtier_data FROM PUBLIC;

CREATE TABLE segtier.model_option (
	key text PRIMARY KEY,
	default_value jsonb,
	description text NOT NULL
);
COMMENT ON TABLE segtier.model_option IS 'the model options segtier knows, with their defaults (NULL = none)';
COMMENT ON COLUMN segtier.model_option.key IS 'option key in create_model/alter_model options';
COMMENT ON COLUMN segtier.model_option.default_value IS 'value used when the model does not set the key';
COMMENT ON COLUMN segtier.model_option.description IS 'what the option does and which values it takes';
INSERT INTO segtier.model_option VALUES
	('refresh_interval', '"1 hour"', 'how often the background worker refreshes the model (an interval)'),
	('as_of', 'null', 'fixed timestamptz to score against instead of now(), for reproducible runs'),
	('time_zone', 'null', 'time zone of calendar days and months; set to the session''s TimeZone by create_model when absent'),
	('rfm_bins', '5', 'number of R, F and M scores, 2..9'),
	('frequency', '"days"', 'F counts "days" (distinct purchase days) or "transactions"'),
	('monetary', '"total"', 'M is the "total" net amount or the "average" per purchase'),
	('recency_cuts', 'null', 'fixed recency thresholds in days (rfm_bins - 1 ascending numbers) instead of quantiles'),
	('frequency_cuts', 'null', 'fixed frequency thresholds instead of quantiles'),
	('monetary_cuts', 'null', 'fixed monetary thresholds instead of quantiles'),
	('segment_scheme', '"rfm11"', 'segment map: "rfm11" or "rfm8"'),
	('segment_lang', '"en"', 'language of segment names: "en" or "zh"'),
	('rfm8_basis', '"scale"', 'rfm8 high/low: "scale" (score above the midpoint) or "mean" (raw value against the population mean)'),
	('value_basis', '"value"', 'value classes by cumulative share of "value" or by head "count"'),
	('value_cutoffs', 'null', 'cumulative shares from the top that end each value class; default [0.7, 0.9] by value, [0.1, 0.3] by count'),
	('value_scheme', '"value"', 'tier scheme of value classes (its levels, lowest first, are the classes)'),
	('pyramid_shares', '[0.01, 0.05, 0.20]', 'cumulative shares of customers from the top that end each pyramid tier'),
	('pyramid_scheme', '"pyramid"', 'tier scheme of the pyramid (one more level than pyramid_shares)'),
	('new_days', '90', 'lifecycle: a first purchase at most this many days ago is new'),
	('active_days', '180', 'lifecycle and churn rule: silent more than this many days is at risk'),
	('churn_days', '365', 'lifecycle: silent more than this many days is churned'),
	('loyal_purchases', '5', 'lifecycle: active customers with at least this many purchases are loyal'),
	('churn_decline', '0.2', 'churn rule: the monthly spend decline that counts (0.2 = 20 %)'),
	('churn_months', '3', 'churn rule: consecutive declining calendar months that flag a customer'),
	('margin_column', 'null', 'column of the source summed as the value of value classes and pyramid instead of the amount'),
	('customers_table', 'null', 'table of all customers; those who never bought appear as prospects'),
	('customers_key', 'null', 'customer id column of customers_table (default: the customer column name)'),
	('hysteresis_runs', '0', 'a downgrade of value class or pyramid tier waits until the customer was below its tier this many consecutive runs (0 = off)'),
	('hysteresis_days', '0', 'or until it was below its tier this many days (0 = off)'),
	('history_retention', 'null', 'purge_history() deletes history older than this interval (null = keep)'),
	('predict', 'false', 'fit BG/NBD and Gamma-Gamma with the population statistics and fill p_alive, expected_purchases and clv'),
	('horizon_days', '365', 'horizon of expected purchases and CLV, in days'),
	('discount_rate', '0.01', 'monthly discount rate of CLV'),
	('p_alive_threshold', 'null', 'churn_risk is also set when p_alive is below this (needs predict)'),
	('penalizer', '0', 'L2 penalizer of the BG/NBD and Gamma-Gamma fits (e.g. 0.001 keeps parameters finite on data the models do not fit)'),
	('clusters', '0', 'number of k-means clusters on standardized log R, F, M (0 = off)'),
	('capture', 'true', 'capture changed customers with triggers on the source for incremental refresh'),
	('statistics_interval', '"1 day"', 'population statistics (cut points, means, fits, centroids) are recomputed once the as-of time has moved this far since they were, on a full refresh and when a scoring option changes; in between, a refresh scores against the kept ones (an interval; "0" recomputes them every run)');

CREATE TABLE segtier.model (
	name text PRIMARY KEY
		CHECK (name ~ '^[a-z][a-z0-9_]{0,47}$'),
	source regclass NOT NULL,
	customer_column name NOT NULL,
	time_column name NOT NULL,
	amount_column name NOT NULL,
	options jsonb NOT NULL DEFAULT '{}',
	owner regrole NOT NULL DEFAULT quote_ident(current_user)::regrole,
	created_at timestamptz NOT NULL DEFAULT now(),
	changed_at timestamptz NOT NULL DEFAULT now(),
	needs_full boolean NOT NULL DEFAULT true,
	since_run bigint NOT NULL
);
COMMENT ON TABLE segtier.model IS 'registered models: which source holds the transactions and how to tier its customers';
COMMENT ON COLUMN segtier.model.name IS 'model name (lower-case identifier)';
COMMENT ON COLUMN segtier.model.source IS 'table, partitioned table or view of transactions';
COMMENT ON COLUMN segtier.model.customer_column IS 'customer id column of the source';
COMMENT ON COLUMN segtier.model.time_column IS 'transaction time column (timestamptz, timestamp or date)';
COMMENT ON COLUMN segtier.model.amount_column IS 'transaction amount column (negative = refund)';
COMMENT ON COLUMN segtier.model.options IS 'options set for this model; segtier.model_option lists keys and defaults';
COMMENT ON COLUMN segtier.model.owner IS 'role the refresh runs as';
COMMENT ON COLUMN segtier.model.created_at IS 'when the model was created';
COMMENT ON COLUMN segtier.model.changed_at IS 'when the model was last created or altered';
COMMENT ON COLUMN segtier.model.needs_full IS 'the next refresh rescans the source (set by model changes and TRUNCATE)';
COMMENT ON COLUMN segtier.model.since_run IS 'the model''s runs and history rows have greater run ids; rows of its name up to this one are a dropped model''s';

CREATE TABLE segtier.refresh_runs (
	run_id bigserial PRIMARY KEY,
	model text NOT NULL,
	started timestamptz NOT NULL DEFAULT clock_timestamp(),
	finished timestamptz,
	status text NOT NULL DEFAULT 'running' CHECK (status IN ('running', 'succeeded', 'failed')),
	full_refresh boolean,
	as_of timestamptz,
	customers bigint,
	changed bigint,
	error text,
	params jsonb
);
CREATE INDEX ON segtier.refresh_runs (model, run_id);
COMMENT ON TABLE segtier.refresh_runs IS 'one row per refresh run of a model';
COMMENT ON COLUMN segtier.refresh_runs.run_id IS 'run id (tier_history.run_id refers to it)';
COMMENT ON COLUMN segtier.refresh_runs.model IS 'model refreshed';
COMMENT ON COLUMN segtier.refresh_runs.started IS 'when the run started';
COMMENT ON COLUMN segtier.refresh_runs.finished IS 'when the run ended (NULL while running)';
COMMENT ON COLUMN segtier.refresh_runs.status IS 'running, succeeded or failed';
COMMENT ON COLUMN segtier.refresh_runs.full_refresh IS 'true when the run rescanned the whole source';
COMMENT ON COLUMN segtier.refresh_runs.as_of IS 'the time the run scored against';
COMMENT ON COLUMN segtier.refresh_runs.customers IS 'customers in the current tiers after the run';
COMMENT ON COLUMN segtier.refresh_runs.changed IS 'tier_history rows the run wrote';
COMMENT ON COLUMN segtier.refresh_runs.error IS 'error message of a failed run';
COMMENT ON COLUMN segtier.refresh_runs.params IS 'cut points, fitted model parameters and row counts of the run';

CREATE TABLE segtier.tier_history (
	model text NOT NULL,
	customer text NOT NULL,
	scheme text NOT NULL,
	from_tier text,
	to_tier text,
	changed_at timestamptz NOT NULL DEFAULT now(),
	run_id bigint,
	reason text NOT NULL,
	changed_by name NOT NULL DEFAULT current_user
);
CREATE INDEX ON segtier.tier_history (model, customer);
CREATE INDEX ON segtier.tier_history (run_id);
COMMENT ON TABLE segtier.tier_history IS 'append-only history: one row per customer and scheme whose tier changed (and per hysteresis hold)';
COMMENT ON COLUMN segtier.tier_history.model IS 'model';
COMMENT ON COLUMN segtier.tier_history.customer IS 'customer id as text';
COMMENT ON COLUMN segtier.tier_history.scheme IS 'tier column: value_class, pyramid or lifecycle';
COMMENT ON COLUMN segtier.tier_history.from_tier IS 'tier before, as scheme:level text (NULL for a new customer); text, so the audit outlives scheme changes';
COMMENT ON COLUMN segtier.tier_history.to_tier IS 'tier after, as scheme:level text (NULL for a removed customer)';
COMMENT ON COLUMN segtier.tier_history.changed_at IS 'when the change was made';
COMMENT ON COLUMN segtier.tier_history.run_id IS 'refresh run that made the change';
COMMENT ON COLUMN segtier.tier_history.reason IS 'why: score, new customer, customer removed, override, override cleared, override expired, hysteresis hold, hysteresis release';
COMMENT ON COLUMN segtier.tier_history.changed_by IS 'role that made the change (the model owner, or who set or cleared an override)';

CREATE TABLE segtier.tier_override (
	model text NOT NULL REFERENCES segtier.model ON DELETE CASCADE ON UPDATE CASCADE,
	customer text NOT NULL,
	scheme text NOT NULL,
	tier text NOT NULL,
	reason text NOT NULL,
	expires timestamptz,
	set_by name NOT NULL DEFAULT current_user,
	set_at timestamptz NOT NULL DEFAULT now(),
	cleared_by name,
	PRIMARY KEY (model, customer, scheme)
);
COMMENT ON TABLE segtier.tier_override IS 'manual overrides: the tier wins over the score until it expires or is cleared';
COMMENT ON COLUMN segtier.tier_override.model IS 'model';
COMMENT ON COLUMN segtier.tier_override.customer IS 'customer id as text';
COMMENT ON COLUMN segtier.tier_override.scheme IS 'tier column overridden: value_class, pyramid or lifecycle';
COMMENT ON COLUMN segtier.tier_override.tier IS 'the tier to hold, as scheme:level text';
COMMENT ON COLUMN segtier.tier_override.reason IS 'why (copied into tier_history)';
COMMENT ON COLUMN segtier.tier_override.expires IS 'when the override ends (NULL = until cleared)';
COMMENT ON COLUMN segtier.tier_override.set_by IS 'role that set it';
COMMENT ON COLUMN segtier.tier_override.set_at IS 'when it was set';
COMMENT ON COLUMN segtier.tier_override.cleared_by IS 'role that cleared it; the next refresh records the change and removes the row';

-- Rows written directly (admins have DML on the table) are checked as
-- create_model and alter_model check them, but for the tier schemes they
-- name: a restore loads segtier.model before segtier.tier_scheme.  A new
-- model takes a run id as its since_run; only the DBA (a restore) gives
-- one, so an admin's model cannot claim a dropped model's history.
CREATE FUNCTION segtier._model_check() RETURNS trigger
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
COMMENT ON FUNCTION segtier._model_check() IS 'check every model row written, whoever writes it';
CREATE TRIGGER model_check BEFORE INSERT OR UPDATE ON segtier.model
	FOR EACH ROW EXECUTE FUNCTION segtier._model_check();

-- Owners see and change their own models; the DBA (table owner) all.
ALTER TABLE segtier.model ENABLE ROW LEVEL SECURITY;
CREATE POLICY model_owner ON segtier.model
	USING (pg_catalog.pg_has_role(current_user, owner, 'USAGE'));

CREATE FUNCTION segtier._model_names() RETURNS SETOF text
LANGUAGE sql STABLE PARALLEL SAFE SECURITY DEFINER SET search_path = pg_catalog, segtier, pg_temp AS $$
	SELECT name FROM segtier.model
$$;

CREATE FUNCTION segtier._model_since_runs() RETURNS jsonb
LANGUAGE sql STABLE PARALLEL SAFE SECURITY DEFINER SET search_path = pg_catalog, segtier, pg_temp AS $$
	SELECT coalesce(jsonb_object_agg(name, since_run), '{}') FROM segtier.model
$$;

-- The history and runs of a model are read by the roles that may read its
-- tiers (its owner, readers, a role granted its tiers table); those of a
-- dropped model by the roles that read every model: grant_reader's default
-- privilege on the tables the extension owner creates in segtier_data.
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

ALTER TABLE segtier.refresh_runs ENABLE ROW LEVEL SECURITY;
-- A row is a model's when its run id is greater than the model's since_run
-- (else it is a dropped model's of that name).  Each array, object and the
-- boolean are InitPlans, made once a statement (EXISTS was a subquery for
-- each row, about a quarter of a first refresh's history insert by a
-- non-superuser).  The owner's policies are not FOR ALL: a reader, who may
-- not read segtier.model, reads the runs.
CREATE POLICY runs_read ON segtier.refresh_runs FOR SELECT
	USING (CASE WHEN run_id > ((SELECT segtier._model_since_runs()) ->> model)::bigint
				THEN model = ANY (ARRAY(SELECT segtier._readable_models()))
				ELSE (SELECT segtier._reads_every_model()) END);
CREATE POLICY runs_insert ON segtier.refresh_runs FOR INSERT
	WITH CHECK (run_id > ((SELECT jsonb_object_agg(m.name, m.since_run) FROM segtier.model m) ->> model)::bigint);
CREATE POLICY runs_update ON segtier.refresh_runs FOR UPDATE
	USING (run_id > ((SELECT jsonb_object_agg(m.name, m.since_run) FROM segtier.model m) ->> model)::bigint)
	WITH CHECK (run_id > ((SELECT jsonb_object_agg(m.name, m.since_run) FROM segtier.model m) ->> model)::bigint);
ALTER TABLE segtier.tier_history ENABLE ROW LEVEL SECURITY;
CREATE POLICY history_read ON segtier.tier_history FOR SELECT
	USING (CASE WHEN run_id > ((SELECT segtier._model_since_runs()) ->> model)::bigint
				THEN model = ANY (ARRAY(SELECT segtier._readable_models()))
				ELSE (SELECT segtier._reads_every_model()) END);
CREATE POLICY history_owner ON segtier.tier_history FOR INSERT
	WITH CHECK (run_id > ((SELECT jsonb_object_agg(m.name, m.since_run) FROM segtier.model m) ->> model)::bigint);
ALTER TABLE segtier.tier_override ENABLE ROW LEVEL SECURITY;
CREATE POLICY override_owner ON segtier.tier_override
	USING (model = ANY (ARRAY(SELECT m.name FROM segtier.model m)));

SELECT pg_catalog.pg_extension_config_dump('segtier.model', '');
SELECT pg_catalog.pg_extension_config_dump('segtier.refresh_runs', '');
SELECT pg_catalog.pg_extension_config_dump('segtier.refresh_runs_run_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('segtier.tier_history', '');
SELECT pg_catalog.pg_extension_config_dump('segtier.tier_override', '');

-- Raise 22023 naming the option.
CREATE FUNCTION segtier._bad_option(key text, value jsonb, expected text) RETURNS void
LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE SET search_path = pg_catalog, segtier, pg_temp AS $$
BEGIN
	RAISE EXCEPTION 'invalid value for model option "%": %', key, value
		USING ERRCODE = 'invalid_parameter_value', DETAIL = format('Expected %s.', expected);
END $$;

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
CREATE FUNCTION segtier._check_option(key text, v jsonb) RETURNS jsonb
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

-- The type of a column of a relation, or an error naming it.
CREATE FUNCTION segtier._column_type(rel regclass, col name, what text) RETURNS regtype
LANGUAGE plpgsql STABLE PARALLEL SAFE SET search_path = pg_catalog, segtier, pg_temp AS $$
DECLARE
	t regtype;
BEGIN
	SELECT a.atttypid INTO t FROM pg_attribute a
	WHERE a.attrelid = rel AND a.attname = col AND a.attnum > 0 AND NOT a.attisdropped;
	IF t IS NULL THEN
		RAISE EXCEPTION '% column "%" does not exist in %', what, col, rel
			USING ERRCODE = 'undefined_column';
	END IF;
	RETURN t;
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

-- Effective options: _model_options, and the tier schemes they name exist
-- with one level more than the cut-offs.  Rows written into segtier.model
-- directly are checked without these (a restore loads the models before the
-- user-defined schemes); create_model, alter_model and every refresh check them.
CREATE FUNCTION segtier._effective_options(m segtier.model) RETURNS jsonb
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

-- Validates every key of an options object.
CREATE FUNCTION segtier._check_options(options jsonb) RETURNS jsonb
LANGUAGE plpgsql STABLE PARALLEL SAFE SET search_path = pg_catalog, segtier, pg_temp AS $$
DECLARE
	r record;
	o jsonb := '{}';
BEGIN
	IF options IS NULL OR jsonb_typeof(options) <> 'object' THEN
		RAISE EXCEPTION 'model options must be a JSON object' USING ERRCODE = 'invalid_parameter_value';
	END IF;
	FOR r IN SELECT key, value FROM jsonb_each(options) LOOP
		o := o || jsonb_build_object(r.key, segtier._check_option(r.key, r.value));
	END LOOP;
	RETURN o;
END $$;

-- SQL expressions of the model's columns, normalised to timestamptz / numeric.
CREATE FUNCTION segtier._time_expr(m segtier.model, tz text) RETURNS text
LANGUAGE plpgsql STABLE PARALLEL SAFE SET search_path = pg_catalog, segtier, pg_temp AS $$
DECLARE
	t regtype := segtier._column_type(m.source, m.time_column, 'time');
BEGIN
	RETURN CASE t
		WHEN 'timestamptz'::regtype THEN format('%I', m.time_column)
		WHEN 'timestamp'::regtype THEN format('(%I AT TIME ZONE %L)', m.time_column, tz)
		WHEN 'date'::regtype THEN format('(%I::timestamp AT TIME ZONE %L)', m.time_column, tz)
	END;
END $$;

CREATE FUNCTION segtier._check_columns(m segtier.model) RETURNS regtype
LANGUAGE plpgsql STABLE PARALLEL SAFE SET search_path = pg_catalog, segtier, pg_temp AS $$
DECLARE
	ct regtype := segtier._column_type(m.source, m.customer_column, 'customer');
	tt regtype := segtier._column_type(m.source, m.time_column, 'time');
	at regtype := segtier._column_type(m.source, m.amount_column, 'amount');
BEGIN
	IF tt NOT IN ('timestamptz'::regtype, 'timestamp'::regtype, 'date'::regtype) THEN
		RAISE EXCEPTION 'time column "%" has type %', m.time_column, tt
			USING ERRCODE = 'datatype_mismatch', DETAIL = 'It must be timestamptz, timestamp or date.';
	END IF;
	IF at NOT IN ('numeric'::regtype, 'int2'::regtype, 'int4'::regtype, 'int8'::regtype,
				  'float4'::regtype, 'float8'::regtype) THEN
		RAISE EXCEPTION 'amount column "%" has type %', m.amount_column, at
			USING ERRCODE = 'datatype_mismatch', DETAIL = 'It must be a number type (numeric, integer or float).';
	END IF;
	BEGIN
		EXECUTE format('SELECT NULL::%s ORDER BY 1', ct);
	EXCEPTION WHEN undefined_function THEN
		RAISE EXCEPTION 'customer column "%" has type %, which cannot be sorted', m.customer_column, ct
			USING ERRCODE = 'datatype_mismatch', DETAIL = 'Customer ids need a type with a btree ordering.';
	END;
	RETURN ct;
END $$;

-- The model's relations: <name>_tiers (current tiers), <name>_summary
-- (per-customer summary, the input of incremental rescoring) and
-- <name>_queue (customers whose transactions changed since the last run).
-- The extension owner owns them (so no model owner can swap them for views
-- or hang triggers on them); the model owner gets DML on its own.  Safe for
-- anyone to call: it only makes the missing relations of an existing model.
CREATE FUNCTION segtier._create_relations(model text) RETURNS void
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

-- Drops the relations of a model that no longer exists (drop_model deletes
-- the model row first, with the caller's rights).
CREATE FUNCTION segtier._drop_relations(model text) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, segtier, pg_temp AS $$
DECLARE
	suffix text;
BEGIN
	IF EXISTS (SELECT 1 FROM segtier.model x WHERE x.name = model) THEN
		RAISE EXCEPTION 'model "%" still exists', model USING ERRCODE = 'object_in_use';
	END IF;
	FOREACH suffix IN ARRAY ARRAY['_tiers', '_summary', '_queue'] LOOP
		EXECUTE format('DROP TABLE IF EXISTS segtier_data.%I', model || suffix);
	END LOOP;
END $$;

-- Statement triggers with transition tables enqueue changed customers;
-- TRUNCATE marks the model for a full refresh.
CREATE FUNCTION segtier._capture() RETURNS trigger
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

-- Statement triggers on a partitioned (or inheritance) parent do not fire
-- for rows written straight into a child, so every child gets them too.
CREATE FUNCTION segtier._capture_targets(m segtier.model) RETURNS SETOF regclass
LANGUAGE sql STABLE PARALLEL SAFE SET search_path = pg_catalog, segtier, pg_temp AS $$
	WITH RECURSIVE tree(oid) AS (
		SELECT m.source::oid
		UNION
		SELECT i.inhrelid FROM pg_inherits i JOIN tree ON i.inhparent = tree.oid
	)
	SELECT c.oid::regclass FROM tree JOIN pg_class c USING (oid) WHERE c.relkind IN ('r', 'p') ORDER BY c.oid
$$;

-- Places a model's capture triggers on its source and partitions (enable)
-- or takes them off.  Its triggers elsewhere (a child detached since) or
-- for another customer column are dropped where the role owns the table;
-- by their exact names, as model "a"'s prefix segtier_a_ begins model
-- "a_b"'s names too.  Triggers already in place stay: a role with only the
-- TRIGGER privilege on a table may create triggers there but not drop them.
CREATE FUNCTION segtier._set_capture(m segtier.model, enable boolean) RETURNS void
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

CREATE FUNCTION segtier._create_model(name text, source regclass, customer_column name, time_column name,
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
-- Relation names in options are resolved on the caller's search_path, so
-- this wrapper has no SET clause and qualifies every name it uses.  A name
-- that is not even valid syntax is left for _check_option to refuse (22023).
CREATE FUNCTION segtier._resolve_options(o jsonb) RETURNS jsonb
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

CREATE FUNCTION segtier.create_model(name text, source regclass, customer_column name, time_column name,
	amount_column name, options jsonb DEFAULT '{}') RETURNS void
LANGUAGE sql AS $$
	SELECT segtier._create_model(name, source, customer_column, time_column, amount_column,
								 segtier._resolve_options(options))
$$;
COMMENT ON FUNCTION segtier.create_model(text, regclass, name, name, name, jsonb) IS
'register a model: the source of transactions, its customer, time and amount columns, and options (segtier.model_option)';

CREATE FUNCTION segtier._get_model(model text) RETURNS segtier.model
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

-- Options are merged into the model's own; a JSON null removes a key (its
-- default applies again).
CREATE FUNCTION segtier._alter_model(name text, options jsonb) RETURNS void
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
CREATE FUNCTION segtier.alter_model(name text, options jsonb) RETURNS void
LANGUAGE sql AS $$
	SELECT segtier._alter_model(name, segtier._resolve_options(options))
$$;
COMMENT ON FUNCTION segtier.alter_model(text, jsonb) IS
'change a model''s options (merged into the current ones; null removes a key); a change of time_zone, churn_months, margin_column or capture makes the next refresh full';

-- History and runs stay (they are the audit trail); the relations go.
CREATE FUNCTION segtier.drop_model(name text) RETURNS void
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
COMMENT ON FUNCTION segtier.drop_model(text) IS
'drop a model, its current tiers and its capture triggers; tier_history and refresh_runs keep its rows';

-- Readers may not read segtier.model: the models whose tiers the role reads.
CREATE FUNCTION segtier.tiers(model text) RETURNS regclass
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
COMMENT ON FUNCTION segtier.tiers(text) IS 'the relation holding a model''s current tiers (customer id in its own type)';

-- The levels of a tier scheme, lowest first, as an array indexed by score.
CREATE FUNCTION segtier._levels(scheme text) RETURNS segtier.tier[]
LANGUAGE sql STABLE PARALLEL SAFE SET search_path = pg_catalog, segtier, pg_temp AS $$
	SELECT array_agg(segtier.tier(s.name, l.name) ORDER BY l.rank)
	FROM segtier.tier_level l JOIN segtier.tier_scheme s USING (scheme_id)
	WHERE s.name = scheme
$$;

CREATE FUNCTION segtier._jsonb_floats(v jsonb) RETURNS float8[]
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
	hysteresis_days int,
	tiers regclass,
	run_id bigint
);
COMMENT ON TYPE segtier._scoring IS 'internal: the settings and population statistics of one scoring pass';

CREATE FUNCTION segtier._rescore(cfg segtier._scoring, query text) RETURNS SETOF record
	AS 'MODULE_PATHNAME', 'segtier_rescore' LANGUAGE C VOLATILE STRICT;
COMMENT ON FUNCTION segtier._rescore(segtier._scoring, text) IS
'internal: scores the rows of query (features and the ctid of the customer''s current tiers row; of hash partition $1 of $2, for parallel workers), inserts the new and updates the changed rows of the tiers table, and returns the new and removed customers and the history of all';

-- Whether a customer id falls in hash partition part (0-based) of nparts,
-- by its type's hash opclass: equal ids fall in the same one.
CREATE FUNCTION segtier._in_part(customer anyelement, part int, nparts int) RETURNS boolean
	AS 'MODULE_PATHNAME', 'segtier_in_part' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION segtier._in_part(anyelement, int, int) IS
'internal: whether a customer id is in hash partition part of nparts (by the hash opclass of its type)';

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

/*
 * The features of the customers in <model>_summary (and, with a customers
 * table, of the prospects) as SQL text: one definition for the statistics
 * and for the scoring pass.  subset names a table of the customers to keep;
 * parted keeps those of hash partition $1 of $2 (segtier._in_part), which
 * the scoring pass's parallel workers each read.
 */
CREATE FUNCTION segtier._features(m segtier.model, o jsonb, as_of timestamptz, subset text, parted boolean)
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
CREATE FUNCTION segtier._refresh_model(model text, force_full boolean, run_id bigint) RETURNS bigint
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

-- A refresh's per-customer sums (purchase_summary, the margin, period_spend
-- by month) in one pass over scan's rows, or by the grouped query when they
-- outgrow hash_mem, written into target; see summarize.c and _refresh_model.
CREATE FUNCTION segtier._summarize(target regclass, scan text, grouped text, time_zone text,
								   as_of timestamptz, month_starts timestamptz[]) RETURNS bigint
	AS 'MODULE_PATHNAME', 'segtier_summarize_into' LANGUAGE C VOLATILE STRICT;

-- The numeric -> float8 cast without its detour through text for decimals
-- of up to 15 digits (others take the cast): the statistics cast every amount.
CREATE FUNCTION segtier._float8(numeric) RETURNS float8
	AS 'MODULE_PATHNAME', 'numeric_float8_fast' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

-- Log features standardized with (mean, sd) pairs, for k-means; the scoring
-- pass computes the same in C (segtier_cluster_point).
CREATE FUNCTION segtier._cluster_features(recency float8, frequency float8, monetary numeric, stdz float8[])
RETURNS float8[]
	AS 'MODULE_PATHNAME', 'cluster_features' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;

-- A readable name of a standardized (recency, frequency, monetary) centroid.
CREATE FUNCTION segtier._cluster_label(c float8[]) RETURNS text
LANGUAGE sql IMMUTABLE PARALLEL SAFE SET search_path = pg_catalog, segtier, pg_temp AS $$
	SELECT concat_ws(', ',
		CASE WHEN c[1] < -0.5 THEN 'recent' WHEN c[1] > 0.5 THEN 'lapsed' ELSE 'recency average' END,
		CASE WHEN c[2] > 0.5 THEN 'frequent' WHEN c[2] < -0.5 THEN 'rare' ELSE 'frequency average' END,
		CASE WHEN c[3] > 0.5 THEN 'high spend' WHEN c[3] < -0.5 THEN 'low spend' ELSE 'spend average' END)
$$;

CREATE FUNCTION segtier.refresh(model text DEFAULT NULL, "full" boolean DEFAULT false) RETURNS bigint
LANGUAGE plpgsql SET search_path = pg_catalog, segtier, pg_temp AS $$
DECLARE
	r record;
	v_run bigint;
	msg text;
BEGIN
	IF model IS NOT NULL THEN
		RETURN segtier._refresh_model(model, coalesce("full", false), NULL);
	END IF;
	-- every model: one failing model is recorded and the others go on
	FOR r IN SELECT m.name FROM segtier.model m ORDER BY m.name LOOP
		BEGIN
			v_run := segtier._refresh_model(r.name, coalesce("full", false), NULL);
		EXCEPTION WHEN OTHERS THEN
			GET STACKED DIAGNOSTICS msg = MESSAGE_TEXT;
			v_run := segtier._run_start(r.name);
			PERFORM segtier._run_failed(v_run, msg);
			RAISE WARNING 'refresh of model "%" failed: %', r.name, msg;
		END;
	END LOOP;
	RETURN v_run;
END $$;
COMMENT ON FUNCTION segtier.refresh(text, boolean) IS
'refresh one model (NULL: every model, recording failures and going on) and return the run id of the last run; full => true rescans the source instead of using captured changes; a second refresh of the same model waits for the first';

-- The background worker's side of a run (it commits each step apart).
CREATE FUNCTION segtier._run_start(model text) RETURNS bigint
LANGUAGE sql SET search_path = pg_catalog, segtier, pg_temp AS $$
	INSERT INTO segtier.refresh_runs (model) VALUES (model) RETURNING run_id
$$;

CREATE FUNCTION segtier._run_failed(run_id bigint, error text) RETURNS void
LANGUAGE sql SET search_path = pg_catalog, segtier, pg_temp AS $$
	WITH r AS (
		UPDATE segtier.refresh_runs r SET status = 'failed', finished = clock_timestamp(), error = _run_failed.error
		WHERE r.run_id = _run_failed.run_id RETURNING r.model, r.run_id)
	SELECT pg_notify('segtier', jsonb_build_object('model', model, 'run_id', run_id, 'status', 'failed',
		'error', _run_failed.error)::text) FROM r
$$;

CREATE FUNCTION segtier._close_stale_runs() RETURNS int
LANGUAGE sql SET search_path = pg_catalog, segtier, pg_temp AS $$
	WITH u AS (
		UPDATE segtier.refresh_runs SET status = 'failed', finished = clock_timestamp(),
			error = 'interrupted: the run did not finish (server stop, crash or worker termination)'
		WHERE status = 'running' RETURNING 1)
	SELECT count(*)::int FROM u
$$;

-- Models due now, oldest due first; after n consecutive failures the
-- interval doubles n times (at most 64 times the interval, one day cap).
CREATE FUNCTION segtier._worker_due_models() RETURNS TABLE (model text)
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

CREATE FUNCTION segtier._customer_text(model text, customer text) RETURNS text
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

CREATE FUNCTION segtier.set_override(model text, customer text, tier segtier.tier, reason text,
	expires timestamptz DEFAULT NULL) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, segtier, pg_temp AS $$
DECLARE
	m segtier.model;
	o jsonb;
	sch text;
BEGIN
	PERFORM pg_advisory_xact_lock(1936024946, hashtext(model));
	m := segtier._get_model(model);
	o := segtier._effective_options(m);
	IF customer IS NULL OR tier IS NULL OR reason IS NULL THEN
		RAISE EXCEPTION 'customer, tier and reason of an override must not be NULL' USING ERRCODE = 'null_value_not_allowed';
	END IF;
	sch := CASE segtier.tier_scheme(tier)
		WHEN o->>'value_scheme' THEN 'value_class'
		WHEN o->>'pyramid_scheme' THEN 'pyramid'
		WHEN 'lifecycle' THEN 'lifecycle' END;
	IF sch IS NULL THEN
		RAISE EXCEPTION 'model "%" has no tier column of scheme "%"', model, segtier.tier_scheme(tier)
			USING ERRCODE = 'invalid_parameter_value',
				  HINT = format('Its tier schemes are %s, %s and lifecycle.', o->>'value_scheme', o->>'pyramid_scheme');
	END IF;
	IF expires IS NOT NULL AND expires <= now() THEN
		RAISE EXCEPTION 'override expiry % is not in the future', expires USING ERRCODE = 'invalid_parameter_value';
	END IF;
	INSERT INTO segtier.tier_override (model, customer, scheme, tier, reason, expires)
	VALUES (m.name, segtier._customer_text(m.name, customer), sch, tier::text, reason, expires)
	ON CONFLICT ON CONSTRAINT tier_override_pkey DO UPDATE
		SET tier = EXCLUDED.tier, reason = EXCLUDED.reason, expires = EXCLUDED.expires,
			set_by = current_user, set_at = now(), cleared_by = NULL;
END $$;
COMMENT ON FUNCTION segtier.set_override(text, text, segtier.tier, text, timestamptz) IS
'hold a customer at a tier (of the model''s value, pyramid or lifecycle scheme) until expires (NULL = until cleared); applied and recorded in tier_history by the next refresh';

CREATE FUNCTION segtier.clear_override(model text, customer text, scheme text DEFAULT NULL) RETURNS bigint
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
COMMENT ON FUNCTION segtier.clear_override(text, text, text) IS
'end a customer''s overrides (of one tier column: value_class, pyramid or lifecycle; NULL: all); the next refresh returns it to its score and records who cleared it';

CREATE FUNCTION segtier.purge_history(model text DEFAULT NULL) RETURNS bigint
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
COMMENT ON FUNCTION segtier.purge_history(text) IS
'delete tier_history rows older than each model''s history_retention option (a dropped model''s rows stay, also under a re-used name); returns the rows deleted (only roles with DELETE on tier_history, i.e. the DBA, can run it)';

-- Every model's current tiers, customer id as text.
CREATE FUNCTION segtier._all_tiers() RETURNS TABLE (
	model text, customer text, recency_days float8, frequency bigint, monetary numeric, value numeric,
	rfm segtier.rfm, rfm_segment text, value_class segtier.tier, pyramid segtier.tier, lifecycle segtier.tier,
	churn_risk boolean, churn_reason text, p_alive float8, expected_purchases float8, clv float8,
	cluster int, cluster_label text, held text[], overridden text[], computed_at timestamptz, run_id bigint)
LANGUAGE plpgsql STABLE PARALLEL SAFE SET search_path = pg_catalog, segtier, pg_temp AS $$
DECLARE
	m record;
BEGIN
	-- with the caller's rights: the models whose tiers it may read
	FOR m IN SELECT x.name FROM segtier._model_names() x(name) ORDER BY 1 LOOP
		CONTINUE WHEN to_regclass(format('segtier_data.%I', m.name || '_tiers')) IS NULL
			OR NOT has_table_privilege(format('segtier_data.%I', m.name || '_tiers'), 'SELECT');
		RETURN QUERY EXECUTE format(
			'SELECT %L::text, customer::text, recency_days, frequency, monetary, value, rfm, rfm_segment,
					value_class, pyramid, lifecycle, churn_risk, churn_reason, p_alive, expected_purchases, clv,
					cluster, cluster_label, held, overridden, computed_at, run_id
			 FROM segtier_data.%I', m.name, m.name || '_tiers');
	END LOOP;
END $$;

CREATE VIEW segtier.customer_tiers AS SELECT * FROM segtier._all_tiers();
COMMENT ON VIEW segtier.customer_tiers IS 'current tiers of every model, customer id as text (segtier.tiers(model) has one model in its own id type)';
COMMENT ON COLUMN segtier.customer_tiers.model IS 'model';
COMMENT ON COLUMN segtier.customer_tiers.customer IS 'customer id as text';
COMMENT ON COLUMN segtier.customer_tiers.recency_days IS 'days from the last purchase to the run''s as-of time';
COMMENT ON COLUMN segtier.customer_tiers.frequency IS 'purchase days (or transactions)';
COMMENT ON COLUMN segtier.customer_tiers.monetary IS 'net amount (or average per purchase)';
COMMENT ON COLUMN segtier.customer_tiers.value IS 'value ranked by value_class and pyramid';
COMMENT ON COLUMN segtier.customer_tiers.rfm IS 'RFM scores';
COMMENT ON COLUMN segtier.customer_tiers.rfm_segment IS 'RFM segment';
COMMENT ON COLUMN segtier.customer_tiers.value_class IS 'ABC / Pareto value class';
COMMENT ON COLUMN segtier.customer_tiers.pyramid IS 'value pyramid tier';
COMMENT ON COLUMN segtier.customer_tiers.lifecycle IS 'lifecycle stage';
COMMENT ON COLUMN segtier.customer_tiers.churn_risk IS 'churn rule fired';
COMMENT ON COLUMN segtier.customer_tiers.churn_reason IS 'why churn_risk is set';
COMMENT ON COLUMN segtier.customer_tiers.p_alive IS 'BG/NBD probability that the customer is alive';
COMMENT ON COLUMN segtier.customer_tiers.expected_purchases IS 'expected purchases over the horizon';
COMMENT ON COLUMN segtier.customer_tiers.clv IS 'predicted discounted value over the horizon';
COMMENT ON COLUMN segtier.customer_tiers.cluster IS 'k-means cluster';
COMMENT ON COLUMN segtier.customer_tiers.cluster_label IS 'what the cluster looks like';
COMMENT ON COLUMN segtier.customer_tiers.held IS 'tier columns kept up by hysteresis';
COMMENT ON COLUMN segtier.customer_tiers.overridden IS 'tier columns set by a manual override';
COMMENT ON COLUMN segtier.customer_tiers.computed_at IS 'when the row was last written';
COMMENT ON COLUMN segtier.customer_tiers.run_id IS 'run that last wrote the row';

CREATE VIEW segtier.tier_summary AS
SELECT t.model, x.scheme, x.tier,
	   count(*) AS customers,
	   round(count(*) / sum(count(*)) OVER (PARTITION BY t.model, x.scheme), 4) AS customer_share,
	   sum(t.value) AS value,
	   round(sum(t.value) / nullif(sum(sum(t.value)) OVER (PARTITION BY t.model, x.scheme), 0), 4) AS value_share
FROM segtier.customer_tiers t,
	 LATERAL (VALUES ('value_class', t.value_class), ('pyramid', t.pyramid), ('lifecycle', t.lifecycle)) x(scheme, tier)
GROUP BY t.model, x.scheme, x.tier;
COMMENT ON VIEW segtier.tier_summary IS 'per model, tier column and tier: customers and value, and their shares (is 20 % of customers 80 % of value?)';
COMMENT ON COLUMN segtier.tier_summary.model IS 'model';
COMMENT ON COLUMN segtier.tier_summary.scheme IS 'tier column: value_class, pyramid or lifecycle';
COMMENT ON COLUMN segtier.tier_summary.tier IS 'tier';
COMMENT ON COLUMN segtier.tier_summary.customers IS 'customers in the tier';
COMMENT ON COLUMN segtier.tier_summary.customer_share IS 'share of the model''s customers';
COMMENT ON COLUMN segtier.tier_summary.value IS 'value of the tier''s customers';
COMMENT ON COLUMN segtier.tier_summary.value_share IS 'share of the model''s value';

-- with the caller's rights, so that the history's row security applies
CREATE VIEW segtier.tier_transitions WITH (security_invoker) AS
SELECT h.model, h.run_id, h.scheme, h.from_tier, h.to_tier, count(*) AS customers
FROM segtier.tier_history h
WHERE h.from_tier IS DISTINCT FROM h.to_tier
GROUP BY h.model, h.run_id, h.scheme, h.from_tier, h.to_tier;
COMMENT ON VIEW segtier.tier_transitions IS 'per run and tier column: how many customers moved from one tier to another (the migration matrix)';
COMMENT ON COLUMN segtier.tier_transitions.model IS 'model';
COMMENT ON COLUMN segtier.tier_transitions.run_id IS 'refresh run';
COMMENT ON COLUMN segtier.tier_transitions.scheme IS 'tier column';
COMMENT ON COLUMN segtier.tier_transitions.from_tier IS 'tier before (NULL: new customer)';
COMMENT ON COLUMN segtier.tier_transitions.to_tier IS 'tier after (NULL: removed customer)';
COMMENT ON COLUMN segtier.tier_transitions.customers IS 'customers who moved';

-- Roles: readers see every model's tiers, history and runs; admins create, refresh and
-- override their own models and see their tiers, history and runs.
CREATE FUNCTION segtier._grant_views(role regrole) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, segtier, pg_temp AS $$
BEGIN
	IF role IS NULL THEN
		RAISE EXCEPTION 'role must not be NULL' USING ERRCODE = 'null_value_not_allowed';
	END IF;
	EXECUTE format('GRANT SELECT ON segtier.customer_tiers, segtier.tier_summary, segtier.tier_transitions,
		segtier.tier_history, segtier.refresh_runs, segtier.tier_scheme, segtier.tier_level, segtier.model_option TO %s', role);
	EXECUTE format('GRANT USAGE ON SCHEMA segtier_data TO %s', role);
END $$;

CREATE FUNCTION segtier.grant_reader(role regrole) RETURNS void
LANGUAGE plpgsql SET search_path = pg_catalog, segtier, pg_temp AS $$
DECLARE
	extowner regrole := (SELECT e.extowner FROM pg_extension e WHERE e.extname = 'segtier');
BEGIN
	PERFORM segtier._grant_views(role);
	EXECUTE format('GRANT SELECT ON ALL TABLES IN SCHEMA segtier_data TO %s', role);
	EXECUTE format('ALTER DEFAULT PRIVILEGES FOR ROLE %s IN SCHEMA segtier_data GRANT SELECT ON TABLES TO %s', extowner, role);
END $$;
COMMENT ON FUNCTION segtier.grant_reader(regrole) IS 'let a role (e.g. a BI tool) read every model''s tiers, the views, history and runs';

CREATE FUNCTION segtier.grant_admin(role regrole) RETURNS void
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
COMMENT ON FUNCTION segtier.grant_admin(regrole) IS 'let a role create, alter, drop, refresh and override its own models and read their tiers (row security limits it to the models it owns)';
COMMENT ON FUNCTION segtier._grant_views(regrole) IS 'the grants readers and admins share';
COMMENT ON FUNCTION segtier._model_names() IS 'names of all models, for customer_tiers and the models whose history and runs the caller may read';
COMMENT ON FUNCTION segtier._model_since_runs() IS 'every model''s since_run by name, for the row security of the history and runs (rows of a name up to it are a dropped model''s)';
COMMENT ON FUNCTION segtier._readable_models() IS 'models whose tiers the caller may read, and so their history and runs';
COMMENT ON FUNCTION segtier._reads_every_model() IS 'whether the caller reads every model (grant_reader), and so the history and runs of dropped models';
COMMENT ON FUNCTION segtier._drop_relations(text) IS 'drop the tables of a model that no longer exists';

COMMENT ON FUNCTION segtier._bad_option(text, jsonb, text) IS 'raise 22023 naming a model option and what it expects';
COMMENT ON FUNCTION segtier._option_key(text) IS 'raise 22023 listing the valid keys for a key that is not a model option';
COMMENT ON FUNCTION segtier._check_option(text, jsonb) IS 'check one model option value; returns it normalised';
COMMENT ON FUNCTION segtier._column_type(regclass, name, text) IS 'type of a column, or 42703 naming it';
COMMENT ON FUNCTION segtier._customer_type(segtier.model) IS 'a model''s customer id type as SQL text without a modifier (bpchar for char(n))';
COMMENT ON FUNCTION segtier._model_options(segtier.model) IS 'a model''s options over the defaults, checked together but for the tier schemes they name';
COMMENT ON FUNCTION segtier._effective_options(segtier.model) IS 'a model''s options over the defaults, checked together with the tier schemes they name';
COMMENT ON FUNCTION segtier._check_options(jsonb) IS 'check every key of a model options object';
COMMENT ON FUNCTION segtier._time_expr(segtier.model, text) IS 'SQL expression of a model''s time column as timestamptz';
COMMENT ON FUNCTION segtier._check_columns(segtier.model) IS 'check a model''s customer, time and amount columns; returns the customer id type';
COMMENT ON FUNCTION segtier._create_relations(text) IS 'create the missing tiers, summary and queue tables of a model, owned by the extension owner, with DML for the model owner';
COMMENT ON FUNCTION segtier._capture() IS 'capture trigger: enqueue the customers of changed transactions; TRUNCATE marks a full refresh';
COMMENT ON FUNCTION segtier._set_capture(segtier.model, boolean) IS 'create or drop a model''s capture triggers on its source and every partition';
COMMENT ON FUNCTION segtier._capture_targets(segtier.model) IS 'the tables capture triggers go on: the source and its partitions';
COMMENT ON FUNCTION segtier._get_model(text) IS 'a model''s row, or 42704';
COMMENT ON FUNCTION segtier._levels(text) IS 'levels of a tier scheme, lowest first';
COMMENT ON FUNCTION segtier._jsonb_floats(jsonb) IS 'a JSON array of numbers as float8[] (NULL when not an array)';
COMMENT ON FUNCTION segtier._scoring_settings(segtier.model, jsonb, timestamptz, jsonb, bigint) IS 'the settings of a scoring pass: the model''s options, the statistics in a run''s params, its tiers table and run';
COMMENT ON FUNCTION segtier._features(segtier.model, jsonb, timestamptz, text, boolean) IS 'SQL text of the per-customer features of a model (optionally of the customers in a table, of hash partition $1 of $2)';
COMMENT ON FUNCTION segtier._refresh_model(text, boolean, bigint) IS 'one refresh of one model in the current transaction (the path of refresh() and the worker)';
COMMENT ON FUNCTION segtier._cluster_features(double precision, double precision, numeric, double precision[]) IS 'standardized log(1 + x) of recency, frequency and monetary (0 for a feature the same for every buyer)';
COMMENT ON FUNCTION segtier._summarize(regclass, text, text, text, timestamptz, timestamptz[]) IS 'internal: writes the per-customer sums of a refresh into target (a table without triggers, rules, row security, checks, generated columns or type modifiers) from the rows of scan (customer, time, amount, margin) in one pass, or the rows of grouped ($1 time_zone, $2 as_of, $3 month_starts) when they outgrow hash_mem; returns the source rows without a customer';
COMMENT ON FUNCTION segtier._float8(numeric) IS 'numeric to float8, the value of the cast without its detour through text';
COMMENT ON FUNCTION segtier._cluster_label(double precision[]) IS 'readable description of a standardized cluster centroid';
COMMENT ON FUNCTION segtier._run_start(text) IS 'worker: record a running run';
COMMENT ON FUNCTION segtier._run_failed(bigint, text) IS 'worker: mark a run failed with its error';
COMMENT ON FUNCTION segtier._close_stale_runs() IS 'worker: mark runs left running by a stopped worker as failed';
COMMENT ON FUNCTION segtier._worker_due_models() IS 'worker: models whose refresh interval (with back-off after failures) has passed, oldest due first';
COMMENT ON FUNCTION segtier._customer_text(text, text) IS 'a customer id in the text form of the model''s id type (checks it)';
COMMENT ON FUNCTION segtier._create_model(text, regclass, name, name, name, jsonb) IS 'create_model once relation names in options are resolved';
COMMENT ON FUNCTION segtier._alter_model(text, jsonb) IS 'alter_model once relation names in options are resolved';
COMMENT ON FUNCTION segtier._resolve_options(jsonb) IS 'relation names in model options, schema-qualified on the caller''s search_path';
COMMENT ON FUNCTION segtier._all_tiers() IS 'every model''s current tiers (behind the customer_tiers view)';

REVOKE ALL ON FUNCTION segtier.create_model(text, regclass, name, name, name, jsonb), segtier.alter_model(text, jsonb),
	segtier.drop_model(text), segtier.refresh(text, boolean), segtier.set_override(text, text, segtier.tier, text, timestamptz),
	segtier.clear_override(text, text, text), segtier.purge_history(text), segtier.grant_reader(regrole),
	segtier.grant_admin(regrole), segtier._refresh_model(text, boolean, bigint), segtier._run_start(text),
	segtier._run_failed(bigint, text), segtier._close_stale_runs(), segtier._capture(),
	segtier._create_model(text, regclass, name, name, name, jsonb), segtier._alter_model(text, jsonb),
	segtier._rescore(segtier._scoring, text), segtier._summarize(regclass, text, text, text, timestamptz, timestamptz[]),
	segtier._create_relations(text),
	segtier._drop_relations(text), segtier._set_capture(segtier.model, boolean), segtier._grant_views(regrole) FROM PUBLIC;

------------------------------------------------------------------------------
-- @worker: background worker status, wake-up and refresh progress (worker.c, progress.c)
------------------------------------------------------------------------------
CREATE FUNCTION segtier.worker_status(OUT database text, OUT pid int, OUT state text,
	OUT current_model text, OUT last_run timestamptz, OUT next_run timestamptz)
	RETURNS SETOF record
	AS 'MODULE_PATHNAME', 'segtier_worker_status' LANGUAGE C VOLATILE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION segtier.worker_status() IS
'one row per database in segtier.database: its worker''s pid (NULL when none runs), state (waiting, starting, idle, refreshing, disabled, no extension, no database, bad role, retrying, stopping), the model being refreshed, when the last refresh ended and when the worker (or the launcher) looks next; empty without shared_preload_libraries';

CREATE FUNCTION segtier.wake() RETURNS boolean
	AS 'MODULE_PATHNAME', 'segtier_wake' LANGUAGE C VOLATILE STRICT PARALLEL RESTRICTED;
COMMENT ON FUNCTION segtier.wake() IS
'ask the worker of the current database to look for due models now; false when no worker serves this database';

CREATE FUNCTION segtier.report_progress(model text, phase text, customers_done bigint, customers_total bigint)
	RETURNS void
	AS 'MODULE_PATHNAME', 'segtier_report_progress' LANGUAGE C VOLATILE PARALLEL RESTRICTED;
COMMENT ON FUNCTION segtier.report_progress(text, text, bigint, bigint) IS
'publish the phase and customer counts of this session''s running refresh in segtier.refresh_progress, until report_progress_done() or the end of the transaction (or the abort of the subtransaction that reported); counts may be NULL; does nothing without shared_preload_libraries';

CREATE FUNCTION segtier.report_progress_done() RETURNS void
	AS 'MODULE_PATHNAME', 'segtier_report_progress_done' LANGUAGE C VOLATILE STRICT PARALLEL RESTRICTED;
COMMENT ON FUNCTION segtier.report_progress_done() IS
'remove this session''s row from segtier.refresh_progress';

CREATE FUNCTION segtier._refresh_progress(OUT pid int, OUT datid oid, OUT model text, OUT phase text,
	OUT customers_done bigint, OUT customers_total bigint, OUT started timestamptz, OUT updated timestamptz)
	RETURNS SETOF record
	AS 'MODULE_PATHNAME', 'segtier_refresh_progress' LANGUAGE C VOLATILE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION segtier._refresh_progress() IS
'the shared-memory rows behind the view segtier.refresh_progress';

CREATE VIEW segtier.refresh_progress AS
	SELECT p.pid, d.datname AS database, p.model, p.phase, p.customers_done, p.customers_total,
		p.started, p.updated
	FROM segtier._refresh_progress() p
	LEFT JOIN pg_catalog.pg_database d ON d.oid = p.datid;
COMMENT ON VIEW segtier.refresh_progress IS
'one row per session running a refresh, in any database: model, phase, customers done of total, when the model''s refresh started and the last report';
GRANT SELECT ON segtier.refresh_progress TO PUBLIC;
COMMENT ON COLUMN segtier.refresh_progress.pid IS 'backend running the refresh';
COMMENT ON COLUMN segtier.refresh_progress.database IS 'its database';
COMMENT ON COLUMN segtier.refresh_progress.model IS 'model being refreshed';
COMMENT ON COLUMN segtier.refresh_progress.phase IS 'aggregate, score (which also writes the new and changed tiers rows) or write';
COMMENT ON COLUMN segtier.refresh_progress.customers_done IS 'customers done in this phase, when known';
COMMENT ON COLUMN segtier.refresh_progress.customers_total IS 'customers in this phase, when known';
COMMENT ON COLUMN segtier.refresh_progress.started IS 'when the refresh started';
COMMENT ON COLUMN segtier.refresh_progress.updated IS 'when it last reported';
