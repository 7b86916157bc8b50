-- 010_fts_deferred.sql — imports index new rows for search in bulk.
--
-- FTS5 (SQLite 3.40) writes an index segment for every row its insert
-- trigger adds, a quarter of an import's time. The insert triggers now run
-- only while rl_fts_live() (sync/src/store.c): an import turns it off and
-- indexes its new rows with one INSERT ... SELECT per table before it
-- commits (rl_store_fts_defer / rl_store_fts_catch_up). Updates are always
-- indexed at once. Like the capture triggers, these need relasi's SQL
-- functions: the sqlite3 shell cannot insert into these tables.
DROP TRIGGER fts_accounts_ai;
CREATE TRIGGER fts_accounts_ai AFTER INSERT ON accounts WHEN rl_fts_live() BEGIN
	INSERT INTO fts_accounts(rowid, name, city, address, tags, notes)
	VALUES (new.rowid, new.name, new.city, new.address, new.tags, new.notes);
END;
DROP TRIGGER fts_contacts_ai;
CREATE TRIGGER fts_contacts_ai AFTER INSERT ON contacts WHEN rl_fts_live() BEGIN
	INSERT INTO fts_contacts(rowid, name, title, email, phone, city, notes)
	VALUES (new.rowid, new.name, new.title, new.email, new.phone, new.city, new.notes);
END;
DROP TRIGGER fts_activities_ai;
CREATE TRIGGER fts_activities_ai AFTER INSERT ON activities WHEN rl_fts_live() BEGIN
	INSERT INTO fts_activities(rowid, outcome, notes)
	VALUES (new.rowid, new.outcome, new.notes);
END;
