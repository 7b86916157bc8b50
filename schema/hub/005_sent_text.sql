-- hub/005_sent_text.sql — the text each device last sent for a free-text
-- field when the hub merged it (hub/hubstore.c, apply_update).
--
-- A device records a version as a field's base only when the hub holds
-- exactly its value ('applied'); after a merge it keeps its own text until
-- the pull brings the merged one. An edit it makes meanwhile is captured
-- with the older base, and a three-way merge from that base read the
-- device's own earlier lines, already in the hub's text, as added twice:
-- they appeared twice. The device's text descends from what it sent, and
-- that text is contained in every version from `version` on, so for a
-- change based below `version` the hub merges from `value` instead.
CREATE TABLE hub_sent_text(
	tbl     TEXT NOT NULL,
	row_id  TEXT NOT NULL,
	field   TEXT NOT NULL,
	device  TEXT NOT NULL,
	value   TEXT NOT NULL,
	version INTEGER NOT NULL,     -- the hub version that contains value
	PRIMARY KEY(tbl, row_id, field, device)
) WITHOUT ROWID;
