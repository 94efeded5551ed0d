"""The hash chains' canonical serialization and the verifier (allowance/domain/chain.py)."""

from __future__ import annotations

import dataclasses
import hashlib
import uuid
from datetime import UTC, datetime, timedelta

from allowance.domain import chain

T0 = datetime(2026, 3, 1, 9, 30, tzinfo=UTC)


def _txn(i: int, memo: str = "m") -> chain.TransactionFields:
    return chain.TransactionFields(
        i,
        "reservation",
        2026,
        "2026-03",
        uuid.UUID(int=i),
        T0,
        T0 + timedelta(microseconds=i),
        memo,
        (
            chain.EntryFields("r:reserved", "budget_reserved", None, "P-1", -100),
            chain.EntryFields("r:available", "budget_available", None, "P-1", 100),
        ),
    )


def _chained(rows: list[chain.TransactionFields]) -> tuple[list[chain.StoredLink], chain.Head]:
    heads = chain.append(chain.Head(0, chain.GENESIS), rows)
    prevs = [chain.GENESIS, *(h.hash for h in heads[:-1])]
    stored = [
        chain.StoredLink(r, h.seq, p, h.hash) for r, h, p in zip(rows, heads, prevs, strict=True)
    ]
    return stored, heads[-1]


def test_the_serialization_is_the_documented_one() -> None:
    """Length-prefixed UTF-8 fields, '-' for NULL, microseconds since the epoch."""
    assert chain.encode(None) == b"-"
    assert chain.encode("") == b"0:"
    assert chain.encode("광산") == b"6:" + "광산".encode()
    assert chain.encode(-42) == b"3:-42"
    assert chain.encode(datetime(1970, 1, 1, 0, 0, 1, 5, tzinfo=UTC)) == b"7:1000005"
    assert chain.encode(uuid.UUID(int=1)) == b"36:00000000-0000-0000-0000-000000000001"
    row = _txn(7)
    expected = (
        b"18:ledger_transaction"
        + b"1:3"
        + b"1:7"
        + b"11:reservation"
        + b"4:2026"
        + b"7:2026-03"
        + b"36:"
        + str(uuid.UUID(int=7)).encode()
        + chain.encode(T0)
        + chain.encode(T0 + timedelta(microseconds=7))
        + b"1:m"
        + b"1:2"
        # entries by leg name: r:available before r:reserved
        + b"11:r:available"
        + b"16:budget_available"
        + b"-"
        + b"3:P-1"
        + b"3:100"
        + b"10:r:reserved"
        + b"15:budget_reserved"
        + b"-"
        + b"3:P-1"
        + b"4:-100"
    )
    assert row.canonical(3) == expected
    assert chain.link(chain.GENESIS, expected) == hashlib.sha256(bytes(32) + expected).digest()


def test_no_two_field_lists_serialize_alike() -> None:
    """Length prefixes keep field boundaries: moving text between fields changes the bytes."""
    assert chain.canonical(["ab", "c"]) != chain.canonical(["a", "bc"])
    assert chain.canonical([None]) != chain.canonical(["-"])
    assert chain.canonical([""]) != chain.canonical([None])


def test_an_intact_chain_verifies() -> None:
    stored, head = _chained([_txn(i) for i in range(1, 6)])
    verdict = chain.verify(stored, head)
    assert verdict == chain.Verdict(True, 5)
    assert verdict.render("ledger") == "ledger: verified (5 rows)"
    assert chain.verify([], chain.Head(0, chain.GENESIS)).ok


def test_an_altered_row_is_the_one_named() -> None:
    """A memo or an entry's amount changed in row 3 names row 3, not a later one."""
    stored, head = _chained([_txn(i) for i in range(1, 6)])
    memo = list(stored)
    memo[2] = dataclasses.replace(memo[2], fields=_txn(3, memo="edited"))
    verdict = chain.verify(memo, head)
    assert (verdict.ok, verdict.row_id, verdict.rows) == (False, 3, 2)
    assert "content no longer matches" in verdict.problem
    amount = list(stored)
    entries = (dataclasses.replace(_txn(3).entries[0], amount_won=-99), _txn(3).entries[1])
    amount[2] = dataclasses.replace(amount[2], fields=dataclasses.replace(_txn(3), entries=entries))
    assert chain.verify(amount, head).row_id == 3


def test_a_deleted_row_is_found() -> None:
    """Removing row 3 is reported at row 4 (its predecessor is gone); removing the newest
    row is reported against the head."""
    stored, head = _chained([_txn(i) for i in range(1, 6)])
    gone = stored[:2] + stored[3:]
    verdict = chain.verify(gone, head)
    assert (verdict.ok, verdict.row_id) == (False, 4)
    assert "deleted" in verdict.problem
    tail = chain.verify(stored[:-1], head)
    assert (tail.ok, tail.row_id) == (False, None)
    assert "newest rows were removed" in tail.problem


def test_a_rehashed_row_still_breaks_the_next_link() -> None:
    """Rewriting row 2 and its own hash leaves row 3's prev_hash pointing at the old one."""
    stored, head = _chained([_txn(i) for i in range(1, 4)])
    forged_hash = chain.link(stored[0].row_hash or b"", _txn(2, "forged").canonical(2))
    forged = list(stored)
    forged[1] = chain.StoredLink(_txn(2, "forged"), 2, stored[0].row_hash, forged_hash)
    verdict = chain.verify(forged, head)
    assert (verdict.ok, verdict.row_id) == (False, 3)
    assert "prev_hash" in verdict.problem


def test_an_unchained_row_is_a_finding() -> None:
    stored, head = _chained([_txn(1)])
    verdict = chain.verify([*stored, chain.StoredLink(_txn(2), None, None, None)], head)
    assert (verdict.ok, verdict.row_id) == (False, 2)


def test_access_rows_chain_every_who_field() -> None:
    """Each of the access row's fields is in its content, the self-declared staff id too."""
    row = chain.AccessFields(
        1, T0, "finance", None, "kim", "req-1", "10.0.0.1", "C-1", "decrypt", "p", "k1"
    )
    base = row.canonical(1)
    for name in ("actor_role", "stated_staff_id", "request_id", "client_address", "citizen_id"):
        assert dataclasses.replace(row, **{name: "x"}).canonical(1) != base
    assert dataclasses.replace(row, actor_staff_id="kim", stated_staff_id=None).canonical(1) != (
        base
    )


def test_access_logs_are_kept_two_years() -> None:
    """PIPA safety-measure standard: at least 2 years; 29 February rolls to 1 March."""
    assert chain.ACCESS_LOG_RETENTION_YEARS >= 2
    assert "제8조" in chain.ACCESS_LOG_RETENTION_SOURCE
    at = datetime(2024, 2, 29, tzinfo=UTC)
    assert not chain.access_row_may_be_deleted(at, datetime(2026, 2, 28, 23, tzinfo=UTC))
    assert chain.access_row_may_be_deleted(at, datetime(2026, 3, 1, tzinfo=UTC))
