-- hub/015_conflict_cause.sql — what brought a deleted record back.
--
-- New work for a deleted record revives it (docs/sync.md, "Edit against
-- delete"): a deal made offline for a customer another device deleted
-- brings the customer back, and a task of a deleted deal brings back the
-- deal and its customer, each an edit-delete conflict for the admin. The
-- conflict named the revived record only; to decide between the delete
-- and the work, the admin needs the work too. (cause_tbl, cause_row) is
-- the record that belongs to the revived one and brought it back: NULL
-- when the record was revived by an edit of its own, and for every
-- conflict recorded before.
ALTER TABLE hub_conflicts ADD COLUMN cause_tbl TEXT;
ALTER TABLE hub_conflicts ADD COLUMN cause_row TEXT;
