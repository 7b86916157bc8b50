-- 006_reports.sql — what the pipeline reports (`relasi report ...`,
-- client/cmd_report.c) need from the data model.
--
-- users.team: the sales team a user belongs to ("Jawa Barat", "Key
--   accounts"); set by the hub admin (`relasi-hub user add --team`), synced
--   like every user field; reports filter on the deal owner's team.
-- deals.line: the product line a deal sells (free text, e.g. "Elektronik");
--   `relasi report winrate --by line` groups on it.
-- Local indexes the reports read instead of the activities table (each
-- covers its query, so no row of the 300k-activity table is visited;
-- measured on the benchmark dataset: stale 2-3x and activity 3-5x faster):
--   activities_deal: the last activity on a deal (stale);
--   activities_touch: a customer's last activity not about another deal (stale);
--   activities_rep: activities per rep and day (activity).
-- deals_owner: reports filtered by rep read only that rep's deals.
ALTER TABLE users ADD COLUMN team TEXT;
ALTER TABLE deals ADD COLUMN line TEXT;
CREATE INDEX activities_deal ON activities(deal_id, deleted, at);
CREATE INDEX activities_touch ON activities(account_id, deal_id, deleted, at);
CREATE INDEX activities_rep ON activities(user_id, at, kind, deleted, account_id);
CREATE INDEX deals_owner ON deals(owner_id);
