-- SPEC section 12: users created from the directory at their first sign-in. `source` says
-- where the password is checked ('local': password_hash; 'ldap': a bind as directory_dn,
-- and password_hash holds a marker that no password matches). directory_groups is the
-- JSON array of the entry's group DNs as last read, directory_synced_at when that was.
ALTER TABLE users ADD COLUMN source TEXT NOT NULL DEFAULT 'local' CHECK (source IN ('local', 'ldap'));
ALTER TABLE users ADD COLUMN directory_dn TEXT;
ALTER TABLE users ADD COLUMN directory_groups TEXT;
ALTER TABLE users ADD COLUMN directory_synced_at INTEGER;
