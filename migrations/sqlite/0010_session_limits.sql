-- SPEC 15: per-role session limits. A session of the role's users ends after
-- `session_idle_minutes` without a request (1 to 1440) and `session_max_hours` after the
-- sign-in (1 to 168); existing roles get the defaults, 30 minutes and 12 hours.
ALTER TABLE roles ADD COLUMN session_idle_minutes INTEGER NOT NULL DEFAULT 30;
ALTER TABLE roles ADD COLUMN session_max_hours INTEGER NOT NULL DEFAULT 12;
