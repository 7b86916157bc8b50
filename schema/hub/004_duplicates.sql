-- hub/004_duplicates.sql — duplicate merges at the hub (hub/dupes.c).
--
-- hub_merges: one row per merge, the redirect the hub follows when a device
-- that had not yet pulled the merge pushes a change to the loser or a
-- reference to it. first_seq..last_seq are the merge's hub_log entries (one
-- audit commit).
CREATE TABLE hub_merges(
	id        INTEGER PRIMARY KEY,
	tbl       TEXT NOT NULL,
	loser     TEXT NOT NULL,
	survivor  TEXT NOT NULL,
	first_seq INTEGER NOT NULL,
	last_seq  INTEGER NOT NULL,
	at        TEXT NOT NULL,
	UNIQUE(tbl, loser)
);

-- Per merged field: the loser's field version when it was merged and the
-- survivor's version the merge left. A late edit of the loser's field made
-- on the loser's last version (base = loser_version) counts as made on the
-- survivor's merged value (base = survivor_version); any older base is a
-- concurrent edit, a conflict by the normal rules. chosen: whose value the
-- survivor kept.
CREATE TABLE hub_merge_fields(
	merge_id         INTEGER NOT NULL,
	field            TEXT NOT NULL,
	loser_version    INTEGER NOT NULL,
	survivor_version INTEGER NOT NULL,
	chosen           TEXT NOT NULL CHECK(chosen IN ('survivor', 'loser')),
	PRIMARY KEY(merge_id, field)
) WITHOUT ROWID;

-- A candidate decided by a merge: state 'merged' and the merge that did it.
ALTER TABLE hub_duplicates ADD COLUMN merge_id INTEGER;
