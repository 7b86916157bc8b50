-- 006_reports.sql — what the pipeline reports (`relasi report ...`,
-- client/cmd_report.c) need from the data model.
--
-- users.team: the sales team a user belongs to ("Jawa Barat", "Key
--   accounts"); set by the hub admin (`relasi-hub user add --team`), synced
--   like every user field; reports filter on the deal owner's team.
-- deals.line: the product line a deal sells (free text, e.g. "Elektronik");
--   `relasi report winrate --by line` groups on it.
-- activities(deal_id, at): the stale-deal report looks up the last activity
--   on each open deal; without it that is a scan of every activity per deal.
-- deals(owner_id): reports filtered by rep read only that rep's deals.
ALTER TABLE users ADD COLUMN team TEXT;
ALTER TABLE deals ADD COLUMN line TEXT;
CREATE INDEX activities_deal ON activities(deal_id, at);
CREATE INDEX deals_owner ON deals(owner_id);
