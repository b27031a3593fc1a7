-- SPEC 13: the OpenID Connect provider's state. Every token is kept only as its SHA-256.

-- How a sign-in proved who the user is (RFC 8176 amr values, comma-separated: pwd, otp),
-- on the transaction while it runs (second_factor: an OTP step was passed) and on the
-- session it leads to (for the ID token's amr and acr).
ALTER TABLE signin_transactions ADD COLUMN second_factor INTEGER NOT NULL DEFAULT 0;
ALTER TABLE sessions ADD COLUMN factors TEXT NOT NULL DEFAULT 'pwd';

-- The ID tokens' signing keys: RSA, the private key sealed under the server key. Exactly
-- one is current; a retired key stays (in the JWKS) until the tokens it signed expire.
CREATE TABLE oidc_signing_keys (
    id          INTEGER PRIMARY KEY,
    kid         TEXT NOT NULL UNIQUE,
    private_key BLOB NOT NULL,                 -- PKCS#1 DER, sealed
    modulus     TEXT NOT NULL,                 -- base64url, the JWK's n
    exponent    TEXT NOT NULL,                 -- base64url, the JWK's e
    current     INTEGER CHECK (current = 1),   -- 1 for the signing key, NULL for retired
    created_at  INTEGER NOT NULL,
    retired_at  INTEGER,
    CHECK ((current IS NULL) = (retired_at IS NOT NULL))
);
CREATE UNIQUE INDEX oidc_signing_keys_one_current ON oidc_signing_keys (current);

-- A user's subject identifier (sub): random, made at the first token, never reused.
CREATE TABLE oidc_subjects (
    user_id INTEGER PRIMARY KEY REFERENCES users (id) ON DELETE CASCADE,
    subject TEXT NOT NULL UNIQUE
);

-- An authorization request waiting for the user to sign in (its parameters as JSON).
CREATE TABLE oidc_requests (
    id         INTEGER PRIMARY KEY,
    token_hash BLOB NOT NULL UNIQUE,
    params     TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
);
CREATE INDEX oidc_requests_expiry ON oidc_requests (expires_at);

-- Authorization codes: single use, 60 s, bound to client, redirect URI and PKCE challenge.
CREATE TABLE oidc_codes (
    id             INTEGER PRIMARY KEY,
    code_hash      BLOB NOT NULL UNIQUE,
    client_id      TEXT NOT NULL REFERENCES oidc_clients (client_id) ON DELETE CASCADE,
    redirect_uri   TEXT NOT NULL,
    code_challenge TEXT,
    user_id        INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    session_id     INTEGER REFERENCES sessions (id) ON DELETE SET NULL,
    scopes         TEXT NOT NULL,
    nonce          TEXT,
    auth_time      INTEGER NOT NULL,
    factors        TEXT NOT NULL,
    issued_at      INTEGER NOT NULL,
    used_at        INTEGER
);
CREATE INDEX oidc_codes_issued ON oidc_codes (issued_at);

-- What a code exchange issued: a grant (a refresh token family) with its access tokens
-- and refresh tokens. Only the newest refresh token (generation) may be used; a grant
-- ends with its session (session_id NULL), at expires_at, or revoked.
CREATE TABLE oidc_grants (
    id         INTEGER PRIMARY KEY,
    code_id    INTEGER REFERENCES oidc_codes (id) ON DELETE SET NULL,
    client_id  TEXT NOT NULL REFERENCES oidc_clients (client_id) ON DELETE CASCADE,
    user_id    INTEGER NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    session_id INTEGER REFERENCES sessions (id) ON DELETE SET NULL,
    scopes     TEXT NOT NULL,
    auth_time  INTEGER NOT NULL,
    factors    TEXT NOT NULL,
    generation INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    revoked_at INTEGER
);
CREATE INDEX oidc_grants_code ON oidc_grants (code_id);
CREATE INDEX oidc_grants_session ON oidc_grants (session_id);

CREATE TABLE oidc_refresh_tokens (
    token_hash BLOB PRIMARY KEY,
    grant_id   INTEGER NOT NULL REFERENCES oidc_grants (id) ON DELETE CASCADE,
    generation INTEGER NOT NULL
);
CREATE INDEX oidc_refresh_tokens_grant ON oidc_refresh_tokens (grant_id);

CREATE TABLE oidc_access_tokens (
    token_hash BLOB PRIMARY KEY,
    grant_id   INTEGER NOT NULL REFERENCES oidc_grants (id) ON DELETE CASCADE,
    expires_at INTEGER NOT NULL
);
CREATE INDEX oidc_access_tokens_grant ON oidc_access_tokens (grant_id);
