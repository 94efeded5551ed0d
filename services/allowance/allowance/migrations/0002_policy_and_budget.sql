-- Rate policy, minimum wages and caps: every version of each table is kept (append-only);
-- the latest version of a kind is in force. The service seeds version 1 of each kind from
-- BRIEF §5 at first start (allowance/domain/policy.py holds the figures and their sources).
CREATE TABLE policy_versions (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind        text        NOT NULL CHECK (kind IN ('rates', 'minimum_wages', 'caps')),
    body        jsonb       NOT NULL CHECK (jsonb_typeof(body) = 'array'),
    set_at      timestamptz NOT NULL,
    set_by      text        NOT NULL,
    request_id  text,
    note        text        NOT NULL DEFAULT ''
);
CREATE INDEX policy_versions_latest ON policy_versions (kind, id DESC);
CREATE TRIGGER policy_versions_append_only BEFORE UPDATE OR DELETE ON policy_versions
    FOR EACH ROW EXECUTE FUNCTION refuse_change();
CREATE TRIGGER policy_versions_no_truncate BEFORE TRUNCATE ON policy_versions
    FOR EACH STATEMENT EXECUTE FUNCTION refuse_change();

-- One row per fiscal year that has a budget: the row every reservation of that year locks,
-- so reservations of one year are decided one at a time against the available balance.
-- The amounts themselves live only in the ledger.
CREATE TABLE budgets (
    fiscal_year  integer PRIMARY KEY CHECK (fiscal_year BETWEEN 2000 AND 9998),
    created_at   timestamptz NOT NULL
);

-- Who changed a budget, why, from what to what (the ledger transaction has the money).
CREATE TABLE budget_changes (
    id                 bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    fiscal_year        integer NOT NULL REFERENCES budgets (fiscal_year),
    transaction_id     bigint  NOT NULL REFERENCES ledger_transactions (id),
    previous_total_won bigint  NOT NULL,
    new_total_won      bigint  NOT NULL CHECK (new_total_won >= 0),
    note               text    NOT NULL,
    set_by             text    NOT NULL,
    request_id         text,
    set_at             timestamptz NOT NULL
);
CREATE TRIGGER budget_changes_append_only BEFORE UPDATE OR DELETE ON budget_changes
    FOR EACH ROW EXECUTE FUNCTION refuse_change();
CREATE TRIGGER budget_changes_no_truncate BEFORE TRUNCATE ON budget_changes
    FOR EACH STATEMENT EXECUTE FUNCTION refuse_change();

-- One reservation per posting (also for a refused submission, so that a redelivered one
-- is recognised). The money is in the ledger (`budget_reserved` with the posting id);
-- this row holds the terms locked at submission.
CREATE TABLE reservations (
    posting_id           text PRIMARY KEY,
    reservation_id       text NOT NULL UNIQUE,
    facility_id          text NOT NULL,
    status               text NOT NULL CHECK (status IN ('active', 'rejected', 'cancelled', 'closed')),
    fiscal_year          integer NOT NULL,
    hourly_rate_won      integer CHECK (hourly_rate_won > 0),
    rate_policy_version  bigint,
    capacity             integer NOT NULL CHECK (capacity >= 1),
    scheduled_minutes    integer NOT NULL CHECK (scheduled_minutes > 0),
    seat_share_won       bigint CHECK (seat_share_won >= 0),
    amount_won           bigint NOT NULL DEFAULT 0 CHECK (amount_won >= 0),
    starts_at            timestamptz NOT NULL,
    ends_at              timestamptz NOT NULL,
    revision             integer NOT NULL DEFAULT 0,
    reject_reason        text,
    created_at           timestamptz NOT NULL,
    updated_at           timestamptz NOT NULL,
    CONSTRAINT reservation_terms_locked CHECK (
        status = 'rejected'
        OR (hourly_rate_won IS NOT NULL AND seat_share_won IS NOT NULL
            AND amount_won = capacity * seat_share_won)),
    CONSTRAINT rejected_has_reason CHECK ((status = 'rejected') = (reject_reason IS NOT NULL))
);

-- Months of statements: open until finance closes them; a closed month never reopens.
CREATE TABLE periods (
    period            text PRIMARY KEY CHECK (period ~ '^[0-9]{4}-(0[1-9]|1[0-2])$'),
    status            text NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'closed')),
    closed_at         timestamptz,
    closed_by         text,
    close_id          uuid,
    citizens_count    integer,
    lines_count       integer,
    payable_won       bigint,
    payout_won        bigint,
    payout_count      integer,
    held_back_count   integer,
    held_back_won     bigint,
    paid_at           timestamptz,
    paid_by           text,
    paid_id           uuid,
    CONSTRAINT closed_has_facts CHECK (
        (status = 'closed') = (closed_at IS NOT NULL AND close_id IS NOT NULL)),
    CONSTRAINT paid_after_close CHECK (paid_at IS NULL OR status = 'closed')
);

CREATE FUNCTION periods_guard() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'DELETE' THEN
        RAISE EXCEPTION 'periods are never deleted' USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF OLD.status = 'closed' AND (
           NEW.status <> 'closed'
        OR NEW.closed_at IS DISTINCT FROM OLD.closed_at
        OR NEW.close_id IS DISTINCT FROM OLD.close_id
        OR NEW.payable_won IS DISTINCT FROM OLD.payable_won
        OR NEW.payout_won IS DISTINCT FROM OLD.payout_won
        OR NEW.held_back_won IS DISTINCT FROM OLD.held_back_won
        OR (OLD.paid_at IS NOT NULL AND NEW.paid_at IS DISTINCT FROM OLD.paid_at)) THEN
        RAISE EXCEPTION 'period % is closed: its close cannot change', OLD.period
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER periods_closed_is_final BEFORE UPDATE OR DELETE ON periods
    FOR EACH ROW EXECUTE FUNCTION periods_guard();
CREATE TRIGGER periods_no_truncate BEFORE TRUNCATE ON periods
    FOR EACH STATEMENT EXECUTE FUNCTION refuse_change();

-- The payout sub-ledger: one line per ledger transaction of an accrual or a reversal, with
-- minutes, gross, payable and capped. Statements are sums of these lines.
CREATE TABLE payout_lines (
    id                   bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    transaction_id       bigint  NOT NULL UNIQUE REFERENCES ledger_transactions (id),
    kind                 text    NOT NULL CHECK (kind IN ('accrual', 'reversal')),
    attendance_id        text    NOT NULL,
    attendance_revision  integer NOT NULL,
    posting_id           text    NOT NULL,
    booking_id           text    NOT NULL,
    citizen_id           text    NOT NULL,
    shift_starts_at      timestamptz NOT NULL,
    shift_period         text    NOT NULL,
    iso_week             text    NOT NULL,
    period               text    NOT NULL,
    adjustment           boolean GENERATED ALWAYS AS (period <> shift_period) STORED,
    fiscal_year          integer NOT NULL,
    hourly_rate_won      integer NOT NULL CHECK (hourly_rate_won > 0),
    minutes_paid         integer NOT NULL,
    gross_won            bigint  NOT NULL,
    payable_won          bigint  NOT NULL,
    capped_won           bigint  NOT NULL,
    cap_won              bigint  NOT NULL,
    reverses_line_id     bigint  UNIQUE REFERENCES payout_lines (id),
    source_event_id      uuid    NOT NULL,
    created_at           timestamptz NOT NULL,
    CONSTRAINT payout_line_splits_gross CHECK (gross_won = payable_won + capped_won),
    CONSTRAINT payout_line_signs CHECK (
        (kind = 'accrual' AND reverses_line_id IS NULL AND minutes_paid >= 0 AND gross_won > 0
            AND payable_won BETWEEN 0 AND gross_won)
     OR (kind = 'reversal' AND reverses_line_id IS NOT NULL AND minutes_paid <= 0
            AND gross_won < 0 AND payable_won BETWEEN gross_won AND 0)),
    CONSTRAINT payout_line_once_per_event UNIQUE (source_event_id, kind)
);
CREATE INDEX payout_lines_statement ON payout_lines (period, citizen_id)
    INCLUDE (minutes_paid, gross_won, payable_won, capped_won, adjustment, shift_period);
CREATE INDEX payout_lines_citizen ON payout_lines (citizen_id, shift_period);
CREATE TRIGGER payout_lines_append_only BEFORE UPDATE OR DELETE ON payout_lines
    FOR EACH ROW EXECUTE FUNCTION refuse_change();
CREATE TRIGGER payout_lines_no_truncate BEFORE TRUNCATE ON payout_lines
    FOR EACH STATEMENT EXECUTE FUNCTION refuse_change();

-- The latest applied revision of each attendance record and the line that pays it now.
CREATE TABLE attendance_payouts (
    attendance_id    text PRIMARY KEY,
    posting_id       text NOT NULL,
    booking_id       text NOT NULL,
    citizen_id       text NOT NULL,
    revision         integer NOT NULL,
    status           text NOT NULL CHECK (status IN ('attended', 'no_show')),
    minutes_paid     integer NOT NULL CHECK (minutes_paid >= 0),
    gross_won        bigint  NOT NULL CHECK (gross_won >= 0),
    shift_starts_at  timestamptz NOT NULL,
    line_id          bigint REFERENCES payout_lines (id),
    updated_at       timestamptz NOT NULL
);
CREATE INDEX attendance_payouts_posting ON attendance_payouts (posting_id);

-- The monthly cap's state: one citizen's totals for one Seoul month of shifts. After every
-- line, payable = min(cap, gross) (allowance/domain/money.py).
CREATE TABLE citizen_months (
    citizen_id    text    NOT NULL,
    month         text    NOT NULL,
    minutes_paid  bigint  NOT NULL DEFAULT 0,
    gross_won     bigint  NOT NULL DEFAULT 0 CHECK (gross_won >= 0),
    payable_won   bigint  NOT NULL DEFAULT 0 CHECK (payable_won >= 0),
    capped_won    bigint  NOT NULL DEFAULT 0 CHECK (capped_won >= 0),
    PRIMARY KEY (citizen_id, month),
    CONSTRAINT month_splits_gross CHECK (gross_won = payable_won + capped_won)
);

-- Statements frozen at month close (one row per citizen with lines in the month or money
-- still payable from earlier months).
CREATE TABLE statements (
    period               text    NOT NULL REFERENCES periods (period),
    citizen_id           text    NOT NULL,
    lines_count          integer NOT NULL,
    minutes_paid         bigint  NOT NULL,
    gross_won            bigint  NOT NULL,
    capped_won           bigint  NOT NULL,
    payable_won          bigint  NOT NULL,
    adjustment_won       bigint  NOT NULL,
    adjustment_periods   text    NOT NULL DEFAULT '',
    balance_won          bigint  NOT NULL,   -- payable of this and earlier months at close
    payout_won           bigint  NOT NULL CHECK (payout_won >= 0),
    carried_forward_won  bigint  NOT NULL,
    held_back            boolean NOT NULL,
    frozen_at            timestamptz NOT NULL,
    PRIMARY KEY (period, citizen_id),
    CONSTRAINT statement_carries_the_rest CHECK (balance_won = payout_won + carried_forward_won)
);
CREATE INDEX statements_payout ON statements (period) WHERE payout_won > 0;
CREATE TRIGGER statements_append_only BEFORE UPDATE OR DELETE ON statements
    FOR EACH ROW EXECUTE FUNCTION refuse_change();
CREATE TRIGGER statements_no_truncate BEFORE TRUNCATE ON statements
    FOR EACH STATEMENT EXECUTE FUNCTION refuse_change();
