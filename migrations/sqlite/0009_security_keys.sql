-- SPEC 14: security keys and passkeys (WebAuthn).

-- The user handle the keys of a user carry (16 random bytes, made at the first key): a
-- passkey names its user by it, so it is not the username or the row id.
CREATE TABLE webauthn_user_handles (
    user_id INTEGER PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    handle  BLOB NOT NULL UNIQUE
);

-- A user's registered keys (at most 5, checked by the insert). `passkey` is webauthn-rs's
-- credential (public key, counter, flags) as JSON; `sign_count` the last counter accepted,
-- which only a conditional update moves on.
CREATE TABLE security_keys (
    id            INTEGER PRIMARY KEY,
    user_id       INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    credential_id BLOB NOT NULL UNIQUE,
    name          TEXT NOT NULL,
    prompt_mode   TEXT NOT NULL,
    passkey       TEXT NOT NULL,
    discoverable  INTEGER NOT NULL,
    sign_count    INTEGER NOT NULL,
    created_at    INTEGER NOT NULL,
    last_used_at  INTEGER
);
CREATE INDEX security_keys_user ON security_keys (user_id);

-- A ceremony waiting for the browser's answer: webauthn-rs's state (the challenge) as
-- JSON. Single use (taken by a DELETE), bound to a sign-in transaction, a session, or
-- (passkey sign-in) the hash of a random handle, and expiring with the transaction.
CREATE TABLE webauthn_challenges (
    id             INTEGER PRIMARY KEY,
    purpose        TEXT NOT NULL,
    transaction_id INTEGER REFERENCES signin_transactions (id) ON DELETE CASCADE,
    session_id     INTEGER REFERENCES sessions (id) ON DELETE CASCADE,
    handle         BLOB UNIQUE,
    user_id        INTEGER REFERENCES users (id) ON DELETE CASCADE,
    state          TEXT NOT NULL,
    prompt_mode    TEXT,
    created_at     INTEGER NOT NULL,
    expires_at     INTEGER NOT NULL,
    CHECK ((transaction_id IS NOT NULL) + (session_id IS NOT NULL) + (handle IS NOT NULL) = 1)
);
CREATE UNIQUE INDEX webauthn_challenges_transaction ON webauthn_challenges (transaction_id, purpose);
CREATE UNIQUE INDEX webauthn_challenges_session ON webauthn_challenges (session_id, purpose);
CREATE INDEX webauthn_challenges_expiry ON webauthn_challenges (expires_at);
