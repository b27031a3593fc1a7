-- SPEC section 10: a device set up from My account needs fresh proof, and that proof
-- belongs to the session that gave it. The pending device remembers that session; only
-- it may see the new secret and confirm the device, and only for a short while (the
-- service decides how long from created_at). A session that ends lets go of it.
ALTER TABLE devices ADD COLUMN setup_session_id INTEGER REFERENCES sessions (id) ON DELETE SET NULL;
