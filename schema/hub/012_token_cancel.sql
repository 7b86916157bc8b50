-- hub/012_token_cancel.sql — enrolment tokens the admin cancelled.
--
-- `relasi-hub token cancel` (and `user remove`, for every open token of
-- the user) stops an unused token at once: hub_enroll refuses a token with
-- cancelled_at set, by name, and writes nothing. A used token is never
-- cancelled (its device is revoked instead), so used_at and cancelled_at
-- are never both set. NULL for every token made before.
ALTER TABLE hub_tokens ADD COLUMN cancelled_at TEXT;
