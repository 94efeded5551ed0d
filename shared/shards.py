"""Which rows a shard of the outbox relay or of the partner-notification sender owns, and
which shards a process holds: pure rules, no I/O (the leases are in `shared.leader`).

A row belongs to a shard by the hash of its ordering key, computed in SQL as
`hashtext(key)` (an int4; an expression index keeps the due queries index-driven). The
hash space is cut into `SLOTS` equal slots, and shard k of N owns the contiguous slots
`[k * SLOTS // N, (k + 1) * SLOTS // N)`, so a shard is one range of the hash: its due
query is one range condition on the index. Every row of one key is in one shard, so
whoever holds the shard sends that key's rows, and only it.

Why slots under the shards: a process locks every slot of a shard it holds (advisory
locks), not the shard's number. Two processes configured with different shard counts (a
rolling deploy changing `OUTBOX_SHARDS`) then still never own one key at once: their
ranges overlap only on slots, and a slot has one holder.

Who holds what: the live members of a job (each holds a member lock, visible in
`pg_locks`) sorted by member id; the member of rank r of M holds the contiguous block of
shards `[r * N // M, (r + 1) * N // M)`. A process alone holds all N; two hold N/2 each;
with more members than shards some hold none. A member whose connection dies drops out
of `pg_locks` at once, so the others take its shards at their next look.
"""

from __future__ import annotations

from bisect import bisect_right
from collections.abc import Iterable, Sequence

SLOTS = 64
SHARDS_MAX = SLOTS
HASH_MIN = -(2**31)
HASH_MAX = 2**31 - 1
_SLOT_WIDTH = 2**32 // SLOTS


def _check(shards: int) -> None:
    if not 1 <= shards <= SHARDS_MAX:
        raise ValueError(f"shards must be 1 to {SHARDS_MAX}, not {shards}")


def slots_of(shard: int, shards: int) -> range:
    """The slots shard `shard` of `shards` owns (never empty: shards <= SLOTS)."""
    _check(shards)
    if not 0 <= shard < shards:
        raise ValueError(f"shard {shard} is not one of 0..{shards - 1}")
    return range(shard * SLOTS // shards, (shard + 1) * SLOTS // shards)


def slot_of(key_hash: int) -> int:
    """The slot of a `hashtext` value."""
    if not HASH_MIN <= key_hash <= HASH_MAX:
        raise ValueError(f"{key_hash} is not an int4 hash")
    return (key_hash - HASH_MIN) // _SLOT_WIDTH


def shard_of(key_hash: int, shards: int) -> int:
    """The shard (of `shards`) whose range holds `key_hash`."""
    _check(shards)
    firsts = [k * SLOTS // shards for k in range(shards)]
    return bisect_right(firsts, slot_of(key_hash)) - 1


def hash_range(first_slot: int, last_slot: int) -> tuple[int, int]:
    """The hash values of slots first..last (inclusive both ends, as SQL's BETWEEN)."""
    return (
        HASH_MIN + first_slot * _SLOT_WIDTH,
        HASH_MIN + (last_slot + 1) * _SLOT_WIDTH - 1,
    )


def ranges(held: Iterable[int], shards: int) -> list[tuple[int, int]]:
    """The hash ranges of the shards in `held`, adjacent shards merged (a process holding a
    block of shards queries one range)."""
    slots = sorted(s for shard in set(held) for s in slots_of(shard, shards))
    runs: list[tuple[int, int]] = []
    for slot in slots:
        if runs and runs[-1][1] == slot - 1:
            runs[-1] = (runs[-1][0], slot)
        else:
            runs.append((slot, slot))
    return [hash_range(first, last) for first, last in runs]


def assigned(shards: int, members: Sequence[int], me: int) -> frozenset[int]:
    """The shards member `me` should hold when `members` are the live members: the block
    of its rank in id order. A member not (yet) seen among them holds nothing."""
    _check(shards)
    ordered = sorted(set(members))
    if me not in ordered:
        return frozenset()
    rank, count = ordered.index(me), len(ordered)
    return frozenset(range(rank * shards // count, (rank + 1) * shards // count))
