"""Hash chains over the ledger's transactions and the payee access log (tamper evidence).

Each chained row carries `chain_seq` (1, 2, 3, … per chain, no gaps), `prev_hash` (the
previous row's `row_hash`; 32 zero bytes for the first row) and
`row_hash = SHA-256(prev_hash ‖ canonical(row))`. The chain's last (seq, hash) is also kept
in `chain_heads`, so removing the newest rows is noticed too. The rows are written with
their hashes in the same database transaction, appends serialized by locking the chain's
head row (allowance/store.py); migration 0004 chained the rows written before it, in id
order, with the same serialization written in SQL.

Canonical serialization (`canonical`): the concatenation of the fields below, in this
order, each encoded as

    NULL            → b"-"
    anything else   → b"<n>:" + v   where v is the value's UTF-8 text and n its byte length

with integers as decimal text, UUIDs as lowercase hyphenated text, and timestamps as the
integer number of microseconds since 1970-01-01T00:00:00Z. Fields:

* ledger transaction: "ledger_transaction", chain_seq, id, kind, fiscal_year, period,
  source_event_id, occurred_at, posted_at, memo, the number of entries, then for each entry
  in order of its leg name (by UTF-8 bytes): leg, account, citizen_id, posting_id,
  amount_won. The entries are part of their transaction's content: altering, adding or
  removing an entry changes the transaction's hash.
* payee access row: "payee_access", chain_seq, id, accessed_at, actor_role,
  actor_staff_id, stated_staff_id, request_id, client_address, citizen_id, action, purpose,
  key_id.
* approval row: "approval", chain_seq, id, at, approval_id, action, kind, subject,
  actor_role, actor_staff_id, detail, request_id.

`verify` recomputes a chain from the stored rows and names the first row that does not
match (pure: the rows come from the store).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from uuid import UUID

GENESIS = bytes(32)
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)

Value = str | int | UUID | datetime | None


def encode(value: Value) -> bytes:
    """One field of the canonical serialization."""
    if value is None:
        return b"-"
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError("a chained timestamp has a time zone")
        text = str((value - _EPOCH) // _MICROSECOND)
    elif isinstance(value, bool):
        raise TypeError("no booleans in a chained row")
    else:
        text = str(value)
    data = text.encode()
    return str(len(data)).encode() + b":" + data


def canonical(fields: Iterable[Value]) -> bytes:
    return b"".join(encode(v) for v in fields)


def link(prev_hash: bytes, content: bytes) -> bytes:
    """The row's hash: SHA-256 of the previous row's hash followed by its own content."""
    return hashlib.sha256(prev_hash + content).digest()


@dataclass(frozen=True)
class EntryFields:
    leg: str
    account: str
    citizen_id: str | None
    posting_id: str | None
    amount_won: int


@dataclass(frozen=True)
class TransactionFields:
    id: int
    kind: str
    fiscal_year: int
    period: str
    source_event_id: UUID
    occurred_at: datetime
    posted_at: datetime
    memo: str
    entries: tuple[EntryFields, ...]

    def canonical(self, chain_seq: int) -> bytes:
        entries = sorted(self.entries, key=lambda e: e.leg.encode())
        head: list[Value] = [
            "ledger_transaction",
            chain_seq,
            self.id,
            self.kind,
            self.fiscal_year,
            self.period,
            self.source_event_id,
            self.occurred_at,
            self.posted_at,
            self.memo,
            len(entries),
        ]
        for e in entries:
            head.extend((e.leg, e.account, e.citizen_id, e.posting_id, e.amount_won))
        return canonical(head)


@dataclass(frozen=True)
class AccessFields:
    id: int
    accessed_at: datetime
    actor_role: str
    actor_staff_id: str | None
    stated_staff_id: str | None
    request_id: str | None
    client_address: str | None
    citizen_id: str
    action: str
    purpose: str
    key_id: str

    def canonical(self, chain_seq: int) -> bytes:
        return canonical(
            (
                "payee_access",
                chain_seq,
                self.id,
                self.accessed_at,
                self.actor_role,
                self.actor_staff_id,
                self.stated_staff_id,
                self.request_id,
                self.client_address,
                self.citizen_id,
                self.action,
                self.purpose,
                self.key_id,
            )
        )


@dataclass(frozen=True)
class ApprovalFields:
    """One row of the approvals' audit trail: a request, an approval or a rejection."""

    id: int
    at: datetime
    approval_id: UUID
    action: str
    kind: str
    subject: str
    actor_role: str
    actor_staff_id: str | None
    detail: str
    request_id: str | None

    def canonical(self, chain_seq: int) -> bytes:
        return canonical(
            (
                "approval",
                chain_seq,
                self.id,
                self.at,
                self.approval_id,
                self.action,
                self.kind,
                self.subject,
                self.actor_role,
                self.actor_staff_id,
                self.detail,
                self.request_id,
            )
        )


Chained = TransactionFields | AccessFields | ApprovalFields


@dataclass(frozen=True)
class StoredLink:
    """A row as stored: its content and its chain columns (None: never chained)."""

    fields: Chained
    chain_seq: int | None
    prev_hash: bytes | None
    row_hash: bytes | None


@dataclass(frozen=True)
class Head:
    seq: int
    hash: bytes


def append(head: Head, rows: Sequence[Chained]) -> list[Head]:
    """The (seq, hash) of each of `rows` appended after `head`, in order."""
    out: list[Head] = []
    for row in rows:
        seq = head.seq + 1
        head = Head(seq, link(head.hash, row.canonical(seq)))
        out.append(head)
    return out


@dataclass(frozen=True)
class Verdict:
    ok: bool
    rows: int
    row_id: int | None = None
    problem: str = ""

    def render(self, what: str) -> str:
        if self.ok:
            return f"{what}: verified ({self.rows} rows)"
        where = f"row id {self.row_id}" if self.row_id is not None else "the chain head"
        return f"{what}: NOT verified: first altered row is {where}: {self.problem}"


class Verifier:
    """Recomputes a chain row by row (rows in chain order; unchained rows, if any, last):
    `step` answers the verdict at the first row that does not match, `finish` compares
    the end of the chain with the stored head."""

    def __init__(self) -> None:
        self.prev = Head(0, GENESIS)
        self.count = 0

    def step(self, row: StoredLink) -> Verdict | None:
        rid = row.fields.id
        prev, count = self.prev, self.count
        if row.chain_seq is None or row.prev_hash is None or row.row_hash is None:
            return Verdict(False, count, rid, "it is not chained (no chain_seq / hashes)")
        if row.chain_seq != prev.seq + 1:
            return Verdict(
                False,
                count,
                rid,
                f"chain_seq is {row.chain_seq}, expected {prev.seq + 1}: the row(s) before it"
                " were deleted, or the row was renumbered",
            )
        if bytes(row.prev_hash) != prev.hash:
            return Verdict(
                False,
                count,
                rid,
                f"prev_hash {bytes(row.prev_hash).hex()[:16]}… is not the previous row's hash"
                f" {prev.hash.hex()[:16]}… (the row before was removed or rewritten)",
            )
        recomputed = link(prev.hash, row.fields.canonical(row.chain_seq))
        if recomputed != bytes(row.row_hash):
            return Verdict(
                False,
                count,
                rid,
                f"its content no longer matches its hash (stored {bytes(row.row_hash).hex()[:16]}…,"
                f" recomputed {recomputed.hex()[:16]}…): a field of the row"
                " (or of one of its entries) was altered",
            )
        self.prev = Head(row.chain_seq, recomputed)
        self.count += 1
        return None

    def finish(self, head: Head) -> Verdict:
        if (head.seq, bytes(head.hash)) != (self.prev.seq, self.prev.hash):
            return Verdict(
                False,
                self.count,
                None,
                f"the head says seq {head.seq}, the rows end at seq {self.prev.seq}:"
                " the newest rows were removed (or the head rewritten)",
            )
        return Verdict(True, self.count)


def verify(rows: Iterable[StoredLink], head: Head) -> Verdict:
    """The chain's verdict: the first row that does not match, else the head check."""
    checker = Verifier()
    for row in rows:
        found = checker.step(row)
        if found is not None:
            return found
    return checker.finish(head)


# Personal-data access logs are kept at least two years: 개인정보의 안전성 확보조치 기준
# (개인정보보호위원회 고시) 제8조 제1항 — 접속기록은 1년 이상, 5만명 이상의 정보주체에 관하여
# 개인정보를 처리하거나 고유식별정보 또는 민감정보를 처리하는 시스템은 2년 이상 보관·관리.
# The allowance keeps the stricter figure whatever its size. It has no cleanup of the log at
# all (the table refuses DELETE); any future one must keep rows younger than this.
ACCESS_LOG_RETENTION_YEARS = 2
ACCESS_LOG_RETENTION_SOURCE = (
    "개인정보의 안전성 확보조치 기준 (개인정보보호위원회 고시) 제8조 제1항: 접속기록 2년 이상 보관"
)


def access_row_may_be_deleted(accessed_at: datetime, now: datetime) -> bool:
    """Whether an access-log row is past the retention (the same day two years on, or later)."""
    try:
        until = accessed_at.replace(year=accessed_at.year + ACCESS_LOG_RETENTION_YEARS)
    except ValueError:  # 29 February
        until = accessed_at.replace(
            year=accessed_at.year + ACCESS_LOG_RETENTION_YEARS, month=3, day=1
        )
    return now >= until
