-- 014_base_snapshot.sql — the field versions a snapshot loads, one row per
-- record.
--
-- rl_base holds one row per field. A snapshot (sync/PROTOCOL.md) gives a
-- version to every field of every record: for the benchmark dataset 4.7
-- million rows, half of the store and 40% of the load's time. A snapshot
-- now writes each record's versions here, as one JSON object
-- {"field": version, ...}; later pulls and pushes still write rl_base. A
-- field's base is the larger of the two (the capture triggers,
-- sync/src/capture.c); a hub restore (sync/src/hubepoch.c) first moves
-- these into rl_base. rl_bases shows every field's base as rl_base alone
-- did before: read it, never the two tables one by one.
CREATE TABLE rl_base_snapshot(
	tbl      TEXT NOT NULL,
	row_id   TEXT NOT NULL,
	versions TEXT NOT NULL,
	PRIMARY KEY(tbl, row_id)
) WITHOUT ROWID;

CREATE VIEW rl_bases(tbl, row_id, field, version) AS
	SELECT tbl, row_id, field, max(version) FROM (
		SELECT tbl, row_id, field, version FROM rl_base
		UNION ALL
		SELECT b.tbl, b.row_id, j.key, j.value
		FROM rl_base_snapshot b, json_each(b.versions) j)
	GROUP BY tbl, row_id, field;
