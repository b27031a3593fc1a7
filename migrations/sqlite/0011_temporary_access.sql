-- SPEC 15: temporary access codes. At most one per user (a new one replaces it; revoking
-- deletes it), kept only as a keyed hash (HMAC-SHA256 under the server key of the user id
-- and the code). `uses_left` only goes down, by one conditional update per sign-in.
CREATE TABLE temporary_access_codes (
    user_id     INTEGER PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    code_hash   BLOB NOT NULL,
    reason      TEXT NOT NULL,
    issued_by   TEXT NOT NULL,
    created_at  INTEGER NOT NULL,       -- Unix ms
    expires_at  INTEGER NOT NULL,       -- Unix ms
    uses        INTEGER NOT NULL,
    uses_left   INTEGER NOT NULL CHECK (uses_left >= 0)
);
CREATE INDEX temporary_access_codes_expiry ON temporary_access_codes (expires_at);
