"""The producers' partitioner: the cache must never change where a key goes."""

from __future__ import annotations

from aiokafka.partitioner import DefaultPartitioner
from hypothesis import given
from hypothesis import strategies as st

from shared.kafka import cached_partitioner

_partition_lists = st.integers(min_value=1, max_value=64).map(lambda n: list(range(n)))


@given(key=st.binary(min_size=0, max_size=200), partitions=_partition_lists)
def test_a_key_goes_where_aiokafkas_default_partitioner_sends_it(
    key: bytes, partitions: list[int]
) -> None:
    """For any key and partition count, asked twice (the second answer from the cache), the
    partition is the default partitioner's (murmur2, as in the Java client and every other
    service's producer): events of one posting stay on one partition whoever produces them."""
    expected = DefaultPartitioner()(key, partitions, partitions)
    assert cached_partitioner(key, partitions, partitions) == expected
    assert cached_partitioner(key, partitions, partitions) == expected


def test_a_keyless_message_goes_to_an_available_partition() -> None:
    """Without a key the choice is random among the available partitions, like the default
    (all partitions when none is known to be available)."""
    assert {cached_partitioner(None, [0, 1, 2, 3], [2]) for _ in range(50)} == {2}
    assert {cached_partitioner(None, [0, 1], []) for _ in range(200)} == {0, 1}
