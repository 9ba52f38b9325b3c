BEGIN;
SET search_path = public, segtier;
SELECT plan(23);

-- GUCs: defaults, set only in the server configuration, prefix reserved
SELECT is(current_setting('segtier.naptime'), '1min', 'naptime defaults to 60 s');
SELECT is(current_setting('segtier.enabled'), 'on', 'enabled by default');
SELECT is(current_setting('segtier.database'), '', 'no database by default');
SELECT is(current_setting('segtier.role'), '', 'no role by default: the bootstrap superuser');
SELECT throws_ok($$SET segtier.naptime = 5$$, '55P02', 'parameter "segtier.naptime" cannot be changed now',
	'naptime is set in the server configuration');
SELECT throws_ok($$SET segtier.database = 'shop'$$, '55P02', 'parameter "segtier.database" cannot be changed now',
	'so is the database list');
SELECT throws_ok($$SET segtier.colour = 'red'$$, '42602', 'invalid configuration parameter name "segtier.colour"',
	'the segtier prefix is reserved');

-- preloaded, but no database configured
SELECT is((SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'segtier launcher'), 1::bigint,
	'the launcher runs when preloaded');
SELECT is((SELECT count(*) FROM segtier.worker_status()), 0::bigint, 'no database configured: no worker');
SELECT is(segtier.wake(), false, 'wake() finds no worker for this database');

-- progress reports
SELECT throws_ok($$SELECT segtier.report_progress(NULL, 'aggregate', 1, 2)$$, '22004',
	'model and phase must not be null', 'a report names its model');
SELECT throws_ok($$SELECT segtier.report_progress('shop', NULL, 1, 2)$$, '22004',
	'model and phase must not be null', 'and its phase');
SELECT segtier.report_progress('shop', 'aggregate', 10, 200);
SELECT results_eq($$SELECT database::text, model, phase, customers_done, customers_total, started = updated
				   FROM segtier.refresh_progress WHERE pid = pg_backend_pid()$$,
	$$VALUES (current_database()::text, 'shop', 'aggregate', 10::bigint, 200::bigint, true)$$,
	'the view shows the session''s refresh');
CREATE TEMP TABLE first_report AS SELECT started FROM segtier.refresh_progress WHERE pid = pg_backend_pid();
SELECT segtier.report_progress('shop', 'score', NULL, NULL);
SELECT results_eq($$SELECT phase, customers_done IS NULL, customers_total IS NULL,
						  started = (SELECT started FROM first_report), updated > started
				   FROM segtier.refresh_progress WHERE pid = pg_backend_pid()$$,
	$$VALUES ('score', true, true, true, true)$$,
	'a later phase of the same model keeps its start; unknown counts are NULL');
SELECT segtier.report_progress('other', 'aggregate', 0, 5);
SELECT ok((SELECT started > (SELECT started FROM first_report) FROM segtier.refresh_progress
		   WHERE pid = pg_backend_pid()), 'another model starts anew');
SELECT segtier.report_progress(repeat('é', 100), repeat('p', 100), 1, 1);
SELECT is((SELECT octet_length(model) || ' ' || length(model) || ' ' || length(phase) FROM segtier.refresh_progress
		   WHERE pid = pg_backend_pid()), '126 63 63', 'long names are clipped on a character boundary');
SELECT segtier.report_progress_done();
SELECT is((SELECT count(*) FROM segtier.refresh_progress WHERE pid = pg_backend_pid()), 0::bigint,
	'report_progress_done() removes the row');

-- a report does not outlive the subtransaction that made it
SAVEPOINT a;
SELECT segtier.report_progress('shop', 'aggregate', 1, 2);
ROLLBACK TO SAVEPOINT a;
SELECT is((SELECT count(*) FROM segtier.refresh_progress WHERE pid = pg_backend_pid()), 0::bigint,
	'rolling back the subtransaction that reported removes the row');
SELECT segtier.report_progress('shop', 'aggregate', 1, 2);
SAVEPOINT b;
ROLLBACK TO SAVEPOINT b;
SELECT is((SELECT model FROM segtier.refresh_progress WHERE pid = pg_backend_pid()), 'shop',
	'an inner rollback keeps an outer report');
SAVEPOINT c;
SELECT segtier.report_progress('inner', 'score', 1, 2);
RELEASE SAVEPOINT c;
SAVEPOINT d;
ROLLBACK TO SAVEPOINT d;
SELECT is((SELECT model FROM segtier.refresh_progress WHERE pid = pg_backend_pid()), 'inner',
	'a released subtransaction''s report survives a sibling''s rollback');
SAVEPOINT f;
SAVEPOINT g;
SELECT segtier.report_progress('deep', 'score', 1, 2);
RELEASE SAVEPOINT g;
ROLLBACK TO SAVEPOINT f;
SELECT is((SELECT count(*) FROM segtier.refresh_progress WHERE pid = pg_backend_pid()), 0::bigint,
	'rolling back an enclosing subtransaction removes a released report');

-- declarations tell the truth
SELECT is((SELECT string_agg(p.proname || ':' || p.provolatile::text || p.proparallel::text, ' ' ORDER BY p.proname)
		   FROM pg_proc p WHERE p.pronamespace = 'segtier'::regnamespace
		   AND p.proname IN ('worker_status', 'wake', 'report_progress', 'report_progress_done', '_refresh_progress')),
	'_refresh_progress:vs report_progress:vr report_progress_done:vr wake:vr worker_status:vs',
	'volatility and parallel safety');
SELECT ok(has_table_privilege('public', 'segtier.refresh_progress', 'SELECT'), 'everyone may read refresh_progress');

SELECT * FROM finish();
ROLLBACK;
