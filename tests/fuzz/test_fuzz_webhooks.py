"""hypothesis on the partner webhook's body: any malformed body, correctly signed, is
answered 400 problem+json naming the offending field (413 when over the size limit), and
nothing of it reaches `matcher.applications.v1`."""

from __future__ import annotations

import asyncio
import base64
import concurrent.futures
import hashlib
import hmac
import json
import time
import uuid
from dataclasses import dataclass
from typing import Any

import httpx
import orjson
import pytest
from aiokafka import AIOKafkaConsumer, TopicPartition
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared import topics
from shared.kafka import stack_client_kwargs

pytestmark = [pytest.mark.stack, pytest.mark.slow]

EXAMPLES = 300
BODY_SIZE_MAX_BYTES = 16 * 1024  # the matcher's WEBHOOK_BODY_SIZE_MAX_BYTES default


def sign(secret: str, webhook_id: str, body: bytes) -> dict[str, str]:
    """Standard Webhooks headers over the raw bytes (any body, not only valid text)."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    timestamp = str(int(time.time()))
    mac = hmac.new(key, f"{webhook_id}.{timestamp}.".encode() + body, hashlib.sha256)
    return {
        "webhook-id": webhook_id,
        "webhook-timestamp": timestamp,
        "webhook-signature": "v1," + base64.b64encode(mac.digest()).decode(),
        "content-type": "application/json",
    }


def submitted(application_id: str, posting_id: str, user: str) -> dict[str, Any]:
    return {
        "type": "application.submitted",
        "timestamp": "2026-12-01T09:00:00+00:00",
        "data": {
            "application_id": application_id,
            "posting_id": posting_id,
            "citizen": {
                "partner_user_id": user,
                "dong": "수완동",
                "neighbourhood_verified_at": "2026-10-01T00:00:00+09:00",
                "birth_date": "1990-05-17",
                "child_safety_check": True,
            },
        },
    }


def withdrawn(application_id: str, posting_id: str, user: str) -> dict[str, Any]:
    return {
        "type": "application.withdrawn",
        "timestamp": "2026-12-01T09:00:00+00:00",
        "data": {
            "application_id": application_id,
            "posting_id": posting_id,
            "partner_user_id": user,
        },
    }


def leaves(body: Any, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Every field path of a body (objects' keys, recursively)."""
    out: list[tuple[str, ...]] = []
    if isinstance(body, dict):
        for key, value in body.items():
            out.append((*path, key))
            out.extend(leaves(value, (*path, key)))
    return out


def parent_of(body: dict[str, Any], path: tuple[str, ...]) -> dict[str, Any]:
    node = body
    for key in path[:-1]:
        node = node[key]
    return node


@dataclass(frozen=True)
class Malformed:
    """A body and what the matcher must answer: the status and the field to name."""

    kind: str
    body: bytes
    status: int
    field: str | None


ids = st.from_regex(r"[a-z0-9_]{4,24}", fullmatch=True)
bases = st.builds(
    lambda make, a, p, u: make("app_" + a, "pst_" + p, "karrot_" + u),
    st.sampled_from([submitted, withdrawn]),
    ids,
    ids,
    ids,
)
# Wrong for every field of the body: strings, timestamps, dates and booleans alike.
wrong_values = st.one_of(
    st.none(),
    st.lists(st.integers(), max_size=2),
    st.dictionaries(st.text(max_size=3), st.integers(), max_size=2),
)
# Wrong for an object (`data`, `citizen`): anything but an object.
wrong_for_objects = st.one_of(
    st.none(), st.integers(), st.text(max_size=5), st.lists(st.integers())
)
bad_strings = st.sampled_from(
    ["", "not a time", "2026-13-45", "x" * 101, "with space", "2026-12-01T09:00:00"]
)


@st.composite
def malformed(draw: st.DrawFn) -> Malformed:
    body = draw(bases)
    paths = leaves(body)
    kind = draw(
        st.sampled_from(
            [
                "missing",
                "wrong_type",
                "bad_value",
                "extra",
                "type",
                "not_json",
                "json",
                "oversize",
                "bad_text",
                "loose_type",
                "not_utf8",
            ]
        )
    )
    if kind == "bad_text":
        # a NUL or a lone surrogate anywhere in a citizen's text: Postgres cannot store it
        path = draw(st.sampled_from([p for p in paths if p[-1] in ("partner_user_id", "dong")]))
        text = str(_node(body, path))
        at = draw(st.integers(0, len(text)))
        bad = draw(st.sampled_from(["\x00", "\ud800", "\udbff", "\udc00", "\udfff"]))
        parent_of(body, path)[path[-1]] = text[:at] + bad + text[at:]
        # ASCII JSON: a lone surrogate is written as its `\\uXXXX` escape
        return Malformed(kind, json.dumps(body).encode(), 400, ".".join(path))
    if kind == "loose_type":
        # strict types: a boolean is a JSON boolean, a date or a time an ISO string
        loose = {
            "child_safety_check": st.sampled_from(["yes", "no", "1", "0", "true", 1, 0, 1.0]),
            "birth_date": st.integers(-(2**31), 2**31),
            "neighbourhood_verified_at": st.integers(0, 2**33),
            "timestamp": st.integers(0, 2**33),
        }
        path = draw(st.sampled_from([p for p in paths if p[-1] in loose]))
        parent_of(body, path)[path[-1]] = draw(loose[path[-1]])
        return Malformed(kind, _dumps(body), 400, ".".join(path))
    if kind == "not_utf8":
        raw = bytearray(_dumps(body))
        at = draw(st.integers(0, len(raw)))
        raw[at:at] = draw(st.sampled_from([b"\xff", b"\xc3", b"\xed\xa0\x80", b"\x80\x80"]))
        return Malformed(kind, bytes(raw), 400, None)
    if kind == "missing":
        path = draw(st.sampled_from(paths))
        del parent_of(body, path)[path[-1]]
        return Malformed(kind, _dumps(body), 400, ".".join(path))
    if kind == "wrong_type":
        path = draw(st.sampled_from([p for p in paths if p != ("type",)]))
        is_object = isinstance(_node(body, path), dict)
        parent_of(body, path)[path[-1]] = draw(wrong_for_objects if is_object else wrong_values)
        return Malformed(kind, _dumps(body), 400, ".".join(path))
    if kind == "bad_value":
        choices = [
            p
            for p in paths
            if p[-1]
            in (
                "timestamp",
                "neighbourhood_verified_at",
                "birth_date",
                "application_id",
                "posting_id",
            )
        ]
        path = draw(st.sampled_from(choices))
        value = draw(bad_strings)
        if path[-1] in ("application_id", "posting_id"):
            value = draw(st.sampled_from(["", "x" * 101, "with space", "탭\t"]))
        parent_of(body, path)[path[-1]] = value
        return Malformed(kind, _dumps(body), 400, ".".join(path))
    if kind == "extra":
        objects: list[tuple[str, ...]] = [()]
        objects += [p for p in paths if isinstance(_node(body, p), dict)]
        where = draw(st.sampled_from(objects))
        node = _node(body, where)
        name = draw(st.text(min_size=1, max_size=12).filter(lambda k: k not in node))
        node[name] = draw(st.one_of(st.integers(), st.text(max_size=5), st.booleans()))
        return Malformed(kind, _dumps(body), 400, ".".join((*where, name)))
    if kind == "type":
        body["type"] = draw(
            st.one_of(
                st.text(max_size=30).filter(
                    lambda t: t not in ("application.submitted", "application.withdrawn")
                ),
                wrong_values,
            )
        )
        return Malformed(kind, _dumps(body), 400, "type")
    if kind == "not_json":
        text = draw(st.text(min_size=1, max_size=200).filter(_not_json))
        return Malformed(kind, text.encode(), 400, None)
    if kind == "json":
        value = draw(
            st.recursive(
                st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=10)),
                lambda inner: st.one_of(
                    st.lists(inner, max_size=3),
                    st.dictionaries(st.text(max_size=8), inner, max_size=3),
                ),
                max_leaves=8,
            )
        )
        return Malformed(kind, _dumps(value), 400, None)
    # oversize: a valid body padded past the limit with an (also unknown) field
    body["padding"] = "가" * draw(st.integers(BODY_SIZE_MAX_BYTES // 3 + 1, BODY_SIZE_MAX_BYTES))
    return Malformed(kind, _dumps(body), 413, None)


def _dumps(value: Any) -> bytes:
    """JSON of any generated value (stdlib: integers of any size)."""
    return json.dumps(value, ensure_ascii=False).encode()


def _node(body: dict[str, Any], path: tuple[str, ...]) -> Any:
    node: Any = body
    for key in path:
        node = node[key]
    return node


def _not_json(text: str) -> bool:
    try:
        orjson.loads(text)
    except orjson.JSONDecodeError:
        return True
    return False


def _webhook_ids_on_applications(bootstrap: str, since: dict[int, int]) -> set[str]:
    """The `webhook_id`s of every ApplicationReceived/Withdrawn written since `since`."""

    async def read() -> set[str]:
        consumer = AIOKafkaConsumer(
            bootstrap_servers=bootstrap, enable_auto_commit=False, **stack_client_kwargs()
        )
        await consumer.start()
        try:
            tps = [TopicPartition(topics.MATCHER_APPLICATIONS, p) for p in since]
            consumer.assign(tps)
            ends = await consumer.end_offsets(tps)
            for tp in tps:
                consumer.seek(tp, since[tp.partition])
            found: set[str] = set()
            while [tp for tp in tps if await consumer.position(tp) < ends[tp]]:
                for records in (await consumer.getmany(*tps, timeout_ms=200)).values():
                    for r in records:
                        data = orjson.loads(r.value or b"{}").get("data", {})
                        found.add(str(data.get("webhook_id")))
            return found
        finally:
            await consumer.stop()

    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(lambda: asyncio.run(read())).result()


def _end_offsets(bootstrap: str) -> dict[int, int]:
    async def ends() -> dict[int, int]:
        consumer = AIOKafkaConsumer(
            bootstrap_servers=bootstrap, enable_auto_commit=False, **stack_client_kwargs()
        )
        await consumer.start()
        try:
            partitions = {t.name: t.partitions for t in topics.TOPICS}[topics.MATCHER_APPLICATIONS]
            tps = [TopicPartition(topics.MATCHER_APPLICATIONS, p) for p in range(partitions)]
            return {tp.partition: o for tp, o in (await consumer.end_offsets(tps)).items()}
        finally:
            await consumer.stop()

    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(lambda: asyncio.run(ends())).result()


@pytest.mark.timeout(180)
def test_malformed_webhook_bodies_are_refused_and_write_nothing(
    stack_env: dict[str, str], kafka_bootstrap: str
) -> None:
    """300 generated malformed bodies (a field missing, of the wrong type or value, an
    unknown field, a wrong `type`, not JSON, any other JSON, over the size limit, a NUL or a
    lone surrogate in a text, a loose type — `"yes"` for a boolean, a number for a date —,
    not UTF-8), each
    correctly signed: every one is answered 400 problem+json whose `errors` name the field
    (413 for the oversize ones), and none of their webhook ids appears on
    `matcher.applications.v1` — while a valid control delivery does."""
    secret = stack_env["PARTNER_WEBHOOK_SECRET"].split(",")[0].strip()
    url = stack_env["MATCHER_URL"] + "/v1/partner/webhooks"
    since = _end_offsets(kafka_bootstrap)
    sent: list[str] = []
    kinds: dict[str, int] = {}
    wrong: list[str] = []

    with httpx.Client(timeout=30) as http:

        @given(case=malformed())
        @settings(
            max_examples=EXAMPLES,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            database=None,
        )
        def deliver(case: Malformed) -> None:
            webhook_id = f"msg_fuzz_{uuid.uuid4().hex}"
            sent.append(webhook_id)
            kinds[case.kind] = kinds.get(case.kind, 0) + 1
            r = http.post(url, content=case.body, headers=sign(secret, webhook_id, case.body))
            problem = r.json() if "json" in r.headers.get("content-type", "") else {}
            fields = {e.get("field") for e in problem.get("errors") or []}
            ok = (
                r.status_code == case.status
                and r.headers.get("content-type", "").startswith("application/problem+json")
                and problem.get("status") == case.status
                and (case.status != 400 or bool(fields))
                and (case.field is None or case.field in fields)
            )
            if not ok:
                wrong.append(f"{case.kind} {case.body[:300]!r} → {r.status_code} {r.text[:300]}")

        deliver()

        control_id = f"msg_fuzz_control_{uuid.uuid4().hex}"
        control = _dumps(withdrawn("app_fuzz_control", "pst_fuzz_control", "karrot_fuzz"))
        r = http.post(url, content=control, headers=sign(secret, control_id, control))
        assert r.status_code == 202, r.text

    assert not wrong, f"{len(wrong)} malformed bodies not refused as expected:\n" + "\n".join(
        wrong[:20]
    )
    assert len(sent) >= EXAMPLES * 0.9, len(sent)
    on_topic = _webhook_ids_on_applications(kafka_bootstrap, since)
    assert control_id in on_topic, "the control delivery is not on the topic: the check is blind"
    leaked = on_topic & set(sent)
    assert not leaked, f"malformed webhooks queued: {sorted(leaked)[:10]}"
    print(f"webhook fuzz: {len(sent)} malformed bodies refused, by kind {kinds}")
