-- 007_marketing.sql — what marketing needs from the data model (issue 6,
-- "Marketing"; README "Marketing"): saved segments, campaigns and their
-- frozen member lists, the team's tier thresholds, responses to campaigns
-- as activities, and the local history of tier evaluations.
--
-- Synced (sync/src/model.c, capture.c; the hub lets marketing, managers and
-- admins write them, reps read them):
--   segments          a named rule (client/segment_rule.c) over customers;
--                     the rule text is stored as typed, parsed on every use.
--   campaigns         a named campaign: the segment it was made from, the
--                     rule as it was then, the hold-out share and the seed
--                     that chose the hold-out, and when it started.
--   campaign_members  one row per customer in a campaign, frozen at
--                     creation; holdout = 1 for the hold-out group. A
--                     customer merge (issue 5) moves account_id like any
--                     other reference.
--   tier_config       one row with a well-known id (below), like the
--                     default stages: every device and the hub hold it
--                     without syncing, so `relasi tiers config` is an edit
--                     of one row and two concurrent edits meet as a conflict
--                     at the hub instead of two competing configurations.
--                     levels = "Name=MIN;Name=MIN..." with MIN the least
--                     average monthly spend in minor units of currency.
--   activities.campaign_id  a response to a campaign is an ordinary
--                     activity (kind email/call/visit/meeting) that names
--                     the campaign.
-- Local:
--   rl_tier_history   each account's tier per month as evaluated by
--                     `relasi tiers evaluate` on this device: a row is added
--                     only when the tier differs from the latest stored for
--                     that account and month, so evaluating again changes
--                     nothing and a later change of the data shows as a new
--                     row. Derived data: any device can compute it from the
--                     synced deals, so it is not synced (two devices
--                     evaluating the same month would otherwise create
--                     competing rows).
CREATE TABLE segments(
	id         TEXT PRIMARY KEY CHECK(length(id) = 32),
	name       TEXT NOT NULL,
	rule       TEXT NOT NULL,
	owner_id   TEXT,
	created_at TEXT NOT NULL,
	deleted    INTEGER NOT NULL DEFAULT 0 CHECK(deleted IN (0, 1))
);
CREATE INDEX segments_name ON segments(name COLLATE NOCASE);

CREATE TABLE campaigns(
	id         TEXT PRIMARY KEY CHECK(length(id) = 32),
	name       TEXT NOT NULL,
	segment_id TEXT REFERENCES segments(id) DEFERRABLE INITIALLY DEFERRED,
	rule       TEXT,
	holdout    INTEGER NOT NULL DEFAULT 0 CHECK(holdout BETWEEN 0 AND 100),
	seed       INTEGER NOT NULL DEFAULT 0,
	started_at TEXT,                  -- set with the create, same transaction
	owner_id   TEXT,
	created_at TEXT NOT NULL,
	deleted    INTEGER NOT NULL DEFAULT 0 CHECK(deleted IN (0, 1))
);
CREATE INDEX campaigns_name ON campaigns(name COLLATE NOCASE);

CREATE TABLE campaign_members(
	id          TEXT PRIMARY KEY CHECK(length(id) = 32),
	campaign_id TEXT NOT NULL REFERENCES campaigns(id) DEFERRABLE INITIALLY DEFERRED,
	account_id  TEXT NOT NULL REFERENCES accounts(id) DEFERRABLE INITIALLY DEFERRED,
	holdout     INTEGER NOT NULL DEFAULT 0 CHECK(holdout IN (0, 1)),
	owner_id    TEXT,
	created_at  TEXT NOT NULL,
	deleted     INTEGER NOT NULL DEFAULT 0 CHECK(deleted IN (0, 1))
);
CREATE INDEX campaign_members_campaign ON campaign_members(campaign_id, account_id);
CREATE INDEX campaign_members_account ON campaign_members(account_id);

CREATE TABLE tier_config(
	id       TEXT PRIMARY KEY CHECK(length(id) = 32),
	levels   TEXT NOT NULL,
	currency TEXT NOT NULL CHECK(length(currency) = 3),
	deleted  INTEGER NOT NULL DEFAULT 0 CHECK(deleted IN (0, 1))
);
-- The course material's example: Priority from 50 million rupiah a month,
-- Gold from 10 million, Red below (IDR has 2 decimals: minor units).
INSERT INTO tier_config(id, levels, currency) VALUES
	('00000000000000000000000000000100',
	 'Priority=5000000000;Gold=1000000000;Red=0', 'IDR');

ALTER TABLE activities ADD COLUMN campaign_id TEXT
	REFERENCES campaigns(id) DEFERRABLE INITIALLY DEFERRED;
CREATE INDEX activities_campaign ON activities(campaign_id) WHERE campaign_id IS NOT NULL;
-- A customer's last visit and last activity (rule fields last_visit,
-- last_activity) from the index alone.
CREATE INDEX activities_kind ON activities(account_id, kind, deleted, at);

CREATE TABLE rl_tier_history(
	account_id   TEXT NOT NULL,
	month        TEXT NOT NULL,            -- "YYYY-MM"
	tier         TEXT,                     -- NULL: below every threshold
	avg_monthly  INTEGER NOT NULL,         -- minor units, rounded down
	currency     TEXT NOT NULL,
	evaluated_at TEXT NOT NULL,            -- UTC instant
	PRIMARY KEY(account_id, month, evaluated_at)
) WITHOUT ROWID;
CREATE INDEX rl_tier_history_month ON rl_tier_history(month);
