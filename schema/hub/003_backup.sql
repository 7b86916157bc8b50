-- hub/003_backup.sql — the identity of this hub's history (hub/epoch.c).
--
-- hub_epoch names the line of sequence numbers this store hands out. A
-- restore from a backup starts a new epoch and remembers, in hub_lineage,
-- up to which sequence number each earlier epoch is still this store's
-- history; devices compare it with the epoch they last synced with (WELCOME)
-- and re-send what the restore lost. Set once here, for new and old stores.
INSERT OR IGNORE INTO rl_meta(key, value) VALUES ('hub_epoch', lower(hex(randomblob(16))));
