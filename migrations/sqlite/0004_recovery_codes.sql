-- Recovery codes (SPEC section 10): one set of single-use codes per user, kept only as
-- keyed hashes (HMAC-SHA256 under the server key of the user id and the code). A new set
-- replaces the old one; a used code keeps its row with used_at set.
CREATE TABLE recovery_codes (
    id          INTEGER PRIMARY KEY,
    user_id     INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    code_hash   BLOB NOT NULL,
    created_at  INTEGER NOT NULL,       -- Unix ms
    used_at     INTEGER,                -- Unix ms; NULL while the code is unused
    UNIQUE (user_id, code_hash)
);
