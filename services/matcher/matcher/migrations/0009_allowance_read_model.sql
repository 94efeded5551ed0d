-- The allowance as the matcher shows it to the partner (issue 18): a read model of the
-- allowance's events on allowance.payouts.v1 (no service reads another's tables).
--
-- The cap table's monthly cap, beside the weekly hours of the same version (CapsChanged
-- carries both per year). NULL on rows held before this migration: the next CapsChanged
-- (of any version, the same one included) fills it.
ALTER TABLE week_caps ADD COLUMN monthly_amount_max_won bigint
    CHECK (monthly_amount_max_won >= 0);

-- Per citizen and statement month (Asia/Seoul, `YYYY-MM`, the allowance's `period`): the
-- won accrued (payable) and held back by the monthly cap, from PayoutAccrued less
-- PayoutReversed. `payment_status` is what the allowance has told of the month's payment:
-- `accruing` until the month is closed (PeriodClosed), then `closed`; `paid`, `held_back`
-- (with `status_reason`) and `failed` are for the payee and transfer events to come.
CREATE TABLE allowance_months (
    citizen_id      text   NOT NULL,
    period          text   NOT NULL CHECK (period ~ '^[0-9]{4}-[0-9]{2}$'),
    accrued_won     bigint NOT NULL DEFAULT 0,
    capped_won      bigint NOT NULL DEFAULT 0,
    gross_won       bigint NOT NULL DEFAULT 0,
    minutes_paid    bigint NOT NULL DEFAULT 0,
    -- the monthly cap the allowance applied (PayoutCapped), when it held something back
    cap_won         bigint CHECK (cap_won >= 0),
    payment_status  text   NOT NULL DEFAULT 'accruing'
                        CHECK (payment_status IN ('accruing', 'closed', 'paid', 'held_back',
                                                  'failed')),
    status_reason   text,
    status_at       timestamptz,
    updated_at      timestamptz NOT NULL,
    PRIMARY KEY (citizen_id, period)
);

-- Months the allowance closed (PeriodClosed is one event per month, not per citizen): a
-- citizen with nothing accrued in a closed month is still shown `closed`.
CREATE TABLE allowance_periods (
    period      text PRIMARY KEY CHECK (period ~ '^[0-9]{4}-[0-9]{2}$'),
    closed_at   timestamptz NOT NULL,
    received_at timestamptz NOT NULL
);

-- Postings that ended (PostingCancelled, PostingClosed) before the matcher ever knew them,
-- e.g. a shift cancelled while its budget was still pending: an application for one is
-- refused at once with the posting's end (`posting_cancelled` / `posting_closed`), not
-- held for HELD_APPLICATION_WAIT_S and then refused `unknown_posting` (issue 18).
CREATE TABLE ended_postings (
    posting_id  text PRIMARY KEY,
    reason      text NOT NULL CHECK (reason IN ('posting_cancelled', 'posting_closed')),
    ended_at    timestamptz NOT NULL
);
