"""Who may call what on the running registry: every facility endpoint against every kind of
caller, the admin endpoints against facility keys, and Idempotency-Key behaviour under
concurrency."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from tests.integration.registry.registry_client import Registry, uid

pytestmark = pytest.mark.stack


async def test_authorization_matrix_of_every_facility_endpoint(registry: Registry) -> None:
    """Every facility endpoint × {no key, bad key, rotated-out key, other facility's key,
    admin token}: 401 for the first three, 404 for another facility's posting (and on the
    list only the caller's own postings), 403 for the admin token — and no body ever holds
    the owner's posting id, title or booking id. The owner's current key works on each."""
    owner = await registry.create_facility()
    other = await registry.create_facility()
    old_key = owner["api_key"]
    rotated = await registry.request(
        registry.admin_token, "POST", f"/v1/admin/facilities/{owner['id']}/keys/rotate"
    )
    assert rotated.status_code == 200, rotated.text
    key = rotated.json()["api_key"]
    assert key != old_key
    posting = await registry.open(key)
    pid = posting["id"]
    booking = await registry.book(posting)
    await registry.wait_roster(key, pid, lambda r: r["confirmed_count"] == 1)
    body = await registry.shift_body()

    def endpoints() -> list[tuple[str, str, dict[str, Any] | None, bool]]:
        """(method, path, json body, is a posting of the owner)"""
        return [
            ("POST", "/v1/postings", body, False),
            ("GET", "/v1/postings", None, False),
            ("GET", f"/v1/postings/{pid}", None, True),
            ("PATCH", f"/v1/postings/{pid}", {"title": "hijacked"}, True),
            ("POST", f"/v1/postings/{pid}/cancel", {}, True),
            ("GET", f"/v1/postings/{pid}/roster", None, True),
            (
                "PUT",
                f"/v1/postings/{pid}/attendance",
                {"records": [{"booking_id": booking, "status": "no_show"}]},
                True,
            ),
        ]

    callers: dict[str, tuple[str | None, int | None]] = {
        "no key": (None, 401),
        "bad key": ("fk_0123456789abcdef_" + "x" * 43, 401),
        "not a key": ("hello", 401),
        "rotated-out key": (old_key, 401),
        "other facility": (other["api_key"], None),
        "admin token": (registry.admin_token, 403),
    }
    secrets = (pid, posting["title"], booking)
    for method, path, json_body, owned in endpoints():
        for name, (token, expected) in callers.items():
            r = await registry.request(
                token, method, path, headers={"Idempotency-Key": uid()}, json=json_body
            )
            want = expected if expected is not None else (404 if owned else None)
            if want is None:  # the other facility's own list and own new posting
                assert r.status_code in (200, 201), (method, path, name, r.text)
            else:
                assert r.status_code == want, (method, path, name, r.status_code, r.text)
                assert r.headers["content-type"] == "application/problem+json"
            # the problem's `instance` echoes the caller's own request path: not a leak
            shown = json.dumps({k: v for k, v in r.json().items() if k != "instance"})
            for secret in secrets:
                assert secret not in shown, (method, path, name)
            if want == 401:
                assert r.headers.get("www-authenticate") == "Bearer"

    after = await registry.get(key, pid)
    assert after["status"] == "open" and after["title"] == posting["title"]
    roster = await registry.roster(key, pid)
    assert roster["entries"][0]["attendance"] is None
    listed = await registry.request(key, "GET", "/v1/postings")
    assert [p["id"] for p in listed.json()["data"]] == [pid]


async def test_admin_endpoints_refuse_facility_keys_and_missing_tokens(registry: Registry) -> None:
    """The admin API: no token 401, a wrong token 401, a facility key 403 — on every admin
    endpoint; an unknown facility is 404 for the admin."""
    fac = await registry.create_facility()
    paths = [
        (
            "POST",
            "/v1/admin/facilities",
            {"name": "x", "kind": "park", "dong": "평동", "requires_child_safety_check": False},
        ),
        ("GET", "/v1/admin/facilities", None),
        ("GET", f"/v1/admin/facilities/{fac['id']}", None),
        ("POST", f"/v1/admin/facilities/{fac['id']}/keys/rotate", None),
        ("POST", f"/v1/admin/facilities/{fac['id']}/suspend", None),
    ]
    for method, path, body in paths:
        for token, want in (
            (None, 401),
            ("not-the-admin-token", 401),
            (fac["api_key"], 403),
        ):
            r = await registry.request(token, method, path, json=body)
            assert r.status_code == want, (method, path, r.text)
    still = await registry.request(fac["api_key"], "GET", "/v1/postings")
    assert still.status_code == 200
    for method, path in (
        ("GET", "/v1/admin/facilities/fac_nope"),
        ("POST", "/v1/admin/facilities/fac_nope/keys/rotate"),
        ("POST", "/v1/admin/facilities/fac_nope/suspend"),
    ):
        r = await registry.request(registry.admin_token, method, path)
        assert r.status_code == 404


async def test_twenty_concurrent_posts_with_one_key_make_one_posting(registry: Registry) -> None:
    """20 concurrent POSTs with the same Idempotency-Key and body create exactly one posting:
    every answer is that posting (201) or "still in flight" (409); a later retry replays the
    first answer byte for byte; the same key with another body is 422; another facility may
    use the same key independently; a POST without a key is 400."""
    fac = await registry.create_facility()
    key = fac["api_key"]
    body = await registry.shift_body()
    idem = uid()
    answers = await asyncio.gather(*(registry.post(key, body, idem) for _ in range(20)))
    created = [r for r in answers if r.status_code == 201]
    assert created and all(r.status_code in (201, 409) for r in answers), [
        (r.status_code, r.text) for r in answers
    ]
    assert len({r.json()["id"] for r in created}) == 1
    for r in answers:
        if r.status_code == 409:
            assert r.json()["code"] == "idempotency_key_in_flight"
    listed = await registry.request(key, "GET", "/v1/postings")
    assert [p["id"] for p in listed.json()["data"]] == [created[0].json()["id"]]

    replay = await registry.post(key, dict(reversed(list(body.items()))), idem)
    assert replay.status_code == 201 and replay.content == created[0].content
    changed = await registry.post(key, {**body, "capacity": 2}, idem)
    assert changed.status_code == 422 and changed.json()["code"] == "idempotency_key_reused"
    other = await registry.create_facility()
    theirs = await registry.post(other["api_key"], body, idem)
    assert theirs.status_code == 201 and theirs.json()["id"] != created[0].json()["id"]
    r = await registry.request(key, "POST", "/v1/postings", json=body)
    assert r.status_code == 400 and "idempotency-key" in r.text.lower()
    listed = await registry.request(key, "GET", "/v1/postings")
    assert len(listed.json()["data"]) == 1


async def test_a_failed_request_stores_nothing_under_its_key(registry: Registry) -> None:
    """A POST refused by validation keeps no answer: the same key with a corrected body then
    succeeds (the key is not burnt by a mistake)."""
    fac = await registry.create_facility()
    body = await registry.shift_body()
    idem = uid()
    bad = await registry.post(fac["api_key"], {**body, "capacity": 500}, idem)
    assert bad.status_code == 400
    good = await registry.post(fac["api_key"], body, idem)
    assert good.status_code == 201


async def test_a_key_id_tried_with_too_many_bad_secrets_is_locked_out(registry: Registry) -> None:
    """More than 20 bad secrets for one facility key id within a minute answer 429 with
    Retry-After for that key id — even its right secret, for the rest of the window — while
    other facilities' keys keep working (OWASP API2: no brute force on a key id)."""
    victim = await registry.create_facility()
    bystander = await registry.create_facility()
    key_id = victim["api_key"].split("_")[1]
    guesses = [
        (
            await registry.request(f"fk_{key_id}_{'g' * 40}{i:03d}", "GET", "/v1/postings")
        ).status_code
        for i in range(21)
    ]
    assert guesses == [401] * 21
    locked = await registry.request(victim["api_key"], "GET", "/v1/postings")
    assert locked.status_code == 429, locked.text
    assert locked.json()["code"] == "too_many_requests"
    assert 1 <= int(locked.headers["retry-after"]) <= 60
    assert (await registry.request(bystander["api_key"], "GET", "/v1/postings")).status_code == 200
