-- 021_pairs.sql — pairs of fields go out together; contact references indexed.
--
-- The capture triggers (rebuilt by sync/src/capture.c after every
-- migration) now send both fields of a pair whenever either changes: a
-- deal's amount and currency, the tier table's levels and currency, a
-- task's done and done_at, an activity's at and tz_offset
-- (rl_model_partner in relasi/model.h). The hub decides a concurrent edit
-- of a pair as one (docs/sync.md, "Fields that go together"). This version
-- exists to rebuild the triggers on stores made by an older relasi.
--
-- Deleting a contact looks for the records that name it (contact_id) to
-- refuse the delete or clear the reference (--cascade): a pass over every
-- visit without an index (90 ms at 100,000 visits). Most rows name no
-- contact, so the indexes hold only those that do.
CREATE INDEX deals_contact ON deals(contact_id) WHERE contact_id IS NOT NULL;
CREATE INDEX activities_contact ON activities(contact_id) WHERE contact_id IS NOT NULL;
CREATE INDEX tasks_contact ON tasks(contact_id) WHERE contact_id IS NOT NULL;
