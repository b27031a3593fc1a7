-- SPEC 13: the OpenID Connect client registry ("Applications"). redirect_uris and
-- post_logout_redirect_uris are JSON arrays of strings, kept exactly as registered (they
-- match exactly). A confidential client's secret (a 256-bit random token) is kept only
-- as its SHA-256, as API tokens are; a public client has none.
CREATE TABLE oidc_clients (
    id                        INTEGER PRIMARY KEY,
    client_id                 TEXT NOT NULL UNIQUE,
    name                      TEXT NOT NULL,
    redirect_uris             TEXT NOT NULL,
    post_logout_redirect_uris TEXT NOT NULL,
    confidential              INTEGER NOT NULL CHECK (confidential IN (0, 1)),
    require_2fa               INTEGER NOT NULL CHECK (require_2fa IN (0, 1)),
    secret_hash               BLOB,
    created_at                INTEGER NOT NULL,      -- Unix ms
    updated_at                INTEGER NOT NULL,
    CHECK ((confidential = 1) = (secret_hash IS NOT NULL))
);

-- The new permission manage_applications goes to the administrator's role of an existing
-- database: the role that held every permission there was (the bootstrap gives the
-- System Administrator all of them, and the store writes them in this order).
UPDATE roles SET permissions = permissions || ',manage_applications'
    WHERE permissions = 'manage_users,manage_roles,manage_system_settings,manage_2fa_bypass,manage_ip_settings,view_audit_log,verify_otp';
