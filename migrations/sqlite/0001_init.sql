-- twostep schema, SQLite. Times are Unix milliseconds; flags are 0/1 integers.

CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value BLOB NOT NULL
);

CREATE TABLE roles (
    id           INTEGER PRIMARY KEY,
    name         TEXT NOT NULL,
    name_key     TEXT NOT NULL UNIQUE,          -- lower case: names are unique case-insensitively
    require_2fa  TEXT NOT NULL CHECK (require_2fa IN ('no', 'encourage', 'force')),
    otp_required INTEGER NOT NULL CHECK (otp_required IN (0, 1)),
    interface    INTEGER NOT NULL CHECK (interface IN (0, 1)),
    permissions  TEXT NOT NULL,                 -- comma-separated snake_case names
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL,
    -- The seed's WARNING: an interface role never requires 2FA nor OTP.
    CHECK (interface = 0 OR (require_2fa = 'no' AND otp_required = 0))
);

CREATE TABLE users (
    id                   INTEGER PRIMARY KEY,
    username             TEXT NOT NULL UNIQUE,  -- lower case: usernames are case-insensitive
    display_name         TEXT NOT NULL,
    email                TEXT,
    role_id              INTEGER NOT NULL REFERENCES roles (id),
    password_hash        TEXT NOT NULL,
    must_change_password INTEGER NOT NULL DEFAULT 0 CHECK (must_change_password IN (0, 1)),
    failed_count         INTEGER NOT NULL DEFAULT 0 CHECK (failed_count >= 0),
    locked_until         INTEGER,               -- NULL: not locked; 9223372036854775807: until unlocked
    active               INTEGER NOT NULL DEFAULT 1 CHECK (active IN (0, 1)),
    created_at           INTEGER NOT NULL,
    updated_at           INTEGER NOT NULL
);
CREATE INDEX users_role ON users (role_id);

CREATE TABLE settings (
    key        TEXT PRIMARY KEY,
    value      TEXT NOT NULL,
    updated_at INTEGER NOT NULL
);

CREATE TABLE ip_rules (
    id         INTEGER PRIMARY KEY,
    network    TEXT NOT NULL UNIQUE,            -- canonical CIDR
    bypass_2fa INTEGER NOT NULL CHECK (bypass_2fa IN (0, 1)),
    note       TEXT NOT NULL DEFAULT '',
    created_at INTEGER NOT NULL
);

CREATE TABLE devices (
    id            INTEGER PRIMARY KEY,
    user_id       INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    state         TEXT NOT NULL CHECK (state IN ('pending', 'confirmed')),
    method        TEXT NOT NULL CHECK (method IN ('hotp', 'totp')),
    secret        BLOB NOT NULL,                -- XChaCha20-Poly1305 under the server key
    algorithm     TEXT NOT NULL CHECK (algorithm IN ('SHA1', 'SHA256', 'SHA512')),
    digits        INTEGER NOT NULL CHECK (digits BETWEEN 6 AND 10),
    period        INTEGER NOT NULL CHECK (period BETWEEN 1 AND 300),
    counter       INTEGER CHECK (counter >= 0), -- HOTP: the next expected counter
    last_step     INTEGER,                      -- TOTP: the last accepted time step
    prompt_mode   TEXT NOT NULL CHECK (prompt_mode IN ('every_login', 'when_appropriate')),
    created_at    INTEGER NOT NULL,
    confirmed_at  INTEGER,
    CHECK ((method = 'hotp') = (counter IS NOT NULL))
);
-- At most one confirmed device per user, plus at most one pending (Setup New Device).
CREATE UNIQUE INDEX devices_one_confirmed ON devices (user_id) WHERE state = 'confirmed';
CREATE UNIQUE INDEX devices_one_pending ON devices (user_id) WHERE state = 'pending';

CREATE TABLE signin_transactions (
    id          INTEGER PRIMARY KEY,
    token_hash  BLOB NOT NULL UNIQUE,
    user_id     INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    steps       TEXT NOT NULL,                  -- remaining steps, comma-separated
    client_ip   TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL
);
CREATE INDEX signin_transactions_expiry ON signin_transactions (expires_at);

CREATE TABLE emailed_otps (
    id             INTEGER PRIMARY KEY,
    user_id        INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    transaction_id INTEGER REFERENCES signin_transactions (id) ON DELETE CASCADE,
    code_hash      BLOB NOT NULL,               -- HMAC-SHA256 under a key derived from the server key
    created_at     INTEGER NOT NULL,
    expires_at     INTEGER NOT NULL,
    used_at        INTEGER,
    voided         INTEGER NOT NULL DEFAULT 0 CHECK (voided IN (0, 1))
);
CREATE INDEX emailed_otps_user ON emailed_otps (user_id, created_at);

CREATE TABLE outbox (
    id              INTEGER PRIMARY KEY,
    message_id      TEXT NOT NULL UNIQUE,
    from_address    TEXT NOT NULL,
    to_address      TEXT NOT NULL,
    payload         BLOB,                        -- the whole message, sealed under the server key; NULL once sent or dead
    emailed_otp_id  INTEGER REFERENCES emailed_otps (id) ON DELETE SET NULL,
    state           TEXT NOT NULL DEFAULT 'pending' CHECK (state IN ('pending', 'sent', 'dead')),
    attempts        INTEGER NOT NULL DEFAULT 0,
    next_attempt_at INTEGER NOT NULL,
    lease_until     INTEGER,
    last_error      TEXT,
    created_at      INTEGER NOT NULL,
    expires_at      INTEGER NOT NULL,
    sent_at         INTEGER
);
CREATE INDEX outbox_due ON outbox (state, next_attempt_at);

CREATE TABLE sessions (
    id           INTEGER PRIMARY KEY,
    token_hash   BLOB NOT NULL UNIQUE,
    user_id      INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    client_ip    TEXT NOT NULL,
    created_at   INTEGER NOT NULL,
    last_seen_at INTEGER NOT NULL,
    expires_at   INTEGER NOT NULL              -- absolute limit
);
CREATE INDEX sessions_user ON sessions (user_id);

CREATE TABLE api_tokens (
    id           INTEGER PRIMARY KEY,
    token_hash   BLOB NOT NULL UNIQUE,
    name         TEXT NOT NULL,
    user_id      INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at   INTEGER NOT NULL,
    last_used_at INTEGER,
    revoked_at   INTEGER
);

CREATE TABLE email_templates (
    module     TEXT NOT NULL,
    name       TEXT NOT NULL,
    subject    TEXT NOT NULL,
    text_body  TEXT NOT NULL,
    html_body  TEXT,
    updated_at INTEGER NOT NULL,
    PRIMARY KEY (module, name)
);

CREATE TABLE audit_log (
    id        INTEGER PRIMARY KEY,
    at        INTEGER NOT NULL,
    event     TEXT NOT NULL,
    actor     TEXT,
    subject   TEXT,
    client_ip TEXT,
    detail    TEXT NOT NULL DEFAULT ''
);
CREATE INDEX audit_log_at ON audit_log (at);
CREATE INDEX audit_log_subject ON audit_log (subject, at);

-- The audit log is append-only, whoever connects.
CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'the audit log is append-only');
END;
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'the audit log is append-only');
END;
