"""The chart of accounts and every transaction kind: balanced legs, and a randomized run of
the whole money flow whose trial balance is zero after every step."""

from __future__ import annotations

from collections import defaultdict

import pytest
from allowance.domain import ledger
from allowance.domain.budget import Drawdown, take_from_reservation, uncap_drawdown
from allowance.domain.calendar import Period
from allowance.domain.ledger import Account, LedgerTransaction, Leg, TxnKind
from allowance.domain.money import MonthTotals, apply_split, split_against_cap
from hypothesis import given, settings
from hypothesis import strategies as st

P = Period(2031, 3)


def test_a_transaction_must_balance_and_name_its_parties() -> None:
    """Unbalanced, single-leg, zero, repeated or party-less legs are refused before SQL."""
    with pytest.raises(ledger.UnbalancedTransactionError):
        LedgerTransaction(
            TxnKind.RESERVATION,
            2031,
            P,
            "",
            (
                Leg("a", Account.BUDGET_AVAILABLE, 10),
                Leg("b", Account.BUDGET_RESERVED, -9, posting_id="p"),
            ),
        )
    with pytest.raises(ledger.UnbalancedTransactionError):
        LedgerTransaction(
            TxnKind.RESERVATION, 2031, P, "", (Leg("a", Account.BUDGET_AVAILABLE, 0),)
        )
    with pytest.raises(ValueError, match="needs a posting"):
        LedgerTransaction(
            TxnKind.RESERVATION,
            2031,
            P,
            "",
            (Leg("a", Account.BUDGET_AVAILABLE, 5), Leg("b", Account.BUDGET_RESERVED, -5)),
        )
    with pytest.raises(ValueError, match="repeat"):
        LedgerTransaction(
            TxnKind.BUDGET_CUT,
            2031,
            P,
            "",
            (Leg("a", Account.BUDGET_AVAILABLE, 5), Leg("a", Account.BUDGET_APPROPRIATION, -5)),
        )


def test_a_raise_covers_unfunded_obligations_first() -> None:
    """Raising by 100 with 30 unfunded: Dr appropriation 100, Cr unfunded 30, Cr available 70."""
    txn = ledger.budget_change(2031, P, 100, 30, "raise")
    assert txn is not None and txn.kind == TxnKind.BUDGET_APPROPRIATED
    amounts = {leg.account: leg.amount_won for leg in txn.legs}
    assert amounts == {
        Account.BUDGET_APPROPRIATION: 100,
        Account.BUDGET_UNFUNDED: -30,
        Account.BUDGET_AVAILABLE: -70,
    }
    cut = ledger.budget_change(2031, P, -40, 0, "cut")
    assert cut is not None and cut.kind == TxnKind.BUDGET_CUT
    assert ledger.budget_change(2031, P, 0, 0, "same") is None


def test_an_accrual_over_the_cap_records_the_capped_part_visibly() -> None:
    """Gross 1,000 with 300 capped: 1,000 drawn from the reservation, 700 payable to the
    citizen, 300 back to available, and 300 on the capped memorandum account."""
    split = split_against_cap(1_000, MonthTotals(0, 500, 500, 0), 1_200)
    txn = ledger.accrual(2031, P, "pst_1", "ctz_1", split, Drawdown(1_000, 0, 0), "m")
    assert txn is not None
    by_name = {leg.name.split(":")[1]: leg.amount_won for leg in txn.legs}
    assert by_name == {
        "reserved_draw": 1_000,
        "payable": -700,
        "capped_return": -300,
        "capped": -300,
        "capped_offset": 300,
    }


budget_ops = st.lists(
    st.tuples(
        st.sampled_from(["raise", "cut", "reserve", "attend", "correct", "release", "close"]),
        st.integers(min_value=0, max_value=50_000),
    ),
    min_size=1,
    max_size=60,
)


@settings(max_examples=150)
@given(budget_ops)
def test_randomized_money_flow_keeps_the_trial_balance_at_zero(
    ops: list[tuple[str, int]],
) -> None:
    """An in-memory ledger driven by the domain's own builders through random budget
    changes, reservations, accruals over a small cap, corrections, releases and month
    closes: after every step all entries sum to zero, the budget identity holds, available
    and reservations never go negative, and each month pays min(cap, gross)."""
    balances: dict[tuple[str, str], int] = defaultdict(int)  # (account, party) -> signed
    cap = 60_000
    month = MonthTotals()
    reserved_of: dict[str, int] = {}
    lines: list[tuple[str, int]] = []  # (posting, gross) of live accrual lines
    posting_no = 0

    def apply(txn: LedgerTransaction | None) -> None:
        if txn is None:
            return
        for leg in txn.legs:
            party = leg.posting_id if leg.account == Account.BUDGET_RESERVED else ""
            balances[(leg.account.value, party or "")] += leg.amount_won

    def available() -> int:
        return -balances[(Account.BUDGET_AVAILABLE.value, "")]

    def held(posting: str) -> int:
        return -balances[(Account.BUDGET_RESERVED.value, posting)]

    for op, amount in ops:
        figures = ledger.budget_figures(2031, _by_account(balances))
        if op == "raise":
            apply(ledger.budget_change(2031, P, amount, figures.unfunded_won, "r"))
        elif op == "cut":
            apply(ledger.budget_change(2031, P, -min(amount, available()), 0, "c"))
        elif op == "reserve" and amount <= available():
            posting_no += 1
            posting = f"pst_{posting_no}"
            apply(ledger.reservation(2031, P, posting, amount, "rsv"))
            reserved_of[posting] = amount
        elif op == "attend" and reserved_of:
            posting = sorted(reserved_of)[amount % len(reserved_of)]
            gross = amount % 40_000 + 1
            split = split_against_cap(gross, month, cap)
            source = take_from_reservation(gross, held(posting), available())
            apply(ledger.accrual(2031, P, posting, "ctz_1", split, source, "acc"))
            month = apply_split(month, split, 0)
            lines.append((posting, gross))
        elif op == "correct" and lines:
            posting, gross = lines.pop(amount % len(lines))
            split = split_against_cap(-gross, month, cap)
            from_available, from_unfunded = uncap_drawdown(-split.capped_won, available())
            apply(
                ledger.reversal(
                    2031,
                    P,
                    posting,
                    "ctz_1",
                    split,
                    to_reservation=posting in reserved_of,
                    uncap_from_available_won=from_available,
                    uncap_from_unfunded_won=from_unfunded,
                    memo="rev",
                )
            )
            month = apply_split(month, split, 0)
        elif op == "release" and reserved_of:
            posting = sorted(reserved_of)[amount % len(reserved_of)]
            apply(ledger.release(2031, P, posting, held(posting), "rel"))
            del reserved_of[posting]
        elif op == "close":
            payable = -balances[(Account.ALLOWANCE_PAYABLE.value, "")]
            if payable > 0:
                apply(ledger.payout_due(2031, P, "ctz_1", payable, "due", "due"))
        assert sum(balances.values()) == 0
        figures = ledger.budget_figures(2031, _by_account(balances))
        assert figures.balanced()
        assert figures.available_won >= 0 and figures.unfunded_won >= 0
        assert all(held(p) >= 0 for p in reserved_of)
        assert month.payable_won == min(cap, month.gross_won)
        assert figures.accrued_won == month.payable_won
        assert figures.capped_won == month.capped_won


def _by_account(balances: dict[tuple[str, str], int]) -> dict[str, int]:
    out: dict[str, int] = defaultdict(int)
    for (account, _), value in balances.items():
        out[account] += value
    return out


def test_every_account_has_names_a_finance_officer_recognises() -> None:
    """Each account has a Korean and an English name and a normal side."""
    for account in Account:
        info = ledger.ACCOUNTS[account]
        assert info.name_ko and info.name_en and info.normal_side in ("debit", "credit")
