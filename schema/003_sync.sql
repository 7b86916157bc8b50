-- 003_sync.sql — device-side sync state: the batch a sent change belongs
-- to (a batch is resent unchanged until the hub acknowledges it). The
-- cursor, next batch number and hub identity live in rl_meta.
ALTER TABLE rl_outbox ADD COLUMN batch INTEGER;
CREATE INDEX rl_outbox_batch ON rl_outbox(batch) WHERE batch IS NOT NULL;
