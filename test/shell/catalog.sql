-- One line per member object of the segtier extension with a digest of its
-- definition, ACL and comment, then the option and built-in tier rows: equal
-- output means equal extensions (test/shell/upgrade.sh).
WITH ext AS (SELECT oid FROM pg_extension WHERE extname = 'segtier'),
m AS (SELECT d.classid, d.objid FROM pg_depend d, ext WHERE d.refclassid = 'pg_extension'::regclass AND d.refobjid = ext.oid AND d.deptype = 'e')
SELECT pg_describe_object(m.classid, m.objid, 0) || ' :: ' || md5(coalesce(CASE m.classid
	WHEN 'pg_proc'::regclass THEN (
		SELECT CASE WHEN p.prokind = 'a' THEN (SELECT format('agg %s %s %s %s %s %s %s', a.aggtransfn, a.aggfinalfn, a.aggcombinefn, a.aggserialfn, a.aggdeserialfn, a.aggtranstype::regtype, a.aggtransspace) FROM pg_aggregate a WHERE a.aggfnoid = p.oid)
			ELSE pg_get_functiondef(p.oid) END || ' acl=' || coalesce(p.proacl::text, '-')
		FROM pg_proc p WHERE p.oid = m.objid)
	WHEN 'pg_cast'::regclass THEN (
		SELECT format('%s %s %s', c.castfunc::regprocedure, c.castcontext, c.castmethod) FROM pg_cast c WHERE c.oid = m.objid)
	WHEN 'pg_type'::regclass THEN (
		SELECT format('%s %s %s %s', t.typtype, t.typlen, t.typbyval, t.typalign) || coalesce((SELECT string_agg(a.attname || ' ' || format_type(a.atttypid, a.atttypmod), ', ' ORDER BY a.attnum) FROM pg_attribute a WHERE a.attrelid = t.typrelid AND a.attnum > 0 AND NOT a.attisdropped), '')
		FROM pg_type t WHERE t.oid = m.objid)
	WHEN 'pg_class'::regclass THEN (
		SELECT format('%s %s acl=%s ', c.relkind, c.reloptions, c.relacl) || coalesce(CASE WHEN c.relkind = 'v' THEN pg_get_viewdef(c.oid) END, '')
			|| coalesce((SELECT string_agg(a.attname || ' ' || format_type(a.atttypid, a.atttypmod) || ' ' || a.attnotnull || ' ' || coalesce(pg_get_expr(ad.adbin, ad.adrelid), '') || ' ' || coalesce(col_description(c.oid, a.attnum), ''), ', ' ORDER BY a.attnum)
				FROM pg_attribute a LEFT JOIN pg_attrdef ad ON ad.adrelid = a.attrelid AND ad.adnum = a.attnum WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped), '')
			|| coalesce((SELECT string_agg(pg_get_indexdef(i.indexrelid), '; ' ORDER BY pg_get_indexdef(i.indexrelid)) FROM pg_index i WHERE i.indrelid = c.oid), '')
			|| coalesce((SELECT string_agg(pg_get_triggerdef(g.oid), '; ' ORDER BY g.tgname) FROM pg_trigger g WHERE g.tgrelid = c.oid AND NOT g.tgisinternal), '')
			|| coalesce((SELECT string_agg(pg_get_constraintdef(k.oid), '; ' ORDER BY pg_get_constraintdef(k.oid)) FROM pg_constraint k WHERE k.conrelid = c.oid), '')
			|| coalesce((SELECT string_agg(format('%s %s %s / %s', po.polname, po.polcmd, pg_get_expr(po.polqual, po.polrelid), pg_get_expr(po.polwithcheck, po.polrelid)), '; ' ORDER BY po.polname) FROM pg_policy po WHERE po.polrelid = c.oid), '')
		FROM pg_class c WHERE c.oid = m.objid)
	END, '') || ' comment=' || coalesce(obj_description(m.objid, m.classid::regclass::text), '-')) AS sig
FROM m
UNION ALL SELECT 'model_option ' || format('%s %s %s', key, default_value, description) FROM segtier.model_option
UNION ALL SELECT 'tier ' || format('%s %s %s %s', s.name, l.name, l.rank, l.label_en) FROM segtier.tier_level l JOIN segtier.tier_scheme s USING (scheme_id)
ORDER BY 1;
