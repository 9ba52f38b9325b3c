BEGIN;
SET search_path = public, segtier;
SELECT plan(63);

CREATE ROLE st_admin NOLOGIN;
CREATE ROLE st_other NOLOGIN;
CREATE ROLE st_reader NOLOGIN;
SELECT grant_admin('st_admin');
SELECT grant_admin('st_other');
SELECT grant_reader('st_reader');
GRANT USAGE, CREATE ON SCHEMA public TO st_admin, st_other;

CREATE TABLE open_orders (cust uuid, at date, amount int);
INSERT INTO open_orders VALUES ('a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '2025-01-05', 10),
	('b0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '2025-02-05', 30);
GRANT SELECT ON open_orders TO st_admin;
CREATE TABLE secret_orders (cust int, at timestamptz, amount numeric);

-- nothing that changes anything is open to PUBLIC
SELECT is((SELECT count(*) FROM pg_proc p
		   WHERE p.pronamespace = 'segtier'::regnamespace
			 AND p.proname IN ('create_model', 'alter_model', 'drop_model', 'refresh', 'set_override',
							   'clear_override', 'purge_history', 'grant_admin', 'grant_reader')
			 AND has_function_privilege('public', p.oid, 'EXECUTE')), 0::bigint,
	'no configuration function is executable by PUBLIC');
SET ROLE st_reader;
SELECT throws_ok($$SELECT segtier.create_model('r', 'open_orders', 'cust', 'at', 'amount')$$, '42501', NULL,
	'a reader cannot create models');
RESET ROLE;

SET ROLE st_admin;
SELECT lives_ok($$SELECT segtier.create_model('own', 'open_orders', 'cust', 'at', 'amount',
	'{"as_of": "2025-03-01 00:00+00"}')$$, 'a non-superuser creates a model on a table it can read');
SELECT throws_ok($$SELECT segtier.create_model('sneaky', 'secret_orders', 'cust', 'at', 'amount')$$, '42501', NULL,
	'but not on a table it cannot read');
SELECT lives_ok($$SELECT segtier.refresh('own')$$, 'and refreshes it');
SELECT is((SELECT count(*) FROM segtier_data.own_tiers), 2::bigint, 'its tiers');
SELECT is((SELECT format_type(atttypid, atttypmod) FROM pg_attribute
		   WHERE attrelid = segtier.tiers('own') AND attname = 'customer'), 'uuid', 'uuid customer ids keep their type');
SELECT throws_ok($$UPDATE segtier.tier_history SET reason = 'x'$$, '42501', NULL, 'history cannot be updated');
SELECT throws_ok($$DELETE FROM segtier.tier_history$$, '42501', NULL, 'history cannot be deleted');
SELECT throws_ok($$SELECT segtier.purge_history()$$, '42501', NULL, 'purging is for the DBA');
RESET ROLE;

-- another admin neither sees nor refreshes it
SET ROLE st_other;
SELECT throws_ok($$SELECT segtier.refresh('own')$$, '42704', 'model "own" does not exist',
	'models of other owners are invisible');
SELECT throws_ok($$INSERT INTO segtier.tier_history (model, customer, scheme, reason) VALUES ('own', 'x', 'y', 'forged')$$,
	'42501', NULL, 'history rows of other owners'' models cannot be forged');
RESET ROLE;

-- the refresh runs with the owner's rights, even when a superuser calls it
REVOKE SELECT ON open_orders FROM st_admin;
SELECT throws_ok($$SELECT segtier.refresh('own', true)$$, '42501', NULL,
	'a superuser''s refresh of the model reads with the owner''s rights');
GRANT SELECT ON open_orders TO st_admin;

SET ROLE st_reader;
SELECT is((SELECT count(*) FROM segtier.customer_tiers WHERE model = 'own'), 2::bigint, 'a reader sees customer_tiers');
SELECT is((SELECT count(*) FROM segtier_data.own_tiers), 2::bigint, 'and the tiers tables in their own id type');
RESET ROLE;
SET ROLE st_other;
SELECT is((SELECT count(*) FROM segtier.customer_tiers WHERE model = 'own'), 0::bigint,
	'another admin does not see the model''s tiers');
SELECT is((SELECT count(*) FROM segtier.tier_history WHERE model = 'own'), 0::bigint, 'nor its history');
SELECT is((SELECT count(*) FROM segtier.tier_transitions WHERE model = 'own'), 0::bigint, 'nor its transitions');
SELECT is((SELECT count(*) FROM segtier.refresh_runs WHERE model = 'own'), 0::bigint, 'nor its runs');
WITH u AS (UPDATE segtier.refresh_runs SET customers = 0 RETURNING 1)
SELECT is(count(*), 0::bigint, 'and cannot change them') FROM u;
RESET ROLE;
-- whoever reads a model's tiers reads its history and runs: the owner, a reader
SET ROLE st_admin;
SELECT is((SELECT count(*) FROM segtier.tier_history WHERE model = 'own'), 6::bigint,
	'the owner reads its model''s history (2 new customers in 3 tier columns)');
SELECT is((SELECT sum(customers) FROM segtier.tier_transitions WHERE model = 'own'), 6::numeric,
	'and its transitions');
RESET ROLE;
SET ROLE st_reader;
SELECT is((SELECT count(*) FROM segtier.tier_history WHERE model = 'own'), 6::bigint, 'a reader reads the history');
SELECT is((SELECT sum(customers) FROM segtier.tier_transitions WHERE model = 'own'), 6::numeric, 'the transitions');
SELECT is((SELECT count(*) FROM segtier.refresh_runs WHERE model = 'own'), 1::bigint, 'and the runs');
RESET ROLE;
-- so does a role granted the model's tiers table alone
CREATE ROLE st_one NOLOGIN;
GRANT USAGE ON SCHEMA segtier_data TO st_one;
GRANT SELECT ON segtier.tier_history, segtier.refresh_runs TO st_one;
GRANT SELECT ON segtier_data.own_tiers TO st_one;
SET ROLE st_one;
SELECT is((SELECT count(*) FROM segtier.tier_history WHERE model = 'own'), 6::bigint,
	'a role granted one model''s tiers table reads that model''s history');
RESET ROLE;

-- the owner writes its tiers only through the refresh: it owns none of them
SET ROLE st_admin;
SELECT throws_ok($$CREATE TABLE segtier_data.own_copy (x int)$$, '42501', NULL, 'no objects of its own in segtier_data');
SELECT throws_ok($$DROP TABLE segtier_data.own_tiers$$, '42501', NULL, 'it cannot drop or replace its tiers table');
SELECT throws_ok($$CREATE TRIGGER t AFTER UPDATE ON segtier_data.own_tiers FOR EACH STATEMENT EXECUTE FUNCTION segtier._capture()$$,
	'42501', NULL, 'it cannot put triggers on it');
SELECT throws_ok($$UPDATE segtier.model SET options = '{"refresh_interval": "soon"}' WHERE name = 'own'$$, '22023', NULL,
	'direct writes to segtier.model are checked too');
-- an admin capturing changes on a table of its own
CREATE TABLE my_orders (cust int, at timestamptz, amount numeric);
INSERT INTO my_orders VALUES (1, '2025-01-01 00:00+00', 10);
SELECT segtier.create_model('mine', 'my_orders', 'cust', 'at', 'amount', '{"as_of": "2025-03-01 00:00+00"}');
SELECT segtier.refresh('mine');
INSERT INTO my_orders VALUES (2, '2025-01-02 00:00+00', 20);
SELECT segtier.refresh('mine');
SELECT is((SELECT full_refresh::text || ' ' || customers FROM segtier.refresh_runs WHERE model = 'mine' ORDER BY run_id DESC LIMIT 1),
	'false 2', 'a non-superuser owner of its source gets incremental refreshes');
RESET ROLE;
-- a dropped model's history and runs: the roles that read every model
SELECT segtier.drop_model('mine');
SET ROLE st_reader;
SELECT is((SELECT count(*) FROM segtier.tier_history WHERE model = 'mine'), 6::bigint,
	'a reader reads the history of a dropped model');
SELECT is((SELECT count(*) FROM segtier.refresh_runs WHERE model = 'mine'), 2::bigint, 'and its runs');
RESET ROLE;
SET ROLE st_one;
SELECT is((SELECT count(*) FROM segtier.tier_history WHERE model = 'mine'), 0::bigint,
	'a role that reads one model does not');
RESET ROLE;
SET ROLE st_admin;
SELECT is((SELECT count(*) FROM segtier.refresh_runs WHERE model = 'mine'), 0::bigint,
	'nor does its owner (the DBA and the readers keep the audit)');
RESET ROLE;
-- a new model of that name is another model: its owner neither sees nor
-- changes the old rows, the worker schedules it by its own runs, and
-- purge_history keeps the old rows
SET ROLE st_other;
CREATE TABLE other_orders (cust int, at timestamptz, amount numeric);
INSERT INTO other_orders VALUES (7, '2025-01-01 00:00+00', 10);
SELECT segtier.create_model('mine', 'other_orders', 'cust', 'at', 'amount',
	'{"as_of": "2025-03-01 00:00+00", "refresh_interval": "1 day"}');
SELECT is((SELECT count(*) FROM segtier.refresh_runs WHERE model = 'mine'), 0::bigint,
	'the owner of a new model with a dropped model''s name does not see the old runs');
WITH u AS (UPDATE segtier.refresh_runs SET customers = 0 WHERE model = 'mine' RETURNING 1)
SELECT is(count(*), 0::bigint, 'nor changes them') FROM u;
SELECT segtier.refresh('mine');
SELECT is((SELECT count(*)::text || ' ' || sum(customers) FROM segtier.refresh_runs WHERE model = 'mine'), '1 1',
	'it sees its own run');
SELECT is((SELECT string_agg(customer, ',') FROM segtier.tier_history WHERE model = 'mine'), '7,7,7',
	'and only its own history');
SELECT throws_ok($$UPDATE segtier.model SET since_run = 0 WHERE name = 'mine'$$, '42501',
	'only the owner of segtier.model may change since_run', 'an admin cannot move since_run to claim the old rows');
SELECT segtier.drop_model('mine');
INSERT INTO segtier.model (name, source, customer_column, time_column, amount_column, since_run)
VALUES ('mine', 'other_orders', 'cust', 'at', 'amount', 0);
RESET ROLE;
SELECT ok((SELECT since_run FROM segtier.model WHERE name = 'mine') > (SELECT max(run_id) FROM segtier.refresh_runs),
	'nor by inserting its model row with since_run 0 (it gets a new one)');
SELECT is((SELECT count(*) FROM segtier.tier_history WHERE model = 'mine'), 9::bigint,
	'the DBA reads every generation''s rows');
SELECT ok('mine' IN (SELECT segtier._worker_due_models()),
	'a new model is due at once, though a dropped model of its name ran just now');
INSERT INTO segtier.tier_history (model, customer, scheme, to_tier, run_id, reason, changed_at)
SELECT 'mine', 'old', 'value_class', 'x', min(run_id), 'score', timestamptz '2000-01-01' FROM segtier.refresh_runs WHERE model = 'mine'
UNION ALL
SELECT 'mine', 'new', 'value_class', 'x', since_run + 1, 'score', '2000-01-01' FROM segtier.model WHERE name = 'mine';
SELECT segtier.alter_model('mine', '{"history_retention": "1 year"}');
SELECT is(segtier.purge_history('mine'), 1::bigint, 'purge_history deletes the model''s old rows');
SELECT is((SELECT string_agg(customer, ',') FROM segtier.tier_history WHERE model = 'mine' AND changed_at < '2001-01-01'), 'old',
	'but not a dropped model''s of its name');
SELECT segtier.drop_model('mine');
-- a member of a reader role reads them; a role without USAGE on segtier_data sees no rows
CREATE ROLE st_bi_user NOLOGIN IN ROLE st_reader;
SET ROLE st_bi_user;
SELECT is((SELECT count(*) FROM segtier.tier_history WHERE model = 'mine'), 10::bigint,
	'a member of a reader role reads the history of the dropped models of that name');
RESET ROLE;
CREATE ROLE st_monitor NOLOGIN;
GRANT SELECT ON segtier.tier_history, segtier.refresh_runs TO st_monitor;
SET ROLE st_monitor;
SELECT is((SELECT count(*) FROM segtier.refresh_runs), 0::bigint,
	'a role that reads no model''s tiers sees no runs (and no error without USAGE on segtier_data)');
RESET ROLE;

-- found by review (0.14.0)
-- an admin's model on a table it may only add triggers to: the first refresh
-- keeps the triggers create_model placed (it failed with 42710), and
-- drop_model says which stay
CREATE TABLE trig_orders (cust int, at timestamptz, amount numeric);
INSERT INTO trig_orders VALUES (1, '2025-01-05', 10), (2, '2025-02-05', 30);
GRANT SELECT, TRIGGER ON trig_orders TO st_admin;
SET ROLE st_admin;
SELECT segtier.create_model('trig', 'trig_orders', 'cust', 'at', 'amount', '{"as_of": "2025-03-01 00:00+00"}');
SELECT lives_ok($$SELECT segtier.refresh('trig')$$, 'an admin refreshes a model on a table it does not own');
RESET ROLE;
INSERT INTO trig_orders VALUES (3, '2025-02-06', 5);
SET ROLE st_admin;
SELECT segtier.refresh('trig');
SELECT is((SELECT full_refresh::text || ' ' || customers FROM refresh_runs WHERE model = 'trig' ORDER BY run_id DESC LIMIT 1),
	'false 3', 'its capture triggers queue the changes');
SET LOCAL client_min_messages = error;
SELECT lives_ok($$SELECT segtier.drop_model('trig')$$, 'drop_model of it works');
RESET client_min_messages;
SELECT lives_ok($$SELECT segtier.create_model('trig', 'trig_orders', 'cust', 'at', 'amount', '{"as_of": "2025-03-01 00:00+00"}')$$,
	'and the model can be created again over the triggers left behind');
-- refresh(NULL) of an admin: a failing model is recorded and the others go on
CREATE TABLE mine (cust int, at timestamptz, amount numeric, margin numeric);
INSERT INTO mine VALUES (1, '2025-01-05', 10, 1);
SELECT segtier.create_model('mine_bad', 'mine', 'cust', 'at', 'amount', '{"as_of": "2025-03-01 00:00+00", "margin_column": "margin"}');
ALTER TABLE mine DROP COLUMN margin;
SET LOCAL client_min_messages = error;
SELECT lives_ok($$SELECT segtier.refresh()$$, 'an admin''s refresh of every model goes past a failing one');
RESET client_min_messages;
SELECT is((SELECT string_agg(model || ' ' || status, ', ' ORDER BY model) FROM (
		   SELECT DISTINCT ON (model) model, status FROM refresh_runs WHERE model IN ('mine_bad', 'trig') ORDER BY model, run_id DESC) r),
	'mine_bad failed, trig succeeded', 'recording the failure');
SELECT segtier.drop_model('mine_bad');
-- a customers table the owner cannot read
SELECT throws_ok($$SELECT segtier.alter_model('trig', '{"customers_table": "secret_orders"}')$$, '42501',
	'permission denied for public.secret_orders (the model owner must be able to read customers_table)',
	'customers_table must be readable by the owner');
-- a name taken by another owner's model, which row security hides
RESET ROLE;
SELECT segtier.create_model('hidden', 'open_orders', 'cust', 'at', 'amount');
SET ROLE st_admin;
SELECT throws_ok($$SELECT segtier.create_model('hidden', 'open_orders', 'cust', 'at', 'amount')$$, '42710',
	'model "hidden" already exists', 'a name taken by a model row security hides is 42710');
RESET ROLE;
SELECT segtier.drop_model('hidden');
-- readers name the tiers relation
SET ROLE st_reader;
SELECT is(segtier.tiers('own'), 'segtier_data.own_tiers'::regclass, 'a reader gets tiers()');
RESET ROLE;
-- a model whose owner was dropped
CREATE ROLE st_gone NOLOGIN;
SELECT grant_admin('st_gone');
GRANT SELECT ON open_orders TO st_gone;
SET ROLE st_gone;
SELECT segtier.create_model('orphan', 'open_orders', 'cust', 'at', 'amount');
RESET ROLE;
DROP OWNED BY st_gone;
DROP ROLE st_gone;
SELECT throws_ok($$SELECT segtier.refresh('orphan')$$, '42704', 'the owner of model "orphan" no longer exists',
	'a model whose owner is gone says so');
SELECT segtier.drop_model('orphan');

-- a role whose name needs quoting
CREATE ROLE "CRM Admin" NOLOGIN;
SELECT grant_admin('"CRM Admin"');
GRANT SELECT ON open_orders TO "CRM Admin";
SET ROLE "CRM Admin";
SELECT lives_ok($$SELECT segtier.create_model('quoted', 'open_orders', 'cust', 'at', 'amount', '{"as_of": "2025-03-01 00:00+00"}')$$,
	'a role named "CRM Admin" creates a model');
RESET ROLE;
SELECT lives_ok($$SELECT segtier.refresh('quoted')$$, 'and a superuser''s refresh of it switches to that role');

-- hostile names: quotes, spaces, upper case, unicode, an injection attempt
CREATE TABLE "Odd ""Orders""; DROP TABLE open_orders; --" ("Customer Id" text, "Zeit ⏰" timestamptz, "Amount $" numeric);
INSERT INTO "Odd ""Orders""; DROP TABLE open_orders; --" VALUES ('x''1', '2025-01-01 00:00+00', 5), ('y 2', '2025-01-02 00:00+00', 7);
SELECT lives_ok($$SELECT segtier.create_model('odd', '"Odd ""Orders""; DROP TABLE open_orders; --"', 'Customer Id', 'Zeit ⏰', 'Amount $',
	'{"as_of": "2025-02-01 00:00+00"}')$$, 'odd names work');
SELECT lives_ok($$SELECT segtier.refresh('odd')$$, 'and refresh');
SELECT is((SELECT string_agg(customer, ',' ORDER BY customer) FROM segtier_data.odd_tiers), 'x''1,y 2', 'with their ids');
SELECT has_table('open_orders', 'nothing was injected');

SELECT * FROM finish();
ROLLBACK;
