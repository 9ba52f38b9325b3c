-- The hand-written baseline a DBA would write instead of segtier: one
-- grouping pass, ntile(5) windows for R, F and M, a cumulative-sum window
-- for the ABC classes (70 % / 90 % of value), CASE expressions for the
-- 11-segment RFM map and the lifecycle stage, into a table.
-- psql variable: as_of (the scoring time).  Reads crm.orders (test/gen/crm.sql).
DROP TABLE IF EXISTS bench_baseline;
CREATE TABLE bench_baseline AS
WITH g AS (
	SELECT customer_id, min(ordered_at) AS first_purchase, max(ordered_at) AS last_purchase,
		   count(*) AS frequency, sum(amount) AS monetary
	FROM crm.orders
	GROUP BY customer_id
), w AS (
	SELECT g.*,
		   extract(epoch FROM :'as_of'::timestamptz - last_purchase) / 86400 AS recency_days,
		   ntile(5) OVER (ORDER BY last_purchase) AS r,
		   ntile(5) OVER (ORDER BY frequency) AS f,
		   ntile(5) OVER (ORDER BY monetary) AS m,
		   sum(monetary) OVER (ORDER BY monetary DESC, customer_id ROWS UNBOUNDED PRECEDING)
			   / nullif(sum(monetary) OVER (), 0) AS value_share
	FROM g
)
SELECT customer_id, first_purchase, last_purchase, recency_days, frequency, monetary, r, f, m,
	   CASE WHEN r = 5 AND (f + m + 1) / 2 >= 4 THEN 'Champions'
			WHEN r = 5 AND (f + m + 1) / 2 = 1 THEN 'New Customers'
			WHEN r IN (4, 5) AND (f + m + 1) / 2 IN (2, 3) THEN 'Potential Loyalist'
			WHEN r = 4 AND (f + m + 1) / 2 = 1 THEN 'Promising'
			WHEN r IN (3, 4) AND (f + m + 1) / 2 >= 4 THEN 'Loyal Customers'
			WHEN r = 3 AND (f + m + 1) / 2 = 3 THEN 'Need Attention'
			WHEN r = 3 THEN 'About To Sleep'
			WHEN (f + m + 1) / 2 = 5 THEN 'Can''t Lose Them'
			WHEN (f + m + 1) / 2 >= 3 THEN 'At Risk'
			WHEN r = 1 AND (f + m + 1) / 2 = 1 THEN 'Lost'
			ELSE 'Hibernating' END AS rfm_segment,
	   CASE WHEN value_share <= 0.7 THEN 'A' WHEN value_share <= 0.9 THEN 'B' ELSE 'C' END AS value_class,
	   CASE WHEN recency_days > 365 THEN 'churned'
			WHEN recency_days > 180 THEN 'at_risk'
			WHEN first_purchase > :'as_of'::timestamptz - interval '90 days' THEN 'new'
			WHEN frequency >= 5 THEN 'loyal'
			ELSE 'active' END AS lifecycle
FROM w;
