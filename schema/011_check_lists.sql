-- 011_check_lists.sql — CHECK constraints without IN lists.
--
-- SQLite 3.40 evaluates `CHECK(x IN ('a', 'b', 'c'))` (three values or
-- more) by building a temporary b-tree of the list for every row it
-- checks. Every captured field change is an rl_outbox row, so that was a
-- sixth of an import's instructions (callgrind, 3,000 contacts). The same
-- rules written as `x = 'a' OR x = 'b' OR ...` are compared in place.
--
-- Only the constraint's text changes, and every stored row satisfies the
-- new one as it did the old, so the stored tables are not rebuilt: this is
-- SQLite's documented procedure for schema changes that do not touch the
-- stored content (https://sqlite.org/lang_altertable.html, "making other
-- kinds of table schema changes"); migrate() in sync/src/store.c raises
-- the schema cookie afterwards, so that every connection re-reads it.
-- tests/cli/test_schema.py checks the rewritten rules still refuse what
-- the old ones refused.
PRAGMA writable_schema = ON;
UPDATE sqlite_schema SET sql = replace(sql,
	'CHECK(state IN (''pending'', ''sent'', ''refused''))',
	'CHECK(state = ''pending'' OR state = ''sent'' OR state = ''refused'')')
	WHERE type = 'table' AND name = 'rl_outbox';
UPDATE sqlite_schema SET sql = replace(sql,
	'CHECK(kind IN (''visit'', ''call'', ''email'', ''meeting''))',
	'CHECK(kind = ''visit'' OR kind = ''call'' OR kind = ''email'' OR kind = ''meeting'')')
	WHERE type = 'table' AND name = 'activities';
UPDATE sqlite_schema SET sql = replace(sql,
	'CHECK(kind IN (''open'', ''won'', ''lost''))',
	'CHECK(kind = ''open'' OR kind = ''won'' OR kind = ''lost'')')
	WHERE type = 'table' AND name = 'stages';
UPDATE sqlite_schema SET sql = replace(sql,
	'CHECK(role IN (''rep'', ''manager'', ''marketing'', ''admin''))',
	'CHECK(role = ''rep'' OR role = ''manager'' OR role = ''marketing'' OR role = ''admin'')')
	WHERE type = 'table' AND name = 'users';
PRAGMA writable_schema = OFF;
