"""The verifiable draw (issue 19, docs/fairness.md): committed, reproducible, tamper-evident to
two independent verifiers that agree, and weighted against recent allowance as intended."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import math
import random
import subprocess
import sys
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from matcher.domain import fair_draw as fd

ROOT = Path(__file__).resolve().parents[3]
VERIFIER = ROOT / "docs" / "verify_draw.py"
HALF = 600
WINDOW_MONTHS = 3
OPENED = datetime(2026, 12, 1, 0, 0, tzinfo=UTC)
CLOSED = datetime(2026, 12, 8, 9, 0, tzinfo=UTC)
DRAWN = datetime(2026, 12, 8, 9, 0, 2, tzinfo=UTC)


def _load_verifier() -> ModuleType:
    spec = importlib.util.spec_from_file_location("verify_draw", VERIFIER)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


standalone = _load_verifier()


def seed_of(i: int) -> bytes:
    """A fixed 32-byte seed per index: Monte Carlo runs are the same every time."""
    return hashlib.sha256(f"test-seed-{i}".encode()).digest()


def entries(n: int, minutes: Callable[[int], int] = lambda i: 0) -> list[fd.Entry]:
    return [fd.Entry(f"app_{i:04d}", minutes(i)) for i in range(n)]


def record_of(
    seed: bytes,
    field: list[fd.Entry],
    *,
    seats: int = 2,
    waitlist_room: int = 2,
    posting_id: str = "pst_1",
) -> fd.DrawRecord:
    frozen = fd.freeze(
        posting_id,
        fd.commitment(seed),
        field,
        seats=seats,
        waitlist_room=waitlist_room,
        half_weight_minutes=HALF,
        window_months=WINDOW_MONTHS,
    )
    return fd.reveal(
        seed, frozen, committed_at=OPENED, applications_close_at=CLOSED, drawn_at=DRAWN
    )


def both_verdicts(data: dict[str, Any], **published: str | None) -> tuple[list[str], list[str]]:
    """The lines of fair_draw.verify and of the standalone script, on one JSON record."""
    text = json.dumps(data)
    ours = fd.verify(
        fd.DrawRecord.from_json(text),
        published_commitment=published.get("commitment"),
        published_entry_list_hash=published.get("entry_list_hash"),
    )
    theirs = standalone.differences(
        standalone.read_record(text), published.get("commitment"), published.get("entry_list_hash")
    )
    return [str(d) for d in ours.differences], theirs


def sample_record() -> dict[str, Any]:
    field = entries(8, lambda i: (i * 97) % 1500)
    return record_of(seed_of(0), field, seats=3, waitlist_room=2).to_dict()


# --- commit ------------------------------------------------------------------------------


def test_the_commitment_is_the_sha256_of_the_revealed_seed() -> None:
    """What was published at opening is sha256(seed); the revealed seed matches it, and a
    fresh seed is 32 unpredictable bytes (two are never equal)."""
    seed = fd.new_seed()
    assert len(seed) == 32 and fd.new_seed() != seed
    record = record_of(seed, entries(5))
    assert record.commitment == hashlib.sha256(bytes.fromhex(record.seed_hex)).hexdigest()
    assert bytes.fromhex(record.seed_hex) == seed
    assert fd.verify(record, published_commitment=fd.commitment(seed)).verified


def test_reveal_refuses_a_seed_that_was_not_committed() -> None:
    """The draw cannot run on any seed but the committed one."""
    frozen = fd.freeze(
        "pst_1",
        fd.commitment(seed_of(1)),
        entries(3),
        seats=1,
        waitlist_room=0,
        half_weight_minutes=HALF,
        window_months=WINDOW_MONTHS,
    )
    with pytest.raises(ValueError, match="committed"):
        fd.reveal(
            seed_of(2), frozen, committed_at=OPENED, applications_close_at=CLOSED, drawn_at=DRAWN
        )


# --- freeze ------------------------------------------------------------------------------


def test_the_canonical_entry_list_is_exact_and_documented() -> None:
    """Sorted keys, no spaces, entries by id, integers only: the bytes docs/fairness.md shows."""
    frozen = fd.freeze(
        "pst_9",
        "0" * 64,
        [fd.Entry("b", 60), fd.Entry("a", 0)],
        seats=1,
        waitlist_room=0,
        half_weight_minutes=600,
        window_months=3,
    )
    assert frozen.canonical_json() == (
        b'{"algorithm":"efraimidis-spirakis/hmac-sha256/v2","commitment":"' + b"0" * 64 + b'",'
        b'"entries":[{"id":"a","minutes_window":0},{"id":"b","minutes_window":60}],'
        b'"half_weight_minutes":600,"posting_id":"pst_9","seats":1,"waitlist_room":0,'
        b'"window_months":3}'
    )
    assert frozen.entry_list_hash() == hashlib.sha256(frozen.canonical_json()).hexdigest()


@pytest.mark.parametrize(
    ("field", "message"),
    [
        ([fd.Entry("a", 0), fd.Entry("a", 5)], "twice"),
        ([fd.Entry("a", -1)], "negative"),
        ([fd.Entry("has space", 0)], "printable"),
        ([fd.Entry("", 0)], "printable"),
    ],
)
def test_freeze_refuses_entries_that_cannot_be_drawn(field: list[fd.Entry], message: str) -> None:
    """An id enters once, minutes are never negative, ids are printable ASCII (so sorting and
    JSON are the same in every language)."""
    with pytest.raises(ValueError, match=message):
        fd.freeze(
            "pst_1",
            "0" * 64,
            field,
            seats=1,
            waitlist_room=0,
            half_weight_minutes=HALF,
            window_months=WINDOW_MONTHS,
        )


# --- draw --------------------------------------------------------------------------------


def test_the_worked_example_of_docs_fairness_is_what_the_code_computes() -> None:
    """Pins v2 bit for bit: the seed, hash, uniforms and outcome printed in docs/fairness.md.
    A change here is a new algorithm version, not a fix."""
    seed = bytes(range(32))
    field = [
        fd.Entry("app_ara", 0),
        fd.Entry("app_bomi", 300),
        fd.Entry("app_chul", 600),
        fd.Entry("app_dana", 1800),
        fd.Entry("app_eun", 0),
    ]
    record = record_of(seed, field, seats=2, waitlist_room=1, posting_id="pst_7f3a")
    assert record.commitment == "630dcd2966c4336691125448bbb25b4ff412a49c732db2c8abc1b8581bd710dd"
    assert record.entry_list_hash == EXAMPLE_HASH
    assert (record.confirmed, record.waitlisted, record.not_selected) == EXAMPLE_OUTCOME
    assert fd.uniform(seed, "pst_7f3a", "app_ara") == EXAMPLE_U_ARA == 0.6874714215843513
    assert fd.draw_key(seed, "pst_7f3a", field[3], HALF) == -2.667828627811323


EXAMPLE_HASH = "a6a3f1dbdf0bdd0498c400b16db3cc98eb1e81e7db6344ff967ce1890a7ab230"
EXAMPLE_OUTCOME = (("app_eun", "app_ara"), ("app_chul",), ("app_bomi", "app_dana"))
# HMAC's first 8 bytes for app_ara are affe2088a3b0d290; their top 52 bits are this n.
EXAMPLE_U_ARA = (2 * 3096096038075149 + 1) / 2**53


def test_uniforms_are_exact_doubles_strictly_inside_the_unit_interval() -> None:
    """u = (2n + 1) / 2^53 with n < 2^52: an odd multiple of 2^-53, never 0 nor 1, so ln(u)
    is finite and every language computes the same u."""
    values = [fd.uniform(seed_of(3), "pst_1", f"app_{i}") for i in range(2000)]
    for u in values:
        assert 0 < u < 1
        scaled = u * 2**53
        assert scaled == int(scaled) and int(scaled) % 2 == 1
    assert 0.45 < sum(values) / len(values) < 0.55


def test_the_stream_is_named_and_bound_to_the_posting() -> None:
    """One seed gives unrelated uniforms to the same id in two postings."""
    seed = seed_of(4)
    assert fd.uniform(seed, "pst_1", "app_1") != fd.uniform(seed, "pst_2", "app_1")


def test_same_inputs_in_any_order_give_the_same_outcome_and_hash() -> None:
    """However the store returns the entries, the published hash and the outcome are equal."""
    field = entries(60, lambda i: (i * 37) % 2000)
    first = record_of(seed_of(5), field, seats=5, waitlist_room=10)
    for shuffle_seed in range(5):
        shuffled = field[:]
        random.Random(shuffle_seed).shuffle(shuffled)
        again = record_of(seed_of(5), shuffled, seats=5, waitlist_room=10)
        assert again.entry_list_hash == first.entry_list_hash
        assert (again.confirmed, again.waitlisted, again.not_selected) == (
            first.confirmed,
            first.waitlisted,
            first.not_selected,
        )


@settings(max_examples=40, deadline=None)
@given(n=st.integers(0, 40), seats=st.integers(0, 15), room=st.integers(0, 15))
def test_the_outcome_partitions_the_entries_in_rank_order(n: int, seats: int, room: int) -> None:
    """Confirmed, waitlisted and not selected hold every entry once, best first."""
    field = entries(n)
    frozen = fd.freeze(
        "pst_1",
        fd.commitment(seed_of(6)),
        field,
        seats=seats,
        waitlist_room=room,
        half_weight_minutes=HALF,
        window_months=WINDOW_MONTHS,
    )
    outcome = fd.draw(seed_of(6), frozen)
    assert len(outcome.confirmed) == min(seats, n)
    assert len(outcome.waitlisted) == min(room, max(n - seats, 0))
    assert outcome.ranking == fd.ranking(seed_of(6), frozen)
    assert sorted(outcome.ranking) == sorted(e.entry_id for e in field)


def test_weight_halves_at_the_half_weight_minutes() -> None:
    """weight = H / (H + minutes): 1 with none, 1/2 at H, 1/4 at 3H."""
    assert fd.weight(0, HALF) == 1
    assert fd.weight(HALF, HALF) == 0.5
    assert fd.weight(3 * HALF, HALF) == 0.25
    with pytest.raises(ValueError):
        fd.weight(-1, HALF)


@settings(max_examples=60, deadline=None)
@given(
    seed=st.binary(min_size=32, max_size=32),
    others=st.lists(st.integers(0, 6000), min_size=1, max_size=25),
    minutes=st.integers(0, 6000),
    extra=st.integers(1, 6000),
)
def test_more_recent_minutes_never_improve_a_rank(
    seed: bytes, others: list[int], minutes: int, extra: int
) -> None:
    """For a fixed seed and fixed other entries, raising one citizen's window minutes lowers
    their weight, so their key (ln u / weight, ln u < 0) can only fall: their rank never
    improves. Division and ln are monotone in IEEE-754, so this holds exactly, not nearly."""
    field = [fd.Entry(f"app_{i:03d}", m) for i, m in enumerate(others)]

    def position(m: int) -> int:
        frozen = fd.freeze(
            "pst_1",
            fd.commitment(seed),
            [*field, fd.Entry("app_me", m)],
            seats=1,
            waitlist_room=0,
            half_weight_minutes=HALF,
            window_months=WINDOW_MONTHS,
        )
        return fd.ranking(seed, frozen).index("app_me")

    assert position(minutes + extra) >= position(minutes)


def test_a_citizen_with_many_recent_hours_is_selected_less_often() -> None:
    """Over 3,000 seeds, one seat between a citizen with no recent minutes (weight 1) and one
    with 40 hours in the window (2,400 minutes, weight 600/3000 = 1/5): the fresh citizen wins
    about 5/6 of the draws. Binomial(3000, 5/6) has sd ≈ 20 wins (0.7%); 4 sd either side."""
    draws = 3000
    wins_fresh = 0
    for i in range(draws):
        field = [fd.Entry("ctz_fresh", 0), fd.Entry("ctz_busy", 2400)]
        record = record_of(seed_of(1000 + i), field, seats=1, waitlist_room=0)
        wins_fresh += record.confirmed == ("ctz_fresh",)
    assert abs(wins_fresh / draws - 5 / 6) < 0.028


def test_in_a_crowd_the_recently_idle_take_more_seats() -> None:
    """10 seats among 40 citizens with no recent minutes and 40 with 3H (weight 1/4), over 150
    seeds: the idle take about 4/5 of the seats (sequential sampling at 4:1 odds)."""
    field = [fd.Entry(f"ctz_i{i}", 0) for i in range(40)] + [
        fd.Entry(f"ctz_b{i}", 3 * HALF) for i in range(40)
    ]
    idle_seats = 0
    for i in range(150):
        record = record_of(seed_of(5000 + i), field, seats=10, waitlist_room=0)
        idle_seats += sum(1 for c in record.confirmed if c.startswith("ctz_i"))
    assert 0.74 < idle_seats / (150 * 10) < 0.86


# --- reveal, record, verify --------------------------------------------------------------


def test_the_record_round_trips_through_json() -> None:
    """from_json(to_json(r)) == r: what is published is all there is."""
    record = record_of(seed_of(7), entries(6, lambda i: i * 60))
    assert fd.DrawRecord.from_json(record.to_json()) == record


def test_an_honest_record_is_verified_by_both() -> None:
    """Both verifiers say nothing is wrong, also against the published commitment and hash."""
    data = sample_record()
    published = {"commitment": data["commitment"], "entry_list_hash": data["entry_list_hash"]}
    assert both_verdicts(data) == ([], [])
    assert both_verdicts(data, **published) == ([], [])


def _flip_hex(text: str) -> str:
    return ("1" if text[0] == "0" else "0") + text[1:]


def _swap(ids: list[str], i: int, j: int) -> None:
    ids[i], ids[j] = ids[j], ids[i]


# Each published field in turn, changed as a forger would, and a code that must report it.
TAMPERINGS: dict[str, tuple[Callable[[dict[str, Any]], None], str]] = {
    "seed": (lambda d: d.update(seed=_flip_hex(d["seed"])), "commitment_mismatch"),
    "commitment": (
        lambda d: d.update(commitment=_flip_hex(d["commitment"])),
        "commitment_mismatch",
    ),
    "entry list hash": (
        lambda d: d.update(entry_list_hash=_flip_hex(d["entry_list_hash"])),
        "entry_list_hash_mismatch",
    ),
    "an entry's id": (
        lambda d: d["entries"][0].update(id="app_9999"),
        "entry_list_hash_mismatch",
    ),
    "an entry's minutes": (
        lambda d: d["entries"][1].update(minutes_window=d["entries"][1]["minutes_window"] + 1),
        "entry_list_hash_mismatch",
    ),
    "an entry added": (
        lambda d: d["entries"].append({"id": "app_new", "minutes_window": 0}),
        "entry_list_hash_mismatch",
    ),
    "an entry removed": (lambda d: d["entries"].pop(), "entry_list_hash_mismatch"),
    "an entry duplicated": (
        lambda d: d["entries"].append(dict(d["entries"][0])),
        "inputs_invalid",
    ),
    "seats": (lambda d: d.update(seats=d["seats"] + 1), "entry_list_hash_mismatch"),
    "negative seats": (lambda d: d.update(seats=-1), "inputs_invalid"),
    "waitlist room": (
        lambda d: d.update(waitlist_room=d["waitlist_room"] - 1),
        "entry_list_hash_mismatch",
    ),
    "half-weight minutes": (
        lambda d: d.update(half_weight_minutes=d["half_weight_minutes"] * 2),
        "entry_list_hash_mismatch",
    ),
    "window": (lambda d: d.update(window_months=12), "entry_list_hash_mismatch"),
    "posting id": (lambda d: d.update(posting_id="pst_2"), "entry_list_hash_mismatch"),
    "algorithm name": (
        lambda d: d.update(algorithm="efraimidis-spirakis/hmac-sha256/v1"),
        "algorithm_unknown",
    ),
    "outcome order": (lambda d: _swap(d["outcome"]["confirmed"], 0, 1), "outcome_differs"),
    "outcome across lists": (
        lambda d: (
            d["outcome"]["confirmed"].append(d["outcome"]["waitlisted"].pop(0)),
            d["outcome"]["waitlisted"].append(d["outcome"]["confirmed"].pop(0)),
        ),
        "outcome_differs",
    ),
    "an outcome id dropped": (lambda d: d["outcome"]["not_selected"].pop(), "outcome_differs"),
    "timeline": (
        lambda d: d.update(committed_at=(DRAWN + timedelta(seconds=1)).isoformat()),
        "timeline_invalid",
    ),
}


@pytest.mark.parametrize("field", list(TAMPERINGS))
def test_tampering_with_each_published_field_is_caught_by_both_verifiers(field: str) -> None:
    """Change one field of an honest record: both verifiers fail it, name the expected
    difference, and print exactly the same lines."""
    tamper, code = TAMPERINGS[field]
    data = sample_record()
    tamper(data)
    ours, theirs = both_verdicts(data)
    assert ours, f"fair_draw.verify accepted a record with a changed {field}"
    assert any(line.startswith(f"{code}: ") for line in ours), ours
    assert ours == theirs


def test_a_consistent_forgery_is_caught_only_against_what_was_published() -> None:
    """The seed's holder can rebuild a self-consistent record with another seed and another
    entry list; the record alone then verifies. Checked against the commitment published at
    opening and the hash published at close, both verifiers catch it."""
    honest = sample_record()
    forged_entries = [fd.Entry(e["id"], e["minutes_window"]) for e in honest["entries"][1:]]
    forged = record_of(seed_of(99), forged_entries, seats=3, waitlist_room=2).to_dict()
    assert both_verdicts(forged) == ([], [])
    published = {"commitment": honest["commitment"], "entry_list_hash": honest["entry_list_hash"]}
    ours, theirs = both_verdicts(forged, **published)
    assert [line.split(":")[0] for line in ours] == [
        "commitment_not_as_published",
        "entry_list_hash_not_as_published",
    ]
    assert ours == theirs


@settings(max_examples=40, deadline=None)
@given(
    minutes=st.lists(st.integers(0, 3000), min_size=0, max_size=12),
    seats=st.integers(0, 5),
    room=st.integers(0, 5),
    changes=st.lists(
        st.tuples(
            st.sampled_from(["seats", "waitlist_room", "half_weight_minutes", "window_months"]),
            st.integers(-3, 3),
        ),
        max_size=3,
    ),
    swap=st.booleans(),
)
def test_both_verifiers_agree_on_any_changed_record(
    minutes: list[int],
    seats: int,
    room: int,
    changes: list[tuple[str, int]],
    swap: bool,
) -> None:
    """On random records, changed in random parameters (zero and negative ones included) and
    outcome order, the two verifiers print the same lines and neither raises."""
    field = [fd.Entry(f"ctz_{i}", m) for i, m in enumerate(minutes)]
    data = record_of(seed_of(8), field, seats=seats, waitlist_room=room).to_dict()
    for name, delta in changes:
        data[name] += delta
    outcome = data["outcome"]
    ranked = outcome["confirmed"] + outcome["waitlisted"] + outcome["not_selected"]
    if swap and len(ranked) >= 2:
        _swap(ranked, 0, len(ranked) - 1)
        a, b = len(outcome["confirmed"]), len(outcome["waitlisted"])
        outcome.update(
            confirmed=ranked[:a], waitlisted=ranked[a : a + b], not_selected=ranked[a + b :]
        )
    ours, theirs = both_verdicts(data)
    assert ours == theirs


@pytest.mark.parametrize(
    "change",
    [
        lambda d: d.update(seats=2.0),
        lambda d: d.update(seats=True),
        lambda d: d["entries"][0].update(minutes_window="5"),
        lambda d: d.update(seed="ABC"),
        lambda d: d.update(commitment=d["commitment"].upper()),
        lambda d: d["outcome"].pop("waitlisted"),
        lambda d: d.update(drawn_at="yesterday"),
        lambda d: d.update(drawn_at="2026-12-08T09:00:02"),
    ],
)
def test_a_record_of_the_wrong_shape_is_refused_by_both(
    change: Callable[[dict[str, Any]], None],
) -> None:
    """Floats, booleans, strings for numbers, bad hex, missing lists or naive timestamps are
    not a published record: fair_draw raises ValueError and the script exits 2."""
    data = sample_record()
    change(data)
    text = json.dumps(data)
    with pytest.raises(ValueError):
        fd.DrawRecord.from_json(text)
    with pytest.raises(standalone.Malformed):
        standalone.read_record(text)


def test_the_script_runs_on_a_file_or_stdin_with_its_exit_codes(tmp_path: Path) -> None:
    """`python3 docs/verify_draw.py record.json` prints "verified" and exits 0; a changed
    record on stdin prints its differences and exits 1; a malformed one exits 2."""
    data = sample_record()
    path = tmp_path / "record.json"
    path.write_text(json.dumps(data))
    ok = subprocess.run(
        [sys.executable, str(VERIFIER), str(path), "--commitment", data["commitment"]],
        capture_output=True,
        text=True,
        check=False,
    )
    assert (ok.returncode, ok.stdout) == (0, "verified\n")
    data["seats"] += 1
    bad = subprocess.run(
        [sys.executable, str(VERIFIER)],
        input=json.dumps(data),
        capture_output=True,
        text=True,
        check=False,
    )
    assert bad.returncode == 1
    assert bad.stdout.splitlines() == both_verdicts(data)[0]
    broken = subprocess.run(
        [sys.executable, str(VERIFIER)], input="{", capture_output=True, text=True, check=False
    )
    assert broken.returncode == 2 and broken.stdout.startswith("malformed:")


def test_the_script_uses_only_the_standard_library() -> None:
    """It imports nothing of the project and nothing from PyPI, so anyone can run it."""
    import ast

    tree = ast.parse(VERIFIER.read_text())
    imported = {
        alias.name.split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.Import)
        for alias in node.names
    } | {
        (node.module or "").split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom)
    }
    assert imported <= set(sys.stdlib_module_names) | {"__future__"}, imported


def test_keys_are_ln_u_over_weight() -> None:
    """The key is exactly math.log(u) / weight, the formula in docs/fairness.md."""
    seed = seed_of(9)
    entry = fd.Entry("app_x", 450)
    u = fd.uniform(seed, "pst_1", "app_x")
    assert fd.draw_key(seed, "pst_1", entry, HALF) == math.log(u) / (HALF / (HALF + 450))
