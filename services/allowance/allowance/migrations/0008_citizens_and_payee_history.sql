-- The citizens the allowance knows (issue 16): the pseudonymous ids (`ctz_…`, the
-- matcher's) that its consumed events named — bookings, attendance, payee details from
-- the partner. `PUT /v1/payees/{citizen_ref}` stores details only for a known citizen (a
-- ref of no citizen is a 404), so a typo or a partner's user id never becomes a payee.
-- No personal data here: the id, where it was first seen, and when.
CREATE TABLE citizens (
    citizen_id     text PRIMARY KEY CHECK (citizen_id ~ '^ctz_[a-z0-9]{1,40}$'),
    first_seen_at  timestamptz NOT NULL,
    first_seen_in  text NOT NULL
                       CHECK (first_seen_in IN ('booking', 'attendance', 'payee', 'ledger'))
);
-- Every citizen the ledger already names (accruals through this migration).
INSERT INTO citizens (citizen_id, first_seen_at, first_seen_in)
SELECT e.citizen_id, min(t.posted_at), 'ledger'
  FROM ledger_entries e JOIN ledger_transactions t ON t.id = e.transaction_id
 WHERE e.citizen_id ~ '^ctz_[a-z0-9]{1,40}$'
 GROUP BY e.citizen_id
ON CONFLICT DO NOTHING;

-- Where the details in force came from: finance staff (the registration form) or the
-- citizen through the partner app (with the consent time and the submission's webhook-id).
ALTER TABLE payees
    ADD COLUMN source      text NOT NULL DEFAULT 'finance' CHECK (source IN ('finance', 'partner')),
    ADD COLUMN consent_at  timestamptz,
    ADD COLUMN webhook_id  text;

-- Replaced details, kept sealed for audit and never returned by any endpoint: a
-- re-submission copies the row in force here, in the transaction that replaces it.
CREATE TABLE payee_history (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    citizen_id      text  NOT NULL,
    key_id          text  NOT NULL,
    nonce           bytea NOT NULL,
    ciphertext      bytea NOT NULL,
    bank_code       text  NOT NULL,
    account_masked  text  NOT NULL,
    holder_masked   text  NOT NULL,
    source          text  NOT NULL,
    consent_at      timestamptz,
    webhook_id      text,
    created_at      timestamptz NOT NULL,
    updated_at      timestamptz NOT NULL,
    updated_by      text  NOT NULL,
    replaced_at     timestamptz NOT NULL
);
CREATE INDEX payee_history_citizen ON payee_history (citizen_id, replaced_at);
CREATE TRIGGER payee_history_append_only BEFORE UPDATE OR DELETE ON payee_history
    FOR EACH ROW EXECUTE FUNCTION refuse_change();
CREATE TRIGGER payee_history_no_truncate BEFORE TRUNCATE ON payee_history
    FOR EACH STATEMENT EXECUTE FUNCTION refuse_change();
