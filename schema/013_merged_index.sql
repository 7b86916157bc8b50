-- 013_merged_index.sql — a survivor's merged records found by index.
--
-- merged_into (008) refers to the same table. While a snapshot loads
-- (sync/src/devsync.c snapshot_load) a merged record can come before its
-- survivor — records come in id order and an older record is often merged
-- into a newer one — and its deferred foreign key stays open until the
-- survivor arrives. Meanwhile SQLite checks every record inserted into the
-- table against merged_into, a full scan each without an index: 3.5 s for
-- 20,000 rows (measured on a bare table), growing with the square of the
-- rows. Partial
-- indexes (only merged records have merged_into) make each check a
-- lookup; the snapshot load keeps them while it sets the other indexes
-- aside.
CREATE INDEX accounts_merged_into ON accounts(merged_into) WHERE merged_into IS NOT NULL;
CREATE INDEX contacts_merged_into ON contacts(merged_into) WHERE merged_into IS NOT NULL;
