-- SPEC 16: the audit log's hash chain. An entry is sealed after it is written: it gets
-- the next sequence number, the hash of the entry before it and its own hash (SHA-256 of
-- the canonical encoding in src/domain/audit_chain.rs). `audit_chain` is the one
-- ordering point: its single row, locked by each sealing transaction, holds the last
-- sequence number and hash.
ALTER TABLE audit_log ADD COLUMN seq INTEGER;
ALTER TABLE audit_log ADD COLUMN prev_hash BLOB;
ALTER TABLE audit_log ADD COLUMN hash BLOB;
CREATE UNIQUE INDEX audit_log_seq ON audit_log (seq);
CREATE INDEX audit_log_unsealed ON audit_log (id) WHERE seq IS NULL;

CREATE TABLE audit_chain (
    id        INTEGER PRIMARY KEY CHECK (id = 1),
    last_seq  INTEGER NOT NULL,
    last_hash BLOB NOT NULL
);
INSERT INTO audit_chain (id, last_seq, last_hash) VALUES (1, 0, zeroblob(32));

-- Still append-only, but for the sealing: an entry's chain columns are written once,
-- and nothing else of it changes.
DROP TRIGGER IF EXISTS audit_log_no_update;
CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
WHEN NOT (OLD.seq IS NULL AND NEW.seq IS NOT NULL AND NEW.prev_hash IS NOT NULL
          AND NEW.hash IS NOT NULL AND NEW.id IS OLD.id AND NEW.at IS OLD.at
          AND NEW.event IS OLD.event AND NEW.actor IS OLD.actor
          AND NEW.subject IS OLD.subject AND NEW.client_ip IS OLD.client_ip
          AND NEW.detail IS OLD.detail)
BEGIN
    SELECT RAISE(ABORT, 'the audit log is append-only');
END;
