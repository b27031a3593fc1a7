-- SPEC section 4, hard limit: consecutive failures counted across lockout expiries,
-- reset only by a success or an administrator's unlock. `failed_count` stays the count
-- toward Lockout Threshold (it starts again when a lock expires).
ALTER TABLE users ADD COLUMN consecutive_failures BIGINT NOT NULL DEFAULT 0
    CHECK (consecutive_failures >= 0);
UPDATE users SET consecutive_failures = failed_count;
