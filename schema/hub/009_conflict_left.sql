-- hub/009_conflict_left.sql — the field's version a conflict left behind.
--
-- A resolution writes a value decided on the two values the conflict
-- holds. If the field changed after the conflict (a rep who pulled the
-- provisional winner and corrected it, a later conflict), writing it would
-- silently overwrite that later change. left_version is the field's version
-- right after the conflict was recorded — the provisional winner's — and
-- `relasi-hub conflicts resolve` refuses, unless --force, once the field's
-- version has moved on (hub/hubstore.c, hub_conflict_resolve).
ALTER TABLE hub_conflicts ADD COLUMN left_version INTEGER;

-- Open conflicts recorded before this version keep NULL and resolve
-- unchecked, as before: finding their version in the log would scan it
-- once per conflict, minutes on a large hub.

-- A duplicate merge now decides the loser's open conflicts (resolution
-- 'merged', hub/dupes.c); those of losers merged before are closed the same
-- way, so that no resolution can write to a merged record.
UPDATE hub_conflicts SET state = 'resolved', resolution = 'merged',
	resolved_at = (SELECT m.at FROM hub_merges m WHERE m.tbl = hub_conflicts.tbl AND
		       m.loser = hub_conflicts.row_id),
	resolved_seq = (SELECT m.last_seq FROM hub_merges m WHERE m.tbl = hub_conflicts.tbl AND
			m.loser = hub_conflicts.row_id)
WHERE state = 'open' AND EXISTS (SELECT 1 FROM hub_merges m WHERE m.tbl = hub_conflicts.tbl AND
				 m.loser = hub_conflicts.row_id);
