/*
 * relasi/limits.h — every size cap in Relasi, with the reason for its value.
 *
 * Parsers check lengths and counts against these before they allocate, so a
 * hostile or broken file (CSV, vCard) can never make Relasi allocate without
 * bound. Raising a limit is a deliberate change made here, not at a call site.
 */
#ifndef RELASI_LIMITS_H
#define RELASI_LIMITS_H

/* One text field (a note, an address). A visit note of a few pages is ~10 KiB;
 * 64 KiB leaves room while keeping a whole change batch small. */
#define RL_MAX_FIELD_BYTES      (64 * 1024)

/* Columns in one CSV record. Real CRM exports have 20–80 columns. */
#define RL_MAX_CSV_FIELDS       256

/* How long a store open or write waits for another process's lock (the hub
 * serving devices while the admin runs a command; a sync while the rep adds
 * a visit). Batches commit in well under a second; 10 s rides out a slow
 * disk without letting a stuck process hang a command forever. */
#define RL_BUSY_TIMEOUT_MS      10000

/* One CSV record, all fields together (quoted newlines included). */
#define RL_MAX_CSV_RECORD_BYTES (1024 * 1024)

/* One vCard file as a whole; it is read into memory. A phone's full address
 * book export of 5,000 cards with photos stripped is a few MiB. */
#define RL_MAX_VCARD_FILE_BYTES (64 * 1024 * 1024)

/* One unfolded vCard content line (PHOTO lines are skipped but still read). */
#define RL_MAX_VCARD_LINE_BYTES (1024 * 1024)

/* TEL / EMAIL values of one kind in one card. All of them are kept (the
 * importer puts the second and later in the contact's notes); a card with
 * more is refused, naming its line, never cut short. Address books hold a
 * handful per person; 1000 keeps a hostile card's pointer array small, and
 * 1000 values already fill most of a note's RL_MAX_FIELD_BYTES, where the
 * import refuses the card in any case. */
#define RL_MAX_VCARD_VALUES     1000

/* The largest magnitude of one money value, in minor units: |amount| <=
 * 10^15 (10,000,000,000,000.00 IDR, 1,000,000,000,000,000 JPY, 100,000,000,000
 * CLF). The largest real single deal is some orders of magnitude below. The
 * bound exists for the sums: the reports, RFM, tiers and campaigns add
 * amounts in int64 (at most 9.22 x 10^18), so 9,223 deals at the bound in one
 * group still total exactly, a weighted amount (amount x probability <= 100)
 * stays below 10^17, and six months of a tier's minimum (6 x 10^15) fit. A
 * bound of INT64_MAX let two deals overflow every report. Checked where a
 * value enters: rl_money_parse (CLI, imports, tier levels) and
 * rl_model_check_value (every value the hub takes, every value a device
 * pulls). Sums beyond it are still checked (relasi/report.h, rp_money_add). */
#define RL_MAX_MONEY_MINOR      1000000000000000LL

/* A record's name, a title, a city: one line of text. */
#define RL_MAX_NAME_BYTES       512

/* E.164 allows at most 15 digits after '+'. */
#define RL_MAX_E164_DIGITS      15

/* An e-mail address (RFC 5321: 254 octets in a path). */
#define RL_MAX_EMAIL_BYTES      254

/* HLC: a remote stamp more than this far ahead of our wall clock is refused
 * (milliseconds). Configurable per store; this is the default (5 minutes). */
#define RL_HLC_DEFAULT_MAX_DRIFT_MS (5LL * 60 * 1000)

/* ---- sync protocol (sync/PROTOCOL.md) ---- */

/* A frame before the device is authenticated: an enrolment request is a
 * token (~100 bytes) and a CSR (~500 bytes); nothing else is accepted. */
#define RL_MAX_FRAME_PREAUTH    (16 * 1024)

/* Any frame after authentication. A push batch is packed to at most
 * RL_MAX_BATCH_BYTES of changes; JSON overhead stays well below 2x. */
#define RL_MAX_FRAME            (8 * 1024 * 1024)

/* Changes in one push batch, and their packed size: one batch is one hub
 * transaction, so this bounds how long a batch holds the write lock (a
 * batch of 4000 new-record fields: ~80 ms here). Each batch also pays a
 * synchronous=FULL commit, its record and a round trip: 200,000 changes
 * pushed in 5.2-5.9 s at 1000 (median 5.55, 7 runs), 3.9-5.4 s at 4000
 * (median 4.3, 9 runs), 3.4-4.5 s at 10000 (3 runs) (bench/bench_sync.py,
 * 5 Dec, interleaved); 4000 takes most of the gain and keeps the lock
 * short. One bundle carries one batch. */
#define RL_MAX_BATCH_CHANGES    4000
#define RL_MAX_BATCH_BYTES      (2 * 1024 * 1024)
/* A device's batch numbers (PUSH, WELCOME's "batch"): far beyond any real
 * count, and small enough that "the next one" never overflows. */
#define RL_MAX_BATCH_NUMBER     1000000000000000LL

/* Changes in one pull page (a page may run over by the rest of one row so
 * that a new record's fields always arrive together; not past a field
 * that row repeats). */
#define RL_MAX_PAGE_CHANGES     2000
/* The JSON size at which the hub ends a page at the next record boundary:
 * 2000 changes of long notes (64 KiB each, more escaped) would exceed
 * RL_MAX_FRAME, and a page refused for its size is built again the same
 * way at every retry — every device would stop at that point of the log. */
#define RL_MAX_PAGE_BYTES       (2 * 1024 * 1024)

/* Conflicts the hub lists to a device on its last PULL page. A rep with
 * more open conflicts than this needs the admin, not a longer list. */
#define RL_MAX_DEVICE_CONFLICTS 200
/* ...and at most this many bytes of their values (mine, theirs, decided),
 * the newest first: 200 conflicts of long notes would make the last page
 * too big for a frame, refused at every sync. The first is always sent. */
#define RL_MAX_DEVICE_CONFLICT_BYTES (1024 * 1024)

/* Redirects followed for one change (hub/dupes.c): a merged duplicate can
 * be merged again only as a survivor, never as a redirect, so a chain grows
 * one link per merge of an already merged record; far fewer in practice.
 * A longer chain means a damaged store, refused rather than looped over. */
#define RL_MAX_REDIRECT_HOPS    64

/* Records one `delete --cascade` tombstones with its record (record.c):
 * all in one transaction and one list in memory (~48 bytes each). A
 * customer with more than this many contacts, deals, visits and tasks is
 * beyond any field force's; past it the delete is refused, not half done. */
#define RL_MAX_CASCADE_ROWS     (1000 * 1000)

/* Snapshot bootstrap (sync/PROTOCOL.md, "Snapshot"): a new device loads
 * every synced row at once instead of replaying the hub's log.
 * Rows and field versions a snapshot may announce: 16M rows is ~35x the
 * benchmark dataset (470k rows, 4.66M fields), far beyond one team's CRM;
 * a row has at most RL_MAX_ROW_FIELDS synced fields, so fields are bounded
 * by rows x that as well. The device refuses an announcement above either
 * before it reads a single row. */
#define RL_MAX_SNAPSHOT_ROWS    (16 * 1000 * 1000)
#define RL_MAX_SNAPSHOT_FIELDS  (256LL * 1000 * 1000)
#define RL_MAX_ROW_FIELDS       32

/* Rows in one CHUNK frame, and the JSON size the hub packs a chunk to (the
 * size is counted exactly as written, escapes included, so a chunk stays
 * far below RL_MAX_FRAME: one more row of at most RL_MAX_ROW_FIELDS fields
 * of RL_MAX_FIELD_BYTES each, 6x escaped, still fits). */
#define RL_MAX_CHUNK_ROWS       4000
#define RL_SNAPSHOT_CHUNK_BYTES (2 * 1024 * 1024)
/* A snapshot image (sync/src/image.h): the store file a device takes, and
 * its compressed tar; the hub sends it in IMAGE frames of this size. */
#define RL_MAX_IMAGE_BYTES      (64LL * 1024 * 1024 * 1024)
#define RL_IMAGE_FRAME_BYTES    (1024 * 1024)

/* Synced tables a snapshot may send (the model has 12; the hub orders
 * them in an array of this size too), and secondary
 * indexes on them the device sets aside while it loads one (it has about
 * 20): fixed arrays, not sized by the hub. */
#define RL_SNAP_MAX_TABLES      64
#define RL_SNAP_MAX_INDEXES     128
/* Columns of a synced table the device checks in a snapshot image (the
 * widest, deals, has 16; the image's schema is this device's own). */
#define RL_SNAP_MAX_COLUMNS     64

/* Time limits (ms): the TLS handshake; waiting for the next frame; the
 * whole pre-authentication phase. A slow or silent peer is dropped. */
#define RL_HANDSHAKE_TIMEOUT_MS 10000
#define RL_READ_TIMEOUT_MS      30000
#define RL_PREAUTH_TIMEOUT_MS   10000

/* How long a device waits for the hub's answer to a request: the hub
 * applies pushes one at a time, so in a crowd (hundreds of devices after a
 * network comes back) an answer may wait for many others' batches. */
#define RL_ANSWER_TIMEOUT_MS    120000

/* The slowest link a frame's body is given time for, on top of the read
 * timeout: 16 KiB/s (poor 3G). A 2 MiB batch gets 30 s + 128 s. */
#define RL_MIN_LINK_BYTES_PER_S (16 * 1024)

/* Connections the hub serves at once, and of those, how many may still be
 * unauthenticated (TLS handshake, or an enrolment): a full share is made
 * room in by dropping the oldest of the source holding the most
 * (hub/server.c, "Admission"), so silent connections cannot lock devices
 * out. 256 lets a whole team's devices handshake at once after an outage
 * (the benchmark's 200 devices, from one address). */
#define RL_MAX_CONNECTIONS      512
#define RL_MAX_PREAUTH          256

/* Offline bundles (relasi/bundle.h): a bundle is a few members (manifest,
 * signature, certificate, a push or its answer) and the reply's pages.
 * Each member is one wire message, so RL_MAX_FRAME bounds it as it bounds a
 * frame. The whole is read into memory and verified before anything is
 * applied (a tampered page must not leave half a reply applied), so the
 * total is capped at what a rep's old laptop holds without trouble; the hub
 * stops adding pages before it (the last page says "more", the next bundle
 * carries on). 64 MiB is ~300k changes: months of a team's work. */
#define RL_MAX_BUNDLE_MEMBERS   256
#define RL_MAX_BUNDLE_BYTES     (64 * 1024 * 1024)

/* Enrolment tokens: lifetime by default, and PBKDF2 rounds for their hash.
 * The secret is 32 random bytes (hub/people.c), not a password: a stolen
 * hub.db gives an attacker 2^256 guesses per hash, which no round count
 * changes, so the hash only has to be one-way. 100,000 rounds cost each
 * `user add` and each enrolment CPU for nothing (PBKDF2's SHA-256 was 14%
 * of a simulation campaign's CPU under perf). Each token stores its own
 * rounds, so tokens issued with more still verify. */
#define RL_TOKEN_TTL_SECONDS    (24 * 3600)
#define RL_TOKEN_TTL_MAX_SECONDS (30L * 24 * 3600)    /* `--ttl` at most 30 days */
#define RL_TOKEN_PBKDF2_ROUNDS  1000

#endif
