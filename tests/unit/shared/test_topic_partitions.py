"""KAFKA_PARTITIONS (shared/topics.py): the partitions every source topic is laid out with,
checked before provisioning touches anything."""

from __future__ import annotations

import pytest

from shared import provision
from shared.topics import PARTITIONS_DEFAULT, SOURCE_TOPICS, partitions_from, topic_specs


def test_the_setting_lays_out_every_source_topic_and_leaves_the_dlqs_at_one() -> None:
    default, twelve = topic_specs(PARTITIONS_DEFAULT), topic_specs(12)
    assert [t.name for t in twelve] == [t.name for t in default]
    assert [t.config for t in twelve] == [t.config for t in default]
    assert {t.name: t.partitions for t in twelve} == {
        t.name: 12 if t.name in SOURCE_TOPICS else 1 for t in default
    }


def test_kafka_partitions_is_read_and_checked() -> None:
    assert partitions_from({}) == PARTITIONS_DEFAULT == 6
    assert partitions_from({"KAFKA_PARTITIONS": ""}) == PARTITIONS_DEFAULT
    assert partitions_from({"KAFKA_PARTITIONS": " 12 "}) == 12
    for bad in ("0", "-3", "1001", "six", "6.5"):
        with pytest.raises(ValueError, match="KAFKA_PARTITIONS"):
            partitions_from({"KAFKA_PARTITIONS": bad})


def test_provisioning_refuses_a_bad_count_before_touching_anything(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """Exit 2 and one sentence naming the variable; the (unreachable) servers are never
    contacted, so nothing is half-provisioned."""
    env = {name: "postgresql://x@127.0.0.1:1/gwangsan" for name in provision.REQUIRED_ENV}
    env["KAFKA_BOOTSTRAP_SERVERS"] = "127.0.0.1:1"
    env["KAFKA_PARTITIONS"] = "zero"
    assert provision.main([], env) == provision.EXIT_ERROR
    err = capsys.readouterr().err
    assert err.startswith("error: KAFKA_PARTITIONS='zero' is not a whole number")
    assert err.count("\n") == 1
