"""A draw anyone can verify (issue 19): commit → freeze → draw → reveal. Spec: docs/fairness.md.

The v1 draw (`draw.py`) picks its seed after the entries are known and only an operator can
read it, so nobody outside can tell a fair draw from a chosen one. Here the seed is drawn
when the posting opens and only its SHA-256 (the commitment) is published; at
`applications_close_at` the entry list and the draw's parameters are frozen and their hash
published; then the seed is revealed with the outcome. Anyone holding the record recomputes
every step with the standard library of any language (`docs/verify_draw.py` is one).

Every published value is an integer or a string, so the published data are exact; floats
appear only inside the ranking, computed from those integers the same way each time.

Pure: standard library only, no I/O, no clock. The use case supplies ids, minutes and times.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import math
import re
import secrets
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

ALGORITHM = "efraimidis-spirakis/hmac-sha256/v2"
# The name of the seed's stream of uniforms; other streams of the same seed would get other
# names, so no two uses of the seed can ever produce the same bytes.
STREAM_U = "fair-draw/v2/u"
SEED_BYTES = 32
# Ids as the matcher's API accepts them (printable ASCII, no space): sorting by code point
# is then the same in every language, and JSON needs no escapes beyond `\"` and `\\`.
ID_PATTERN = re.compile(r"[\x21-\x7e]{1,100}")
_HEX64 = re.compile(r"[0-9a-f]{64}")
# A verification lists at most this many differing positions per outcome list: a shifted
# ranking of thousands would otherwise drown the first, telling difference.
POSITIONS_REPORTED_MAX = 20


# --- commit ------------------------------------------------------------------------------


def new_seed() -> bytes:
    """32 bytes from the OS's CSPRNG: unguessable, so publishing its hash reveals nothing."""
    return secrets.token_bytes(SEED_BYTES)


def commitment(seed: bytes) -> str:
    """Lowercase hex SHA-256 of the seed's bytes, published when the posting opens."""
    return hashlib.sha256(seed).hexdigest()


# --- freeze ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Entry:
    """One entrant: a pseudonymous id and their allowance minutes over the rolling window."""

    entry_id: str
    minutes_window: int


@dataclass(frozen=True)
class FrozenEntryList:
    """What is published at `applications_close_at`, before the outcome: the entries (sorted
    by id) and every parameter of the draw, bound to the commitment. Its hash fixes them all,
    so neither an entry nor the number of seats can change once the seed is known."""

    posting_id: str
    algorithm: str
    commitment: str
    seats: int
    waitlist_room: int
    half_weight_minutes: int
    window_months: int
    entries: tuple[Entry, ...]

    def canonical_json(self) -> bytes:
        """The exact bytes hashed: JSON, keys sorted, no spaces, ASCII, integers only."""
        document = {
            "algorithm": self.algorithm,
            "commitment": self.commitment,
            "entries": [
                {"id": e.entry_id, "minutes_window": e.minutes_window}
                for e in sorted(self.entries, key=lambda e: e.entry_id)
            ],
            "half_weight_minutes": self.half_weight_minutes,
            "posting_id": self.posting_id,
            "seats": self.seats,
            "waitlist_room": self.waitlist_room,
            "window_months": self.window_months,
        }
        return json.dumps(
            document, sort_keys=True, separators=(",", ":"), ensure_ascii=True
        ).encode("ascii")

    def entry_list_hash(self) -> str:
        """Lowercase hex SHA-256 of `canonical_json()`."""
        return hashlib.sha256(self.canonical_json()).hexdigest()

    def problems(self) -> list[str]:
        """Why these inputs cannot be drawn (empty if they can). A tampered record may break
        them, so `verify` reports these rather than raising."""
        out: list[str] = []
        if not ID_PATTERN.fullmatch(self.posting_id):
            out.append("posting_id must be 1 to 100 printable ASCII characters")
        for name, value, least in (
            ("seats", self.seats, 0),
            ("waitlist_room", self.waitlist_room, 0),
            ("half_weight_minutes", self.half_weight_minutes, 1),
            ("window_months", self.window_months, 1),
        ):
            if value < least:
                out.append(f"{name} must be at least {least}, is {value}")
        seen: set[str] = set()
        for e in self.entries:
            if not ID_PATTERN.fullmatch(e.entry_id):
                out.append(f"entry id {e.entry_id!r} is not 1 to 100 printable ASCII characters")
            if e.entry_id in seen:
                out.append(f"entry id {e.entry_id} appears twice")
            seen.add(e.entry_id)
            if e.minutes_window < 0:
                out.append(f"entry {e.entry_id} has negative minutes_window")
        return out


def freeze(
    posting_id: str,
    commitment_hex: str,
    entries: Iterable[Entry],
    *,
    seats: int,
    waitlist_room: int,
    half_weight_minutes: int,
    window_months: int,
) -> FrozenEntryList:
    """Fix the entries and parameters at close; refuses inputs that cannot be drawn."""
    frozen = FrozenEntryList(
        posting_id=posting_id,
        algorithm=ALGORITHM,
        commitment=commitment_hex,
        seats=seats,
        waitlist_room=waitlist_room,
        half_weight_minutes=half_weight_minutes,
        window_months=window_months,
        entries=tuple(sorted(entries, key=lambda e: e.entry_id)),
    )
    problems = frozen.problems()
    if not _HEX64.fullmatch(commitment_hex):
        problems.append("commitment must be 64 lowercase hex digits")
    if problems:
        raise ValueError("; ".join(problems))
    return frozen


def window_months(last_month: str, count: int) -> tuple[str, ...]:
    """The rolling window of `count` calendar months ending with `last_month` ("YYYY-MM",
    the Seoul month of `applications_close_at`), oldest first: the months whose allowance
    minutes make an entry's `minutes_window` (docs/fairness.md, "The window")."""
    if count < 1:
        raise ValueError("a window has at least one month")
    year, month = (int(part) for part in last_month.split("-"))
    index = year * 12 + month - 1
    return tuple(f"{i // 12:04d}-{i % 12 + 1:02d}" for i in range(index - count + 1, index + 1))


# --- draw --------------------------------------------------------------------------------


def weight(minutes_window: int, half_weight_minutes: int) -> float:
    """H / (H + minutes): 1 with no recent allowance, 1/2 at H minutes, so it is spread."""
    if minutes_window < 0 or half_weight_minutes < 1:
        raise ValueError("minutes cannot be negative and H must be at least 1")
    return half_weight_minutes / (half_weight_minutes + minutes_window)


def uniform(seed: bytes, posting_id: str, entry_id: str) -> float:
    """The entry's u in (0, 1), exact in IEEE-754 double: the top 52 bits n of
    HMAC-SHA256(seed, "fair-draw/v2/u" NUL posting_id NUL entry_id) give u = (2n + 1) / 2^53.
    Both operands are exact doubles, so every language gets the same u, never 0 nor 1."""
    message = f"{STREAM_U}\x00{posting_id}\x00{entry_id}".encode()
    digest = hmac.new(seed, message, hashlib.sha256).digest()
    n = int.from_bytes(digest[:8], "big") >> 12
    return (2 * n + 1) / 2**53


def draw_key(seed: bytes, posting_id: str, entry: Entry, half_weight_minutes: int) -> float:
    """Efraimidis–Spirakis key ln(u) / weight; the highest keys win."""
    u = uniform(seed, posting_id, entry.entry_id)
    return math.log(u) / weight(entry.minutes_window, half_weight_minutes)


@dataclass(frozen=True)
class Outcome:
    """Every entry once, each list in rank order (best first)."""

    confirmed: tuple[str, ...]
    waitlisted: tuple[str, ...]
    not_selected: tuple[str, ...]

    @property
    def ranking(self) -> tuple[str, ...]:
        return self.confirmed + self.waitlisted + self.not_selected


def ranking(seed: bytes, frozen: FrozenEntryList) -> tuple[str, ...]:
    """Entry ids by key descending, ties (never seen in practice) by id ascending."""
    keyed = [
        (draw_key(seed, frozen.posting_id, e, frozen.half_weight_minutes), e.entry_id)
        for e in frozen.entries
    ]
    keyed.sort(key=lambda k: (-k[0], k[1]))
    return tuple(entry_id for _, entry_id in keyed)


def draw(seed: bytes, frozen: FrozenEntryList) -> Outcome:
    """The first `seats` confirmed, the next `waitlist_room` waitlisted, the rest not."""
    problems = frozen.problems()
    if problems:
        raise ValueError("; ".join(problems))
    ranked = ranking(seed, frozen)
    seats, room = frozen.seats, frozen.waitlist_room
    return Outcome(
        confirmed=ranked[:seats],
        waitlisted=ranked[seats : seats + room],
        not_selected=ranked[seats + room :],
    )


# --- reveal and record -------------------------------------------------------------------


@dataclass(frozen=True)
class DrawRecord:
    """The published record of one draw: all a stranger needs to check it."""

    posting_id: str
    algorithm: str
    seats: int
    waitlist_room: int
    half_weight_minutes: int
    window_months: int
    commitment: str
    entries: tuple[Entry, ...]
    entry_list_hash: str
    seed_hex: str
    confirmed: tuple[str, ...]
    waitlisted: tuple[str, ...]
    not_selected: tuple[str, ...]
    committed_at: datetime  # the commitment was published (the posting opened)
    applications_close_at: datetime  # the entry list was frozen and its hash published
    drawn_at: datetime  # the draw ran and the seed was revealed

    def frozen_entry_list(self) -> FrozenEntryList:
        return FrozenEntryList(
            posting_id=self.posting_id,
            algorithm=self.algorithm,
            commitment=self.commitment,
            seats=self.seats,
            waitlist_room=self.waitlist_room,
            half_weight_minutes=self.half_weight_minutes,
            window_months=self.window_months,
            entries=self.entries,
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "posting_id": self.posting_id,
            "algorithm": self.algorithm,
            "seats": self.seats,
            "waitlist_room": self.waitlist_room,
            "half_weight_minutes": self.half_weight_minutes,
            "window_months": self.window_months,
            "commitment": self.commitment,
            "entries": [
                {"id": e.entry_id, "minutes_window": e.minutes_window} for e in self.entries
            ],
            "entry_list_hash": self.entry_list_hash,
            "seed": self.seed_hex,
            "outcome": {
                "confirmed": list(self.confirmed),
                "waitlisted": list(self.waitlisted),
                "not_selected": list(self.not_selected),
            },
            "committed_at": self.committed_at.isoformat(),
            "applications_close_at": self.applications_close_at.isoformat(),
            "drawn_at": self.drawn_at.isoformat(),
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, ensure_ascii=True) + "\n"

    @classmethod
    def from_json(cls, text: str) -> DrawRecord:
        """Parse a published record; ValueError if its shape is wrong (types, hex fields)."""
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"not JSON: {exc}") from exc
        return cls.from_dict(data)

    @classmethod
    def from_dict(cls, data: object) -> DrawRecord:
        d = _mapping(data, "record")
        outcome = _mapping(d.get("outcome"), "outcome")
        raw_entries = d.get("entries")
        if not isinstance(raw_entries, list):
            raise ValueError("entries must be a list")
        entries = []
        for i, raw in enumerate(raw_entries):
            e = _mapping(raw, f"entries[{i}]")
            entries.append(Entry(_text(e, "id"), _integer(e, "minutes_window")))
        return cls(
            posting_id=_text(d, "posting_id"),
            algorithm=_text(d, "algorithm"),
            seats=_integer(d, "seats"),
            waitlist_room=_integer(d, "waitlist_room"),
            half_weight_minutes=_integer(d, "half_weight_minutes"),
            window_months=_integer(d, "window_months"),
            commitment=_hex64(d, "commitment"),
            entries=tuple(entries),
            entry_list_hash=_hex64(d, "entry_list_hash"),
            seed_hex=_hex64(d, "seed"),
            confirmed=_ids(outcome, "confirmed"),
            waitlisted=_ids(outcome, "waitlisted"),
            not_selected=_ids(outcome, "not_selected"),
            committed_at=_instant(d, "committed_at"),
            applications_close_at=_instant(d, "applications_close_at"),
            drawn_at=_instant(d, "drawn_at"),
        )


def reveal(
    seed: bytes,
    frozen: FrozenEntryList,
    *,
    committed_at: datetime,
    applications_close_at: datetime,
    drawn_at: datetime,
) -> DrawRecord:
    """Draw and build the record to publish with the seed."""
    if commitment(seed) != frozen.commitment:
        raise ValueError("this seed is not the one committed to")
    if any(at.tzinfo is None for at in (committed_at, applications_close_at, drawn_at)):
        raise ValueError("published timestamps carry their UTC offset")
    outcome = draw(seed, frozen)
    return DrawRecord(
        posting_id=frozen.posting_id,
        algorithm=frozen.algorithm,
        seats=frozen.seats,
        waitlist_room=frozen.waitlist_room,
        half_weight_minutes=frozen.half_weight_minutes,
        window_months=frozen.window_months,
        commitment=frozen.commitment,
        entries=frozen.entries,
        entry_list_hash=frozen.entry_list_hash(),
        seed_hex=seed.hex(),
        confirmed=outcome.confirmed,
        waitlisted=outcome.waitlisted,
        not_selected=outcome.not_selected,
        committed_at=committed_at,
        applications_close_at=applications_close_at,
        drawn_at=drawn_at,
    )


@dataclass(frozen=True)
class Difference:
    """One way the record disagrees with itself; `str()` is the line both verifiers print."""

    code: str
    detail: str

    def __str__(self) -> str:
        return f"{self.code}: {self.detail}"


@dataclass(frozen=True)
class Verification:
    differences: tuple[Difference, ...]

    @property
    def verified(self) -> bool:
        return not self.differences


def verify(
    record: DrawRecord,
    *,
    published_commitment: str | None = None,
    published_entry_list_hash: str | None = None,
) -> Verification:
    """Check the commitment, the entry-list hash and the outcome; list every difference.
    Never raises on a record `from_json` accepted: a broken input is a difference too.

    A record alone only shows it is consistent: whoever holds the seed could rebuild a
    consistent record with other entries. Pass the commitment and hash seen when they were
    published (at opening, at close) to check that this record is the draw announced."""
    out: list[Difference] = []
    seed = bytes.fromhex(record.seed_hex)
    if published_commitment is not None and published_commitment != record.commitment:
        out.append(
            Difference(
                "commitment_not_as_published",
                f"the record says {record.commitment}, {published_commitment} was published",
            )
        )
    if (
        published_entry_list_hash is not None
        and published_entry_list_hash != record.entry_list_hash
    ):
        out.append(
            Difference(
                "entry_list_hash_not_as_published",
                f"the record says {record.entry_list_hash}, "
                f"{published_entry_list_hash} was published",
            )
        )
    if not record.committed_at <= record.applications_close_at <= record.drawn_at:
        out.append(
            Difference(
                "timeline_invalid",
                "committed_at <= applications_close_at <= drawn_at does not hold",
            )
        )
    if record.algorithm != ALGORITHM:
        out.append(Difference("algorithm_unknown", f"{record.algorithm!r} is not {ALGORITHM}"))
    got = commitment(seed)
    if got != record.commitment:
        out.append(
            Difference("commitment_mismatch", f"sha256(seed) is {got}, not {record.commitment}")
        )
    frozen = record.frozen_entry_list()
    got = frozen.entry_list_hash()
    if got != record.entry_list_hash:
        out.append(
            Difference(
                "entry_list_hash_mismatch",
                f"the entry list hashes to {got}, not {record.entry_list_hash}",
            )
        )
    problems = frozen.problems()
    out.extend(Difference("inputs_invalid", p) for p in problems)
    if record.algorithm == ALGORITHM and not problems:
        outcome = draw(seed, frozen)
        for name, recorded, recomputed in (
            ("confirmed", record.confirmed, outcome.confirmed),
            ("waitlisted", record.waitlisted, outcome.waitlisted),
            ("not_selected", record.not_selected, outcome.not_selected),
        ):
            out.extend(_positions(name, recorded, recomputed))
    return Verification(tuple(out))


def _positions(name: str, recorded: Sequence[str], recomputed: Sequence[str]) -> list[Difference]:
    differing = [
        i
        for i in range(max(len(recorded), len(recomputed)))
        if i >= len(recorded) or i >= len(recomputed) or recorded[i] != recomputed[i]
    ]
    out = [
        Difference(
            "outcome_differs",
            f"{name}[{i}]: recorded {_at(recorded, i)}, recomputed {_at(recomputed, i)}",
        )
        for i in differing[:POSITIONS_REPORTED_MAX]
    ]
    if len(differing) > POSITIONS_REPORTED_MAX:
        more = len(differing) - POSITIONS_REPORTED_MAX
        out.append(Difference("outcome_differs", f"{name}: {more} more positions differ"))
    return out


def _at(ids: Sequence[str], i: int) -> str:
    return ids[i] if i < len(ids) else "(none)"


# --- shape checks of a parsed record -----------------------------------------------------


def _mapping(value: object, where: str) -> Mapping[str, Any]:
    if not isinstance(value, dict):
        raise ValueError(f"{where} must be an object")
    return value


def _text(d: Mapping[str, Any], key: str) -> str:
    value = d.get(key)
    if not isinstance(value, str):
        raise ValueError(f"{key} must be a string")
    return value


def _integer(d: Mapping[str, Any], key: str) -> int:
    value = d.get(key)
    # bool is an int in Python but not in JSON; a float (even 3.0) is not exact data here.
    if not isinstance(value, int) or isinstance(value, bool):
        raise ValueError(f"{key} must be an integer")
    return value


def _hex64(d: Mapping[str, Any], key: str) -> str:
    value = _text(d, key)
    if not _HEX64.fullmatch(value):
        raise ValueError(f"{key} must be 64 lowercase hex digits")
    return value


def _ids(d: Mapping[str, Any], key: str) -> tuple[str, ...]:
    value = d.get(key)
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValueError(f"outcome.{key} must be a list of strings")
    return tuple(value)


def _instant(d: Mapping[str, Any], key: str) -> datetime:
    try:
        at = datetime.fromisoformat(_text(d, key))
    except ValueError as exc:
        raise ValueError(f"{key} must be an ISO-8601 timestamp") from exc
    if at.tzinfo is None:
        raise ValueError(f"{key} must carry its UTC offset")
    return at
