-- hub/010_device_key.sql — the key each device certificate was issued for.
--
-- The hub records an enrolment (the device, the token used) and only then
-- sends the certificate; a connection lost in between left the device
-- without its certificate, its token used and its id "already enrolled":
-- no way to enrol that store again. With the key's hash the hub can tell
-- the same device asking again — a CSR is signed by its key, so only the
-- holder of that key can — and issue its certificate once more
-- (hub/people.c, hub_enroll). NULL for devices enrolled before.
ALTER TABLE hub_devices ADD COLUMN key_sha256 TEXT;
