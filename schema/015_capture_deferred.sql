-- 015_capture_deferred.sql — no data change: a new schema version so that
-- opening an older store re-creates its capture triggers
-- (sync/src/capture.c; every migration ends with that). They now ask
-- rl_capture_row(TABLE, ROWID) instead of rl_capture_on(), which lets an
-- import capture its new rows in bulk at its commit
-- (rl_store_capture_defer in sync/include/relasi/store.h).
SELECT 1;
