-- Issue 16 items 4-6: withholding as policy, the payout of each citizen fixed at close
-- (gross, taxes, carried, net), and the bank's result per payout line.
--
-- New accounts (decision 0005): the taxes withheld at close, per citizen, until the district
-- remits them; and the net of a transfer the bank could not make (이체불능), per citizen,
-- until the next close puts it back into a payout file.
INSERT INTO ledger_accounts (code, name_ko, name_en, normal_side, party_kind, description) VALUES
 ('income_tax_payable', '예수 소득세', 'Income tax withheld payable', 'credit', 'citizen',
  'Income tax withheld from payouts at close, per citizen, until the district remits it.'),
 ('local_income_tax_payable', '예수 지방소득세', 'Local income tax withheld payable', 'credit',
  'citizen', 'Local income tax withheld from payouts at close, per citizen, until remitted.'),
 ('allowance_transfer_failed', '이체불능 수당', 'Allowance transfer failed', 'credit', 'citizen',
  'The net of a payout line the bank reported failed; carried into the next close''s payout file.');

ALTER TABLE ledger_transactions DROP CONSTRAINT ledger_transactions_kind_check;
ALTER TABLE ledger_transactions ADD CONSTRAINT ledger_transactions_kind_check CHECK (kind IN (
    'budget_appropriated', 'budget_cut', 'reservation', 'reservation_release',
    'payout_accrual', 'payout_reversal', 'payout_due', 'payout_paid',
    'payout_failed', 'failed_carry'));

ALTER TABLE policy_versions DROP CONSTRAINT policy_versions_kind_check;
ALTER TABLE policy_versions ADD CONSTRAINT policy_versions_kind_check
    CHECK (kind IN ('rates', 'minimum_wages', 'caps', 'withholding'));

-- What each citizen is paid by a closed month's payout file: written by the close, in its
-- transaction, never changed. `amount_won` is what is transferred: the gross less the
-- taxes, plus `carried_won` (an earlier failed transfer's net, taxed already).
CREATE TABLE payouts (
    period            text    NOT NULL REFERENCES periods (period),
    citizen_id        text    NOT NULL,
    withholding_kind  text    NOT NULL,
    paid_on           date    NOT NULL,
    gross_won         bigint  NOT NULL CHECK (gross_won >= 0),
    taxable_won       bigint  NOT NULL CHECK (taxable_won >= 0),
    income_tax_won    bigint  NOT NULL CHECK (income_tax_won >= 0),
    local_tax_won     bigint  NOT NULL CHECK (local_tax_won >= 0),
    carried_won       bigint  NOT NULL CHECK (carried_won >= 0),
    amount_won        bigint  NOT NULL CHECK (amount_won > 0),
    PRIMARY KEY (period, citizen_id),
    CONSTRAINT payout_adds_up CHECK (
        amount_won = gross_won - income_tax_won - local_tax_won + carried_won)
);
CREATE TRIGGER payouts_append_only BEFORE UPDATE OR DELETE ON payouts
    FOR EACH ROW EXECUTE FUNCTION refuse_change();
CREATE TRIGGER payouts_no_truncate BEFORE TRUNCATE ON payouts
    FOR EACH STATEMENT EXECUTE FUNCTION refuse_change();

-- The bank's result for one payout line: one per line, never changed (a repeated identical
-- result is answered from here; a different one is refused). A failed line's reversal is
-- posted by the same database transaction (`transaction_id`).
CREATE TABLE transfer_results (
    period          text        NOT NULL REFERENCES periods (period),
    citizen_id      text        NOT NULL,
    status          text        NOT NULL CHECK (status IN ('paid', 'failed')),
    reason          text        NOT NULL DEFAULT '' CHECK (length(reason) <= 200),
    amount_won      bigint      NOT NULL CHECK (amount_won > 0),
    transaction_id  bigint      REFERENCES ledger_transactions (id),
    result_id       uuid        NOT NULL,
    recorded_at     timestamptz NOT NULL,
    recorded_by     text        NOT NULL,
    request_id      text,
    PRIMARY KEY (period, citizen_id)
);
CREATE TRIGGER transfer_results_append_only BEFORE UPDATE OR DELETE ON transfer_results
    FOR EACH ROW EXECUTE FUNCTION refuse_change();
CREATE TRIGGER transfer_results_no_truncate BEFORE TRUNCATE ON transfer_results
    FOR EACH STATEMENT EXECUTE FUNCTION refuse_change();
