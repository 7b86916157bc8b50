-- hub/002_audit.sql — the audit history (hub/audit.c): the bare git
-- repository DIR/audit.git gets one commit per applied batch, conflict
-- resolution, admin action or duplicate merge, written from hub_log after
-- the store has committed (never before: git never claims what the store
-- did not commit).
--
-- hub_audit_units says which hub_log entries make one commit and whose they
-- are. It is written in the same transaction as the entries, so a commit's
-- boundaries and author survive a crash before the history caught up.
-- Entries that no unit covers (a write path that does not mark) still reach
-- the history, grouped by device and user.

CREATE TABLE hub_audit_units(
	last_seq  INTEGER PRIMARY KEY,     -- the unit is hub_log seq first_seq..last_seq
	first_seq INTEGER NOT NULL,
	kind      TEXT NOT NULL CHECK(kind IN ('batch', 'resolve', 'merge', 'admin')),
	device    TEXT NOT NULL,           -- device id, or 'hub'
	user_id   TEXT,
	batch     INTEGER,                 -- the device's batch number (kind 'batch')
	conflicts INTEGER NOT NULL DEFAULT 0,
	at        TEXT NOT NULL,           -- hub time, UTC: the commit's author date
	note      TEXT                     -- e.g. 'conflict 3 resolved: keep'
);

-- Where the history stands: the last hub_log seq written to git and the
-- commit that holds it. Written after the git ref moved, so after a crash
-- between the two the next writer finds HEAD one step ahead and adopts it;
-- any other difference means the repository was rewritten (audit verify).
CREATE TABLE hub_audit(
	id      INTEGER PRIMARY KEY CHECK(id = 1),
	seq     INTEGER NOT NULL,
	head    TEXT NOT NULL CHECK(length(head) = 40),
	written TEXT NOT NULL             -- hub time of the last write
);
