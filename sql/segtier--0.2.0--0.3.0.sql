-- segtier 0.2.0 -> 0.3.0
--
-- The text -> rfm cast calls a function instead of an I/O conversion (which
-- copied the text into a cstring first).  The rest of 0.3.0 is in the module:
-- the scoring pass's memo of BG/NBD numbers, P(alive) computed once per CLV,
-- history arrays left NULL for rows without history.
\echo Use "ALTER EXTENSION segtier UPDATE TO '0.3.0'" to load this file. \quit

CREATE FUNCTION segtier.rfm(text) RETURNS segtier.rfm
	AS 'MODULE_PATHNAME', 'rfm_from_text' LANGUAGE C IMMUTABLE STRICT PARALLEL SAFE;
COMMENT ON FUNCTION segtier.rfm(text) IS 'the text -> rfm cast: the forms rfm_in accepts';

DROP CAST (text AS segtier.rfm);
CREATE CAST (text AS segtier.rfm) WITH FUNCTION segtier.rfm(text);
