"""The shard rules of the outbox relay and the notification sender (shared/shards.py): which
hash range a shard owns, and which shards each live member holds."""

from __future__ import annotations

from itertools import pairwise

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.shards import (
    HASH_MAX,
    HASH_MIN,
    SHARDS_MAX,
    SLOTS,
    assigned,
    hash_range,
    ranges,
    shard_of,
    slots_of,
)

_shard_counts = st.integers(min_value=1, max_value=SHARDS_MAX)
_hashes = st.integers(min_value=HASH_MIN, max_value=HASH_MAX)
_member_ids = st.lists(
    st.integers(min_value=1, max_value=2**31 - 1), min_size=1, max_size=20, unique=True
)


@given(shards=_shard_counts)
def test_the_shards_cut_the_whole_hash_space_into_contiguous_ranges(shards: int) -> None:
    """Shard 0 starts at the smallest int4, each next one right after the previous one ends,
    the last ends at the largest: every hash has exactly one shard, and each shard is one
    range (one BETWEEN on the index)."""
    [(low, _)] = ranges([0], shards)
    assert low == HASH_MIN
    end = HASH_MIN - 1
    for shard in range(shards):
        [(low, high)] = ranges([shard], shards)
        assert low == end + 1 and low <= high
        end = high
    assert end == HASH_MAX
    assert ranges(range(shards), shards) == [(HASH_MIN, HASH_MAX)]


@given(key_hash=_hashes, shards=_shard_counts)
def test_a_hash_is_in_the_range_of_its_shard_and_no_other(key_hash: int, shards: int) -> None:
    owner = shard_of(key_hash, shards)
    for shard in range(shards):
        [(low, high)] = ranges([shard], shards)
        assert (low <= key_hash <= high) == (shard == owner)


@given(shards=_shard_counts, held=st.sets(st.integers(min_value=0, max_value=SHARDS_MAX - 1)))
def test_ranges_of_several_shards_merge_neighbours_and_cover_exactly_their_hashes(
    shards: int, held: set[int]
) -> None:
    """A block of adjacent shards is one range; ranges never touch (else they would have been
    merged) and come in order."""
    held = {s for s in held if s < shards}
    found = ranges(held, shards)
    covered = sum(high - low + 1 for low, high in found)
    assert covered == sum(high - low + 1 for s in held for low, high in ranges([s], shards))
    for (_, high), (low, _) in pairwise(found):
        assert low > high + 1


def test_slots_are_shared_out_evenly() -> None:
    """Every shard has SLOTS // N or one more slots, so no shard is much larger; a slot is
    1/SLOTS of the hash space."""
    for shards in range(1, SHARDS_MAX + 1):
        sizes = {len(slots_of(k, shards)) for k in range(shards)}
        assert sizes <= {SLOTS // shards, SLOTS // shards + 1}
    assert hash_range(0, SLOTS - 1) == (HASH_MIN, HASH_MAX)


@given(shards=_shard_counts, members=_member_ids)
def test_live_members_split_the_shards_into_fair_disjoint_blocks(
    shards: int, members: list[int]
) -> None:
    """Every shard is held by exactly one live member, each holds a contiguous block, and
    blocks differ in size by at most one (with more members than shards some hold none)."""
    blocks = [assigned(shards, members, me) for me in members]
    held = [s for block in blocks for s in block]
    assert sorted(held) == list(range(shards))
    sizes = [len(b) for b in blocks]
    assert max(sizes) - min(sizes) <= 1
    for block in blocks:
        if block:
            assert block == frozenset(range(min(block), max(block) + 1))


def test_one_member_holds_every_shard_and_two_hold_half_each() -> None:
    assert assigned(4, [77], 77) == {0, 1, 2, 3}
    assert assigned(4, [900, 77], 77) == {0, 1}
    assert assigned(4, [900, 77], 900) == {2, 3}
    assert assigned(4, [900], 77) == frozenset()  # not seen among the live members yet


@given(shards_a=_shard_counts, shards_b=_shard_counts, key_hash=_hashes)
def test_two_shard_counts_overlap_only_on_slots(
    shards_a: int, shards_b: int, key_hash: int
) -> None:
    """Processes configured with different counts (a rolling deploy) lock slots, not shard
    numbers: the shards of both counts that own a hash share that hash's slot, so their
    holders exclude each other."""
    a, b = shard_of(key_hash, shards_a), shard_of(key_hash, shards_b)
    assert set(slots_of(a, shards_a)) & set(slots_of(b, shards_b))


def test_out_of_range_counts_and_hashes_are_refused() -> None:
    with pytest.raises(ValueError):
        slots_of(0, 0)
    with pytest.raises(ValueError):
        slots_of(0, SHARDS_MAX + 1)
    with pytest.raises(ValueError):
        slots_of(4, 4)
    with pytest.raises(ValueError):
        shard_of(HASH_MAX + 1, 4)
