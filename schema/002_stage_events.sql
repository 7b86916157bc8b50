-- 002_stage_events.sql — every move of a deal between stages as an
-- append-only, synced event, so that conversion and time-in-stage can be
-- computed from what really happened (a deal's stage_id only says where it is
-- now). Appends never conflict at the hub: each event is its own row.
CREATE TABLE deal_stage_events(
	id            TEXT PRIMARY KEY CHECK(length(id) = 32),
	deal_id       TEXT NOT NULL REFERENCES deals(id) DEFERRABLE INITIALLY DEFERRED,
	from_stage_id TEXT,
	to_stage_id   TEXT NOT NULL,
	at            TEXT NOT NULL,
	user_id       TEXT,
	deleted       INTEGER NOT NULL DEFAULT 0 CHECK(deleted IN (0, 1))
);
CREATE INDEX deal_stage_events_deal ON deal_stage_events(deal_id, at);
