-- The programme's double-entry ledger (docs/decisions/0005-ledger-accounts.md).
--
-- What the database itself guarantees, whatever code writes here:
--   * entries and transactions are append-only: UPDATE, DELETE and TRUNCATE are refused;
--   * every transaction balances (its entries sum to zero) and has at least two entries,
--     checked at commit by deferred constraint triggers, and is written whole by one
--     database transaction (no entries added to an old transaction later);
--   * an (event, leg) pair is posted at most once, so a redelivered event cannot post twice;
--   * the available budget of a fiscal year and a posting's reservation never go negative
--     (CHECKs on the balances the entries maintain).
-- Sign convention: amount_won > 0 is a debit, < 0 a credit.

CREATE FUNCTION refuse_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% on %.% refused: the table is append-only', TG_OP, TG_TABLE_SCHEMA, TG_TABLE_NAME
        USING ERRCODE = 'insufficient_privilege',
              HINT = 'corrections are new rows (a reversing transaction), never edits';
END
$$;

CREATE TABLE ledger_accounts (
    code         text PRIMARY KEY,
    name_ko      text NOT NULL,
    name_en      text NOT NULL,
    normal_side  text NOT NULL CHECK (normal_side IN ('debit', 'credit')),
    party_kind   text NOT NULL CHECK (party_kind IN ('none', 'posting', 'citizen')),
    description  text NOT NULL
);

INSERT INTO ledger_accounts (code, name_ko, name_en, normal_side, party_kind, description) VALUES
 ('budget_appropriation', '예산 배정액', 'Budget appropriation', 'debit', 'none',
  'The programme budget of the fiscal year as appropriated; raised or cut only by new entries.'),
 ('budget_unfunded', '예산 부족액', 'Unfunded obligations', 'debit', 'none',
  'Allowance owed for work done when neither the reservation nor the available budget could fund it.'),
 ('budget_available', '가용 예산', 'Budget available', 'credit', 'none',
  'Budget not yet reserved for any posting.'),
 ('budget_reserved', '예약 예산', 'Budget reserved', 'credit', 'posting',
  'Pending reservations, per posting: capacity x the full-shift payout per seat.'),
 ('allowance_payable', '미지급 수당', 'Allowance payable', 'credit', 'citizen',
  'Allowance accrued for attended shifts, per citizen and statement month.'),
 ('allowance_payout_due', '지급 예정 수당', 'Allowance payout due', 'credit', 'citizen',
  'Payable moved into a closed month''s payout file, awaiting the bank transfer.'),
 ('allowance_paid', '지급 완료 수당', 'Allowance paid', 'credit', 'citizen',
  'Payouts the finance office marked as transferred.'),
 ('allowance_capped', '상한 초과액(비망)', 'Allowance capped (memorandum)', 'credit', 'citizen',
  'Earned over the monthly cap and therefore not paid, per citizen and month.'),
 ('allowance_capped_offset', '상한 초과 대조(비망)', 'Capped offset (memorandum)', 'debit', 'none',
  'The other side of the capped memorandum entries; always equals their total.');

CREATE TRIGGER ledger_accounts_append_only BEFORE UPDATE OR DELETE ON ledger_accounts
    FOR EACH ROW EXECUTE FUNCTION refuse_change();
CREATE TRIGGER ledger_accounts_no_truncate BEFORE TRUNCATE ON ledger_accounts
    FOR EACH STATEMENT EXECUTE FUNCTION refuse_change();

CREATE TABLE ledger_transactions (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    kind             text        NOT NULL CHECK (kind IN (
                         'budget_appropriated', 'budget_cut', 'reservation',
                         'reservation_release', 'payout_accrual', 'payout_reversal',
                         'payout_due', 'payout_paid')),
    fiscal_year      integer     NOT NULL CHECK (fiscal_year BETWEEN 2000 AND 9998),
    period           text        NOT NULL CHECK (period ~ '^[0-9]{4}-(0[1-9]|1[0-2])$'),
    source_event_id  uuid        NOT NULL,
    occurred_at      timestamptz NOT NULL,
    posted_at        timestamptz NOT NULL,
    memo             text        NOT NULL DEFAULT '' CHECK (length(memo) <= 500),
    -- the writing database transaction: entries must come from the same one, and ledger
    -- pages use it to show exactly what was committed when the first page was read
    tx_id            xid8        NOT NULL DEFAULT pg_current_xact_id()
);
CREATE INDEX ledger_transactions_posted_at ON ledger_transactions (posted_at);
CREATE INDEX ledger_transactions_period ON ledger_transactions (period);
CREATE INDEX ledger_transactions_source ON ledger_transactions (source_event_id);

CREATE TABLE ledger_entries (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    transaction_id   bigint NOT NULL REFERENCES ledger_transactions (id),
    account          text   NOT NULL REFERENCES ledger_accounts (code),
    citizen_id       text,
    posting_id       text,
    amount_won       bigint NOT NULL CHECK (amount_won <> 0),
    leg              text   NOT NULL CHECK (length(leg) BETWEEN 1 AND 200),
    source_event_id  uuid   NOT NULL,
    tx_id            xid8   NOT NULL DEFAULT pg_current_xact_id(),
    CONSTRAINT ledger_entries_once_per_event_leg UNIQUE (source_event_id, leg),
    CONSTRAINT ledger_entries_citizen_accounts_name_a_citizen CHECK (
        account NOT IN ('allowance_payable', 'allowance_payout_due', 'allowance_paid',
                        'allowance_capped') OR citizen_id IS NOT NULL),
    CONSTRAINT ledger_entries_reservations_name_a_posting CHECK (
        account <> 'budget_reserved' OR posting_id IS NOT NULL)
);
CREATE INDEX ledger_entries_transaction ON ledger_entries (transaction_id);
CREATE INDEX ledger_entries_citizen ON ledger_entries (citizen_id) WHERE citizen_id IS NOT NULL;
CREATE INDEX ledger_entries_posting ON ledger_entries (posting_id) WHERE posting_id IS NOT NULL;

CREATE TRIGGER ledger_transactions_append_only BEFORE UPDATE OR DELETE ON ledger_transactions
    FOR EACH ROW EXECUTE FUNCTION refuse_change();
CREATE TRIGGER ledger_transactions_no_truncate BEFORE TRUNCATE ON ledger_transactions
    FOR EACH STATEMENT EXECUTE FUNCTION refuse_change();
CREATE TRIGGER ledger_entries_append_only BEFORE UPDATE OR DELETE ON ledger_entries
    FOR EACH ROW EXECUTE FUNCTION refuse_change();
CREATE TRIGGER ledger_entries_no_truncate BEFORE TRUNCATE ON ledger_entries
    FOR EACH STATEMENT EXECUTE FUNCTION refuse_change();

-- At commit: the entry's transaction sums to zero, and both were written by this database
-- transaction with the same cause.
CREATE FUNCTION ledger_check_entry() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    total       bigint;
    header_tx   xid8;
    header_src  uuid;
BEGIN
    SELECT tx_id, source_event_id INTO header_tx, header_src
      FROM ledger_transactions WHERE id = NEW.transaction_id;
    IF header_tx <> pg_current_xact_id() OR NEW.tx_id <> pg_current_xact_id() THEN
        RAISE EXCEPTION 'ledger entry % joins transaction % written by another database transaction',
            NEW.id, NEW.transaction_id USING ERRCODE = 'check_violation';
    END IF;
    IF header_src <> NEW.source_event_id THEN
        RAISE EXCEPTION 'ledger entry % names event %, its transaction % names %',
            NEW.id, NEW.source_event_id, NEW.transaction_id, header_src
            USING ERRCODE = 'check_violation';
    END IF;
    SELECT sum(amount_won) INTO total FROM ledger_entries WHERE transaction_id = NEW.transaction_id;
    IF total <> 0 THEN
        RAISE EXCEPTION 'ledger transaction % does not balance: its entries sum to % won',
            NEW.transaction_id, total USING ERRCODE = 'check_violation';
    END IF;
    RETURN NULL;
END
$$;
CREATE CONSTRAINT TRIGGER ledger_entries_balanced AFTER INSERT ON ledger_entries
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION ledger_check_entry();

CREATE FUNCTION ledger_check_transaction() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    entries integer;
BEGIN
    IF NEW.tx_id <> pg_current_xact_id() THEN
        RAISE EXCEPTION 'ledger transaction % carries a foreign database transaction id', NEW.id
            USING ERRCODE = 'check_violation';
    END IF;
    SELECT count(*) INTO entries FROM ledger_entries WHERE transaction_id = NEW.id;
    IF entries < 2 THEN
        RAISE EXCEPTION 'ledger transaction % has % entries; a transaction has at least two',
            NEW.id, entries USING ERRCODE = 'check_violation';
    END IF;
    RETURN NULL;
END
$$;
CREATE CONSTRAINT TRIGGER ledger_transactions_have_entries AFTER INSERT ON ledger_transactions
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION ledger_check_transaction();

-- Balances per account, fiscal year, party (posting or citizen) and, for citizen accounts,
-- statement month: maintained from the entries by the trigger below, in the same database
-- transaction, so they are always exactly what the entries say (the trial-balance tests
-- re-derive them from the entries). Nothing else may write them.
--
-- The trigger works in three steps, because Postgres checks CHECK constraints on the row
-- an INSERT proposes before ON CONFLICT finds the existing one: create missing rows at
-- zero, lock every row the statement touches in key order (one lock order for every
-- writer, so writers never deadlock on balances), then add. The CHECKs then judge the
-- final balances.
CREATE TABLE account_balances (
    account      text    NOT NULL REFERENCES ledger_accounts (code),
    fiscal_year  integer NOT NULL,
    period       text    NOT NULL,   -- '' except for citizen accounts
    party        text    NOT NULL,   -- posting id, citizen id, or ''
    balance_won  bigint  NOT NULL,
    PRIMARY KEY (account, fiscal_year, period, party),
    -- credit-normal budget accounts never hold a debit balance: the available budget and
    -- each posting's reservation never go below zero, whatever the concurrency
    CONSTRAINT available_and_reserved_never_negative CHECK (
        account NOT IN ('budget_available', 'budget_reserved', 'allowance_payout_due',
                        'allowance_paid') OR balance_won <= 0),
    CONSTRAINT resources_never_negative CHECK (
        account NOT IN ('budget_appropriation', 'budget_unfunded') OR balance_won >= 0)
);
CREATE INDEX account_balances_year ON account_balances (fiscal_year, account);

CREATE FUNCTION account_balances_guard() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF pg_trigger_depth() < 2 THEN
        RAISE EXCEPTION 'account_balances is maintained by the ledger; % refused', TG_OP
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF TG_OP = 'DELETE' THEN
        RETURN OLD;
    END IF;
    RETURN NEW;
END
$$;
CREATE TRIGGER account_balances_only_from_ledger BEFORE INSERT OR UPDATE OR DELETE
    ON account_balances FOR EACH ROW EXECUTE FUNCTION account_balances_guard();
CREATE TRIGGER account_balances_no_truncate BEFORE TRUNCATE ON account_balances
    FOR EACH STATEMENT EXECUTE FUNCTION refuse_change();

-- Three steps, because Postgres checks CHECK constraints on the row an INSERT proposes
-- before ON CONFLICT sees the existing one: create missing rows at zero, lock every row
-- this statement touches in key order (one lock order for every writer: no deadlocks
-- between them), then add. The CHECKs then judge the final balances.
CREATE FUNCTION ledger_apply_balances() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    k_account  text[];
    k_year     integer[];
    k_period   text[];
    k_party    text[];
    k_won      bigint[];
BEGIN
    SELECT array_agg(account ORDER BY account, fiscal_year, period, party),
           array_agg(fiscal_year ORDER BY account, fiscal_year, period, party),
           array_agg(period ORDER BY account, fiscal_year, period, party),
           array_agg(party ORDER BY account, fiscal_year, period, party),
           array_agg(won ORDER BY account, fiscal_year, period, party)
      INTO k_account, k_year, k_period, k_party, k_won
      FROM (SELECT e.account,
                   t.fiscal_year,
                   CASE WHEN a.party_kind = 'citizen' THEN t.period ELSE '' END AS period,
                   CASE a.party_kind WHEN 'citizen' THEN e.citizen_id
                                     WHEN 'posting' THEN e.posting_id
                                     ELSE '' END AS party,
                   sum(e.amount_won) AS won
              FROM new_entries e
              JOIN ledger_transactions t ON t.id = e.transaction_id
              JOIN ledger_accounts a ON a.code = e.account
             GROUP BY 1, 2, 3, 4) changes;
    IF k_account IS NULL THEN
        RETURN NULL;
    END IF;

    INSERT INTO account_balances (account, fiscal_year, period, party, balance_won)
    SELECT u.account, u.fiscal_year, u.period, u.party, 0
      FROM unnest(k_account, k_year, k_period, k_party) AS u(account, fiscal_year, period, party)
    ON CONFLICT (account, fiscal_year, period, party) DO NOTHING;

    PERFORM 1
       FROM account_balances b
       JOIN unnest(k_account, k_year, k_period, k_party) AS u(account, fiscal_year, period, party)
         ON (b.account, b.fiscal_year, b.period, b.party)
          = (u.account, u.fiscal_year, u.period, u.party)
      ORDER BY b.account, b.fiscal_year, b.period, b.party
        FOR UPDATE OF b;

    UPDATE account_balances b
       SET balance_won = b.balance_won + u.won
      FROM unnest(k_account, k_year, k_period, k_party, k_won)
           AS u(account, fiscal_year, period, party, won)
     WHERE (b.account, b.fiscal_year, b.period, b.party)
         = (u.account, u.fiscal_year, u.period, u.party);
    RETURN NULL;
END
$$;
CREATE TRIGGER ledger_entries_maintain_balances AFTER INSERT ON ledger_entries
    REFERENCING NEW TABLE AS new_entries
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_apply_balances();
