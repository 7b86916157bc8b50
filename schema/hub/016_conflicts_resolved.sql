-- hub/016_conflicts_resolved.sql — the conflicts resolved lately, by index.
--
-- The last pull page of every session tells the device the conflicts that
-- touch its user's edits: every open one and those resolved in the last
-- week (hub/hubstore.c device_conflicts). Found by walking every conflict
-- from the newest, each session read the hub's whole conflict history: a
-- no-op sync took 99 ms instead of 27 beside 100,000 resolved conflicts.
-- The open ones have an index (hub_conflicts_open); this one finds the
-- recent ones.
CREATE INDEX hub_conflicts_resolved ON hub_conflicts(resolved_at) WHERE resolved_at IS NOT NULL;
