-- Named finance staff, maker–checker approvals and console sessions (issue 17).
--
-- * staff_members: a named credential per person (role finance_clerk, finance_approver or
--   auditor); only the SHA-256 of the token is kept (shared/auth.py), shown once at creation.
--   Revoking sets revoked_at; a row is never deleted, so old audit rows keep their name.
-- * approval_requests: what a clerk asked for (kind, body) and exactly what it will change
--   (preview: totals and counts from a dry run), then who approved or rejected it and why.
-- * approval_log: the append-only, hash-chained audit trail of every request, approval and
--   rejection (allowance/domain/chain.py ApprovalFields; chain 'approvals').
-- * console_sessions: the finance console's server-side sessions (the cookie carries a
--   random id; only its hash is stored), ended on sign-out, idle timeout or revocation.

CREATE TABLE staff_members (
    id          text        PRIMARY KEY,
    name        text        NOT NULL CHECK (length(name) BETWEEN 1 AND 100),
    role        text        NOT NULL
                CHECK (role IN ('finance_clerk', 'finance_approver', 'auditor')),
    token_hash  text        NOT NULL UNIQUE,
    created_at  timestamptz NOT NULL,
    created_by  text        NOT NULL,
    revoked_at  timestamptz,
    revoked_by  text
);
CREATE TRIGGER staff_members_no_delete BEFORE DELETE ON staff_members
    FOR EACH ROW EXECUTE FUNCTION refuse_change();

CREATE TABLE approval_requests (
    id                 uuid        PRIMARY KEY,
    kind               text        NOT NULL CHECK (kind IN
                       ('period_close', 'period_mark_paid', 'transfer_results', 'budget_change')),
    subject            text        NOT NULL,
    body               jsonb       NOT NULL,
    preview            jsonb       NOT NULL,
    status             text        NOT NULL CHECK (status IN ('pending', 'approved', 'rejected')),
    requested_by       text        NOT NULL,
    requested_by_name  text,
    requested_role     text        NOT NULL,
    requested_at       timestamptz NOT NULL,
    decided_by         text,
    decided_by_name    text,
    decided_at         timestamptz,
    reason             text,
    result             jsonb
);
CREATE INDEX approval_requests_status ON approval_requests (status, requested_at DESC);
CREATE TRIGGER approval_requests_no_delete BEFORE DELETE ON approval_requests
    FOR EACH ROW EXECUTE FUNCTION refuse_change();

CREATE TABLE approval_log (
    id              bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at              timestamptz NOT NULL,
    approval_id     uuid        NOT NULL REFERENCES approval_requests (id),
    action          text        NOT NULL CHECK (action IN ('requested', 'approved', 'rejected')),
    kind            text        NOT NULL,
    subject         text        NOT NULL,
    actor_role      text        NOT NULL,
    actor_staff_id  text,
    detail          text        NOT NULL,
    request_id      text,
    chain_seq       bigint      NOT NULL UNIQUE,
    prev_hash       bytea       NOT NULL CHECK (length(prev_hash) = 32),
    row_hash        bytea       NOT NULL CHECK (length(row_hash) = 32)
);
CREATE TRIGGER approval_log_append_only BEFORE UPDATE OR DELETE ON approval_log
    FOR EACH ROW EXECUTE FUNCTION refuse_change();
CREATE TRIGGER approval_log_no_truncate BEFORE TRUNCATE ON approval_log
    FOR EACH STATEMENT EXECUTE FUNCTION refuse_change();

ALTER TABLE chain_heads DROP CONSTRAINT chain_heads_chain_check;
ALTER TABLE chain_heads ADD CONSTRAINT chain_heads_chain_check
    CHECK (chain IN ('ledger', 'payee_access', 'approvals'));
INSERT INTO chain_heads (chain, seq, hash) VALUES ('approvals', 0, decode(repeat('00', 32), 'hex'));

CREATE TABLE console_sessions (
    id_hash       text        PRIMARY KEY,
    staff_id      text        NOT NULL REFERENCES staff_members (id),
    csrf_token    text        NOT NULL,
    created_at    timestamptz NOT NULL,
    last_seen_at  timestamptz NOT NULL,
    ended_at      timestamptz
);
CREATE INDEX console_sessions_staff ON console_sessions (staff_id) WHERE ended_at IS NULL;
