-- hub/006_check_lists.sql — hub_log's CHECK without an IN list.
--
-- The same change as schema/011_check_lists.sql, for the hub's log: every
-- change the hub applies writes an hub_log row, and SQLite 3.40 built a
-- temporary b-tree of `kind IN (...)` to check each one. Only the text of
-- the rule changes; migrate_hub() in sync/src/store.c raises the schema
-- cookie afterwards.
PRAGMA writable_schema = ON;
UPDATE sqlite_schema SET sql = replace(sql,
	'CHECK(kind IN (''change'', ''merge'', ''resolve'', ''admin''))',
	'CHECK(kind = ''change'' OR kind = ''merge'' OR kind = ''resolve'' OR kind = ''admin'')')
	WHERE type = 'table' AND name = 'hub_log';
PRAGMA writable_schema = OFF;
