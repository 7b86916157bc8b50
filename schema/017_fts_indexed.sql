-- 017_fts_indexed.sql — deferred search indexing is safe when a deferred
-- row is updated before the catch-up.
--
-- An import or a hub batch may defer indexing its new rows (010,
-- rl_store_fts_defer) and index them with one INSERT ... SELECT per table
-- at the commit (rl_store_fts_catch_up): FTS5 (SQLite 3.40) flushes its
-- pending terms into a new segment at every statement of a transaction
-- that has written the index, a fifth of the hub's merge of new records.
-- Until now only inserts could follow a deferral: an update of a row
-- added since would have deleted from the index an entry it does not hold
-- (corrupting it) and indexed it a second time at the catch-up.
-- rl_fts_indexed(k, rowid) says whether row rowid of the k-th indexed
-- table (0 accounts, 1 contacts, 2 activities) is indexed now: always
-- while indexing is live, else only the rows that existed when it was
-- deferred. The triggers touch the index for those rows only; the
-- catch-up indexes the others in their final state.
DROP TRIGGER fts_accounts_ai;
DROP TRIGGER fts_accounts_au;
DROP TRIGGER fts_contacts_ai;
DROP TRIGGER fts_contacts_au;
DROP TRIGGER fts_activities_ai;
DROP TRIGGER fts_activities_au;

CREATE TRIGGER fts_accounts_ai AFTER INSERT ON accounts
WHEN new.deleted = 0 AND rl_fts_indexed(0, new.rowid) BEGIN
	INSERT INTO fts_accounts(rowid, name, city, address, tags, notes)
	VALUES (new.rowid, new.name, new.city, new.address, new.tags, new.notes);
END;
CREATE TRIGGER fts_accounts_au AFTER UPDATE OF name, city, address, tags, notes, deleted ON accounts
WHEN rl_fts_indexed(0, new.rowid) BEGIN
	INSERT INTO fts_accounts(fts_accounts, rowid, name, city, address, tags, notes)
	SELECT 'delete', old.rowid, old.name, old.city, old.address, old.tags, old.notes
	WHERE old.deleted = 0;
	INSERT INTO fts_accounts(rowid, name, city, address, tags, notes)
	SELECT new.rowid, new.name, new.city, new.address, new.tags, new.notes
	WHERE new.deleted = 0;
END;
CREATE TRIGGER fts_contacts_ai AFTER INSERT ON contacts
WHEN new.deleted = 0 AND rl_fts_indexed(1, new.rowid) BEGIN
	INSERT INTO fts_contacts(rowid, name, title, email, phone, city, notes)
	VALUES (new.rowid, new.name, new.title, new.email, new.phone, new.city, new.notes);
END;
CREATE TRIGGER fts_contacts_au AFTER UPDATE OF name, title, email, phone, city, notes, deleted ON contacts
WHEN rl_fts_indexed(1, new.rowid) BEGIN
	INSERT INTO fts_contacts(fts_contacts, rowid, name, title, email, phone, city, notes)
	SELECT 'delete', old.rowid, old.name, old.title, old.email, old.phone, old.city, old.notes
	WHERE old.deleted = 0;
	INSERT INTO fts_contacts(rowid, name, title, email, phone, city, notes)
	SELECT new.rowid, new.name, new.title, new.email, new.phone, new.city, new.notes
	WHERE new.deleted = 0;
END;
CREATE TRIGGER fts_activities_ai AFTER INSERT ON activities
WHEN new.deleted = 0 AND rl_fts_indexed(2, new.rowid) BEGIN
	INSERT INTO fts_activities(rowid, outcome, notes)
	VALUES (new.rowid, new.outcome, new.notes);
END;
CREATE TRIGGER fts_activities_au AFTER UPDATE OF outcome, notes, deleted ON activities
WHEN rl_fts_indexed(2, new.rowid) BEGIN
	INSERT INTO fts_activities(fts_activities, rowid, outcome, notes)
	SELECT 'delete', old.rowid, old.outcome, old.notes
	WHERE old.deleted = 0;
	INSERT INTO fts_activities(rowid, outcome, notes)
	SELECT new.rowid, new.outcome, new.notes
	WHERE new.deleted = 0;
END;
