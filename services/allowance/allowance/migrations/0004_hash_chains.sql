-- Tamper evidence: the ledger's transactions and the payee access log are hash-chained
-- (allowance/domain/chain.py specifies the canonical serialization; the functions below
-- are the same serialization in SQL, used here to chain the rows written before this
-- migration, in id order). New rows are chained by allowance/store.py in the writing
-- transaction, appends serialized by locking the chain's row in `chain_heads`.
-- `gwangsan ledger verify` / `gwangsan audit verify` recompute both chains.
--
-- The payee access log's "who" becomes the authenticated identity: actor_role (the
-- credential's role), request_id and client_address, plus actor_staff_id only when the
-- credential itself names a staff member. A staff id the caller merely states
-- (`X-Staff-Id`) is kept apart in stated_staff_id; every staff id logged before this
-- migration was such a statement, hence the rename.

CREATE TABLE chain_heads (
    chain  text   PRIMARY KEY CHECK (chain IN ('ledger', 'payee_access')),
    seq    bigint NOT NULL CHECK (seq >= 0),
    hash   bytea  NOT NULL CHECK (length(hash) = 32)
);
CREATE TRIGGER chain_heads_no_delete BEFORE DELETE ON chain_heads
    FOR EACH ROW EXECUTE FUNCTION refuse_change();
CREATE TRIGGER chain_heads_no_truncate BEFORE TRUNCATE ON chain_heads
    FOR EACH STATEMENT EXECUTE FUNCTION refuse_change();

ALTER TABLE ledger_transactions
    ADD COLUMN chain_seq bigint UNIQUE,
    ADD COLUMN prev_hash bytea CHECK (length(prev_hash) = 32),
    ADD COLUMN row_hash  bytea CHECK (length(row_hash) = 32);

ALTER TABLE payee_access_log RENAME COLUMN actor_staff_id TO stated_staff_id;
ALTER TABLE payee_access_log
    ADD COLUMN actor_staff_id  text,
    ADD COLUMN client_address  text,
    ADD COLUMN chain_seq bigint UNIQUE,
    ADD COLUMN prev_hash bytea CHECK (length(prev_hash) = 32),
    ADD COLUMN row_hash  bytea CHECK (length(row_hash) = 32);
COMMENT ON COLUMN payee_access_log.stated_staff_id IS
    'self-declared by the caller (X-Staff-Id header); not authenticated';
COMMENT ON COLUMN payee_access_log.actor_role IS
    'authenticated: the role of the credential presented';
COMMENT ON COLUMN payee_access_log.actor_staff_id IS
    'authenticated: the staff member the credential belongs to (named credentials only)';
COMMENT ON COLUMN payee_access_log.client_address IS
    'the client address the request came from';
COMMENT ON TABLE payee_access_log IS
    'personal-data access log: kept at least 2 years (allowance/domain/chain.py'
    ' ACCESS_LOG_RETENTION); never deleted by the allowance (append-only triggers)';

-- One field of the canonical serialization: NULL -> '-', else '<byte length>:<UTF-8>'.
CREATE FUNCTION chain_field(v text) RETURNS bytea
LANGUAGE sql IMMUTABLE AS $$
    SELECT CASE WHEN v IS NULL THEN '\x2d'::bytea
                ELSE convert_to(length(convert_to(v, 'UTF8'))::text || ':', 'UTF8')
                     || convert_to(v, 'UTF8') END
$$;
-- A timestamp as integer microseconds since the Unix epoch, as text.
CREATE FUNCTION chain_us(ts timestamptz) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT (extract(epoch FROM ts) * 1000000)::bigint::text
$$;

ALTER TABLE ledger_transactions DISABLE TRIGGER ledger_transactions_append_only;
ALTER TABLE payee_access_log DISABLE TRIGGER payee_access_log_append_only;

DO $$
DECLARE
    r     record;
    prev  bytea := decode(repeat('00', 32), 'hex');
    seq   bigint := 0;
    h     bytea;
BEGIN
    FOR r IN
        SELECT t.id,
               chain_field(t.id::text) || chain_field(t.kind) || chain_field(t.fiscal_year::text)
               || chain_field(t.period) || chain_field(t.source_event_id::text)
               || chain_field(chain_us(t.occurred_at)) || chain_field(chain_us(t.posted_at))
               || chain_field(t.memo)
               || chain_field((SELECT count(*) FROM ledger_entries e
                                WHERE e.transaction_id = t.id)::text)
               || coalesce((SELECT string_agg(chain_field(e.leg) || chain_field(e.account)
                                              || chain_field(e.citizen_id)
                                              || chain_field(e.posting_id)
                                              || chain_field(e.amount_won::text),
                                              ''::bytea ORDER BY e.leg COLLATE "C")
                              FROM ledger_entries e WHERE e.transaction_id = t.id), ''::bytea)
               AS rest
          FROM ledger_transactions t ORDER BY t.id
    LOOP
        seq := seq + 1;
        h := sha256(prev || chain_field('ledger_transaction') || chain_field(seq::text) || r.rest);
        UPDATE ledger_transactions SET chain_seq = seq, prev_hash = prev, row_hash = h
         WHERE id = r.id;
        prev := h;
    END LOOP;
    INSERT INTO chain_heads (chain, seq, hash) VALUES ('ledger', seq, prev);

    prev := decode(repeat('00', 32), 'hex');
    seq := 0;
    FOR r IN
        SELECT a.id,
               chain_field(a.id::text) || chain_field(chain_us(a.accessed_at))
               || chain_field(a.actor_role) || chain_field(a.actor_staff_id)
               || chain_field(a.stated_staff_id) || chain_field(a.request_id)
               || chain_field(a.client_address) || chain_field(a.citizen_id)
               || chain_field(a.action) || chain_field(a.purpose) || chain_field(a.key_id)
               AS rest
          FROM payee_access_log a ORDER BY a.id
    LOOP
        seq := seq + 1;
        h := sha256(prev || chain_field('payee_access') || chain_field(seq::text) || r.rest);
        UPDATE payee_access_log SET chain_seq = seq, prev_hash = prev, row_hash = h
         WHERE id = r.id;
        prev := h;
    END LOOP;
    INSERT INTO chain_heads (chain, seq, hash) VALUES ('payee_access', seq, prev);
END
$$;

ALTER TABLE ledger_transactions ENABLE TRIGGER ledger_transactions_append_only;
ALTER TABLE payee_access_log ENABLE TRIGGER payee_access_log_append_only;
