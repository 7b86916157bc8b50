-- 005_conflict_view.sql — rl_conflicts becomes the hub's own account of the
-- conflicts that involve this device's edits, refreshed on every sync: the
-- rep whose edit the hub held first sees the conflict too, not only the one
-- whose push met it, and a decision shows how it ended. Local, never synced.
DROP TABLE rl_conflicts;
CREATE TABLE rl_conflicts(
	hub_id     INTEGER PRIMARY KEY,    -- the hub's conflict number
	tbl        TEXT NOT NULL,
	row_id     TEXT NOT NULL,
	field      TEXT NOT NULL,
	kind       TEXT NOT NULL,          -- 'field' or 'edit-delete'
	mine,                              -- the value this device sent
	theirs,                            -- the other side's value
	other      TEXT NOT NULL,          -- the other side's login
	kept_mine  INTEGER NOT NULL,       -- my value stands (provisionally while open)
	state      TEXT NOT NULL,          -- 'open' or 'resolved'
	resolution TEXT,                   -- keep, take, value
	decided,                           -- the admin's value
	at         TEXT NOT NULL           -- when the hub recorded it (UTC)
);
