-- hub/001_hub.sql — tables only the hub's store has (applied after the
-- shared migrations when relasi-hub opens its store).
--
-- hub_log is the serialisation point: every accepted change, merge and
-- resolution gets the next seq; devices pull by seq. hub_fields holds each
-- field's current version (the seq that set it), for the merge rule.

CREATE TABLE hub_log(
	seq     INTEGER PRIMARY KEY,
	tbl     TEXT NOT NULL,
	row_id  TEXT NOT NULL,
	field   TEXT NOT NULL,
	value,
	hlc     INTEGER NOT NULL,
	device  TEXT NOT NULL,          -- device id, or 'hub' for admin actions
	user_id TEXT,
	at      TEXT NOT NULL,          -- hub time, UTC
	kind    TEXT NOT NULL DEFAULT 'change'
	        CHECK(kind IN ('change', 'merge', 'resolve', 'admin'))
);

CREATE TABLE hub_fields(
	tbl     TEXT NOT NULL,
	row_id  TEXT NOT NULL,
	field   TEXT NOT NULL,
	version INTEGER NOT NULL,
	hlc     INTEGER NOT NULL,
	device  TEXT NOT NULL,
	PRIMARY KEY(tbl, row_id, field)
) WITHOUT ROWID;

CREATE TABLE hub_devices(
	id          TEXT PRIMARY KEY,   -- the certificate's CN
	user_id     TEXT NOT NULL,
	name        TEXT,
	fingerprint TEXT NOT NULL UNIQUE,
	enrolled_at TEXT NOT NULL,
	revoked_at  TEXT,
	last_seen   TEXT,
	cursor      INTEGER NOT NULL DEFAULT 0
);

-- One-time enrolment tokens: only a PBKDF2 hash of the secret is stored.
CREATE TABLE hub_tokens(
	id         TEXT PRIMARY KEY,
	user_id    TEXT NOT NULL,
	salt       BLOB NOT NULL,
	hash       BLOB NOT NULL,
	rounds     INTEGER NOT NULL,
	created_at TEXT NOT NULL,
	expires_at INTEGER NOT NULL,    -- Unix seconds
	used_at    TEXT,
	device_id  TEXT
);

-- Every batch a device pushed, with the answer it got (idempotency).
CREATE TABLE hub_batches(
	device      TEXT NOT NULL,
	batch       INTEGER NOT NULL,
	received_at TEXT NOT NULL,
	response    TEXT NOT NULL,
	PRIMARY KEY(device, batch)
) WITHOUT ROWID;

CREATE TABLE hub_conflicts(
	id            INTEGER PRIMARY KEY,
	tbl           TEXT NOT NULL,
	row_id        TEXT NOT NULL,
	field         TEXT NOT NULL,
	base_version  INTEGER,
	base_value,
	hub_value,
	hub_version   INTEGER,
	hub_device    TEXT,
	hub_hlc       INTEGER,
	in_value,
	in_device     TEXT NOT NULL,
	in_user       TEXT,
	in_hlc        INTEGER NOT NULL,
	winner        TEXT NOT NULL CHECK(winner IN ('hub', 'incoming')),
	kind          TEXT NOT NULL DEFAULT 'field' CHECK(kind IN ('field', 'edit-delete')),
	state         TEXT NOT NULL DEFAULT 'open' CHECK(state IN ('open', 'resolved')),
	created_at    TEXT NOT NULL,
	resolution    TEXT,
	resolved_value,
	resolved_at   TEXT,
	resolved_seq  INTEGER
);
CREATE INDEX hub_conflicts_open ON hub_conflicts(state);

-- Matching keys of customers and contacts, for duplicate detection.
CREATE TABLE hub_keys(
	tbl    TEXT NOT NULL,
	row_id TEXT NOT NULL,
	kind   TEXT NOT NULL,          -- 'email', 'phone', 'name_city'
	key    TEXT NOT NULL,
	PRIMARY KEY(tbl, row_id, kind)
) WITHOUT ROWID;
CREATE INDEX hub_keys_key ON hub_keys(tbl, kind, key);

CREATE TABLE hub_duplicates(
	id         INTEGER PRIMARY KEY,
	tbl        TEXT NOT NULL,
	row_a      TEXT NOT NULL,
	row_b      TEXT NOT NULL,
	reason     TEXT NOT NULL,
	created_at TEXT NOT NULL,
	state      TEXT NOT NULL DEFAULT 'open',
	UNIQUE(tbl, row_a, row_b)
);
