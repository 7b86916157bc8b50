-- 008_merge.sql — duplicate merges (relasi-hub duplicates merge).
--
-- A customer or contact merged into another stays as a tombstone
-- (deleted = 1) whose merged_into names the survivor: a redirect. It is an
-- ordinary synced field, so every device receives it by PULL and re-points
-- its own references and pending changes (sync/src/devsync.c); the hub
-- applies a late change to the loser to the survivor (hub/dupes.c).
-- Set only by the hub; devices may not push it.
ALTER TABLE accounts ADD COLUMN merged_into TEXT
	REFERENCES accounts(id) DEFERRABLE INITIALLY DEFERRED;
ALTER TABLE contacts ADD COLUMN merged_into TEXT
	REFERENCES contacts(id) DEFERRABLE INITIALLY DEFERRED;
