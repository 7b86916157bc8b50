-- 001_init.sql — Relasi's data model, version 1.
--
-- Rules (../shared/DESIGN.md): every synced row has a device-made,
-- time-ordered 128-bit id written as 32 lower-case hex digits; money is an
-- integer in minor units plus an ISO 4217 code; instants are UTC text
-- "YYYY-MM-DDTHH:MM:SSZ" with the writer's offset in minutes kept beside them
-- for display; calendar dates are "YYYY-MM-DD"; text is UTF-8; a delete is a
-- tombstone (deleted = 1), never a physical DELETE (the capture triggers
-- refuse one). Foreign keys are deferred because synced rows may arrive in
-- any order inside one transaction.
--
-- Synced tables: users, stages, accounts, contacts, deals, activities, tasks.
-- Local tables start with rl_ and never leave the device.

CREATE TABLE rl_meta(
	key   TEXT PRIMARY KEY,
	value
) WITHOUT ROWID;

CREATE TABLE users(
	id      TEXT PRIMARY KEY CHECK(length(id) = 32),
	login   TEXT,
	name    TEXT NOT NULL,
	role    TEXT NOT NULL DEFAULT 'rep'
	        CHECK(role IN ('rep', 'manager', 'marketing', 'admin')),
	deleted INTEGER NOT NULL DEFAULT 0 CHECK(deleted IN (0, 1))
);

-- Pipeline stages. The default set has well-known ids (below) so that every
-- device and the hub agree on them without syncing; stages added later get
-- ordinary ids. kind says whether a deal in the stage is open, won or lost.
CREATE TABLE stages(
	id          TEXT PRIMARY KEY CHECK(length(id) = 32),
	name        TEXT NOT NULL,
	position    INTEGER NOT NULL,
	probability INTEGER NOT NULL CHECK(probability BETWEEN 0 AND 100),
	kind        TEXT NOT NULL DEFAULT 'open' CHECK(kind IN ('open', 'won', 'lost')),
	deleted     INTEGER NOT NULL DEFAULT 0 CHECK(deleted IN (0, 1))
);

INSERT INTO stages(id, name, position, probability, kind) VALUES
	('00000000000000000000000000000001', 'Prospect',     1,  10, 'open'),
	('00000000000000000000000000000002', 'Qualified',    2,  25, 'open'),
	('00000000000000000000000000000003', 'Proposal',     3,  50, 'open'),
	('00000000000000000000000000000004', 'Negotiation',  4,  75, 'open'),
	('00000000000000000000000000000005', 'Won',          5, 100, 'won'),
	('00000000000000000000000000000006', 'Lost',         6,   0, 'lost');

-- Customers (companies, shops, households).
CREATE TABLE accounts(
	id         TEXT PRIMARY KEY CHECK(length(id) = 32),
	name       TEXT NOT NULL,
	industry   TEXT,
	phone      TEXT,
	email      TEXT,
	address    TEXT,
	city       TEXT,
	region     TEXT,
	lat        REAL CHECK(lat IS NULL OR lat BETWEEN -90 AND 90),
	lon        REAL CHECK(lon IS NULL OR lon BETWEEN -180 AND 180),
	tags       TEXT,
	notes      TEXT,
	owner_id   TEXT,
	created_at TEXT NOT NULL,
	deleted    INTEGER NOT NULL DEFAULT 0 CHECK(deleted IN (0, 1))
);
CREATE INDEX accounts_name ON accounts(name COLLATE NOCASE);

CREATE TABLE contacts(
	id         TEXT PRIMARY KEY CHECK(length(id) = 32),
	account_id TEXT REFERENCES accounts(id) DEFERRABLE INITIALLY DEFERRED,
	name       TEXT NOT NULL,
	title      TEXT,
	phone      TEXT,
	email      TEXT,
	city       TEXT,
	notes      TEXT,
	owner_id   TEXT,
	created_at TEXT NOT NULL,
	deleted    INTEGER NOT NULL DEFAULT 0 CHECK(deleted IN (0, 1))
);
CREATE INDEX contacts_name ON contacts(name COLLATE NOCASE);
CREATE INDEX contacts_account ON contacts(account_id);

-- A deal's status is its stage's kind; won/lost deals carry closed_at.
-- probability, when set, overrides the stage's for the weighted pipeline.
CREATE TABLE deals(
	id             TEXT PRIMARY KEY CHECK(length(id) = 32),
	account_id     TEXT NOT NULL REFERENCES accounts(id) DEFERRABLE INITIALLY DEFERRED,
	contact_id     TEXT REFERENCES contacts(id) DEFERRABLE INITIALLY DEFERRED,
	title          TEXT NOT NULL,
	amount         INTEGER,
	currency       TEXT NOT NULL DEFAULT 'IDR' CHECK(length(currency) = 3),
	stage_id       TEXT NOT NULL REFERENCES stages(id) DEFERRABLE INITIALLY DEFERRED,
	probability    INTEGER CHECK(probability IS NULL OR probability BETWEEN 0 AND 100),
	expected_close TEXT,
	lost_reason    TEXT,
	closed_at      TEXT,
	owner_id       TEXT,
	notes          TEXT,
	created_at     TEXT NOT NULL,
	deleted        INTEGER NOT NULL DEFAULT 0 CHECK(deleted IN (0, 1))
);
CREATE INDEX deals_account ON deals(account_id);
CREATE INDEX deals_stage ON deals(stage_id);

CREATE TABLE activities(
	id         TEXT PRIMARY KEY CHECK(length(id) = 32),
	kind       TEXT NOT NULL CHECK(kind IN ('visit', 'call', 'email', 'meeting')),
	account_id TEXT REFERENCES accounts(id) DEFERRABLE INITIALLY DEFERRED,
	contact_id TEXT REFERENCES contacts(id) DEFERRABLE INITIALLY DEFERRED,
	deal_id    TEXT REFERENCES deals(id) DEFERRABLE INITIALLY DEFERRED,
	at         TEXT NOT NULL,
	tz_offset  INTEGER NOT NULL DEFAULT 0,
	lat        REAL CHECK(lat IS NULL OR lat BETWEEN -90 AND 90),
	lon        REAL CHECK(lon IS NULL OR lon BETWEEN -180 AND 180),
	outcome    TEXT,
	notes      TEXT,
	user_id    TEXT,
	created_at TEXT NOT NULL,
	deleted    INTEGER NOT NULL DEFAULT 0 CHECK(deleted IN (0, 1))
);
CREATE INDEX activities_account ON activities(account_id, at);
CREATE INDEX activities_at ON activities(at);

-- Follow-ups. due is a calendar date in the rep's local time.
CREATE TABLE tasks(
	id          TEXT PRIMARY KEY CHECK(length(id) = 32),
	title       TEXT NOT NULL,
	due         TEXT,
	done        INTEGER NOT NULL DEFAULT 0 CHECK(done IN (0, 1)),
	done_at     TEXT,
	account_id  TEXT REFERENCES accounts(id) DEFERRABLE INITIALLY DEFERRED,
	contact_id  TEXT REFERENCES contacts(id) DEFERRABLE INITIALLY DEFERRED,
	deal_id     TEXT REFERENCES deals(id) DEFERRABLE INITIALLY DEFERRED,
	activity_id TEXT REFERENCES activities(id) DEFERRABLE INITIALLY DEFERRED,
	owner_id    TEXT,
	notes       TEXT,
	created_at  TEXT NOT NULL,
	deleted     INTEGER NOT NULL DEFAULT 0 CHECK(deleted IN (0, 1))
);
CREATE INDEX tasks_due ON tasks(done, due);
CREATE INDEX tasks_account ON tasks(account_id);

-- The outbox: field-level changes not yet acknowledged by the hub, written by
-- the capture triggers (see sync/src/capture.c) in the same transaction as
-- the edit. state: 'pending' (may still coalesce with a later edit of the
-- same field), 'sent' (in a batch awaiting acknowledgement; a later edit makes
-- a new pending row), 'refused' (the hub said no; kept, visible, with reason).
-- base is the hub version of the field the device last saw (NULL: none).
-- hlc is the hybrid logical clock stamp of the edit (sync/src/hlc.c).
CREATE TABLE rl_outbox(
	seq     INTEGER PRIMARY KEY,
	tbl     TEXT NOT NULL,
	row_id  TEXT NOT NULL,
	field   TEXT NOT NULL,
	value,
	base    INTEGER,
	device  TEXT NOT NULL,
	hlc     INTEGER NOT NULL,
	state   TEXT NOT NULL DEFAULT 'pending' CHECK(state IN ('pending', 'sent', 'refused')),
	reason  TEXT
);
CREATE UNIQUE INDEX rl_outbox_pending ON rl_outbox(tbl, row_id, field)
	WHERE state = 'pending';

-- The hub version of each field as last received (filled by sync).
CREATE TABLE rl_base(
	tbl     TEXT NOT NULL,
	row_id  TEXT NOT NULL,
	field   TEXT NOT NULL,
	version INTEGER NOT NULL,
	PRIMARY KEY(tbl, row_id, field)
) WITHOUT ROWID;

-- Full-text search (FTS5, external content) over customers, contacts and
-- activity notes; kept current by triggers. Local indexes, not synced.
CREATE VIRTUAL TABLE fts_accounts USING fts5(
	name, city, address, tags, notes,
	content='accounts', tokenize='unicode61 remove_diacritics 2');
CREATE VIRTUAL TABLE fts_contacts USING fts5(
	name, title, email, phone, city, notes,
	content='contacts', tokenize='unicode61 remove_diacritics 2');
CREATE VIRTUAL TABLE fts_activities USING fts5(
	outcome, notes,
	content='activities', tokenize='unicode61 remove_diacritics 2');

CREATE TRIGGER fts_accounts_ai AFTER INSERT ON accounts BEGIN
	INSERT INTO fts_accounts(rowid, name, city, address, tags, notes)
	VALUES (new.rowid, new.name, new.city, new.address, new.tags, new.notes);
END;
CREATE TRIGGER fts_accounts_au AFTER UPDATE OF name, city, address, tags, notes ON accounts BEGIN
	INSERT INTO fts_accounts(fts_accounts, rowid, name, city, address, tags, notes)
	VALUES ('delete', old.rowid, old.name, old.city, old.address, old.tags, old.notes);
	INSERT INTO fts_accounts(rowid, name, city, address, tags, notes)
	VALUES (new.rowid, new.name, new.city, new.address, new.tags, new.notes);
END;
CREATE TRIGGER fts_contacts_ai AFTER INSERT ON contacts BEGIN
	INSERT INTO fts_contacts(rowid, name, title, email, phone, city, notes)
	VALUES (new.rowid, new.name, new.title, new.email, new.phone, new.city, new.notes);
END;
CREATE TRIGGER fts_contacts_au AFTER UPDATE OF name, title, email, phone, city, notes ON contacts BEGIN
	INSERT INTO fts_contacts(fts_contacts, rowid, name, title, email, phone, city, notes)
	VALUES ('delete', old.rowid, old.name, old.title, old.email, old.phone, old.city, old.notes);
	INSERT INTO fts_contacts(rowid, name, title, email, phone, city, notes)
	VALUES (new.rowid, new.name, new.title, new.email, new.phone, new.city, new.notes);
END;
CREATE TRIGGER fts_activities_ai AFTER INSERT ON activities BEGIN
	INSERT INTO fts_activities(rowid, outcome, notes)
	VALUES (new.rowid, new.outcome, new.notes);
END;
CREATE TRIGGER fts_activities_au AFTER UPDATE OF outcome, notes ON activities BEGIN
	INSERT INTO fts_activities(fts_activities, rowid, outcome, notes)
	VALUES ('delete', old.rowid, old.outcome, old.notes);
	INSERT INTO fts_activities(rowid, outcome, notes)
	VALUES (new.rowid, new.outcome, new.notes);
END;

-- "Nearby customers": an R*Tree over account coordinates, keyed by rowid.
CREATE VIRTUAL TABLE geo_accounts USING rtree(id, min_lat, max_lat, min_lon, max_lon);
CREATE TRIGGER geo_accounts_ai AFTER INSERT ON accounts
WHEN new.lat IS NOT NULL AND new.lon IS NOT NULL BEGIN
	INSERT INTO geo_accounts VALUES (new.rowid, new.lat, new.lat, new.lon, new.lon);
END;
CREATE TRIGGER geo_accounts_au AFTER UPDATE OF lat, lon ON accounts BEGIN
	DELETE FROM geo_accounts WHERE id = old.rowid;
	INSERT INTO geo_accounts SELECT new.rowid, new.lat, new.lat, new.lon, new.lon
	WHERE new.lat IS NOT NULL AND new.lon IS NOT NULL;
END;
