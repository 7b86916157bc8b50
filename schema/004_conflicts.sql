-- 004_conflicts.sql — what the device learns from the hub about its own
-- edits: a change that met a concurrent edit elsewhere (a conflict the hub
-- admin decides). Shown by `relasi conflicts`; local, never synced.
CREATE TABLE rl_conflicts(
	id       INTEGER PRIMARY KEY,
	tbl      TEXT NOT NULL,
	row_id   TEXT NOT NULL,
	field    TEXT NOT NULL,
	value,                          -- what this device had sent
	version  INTEGER,               -- the hub's version at the time
	reason   TEXT,
	at       TEXT NOT NULL
);
