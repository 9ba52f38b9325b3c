-- segtier 0.7.0 -> 0.8.0
--
-- segtier._features leaves out the DISTINCT of the prospects' ids when a
-- unique index of the customers table says they are distinct already: the
-- statistics query then aggregates in parallel workers.  Same rows.
\echo Use "ALTER EXTENSION segtier UPDATE TO '0.8.0'" to load this file. \quit

/*
 * The features of the customers in <model>_summary (and, with a customers
 * table, of the prospects) as SQL text: one definition for the statistics
 * and for the scoring pass.  subset names a table of the customers to keep;
 * parted keeps those of hash partition $1 of $2 (segtier._in_part), which
 * the scoring pass's parallel workers each read.
 */
CREATE OR REPLACE FUNCTION segtier._features(m segtier.model, o jsonb, as_of timestamptz, subset text, parted boolean)
RETURNS text
LANGUAGE plpgsql STABLE PARALLEL SAFE SET search_path = pg_catalog, segtier, pg_temp AS $$
DECLARE
	sumt text := format('segtier_data.%I', m.name || '_summary');
	key text := coalesce(o->>'customers_key', m.customer_column);
	ctype regtype := segtier._column_type(m.source, m.customer_column, 'customer');
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
			  AND a.attname = key AND a.atttypid = ctype AND i.indcollation[0] = a.attcollation
			  AND am.amname = 'btree' AND oc.opcdefault AND oc.opcintype = ctype
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
