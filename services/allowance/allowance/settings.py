"""Settings of the allowance service (environment variables; see docs/operations.md)."""

from __future__ import annotations

from pydantic import Field, SecretStr

from shared.context import ServiceContext
from shared.settings import ServiceSettings


class AllowanceSettings(ServiceSettings):
    service_name: str = "allowance"
    port: int = 8003
    # Its consumers keep read models and apply sagas people do not wait on to the
    # millisecond: let events gather (shared settings, `consumer_linger_ms`).
    consumer_linger_ms: int = Field(default=100, ge=0, le=5_000)

    # The finance staff token (ledger, statements, payout file); only this service serves
    # finance staff, so only it is given the token.
    finance_token: SecretStr = SecretStr("")

    # Payee bank details are sealed with AES-256-GCM: `k1:<base64 of 32 bytes>,k2:...`.
    # New writes use the active key; old rows open with the key id stored beside them, so
    # keys rotate without downtime. Production refuses to start without a key; test and
    # demo fall back to a fixed, public development key (with a warning).
    allowance_payee_keys: SecretStr = SecretStr("")
    allowance_payee_active_key_id: str = ""
    # The private keys bank details from the partner are sealed to by the matcher (HPKE,
    # X25519; `s1:<base64 of 32 bytes>,s0:...`, newest first: shared/payee_seal.py,
    # decision 0014). This service's alone; the matcher gets the public key. Production
    # refuses to start without it; test and demo without it dead-letter the submissions.
    allowance_payee_seal_keys: SecretStr = SecretStr("")

    # "Budget exhausted" means the available budget cannot fund one more seat of a typical
    # shift. 180 minutes: BRIEF §5 allows 30 minutes to 8 hours; the pilot's shifts (meal
    # help, after-school care) are mostly 2 to 4 hours. An assumption, tune it here.
    typical_shift_minutes: int = 180

    # How many months after a shift's month a payout looks for an open month to be stated
    # in (adjustments for closed months). 20 years: in practice it is the next month.
    period_search_months_max: int = 240

    # Month close, payout files and exports may run long on a year of data (BRIEF §11: a
    # million attended shifts close in under 60 s); every other statement keeps the
    # service-wide timeout.
    close_statement_timeout_ms: int = 120_000
    export_statement_timeout_ms: int = 600_000
    # Rows fetched per round trip from the server-side cursor of a streamed export.
    export_batch_rows: int = 2_000
    # An XLSX sheet holds 1,048,576 rows; a longer export continues on a new sheet.
    xlsx_sheet_rows_max: int = 1_048_575

    # JSON pages of the ledger and statements.
    ledger_page_size_default: int = 100

    # What the bank transfer's memo (적요) says; the month is appended.
    payout_memo_prefix: str = "광산시민수당"

    # How many people a money action (month close, mark paid, transfer results, budget
    # change) needs (issue 17, maker–checker): unset = 2 in production, 1 in test and demo,
    # where scripts and tests close months alone through the existing endpoints. With 2,
    # those endpoints answer 409 `approval_required` and the action goes through
    # `POST /v1/approvals` (a clerk requests, a different approver approves).
    approvals_required: int | None = Field(None, ge=1, le=2)

    # The finance console (/finance): a session ends after this long without a request
    # (the 10–30 minutes public-sector systems use; 15 here), and after this long at most.
    console_session_idle_s: int = 900
    console_session_max_s: int = 12 * 3600
    # Outcome reports (issue 19, GET /v1/reports/outcomes). A report spans at most 24
    # months: the district reports by fiscal year, two years side by side is the widest
    # comparison asked for, and the bound keeps one request's work bounded.
    report_months_max: int = 24
    # A draw's selection probabilities (domain/outcomes.py) are computed exactly up to this
    # many entries (2^n states: 14 entries is 16,384 states, a few ms), by Monte Carlo above.
    report_draw_exact_entries_max: int = 14
    # Monte Carlo work per draw, in key computations: rounds = this / entries (at least
    # 100). 200,000 gives 2,000 rounds for 100 entries (standard error <= 0.011), about
    # 0.2 s of one core, once per draw when DrawCompleted is consumed.
    report_draw_work_max: int = 200_000

    def staff_tokens(self) -> dict[str, SecretStr]:
        return {**super().staff_tokens(), "finance": self.finance_token}


# The running service's context, typed for this service (shared/context.py).
Context = ServiceContext[AllowanceSettings]
