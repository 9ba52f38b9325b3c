-- What a DBA sees of the worker and of refresh progress in a server that
-- preloads segtier but lists no database in segtier.database.
SHOW segtier.naptime;
SHOW segtier.enabled;
SELECT * FROM segtier.worker_status();
SELECT segtier.wake();

-- A progress report lasts as long as its transaction.
BEGIN;
SELECT segtier.report_progress('shop', 'aggregate', 10, 200);
SELECT database = current_database() AS here, model, phase, customers_done, customers_total
FROM segtier.refresh_progress WHERE pid = pg_backend_pid();
COMMIT;
SELECT count(*) FROM segtier.refresh_progress WHERE pid = pg_backend_pid();
BEGIN;
SELECT segtier.report_progress('shop', 'score', NULL, NULL);
SELECT model, phase, customers_done, customers_total
FROM segtier.refresh_progress WHERE pid = pg_backend_pid();
ROLLBACK;
SELECT count(*) FROM segtier.refresh_progress WHERE pid = pg_backend_pid();
