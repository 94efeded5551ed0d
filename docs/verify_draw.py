#!/usr/bin/env python3
"""Verify a published Danggeun Gwangsan draw record, with nothing but Python's standard library.

    python3 verify_draw.py record.json
    python3 verify_draw.py < record.json
    python3 verify_draw.py record.json --commitment HEX --entry-list-hash HEX

Checks that the revealed seed hashes to the commitment published when the posting opened,
that the entry list hashes to the value published when applications closed, and that the
outcome is the one the algorithm gives; with --commitment and --entry-list-hash (the values
you saw published at opening and at close) also that this is the draw that was announced,
not a consistent record rebuilt later. Prints "verified" (exit 0), or one line per
difference (exit 1); a record that is not of the published shape exits 2.

This file is deliberately independent of the matcher's code (docs/fairness.md is the
specification), so that reading it is enough to trust it; the project's tests check that it
agrees with `matcher.domain.fair_draw.verify` on the same records.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import math
import re
import sys
from datetime import datetime
from typing import Any

ALGORITHM = "efraimidis-spirakis/hmac-sha256/v2"
STREAM_U = "fair-draw/v2/u"
ID_PATTERN = re.compile(r"[\x21-\x7e]{1,100}")
HEX64 = re.compile(r"[0-9a-f]{64}")
POSITIONS_REPORTED_MAX = 20


class Malformed(Exception):
    """The record is not of the published shape."""


def read_record(text: str) -> dict[str, Any]:
    """Parse and check the shape: types, hex fields, timestamps. Values are checked later."""
    try:
        record = json.loads(text)
    except json.JSONDecodeError as exc:
        raise Malformed(f"not JSON: {exc}") from exc
    if not isinstance(record, dict):
        raise Malformed("record must be an object")
    for key in ("posting_id", "algorithm"):
        if not isinstance(record.get(key), str):
            raise Malformed(f"{key} must be a string")
    for key in ("seats", "waitlist_room", "half_weight_minutes", "window_months"):
        if not is_integer(record.get(key)):
            raise Malformed(f"{key} must be an integer")
    for key in ("commitment", "entry_list_hash", "seed"):
        value = record.get(key)
        if not isinstance(value, str) or not HEX64.fullmatch(value):
            raise Malformed(f"{key} must be 64 lowercase hex digits")
    entries = record.get("entries")
    if not isinstance(entries, list):
        raise Malformed("entries must be a list")
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict):
            raise Malformed(f"entries[{i}] must be an object")
        if not isinstance(entry.get("id"), str):
            raise Malformed("id must be a string")
        if not is_integer(entry.get("minutes_window")):
            raise Malformed("minutes_window must be an integer")
    outcome = record.get("outcome")
    if not isinstance(outcome, dict):
        raise Malformed("outcome must be an object")
    for key in ("confirmed", "waitlisted", "not_selected"):
        ids = outcome.get(key)
        if not isinstance(ids, list) or not all(isinstance(v, str) for v in ids):
            raise Malformed(f"outcome.{key} must be a list of strings")
    for key in ("committed_at", "applications_close_at", "drawn_at"):
        value = record.get(key)
        if not isinstance(value, str):
            raise Malformed(f"{key} must be a string")
        try:
            at = datetime.fromisoformat(value)
        except ValueError as exc:
            raise Malformed(f"{key} must be an ISO-8601 timestamp") from exc
        if at.tzinfo is None:
            raise Malformed(f"{key} must carry its UTC offset")
    return record


def is_integer(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def canonical_entry_list(record: dict[str, Any]) -> bytes:
    """The frozen entry list exactly as hashed: sorted keys, no spaces, entries by id."""
    document = {
        "algorithm": record["algorithm"],
        "commitment": record["commitment"],
        "entries": sorted(
            ({"id": e["id"], "minutes_window": e["minutes_window"]} for e in record["entries"]),
            key=lambda e: e["id"],
        ),
        "half_weight_minutes": record["half_weight_minutes"],
        "posting_id": record["posting_id"],
        "seats": record["seats"],
        "waitlist_room": record["waitlist_room"],
        "window_months": record["window_months"],
    }
    return json.dumps(document, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode(
        "ascii"
    )


def input_problems(record: dict[str, Any]) -> list[str]:
    """Why the inputs cannot be drawn (a tampered record may break them)."""
    out = []
    if not ID_PATTERN.fullmatch(record["posting_id"]):
        out.append("posting_id must be 1 to 100 printable ASCII characters")
    for name, least in (
        ("seats", 0),
        ("waitlist_room", 0),
        ("half_weight_minutes", 1),
        ("window_months", 1),
    ):
        if record[name] < least:
            out.append(f"{name} must be at least {least}, is {record[name]}")
    seen = set()
    for e in record["entries"]:
        if not ID_PATTERN.fullmatch(e["id"]):
            out.append(f"entry id {e['id']!r} is not 1 to 100 printable ASCII characters")
        if e["id"] in seen:
            out.append(f"entry id {e['id']} appears twice")
        seen.add(e["id"])
        if e["minutes_window"] < 0:
            out.append(f"entry {e['id']} has negative minutes_window")
    return out


def uniform(seed: bytes, posting_id: str, entry_id: str) -> float:
    """u = (2n + 1) / 2^53, n the top 52 bits of HMAC-SHA256(seed, name NUL posting NUL id)."""
    message = f"{STREAM_U}\x00{posting_id}\x00{entry_id}".encode()
    n = int.from_bytes(hmac.new(seed, message, hashlib.sha256).digest()[:8], "big") >> 12
    return (2 * n + 1) / 2**53


def ranking(seed: bytes, record: dict[str, Any]) -> list[str]:
    """Entry ids by ln(u) / (H / (H + minutes)) descending, ties by id."""
    half = record["half_weight_minutes"]
    keyed = []
    for e in record["entries"]:
        weight = half / (half + e["minutes_window"])
        key = math.log(uniform(seed, record["posting_id"], e["id"])) / weight
        keyed.append((-key, e["id"]))
    keyed.sort()
    return [entry_id for _, entry_id in keyed]


def differences(
    record: dict[str, Any],
    published_commitment: str | None = None,
    published_entry_list_hash: str | None = None,
) -> list[str]:
    """Every way the record disagrees with itself or with what was published, one line each."""
    out = []
    seed = bytes.fromhex(record["seed"])
    if published_commitment is not None and published_commitment != record["commitment"]:
        out.append(
            f"commitment_not_as_published: the record says {record['commitment']}, "
            f"{published_commitment} was published"
        )
    if (
        published_entry_list_hash is not None
        and published_entry_list_hash != record["entry_list_hash"]
    ):
        out.append(
            f"entry_list_hash_not_as_published: the record says {record['entry_list_hash']}, "
            f"{published_entry_list_hash} was published"
        )
    times = [
        datetime.fromisoformat(record[key])
        for key in ("committed_at", "applications_close_at", "drawn_at")
    ]
    if not times[0] <= times[1] <= times[2]:
        out.append(
            "timeline_invalid: committed_at <= applications_close_at <= drawn_at does not hold"
        )
    if record["algorithm"] != ALGORITHM:
        out.append(f"algorithm_unknown: {record['algorithm']!r} is not {ALGORITHM}")
    got = hashlib.sha256(seed).hexdigest()
    if got != record["commitment"]:
        out.append(f"commitment_mismatch: sha256(seed) is {got}, not {record['commitment']}")
    got = hashlib.sha256(canonical_entry_list(record)).hexdigest()
    if got != record["entry_list_hash"]:
        out.append(
            f"entry_list_hash_mismatch: the entry list hashes to {got}, "
            f"not {record['entry_list_hash']}"
        )
    problems = input_problems(record)
    out.extend(f"inputs_invalid: {p}" for p in problems)
    if record["algorithm"] == ALGORITHM and not problems:
        ranked = ranking(seed, record)
        seats, room = record["seats"], record["waitlist_room"]
        recomputed = {
            "confirmed": ranked[:seats],
            "waitlisted": ranked[seats : seats + room],
            "not_selected": ranked[seats + room :],
        }
        for name in ("confirmed", "waitlisted", "not_selected"):
            recorded = record["outcome"][name]
            again = recomputed[name]
            differing = [
                i
                for i in range(max(len(recorded), len(again)))
                if i >= len(recorded) or i >= len(again) or recorded[i] != again[i]
            ]
            for i in differing[:POSITIONS_REPORTED_MAX]:
                was = recorded[i] if i < len(recorded) else "(none)"
                now = again[i] if i < len(again) else "(none)"
                out.append(f"outcome_differs: {name}[{i}]: recorded {was}, recomputed {now}")
            if len(differing) > POSITIONS_REPORTED_MAX:
                more = len(differing) - POSITIONS_REPORTED_MAX
                out.append(f"outcome_differs: {name}: {more} more positions differ")
    return out


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description="Verify a published draw record.")
    parser.add_argument("record", nargs="?", help="the record's JSON file (default: stdin)")
    parser.add_argument("--commitment", help="the commitment published when the posting opened")
    parser.add_argument(
        "--entry-list-hash", help="the entry-list hash published when applications closed"
    )
    args = parser.parse_args(argv[1:])
    try:
        if args.record is not None:
            with open(args.record, encoding="utf-8") as f:
                text = f.read()
        else:
            text = sys.stdin.read()
        record = read_record(text)
    except (OSError, UnicodeDecodeError, Malformed) as exc:
        print(f"malformed: {exc}")
        return 2
    found = differences(record, args.commitment, args.entry_list_hash)
    if not found:
        print("verified")
        return 0
    for line in found:
        print(line)
    return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
