-- 018_hold.sql — the hub version that already holds this device's value
-- (the device's side; sync/src/devsync.c).
--
-- After a push answered 'merged' or 'same', the hub holds at `version` a
-- value that contains this device's own, but the device keeps its text and
-- its older base (it has not received the merged text; recording `version`
-- as the base would let its next edit fast-forward over lines it never
-- saw). A pull that brings an older version of the field meanwhile must not
-- overwrite the device's text: the hub merges the device's next edit from
-- the text it sent (hub_sent_text), right only while the device's text
-- descends from it — an older pulled text in its place, and a pull cut
-- before the merged one arrived, made two appends a conflict
-- (tests/sim/simulate.py seed 7625). So a pulled change below `version` is
-- skipped like one for a field with a pending edit; the row goes when a
-- version at or above it arrives. A hub restore drops them all (the numbers
-- are reused: sync/src/hubepoch.c).
CREATE TABLE rl_hold(
	tbl     TEXT NOT NULL,
	row_id  TEXT NOT NULL,
	field   TEXT NOT NULL,
	version INTEGER NOT NULL,
	PRIMARY KEY(tbl, row_id, field)
) WITHOUT ROWID;
