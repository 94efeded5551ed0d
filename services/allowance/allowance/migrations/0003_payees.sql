-- Payee bank details, sealed with AES-256-GCM (allowance/payees.py); only masked forms are
-- stored in the clear. Every write and every decryption is written to an append-only
-- access log: who (role, staff id, request id), when, whose, why (Korean PIPA).
CREATE TABLE payees (
    citizen_id      text PRIMARY KEY,
    key_id          text  NOT NULL,
    nonce           bytea NOT NULL CHECK (length(nonce) = 12),
    ciphertext      bytea NOT NULL,
    bank_code       text  NOT NULL CHECK (bank_code ~ '^[0-9]{3}$'),
    account_masked  text  NOT NULL,
    holder_masked   text  NOT NULL,
    created_at      timestamptz NOT NULL,
    updated_at      timestamptz NOT NULL,
    updated_by      text  NOT NULL
);

CREATE TABLE payee_access_log (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    accessed_at     timestamptz NOT NULL,
    actor_role      text NOT NULL,
    actor_staff_id  text,
    request_id      text,
    citizen_id      text NOT NULL,
    action          text NOT NULL CHECK (action IN ('write', 'decrypt')),
    purpose         text NOT NULL,
    key_id          text NOT NULL
);
CREATE INDEX payee_access_log_citizen ON payee_access_log (citizen_id, accessed_at);
CREATE TRIGGER payee_access_log_append_only BEFORE UPDATE OR DELETE ON payee_access_log
    FOR EACH ROW EXECUTE FUNCTION refuse_change();
CREATE TRIGGER payee_access_log_no_truncate BEFORE TRUNCATE ON payee_access_log
    FOR EACH STATEMENT EXECUTE FUNCTION refuse_change();
