-- 016_fts_live.sql — the search indexes hold live rows only, so that
-- `relasi search` ranks its hits from the index alone.
--
-- Before, a tombstoned customer, contact or activity stayed in its
-- full-text index and every hit was looked up in its table for the deleted
-- flag before ranking: 886 scattered rows for "makmur" on the benchmark
-- dataset, most of the query's time. Now each index's content is a view of
-- the live rows (FTS5 external content; `rid` is the table's rowid), the
-- triggers take a row out of the index when it is tombstoned and put it
-- back if a resolution restores it, and FTS5's own integrity-check compares
-- the index with exactly those rows. Like 012 for the "nearby" index: the
-- indexes are local, never synced, so they are rebuilt here (a few seconds
-- on a store of half a million records) and merged into one segment each.
--
-- Rule for whoever writes these tables: an index row may only be deleted
-- with the values it was indexed with, so the update triggers delete only
-- when the old row was live and insert only when the new one is.
DROP TRIGGER fts_accounts_ai;
DROP TRIGGER fts_accounts_au;
DROP TRIGGER fts_contacts_ai;
DROP TRIGGER fts_contacts_au;
DROP TRIGGER fts_activities_ai;
DROP TRIGGER fts_activities_au;
DROP TABLE fts_accounts;
DROP TABLE fts_contacts;
DROP TABLE fts_activities;

CREATE VIEW fts_live_accounts AS
	SELECT rowid AS rid, name, city, address, tags, notes FROM accounts WHERE deleted = 0;
CREATE VIEW fts_live_contacts AS
	SELECT rowid AS rid, name, title, email, phone, city, notes FROM contacts WHERE deleted = 0;
CREATE VIEW fts_live_activities AS
	SELECT rowid AS rid, outcome, notes FROM activities WHERE deleted = 0;

CREATE VIRTUAL TABLE fts_accounts USING fts5(
	name, city, address, tags, notes,
	content='fts_live_accounts', content_rowid='rid',
	tokenize='unicode61 remove_diacritics 2');
CREATE VIRTUAL TABLE fts_contacts USING fts5(
	name, title, email, phone, city, notes,
	content='fts_live_contacts', content_rowid='rid',
	tokenize='unicode61 remove_diacritics 2');
CREATE VIRTUAL TABLE fts_activities USING fts5(
	outcome, notes,
	content='fts_live_activities', content_rowid='rid',
	tokenize='unicode61 remove_diacritics 2');

INSERT INTO fts_accounts(fts_accounts) VALUES ('rebuild');
INSERT INTO fts_accounts(fts_accounts) VALUES ('optimize');
INSERT INTO fts_contacts(fts_contacts) VALUES ('rebuild');
INSERT INTO fts_contacts(fts_contacts) VALUES ('optimize');
INSERT INTO fts_activities(fts_activities) VALUES ('rebuild');
INSERT INTO fts_activities(fts_activities) VALUES ('optimize');

-- Inserts wait while an import defers indexing (010, rl_fts_live()).
CREATE TRIGGER fts_accounts_ai AFTER INSERT ON accounts
WHEN rl_fts_live() AND new.deleted = 0 BEGIN
	INSERT INTO fts_accounts(rowid, name, city, address, tags, notes)
	VALUES (new.rowid, new.name, new.city, new.address, new.tags, new.notes);
END;
CREATE TRIGGER fts_accounts_au AFTER UPDATE OF name, city, address, tags, notes, deleted ON accounts BEGIN
	INSERT INTO fts_accounts(fts_accounts, rowid, name, city, address, tags, notes)
	SELECT 'delete', old.rowid, old.name, old.city, old.address, old.tags, old.notes
	WHERE old.deleted = 0;
	INSERT INTO fts_accounts(rowid, name, city, address, tags, notes)
	SELECT new.rowid, new.name, new.city, new.address, new.tags, new.notes
	WHERE new.deleted = 0;
END;
CREATE TRIGGER fts_contacts_ai AFTER INSERT ON contacts
WHEN rl_fts_live() AND new.deleted = 0 BEGIN
	INSERT INTO fts_contacts(rowid, name, title, email, phone, city, notes)
	VALUES (new.rowid, new.name, new.title, new.email, new.phone, new.city, new.notes);
END;
CREATE TRIGGER fts_contacts_au AFTER UPDATE OF name, title, email, phone, city, notes, deleted ON contacts BEGIN
	INSERT INTO fts_contacts(fts_contacts, rowid, name, title, email, phone, city, notes)
	SELECT 'delete', old.rowid, old.name, old.title, old.email, old.phone, old.city, old.notes
	WHERE old.deleted = 0;
	INSERT INTO fts_contacts(rowid, name, title, email, phone, city, notes)
	SELECT new.rowid, new.name, new.title, new.email, new.phone, new.city, new.notes
	WHERE new.deleted = 0;
END;
CREATE TRIGGER fts_activities_ai AFTER INSERT ON activities
WHEN rl_fts_live() AND new.deleted = 0 BEGIN
	INSERT INTO fts_activities(rowid, outcome, notes)
	VALUES (new.rowid, new.outcome, new.notes);
END;
CREATE TRIGGER fts_activities_au AFTER UPDATE OF outcome, notes, deleted ON activities BEGIN
	INSERT INTO fts_activities(fts_activities, rowid, outcome, notes)
	SELECT 'delete', old.rowid, old.outcome, old.notes
	WHERE old.deleted = 0;
	INSERT INTO fts_activities(rowid, outcome, notes)
	SELECT new.rowid, new.outcome, new.notes
	WHERE new.deleted = 0;
END;
