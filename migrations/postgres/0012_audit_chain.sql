-- SPEC 16: the audit log's hash chain. An entry is sealed after it is written: it gets
-- the next sequence number, the hash of the entry before it and its own hash (SHA-256 of
-- the canonical encoding in src/domain/audit_chain.rs). `audit_chain` is the one
-- ordering point: its single row, locked by each sealing transaction, holds the last
-- sequence number and hash.
ALTER TABLE audit_log ADD COLUMN seq BIGINT;
ALTER TABLE audit_log ADD COLUMN prev_hash BYTEA;
ALTER TABLE audit_log ADD COLUMN hash BYTEA;
CREATE UNIQUE INDEX audit_log_seq ON audit_log (seq);
CREATE INDEX audit_log_unsealed ON audit_log (id) WHERE seq IS NULL;

CREATE TABLE audit_chain (
    id        BIGINT PRIMARY KEY CHECK (id = 1),
    last_seq  BIGINT NOT NULL,
    last_hash BYTEA NOT NULL
);
INSERT INTO audit_chain (id, last_seq, last_hash) VALUES (1, 0, decode(repeat('00', 32), 'hex'));

-- Still append-only, but for the sealing: an entry's chain columns are written once,
-- and nothing else of it changes.
CREATE OR REPLACE FUNCTION twostep_audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND OLD.seq IS NULL AND NEW.seq IS NOT NULL
       AND NEW.prev_hash IS NOT NULL AND NEW.hash IS NOT NULL
       AND NEW.id = OLD.id AND NEW.at = OLD.at AND NEW.event = OLD.event
       AND NEW.actor IS NOT DISTINCT FROM OLD.actor
       AND NEW.subject IS NOT DISTINCT FROM OLD.subject
       AND NEW.client_ip IS NOT DISTINCT FROM OLD.client_ip
       AND NEW.detail = OLD.detail THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'the audit log is append-only';
END;
$$;
