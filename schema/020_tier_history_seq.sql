-- 020_tier_history_seq.sql — the tier history keeps every evaluation.
--
-- rl_tier_history was keyed on (account_id, month, evaluated_at), a UTC
-- instant to the second, and written with INSERT OR REPLACE: a second
-- `relasi tiers evaluate` within the same second (a script, or the store's
-- clock fixed by RELASI_NOW) after the data changed replaced the earlier
-- row instead of adding one, and "the latest row" was a tie. Each row now
-- has its own number, seq, in the order it was stored: rows are only ever
-- added (plain INSERT), the latest of an account and month is the highest
-- seq, and the history reads in seq order. Existing rows keep their order
-- (month, evaluated_at). The rule stays: a row is added only when the tier
-- differs from the latest stored, so evaluating again changes nothing.
CREATE TABLE rl_tier_history_seq(
	seq          INTEGER PRIMARY KEY,      -- order stored; never reused (rows are never deleted)
	account_id   TEXT NOT NULL,
	month        TEXT NOT NULL,            -- "YYYY-MM"
	tier         TEXT,                     -- NULL: below every threshold
	avg_monthly  INTEGER NOT NULL,         -- minor units, rounded down
	currency     TEXT NOT NULL,
	evaluated_at TEXT NOT NULL             -- UTC instant
);
INSERT INTO rl_tier_history_seq(account_id, month, tier, avg_monthly, currency, evaluated_at)
	SELECT account_id, month, tier, avg_monthly, currency, evaluated_at FROM rl_tier_history
	ORDER BY account_id, month, evaluated_at;
DROP TABLE rl_tier_history;
ALTER TABLE rl_tier_history_seq RENAME TO rl_tier_history;
CREATE INDEX rl_tier_history_account ON rl_tier_history(account_id, month, seq);
CREATE INDEX rl_tier_history_month ON rl_tier_history(month);
