"""The posting saga, PATCH rules, cancellation and suspension on the running registry,
with real Kafka and Postgres (budget answers and bookings injected when the real allowance
and matcher do not give them)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest

from shared.events import BudgetRejected, BudgetReserved, Envelope
from tests.integration.matcher.helpers import eventually
from tests.integration.registry.registry_client import Registry, uid

pytestmark = pytest.mark.stack


async def test_saga_opens_a_funded_posting_and_rejects_a_refused_one(registry: Registry) -> None:
    """Two postings are submitted (PostingSubmitted with the facility's name and dong). The
    small one's budget is reserved → it opens and PostingPublished carries that reservation
    id; the huge one (200 people × 8 h, almost a year ahead, in a fiscal year without
    budget) is refused → it is rejected, with the reason on the posting and PostingRejected
    on the topic. Whichever answer comes first — the real allowance's or the injected one —
    the posting follows it."""
    fac = await registry.create_facility(dong="첨단1동")
    key = fac["api_key"]
    small = await registry.submit(key)
    huge = await registry.submit(
        key, capacity=200, minutes=480, start_in=timedelta(days=365, hours=-1)
    )
    for posting in (small, huge):
        submitted = await registry.watcher.wait_for(posting["id"], "PostingSubmitted")
        assert submitted[0].data["facility_name"] == fac["name"]
        assert submitted[0].data["facility_dong"] == "첨단1동"
        assert submitted[0].producer == "registry"

    for posting, inject in ((small, BudgetReserved), (huge, BudgetRejected)):
        answer = await registry.budget_answer(posting["id"], inject)
        if answer.type == "BudgetReserved":
            opened = await registry.wait_status(key, posting["id"], "open")
            assert opened["reservation_id"] == answer.data["reservation_id"]
            assert opened["rejection"] is None and opened["published_at"] is not None
            published = await registry.watcher.wait_for(posting["id"], "PostingPublished")
            assert published[0].data["reservation_id"] == answer.data["reservation_id"]
            assert published[0].data["capacity"] == posting["capacity"]
        else:
            rejected = await registry.wait_status(key, posting["id"], "rejected")
            assert rejected["rejection"]["reason"] == answer.data["reason"]
            assert str(answer.data["requested_won"]) in rejected["rejection"]["detail"]
            assert rejected["reservation_id"] is None
            event = await registry.watcher.wait_for(posting["id"], "PostingRejected")
            assert event[0].data["reason"] == answer.data["reason"]
    # a late second answer changes nothing: the first one decided
    await registry.reserve(huge["id"])
    await registry.reserve(small["id"])
    await registry.watcher.wait_for(huge["id"], "BudgetReserved", count=1)
    for posting in (small, huge):
        await registry.watcher.wait_for(
            posting["id"], *("BudgetReserved", "BudgetRejected"), count=2
        )
    first_small = (await registry.get(key, small["id"]))["reservation_id"]
    assert registry.watcher.of(small["id"], "PostingPublished")[0].data["reservation_id"] == (
        first_small
    )
    assert len(registry.watcher.of(small["id"], "PostingPublished")) == 1
    assert len(registry.watcher.of(huge["id"], "PostingPublished", "PostingRejected")) == 1


async def test_posting_validation_names_every_bad_field(registry: Registry) -> None:
    """A body breaking several BRIEF §5 rules is one 400 problem naming each field; a naive
    timestamp and an unknown field are refused too; nothing is created."""
    fac = await registry.create_facility()
    now = await registry.now()
    bad = {
        "title": "x",
        "starts_at": (now - timedelta(hours=1)).isoformat(),
        "ends_at": (now - timedelta(minutes=50)).isoformat(),
        "capacity": 201,
        "selection": "draw",
    }
    r = await registry.post(fac["api_key"], bad)
    assert r.status_code == 400 and r.headers["content-type"] == "application/problem+json"
    assert {e["field"] for e in r.json()["errors"]} == {
        "starts_at",
        "ends_at",
        "capacity",
        "applications_close_at",
    }
    body = await registry.shift_body()
    r = await registry.post(fac["api_key"], {**body, "starts_at": body["starts_at"][:19]})
    assert r.status_code == 400 and r.json()["errors"][0]["field"] == "starts_at"
    r = await registry.post(fac["api_key"], {**body, "status": "open"})
    assert r.status_code == 400 and r.json()["errors"][0]["field"] == "status"
    listed = await registry.request(fac["api_key"], "GET", "/v1/postings")
    assert listed.json()["data"] == []


async def test_child_safety_default_and_list_filters_and_cursor_pages(registry: Registry) -> None:
    """A children's centre requiring the check imposes it on its postings. The list shows
    only this facility's postings, filters by status and start range, and pages with a
    cursor that neither repeats nor skips."""
    fac = await registry.create_facility(kind="children_centre", requires_child_safety_check=True)
    key = fac["api_key"]
    made = [
        await registry.submit(key, start_in=timedelta(days=d), requires_child_safety_check=False)
        for d in (1, 2, 3, 4, 5)
    ]
    assert all(p["requires_child_safety_check"] for p in made)
    pages: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        r = await registry.request(key, "GET", "/v1/postings", params=params)
        assert r.status_code == 200, r.text
        pages.extend(p["id"] for p in r.json()["data"])
        cursor = r.json()["next_cursor"]
        if cursor is None:
            break
    assert pages == [p["id"] for p in made]
    r = await registry.request(
        key,
        "GET",
        "/v1/postings",
        params={"starts_from": made[1]["starts_at"], "starts_before": made[3]["starts_at"]},
    )
    assert [p["id"] for p in r.json()["data"]] == [made[1]["id"], made[2]["id"]]

    # statuses move when the real allowance answers: wait until it has answered for each
    # (a posting leaving `pending_budget` between the read and the list made this flaky),
    # then filter by what each one is
    async def settled() -> dict[str, str] | None:
        found = {p["id"]: (await registry.get(key, p["id"]))["status"] for p in made}
        return None if "pending_budget" in found.values() else found

    now_status = await eventually(settled, what="the budget answers of the five postings")
    for status in {*now_status.values(), "closed"}:
        r = await registry.request(
            key, "GET", "/v1/postings", params={"status": [status, "cancelled"]}
        )
        assert r.status_code == 200, r.text
        assert [p["id"] for p in r.json()["data"]] == [
            p["id"] for p in made if now_status[p["id"]] == status
        ]
    r = await registry.request(key, "GET", "/v1/postings", params={"cursor": "garbage!"})
    assert r.status_code == 400


async def test_patch_rules_and_budget_refusal_of_an_update(registry: Registry) -> None:
    """On an open posting: a text change emits PostingUpdated revision 1 with the previous
    terms; a time change while nobody is booked is accepted (revision 2); a capacity increase
    (revision 3) that the budget refuses is reverted as revision 4 with the reason on the
    posting. Once citizens are booked, times are locked (409) and capacity cannot go below
    the confirmed count (409), but down to it is fine. A cancelled posting refuses changes."""
    fac = await registry.create_facility()
    key = fac["api_key"]
    posting = await registry.open(key, capacity=2)
    pid = posting["id"]
    url = f"/v1/postings/{pid}"

    r = await registry.request(key, "PATCH", url, json={"title": "새 제목", "tags": ["책"]})
    assert r.status_code == 200 and r.json()["revision"] == 1 and r.json()["title"] == "새 제목"
    ev = (await registry.watcher.wait_for(pid, "PostingUpdated"))[0].data
    assert ev["revision"] == 1 and ev["title"] == "새 제목" and ev["previous_capacity"] == 2
    assert ev["facility_name"] == fac["name"]

    later = datetime.fromisoformat(posting["starts_at"]) + timedelta(hours=1)
    r = await registry.request(
        key,
        "PATCH",
        url,
        json={"starts_at": later.isoformat(), "ends_at": (later + timedelta(hours=2)).isoformat()},
    )
    assert r.status_code == 200, r.text
    assert r.json()["revision"] == 2
    ev = (await registry.watcher.wait_for(pid, "PostingUpdated", count=2))[1].data
    assert ev["previous_starts_at"] == posting["starts_at"].replace("+00:00", "Z")
    assert datetime.fromisoformat(ev["starts_at"]) == later

    def answers_revision_3(e: Envelope) -> bool:
        return e.data.get("for_revision") == 3 or (
            e.type == "BudgetReserved" and e.data.get("revision") == 3
        )

    r = await registry.request(key, "PATCH", url, json={"capacity": 5})
    assert r.status_code == 200 and r.json()["capacity"] == 5 and r.json()["revision"] == 3
    real = await registry.watcher.maybe(
        pid,
        "BudgetRejected",
        "BudgetReserved",
        timeout_s=3,
        where=answers_revision_3,
    )
    if real is None:
        await registry.refuse(pid, for_revision=3)
    answer = (
        await registry.watcher.wait_for(
            pid,
            "BudgetRejected",
            "BudgetReserved",
            where=answers_revision_3,
        )
    )[0]
    if answer.type == "BudgetRejected":
        restored = (
            await registry.watcher.wait_for(
                pid, "PostingUpdated", where=lambda e: e.data["revision"] == 4
            )
        )[0].data
        assert restored["capacity"] == 2 and restored["previous_capacity"] == 5
        now_posting = await registry.get(key, pid)
        assert now_posting["capacity"] == 2 and now_posting["revision"] == 4
        rejection = now_posting["last_update_rejected"]
        assert rejection["revision"] == 3 and rejection["reason"] == answer.data["reason"]
        assert rejection["restored"]["capacity"] == 2
        capacity = 2
    else:
        capacity = 5
        assert (await registry.get(key, pid))["capacity"] == 5

    current = await registry.get(key, pid)
    assert current["capacity"] == capacity
    b1 = await registry.book(current)
    b2 = await registry.book(current)
    await registry.book(current, "waitlisted", position=1)
    await registry.wait_roster(key, pid, lambda r: r["confirmed_count"] == 2)
    r = await registry.request(key, "PATCH", url, json={"capacity": 1})
    assert r.status_code == 409 and r.json()["code"] == "capacity_below_confirmed"
    assert r.json()["errors"][0]["field"] == "capacity"
    moved = datetime.fromisoformat(current["starts_at"]) + timedelta(minutes=30)
    r = await registry.request(key, "PATCH", url, json={"starts_at": moved.isoformat()})
    assert r.status_code == 409 and r.json()["code"] == "times_locked"
    r = await registry.request(key, "PATCH", url, json={"capacity": 2})
    assert r.status_code == 200 and r.json()["capacity"] == 2
    # back to 2 is a change after a funded increase (revision 4), and no change after a
    # reverted one (the revert was revision 4)
    assert r.json()["revision"] == 4
    r = await registry.request(key, "PATCH", url, json={"title": current["title"]})
    assert (
        r.status_code == 200 and r.json()["revision"] == (await registry.get(key, pid))["revision"]
    )
    assert {b1, b2} <= {e["booking_id"] for e in (await registry.roster(key, pid))["entries"]}

    r = await registry.request(
        key, "POST", f"{url}/cancel", headers={"Idempotency-Key": uid()}, json={}
    )
    assert r.status_code == 200 and r.json()["status"] == "cancelled"
    r = await registry.request(key, "PATCH", url, json={"title": "too late"})
    assert r.status_code == 409 and r.json()["code"] == "posting_not_editable"


async def test_cancel_emits_posting_cancelled_once_and_replays(registry: Registry) -> None:
    """Cancelling an open posting answers `cancelled`, emits PostingCancelled(reason=facility)
    — on which the matcher cancels bookings and allowance releases the budget (BudgetReleased
    when the real allowance runs) — and a retry with the same Idempotency-Key replays the
    same answer without a second event; a new cancel is 409."""
    fac = await registry.create_facility()
    key = fac["api_key"]
    posting = await registry.open(key)
    pid = posting["id"]
    idem = uid()
    headers = {"Idempotency-Key": idem}
    first = await registry.request(key, "POST", f"/v1/postings/{pid}/cancel", headers=headers)
    assert first.status_code == 200, first.text
    assert first.json()["status"] == "cancelled" and first.json()["cancel_reason"] == "facility"
    again = await registry.request(key, "POST", f"/v1/postings/{pid}/cancel", headers=headers)
    assert again.status_code == 200 and again.json() == first.json()
    assert again.headers.get("idempotent-replayed") == "true"
    other = await registry.request(
        key, "POST", f"/v1/postings/{pid}/cancel", headers={"Idempotency-Key": uid()}
    )
    assert other.status_code == 409 and other.json()["code"] == "posting_not_cancellable"
    event = (await registry.watcher.wait_for(pid, "PostingCancelled"))[0].data
    assert event["reason"] == "facility" and event["facility_id"] == fac["id"]
    funded_by_allowance = any(
        e.producer == "allowance" and not e.data["reservation_id"].startswith("rsv_test_")
        for e in registry.watcher.of(pid, "BudgetReserved")
    )
    if funded_by_allowance:
        released = await registry.watcher.wait_for(pid, "BudgetReleased")
        assert released[0].data["reservation_id"] == posting["reservation_id"]
    assert len(registry.watcher.of(pid, "PostingCancelled")) == 1


async def test_cancel_keeps_its_note_and_the_roster_keeps_the_bookings_it_ended(
    registry: Registry,
) -> None:
    """The note sent with a cancellation is kept: GET and the list answer it as
    `cancel_note` (null for a cancellation without one). The cancelled posting's roster
    lists the bookings its cancellation ended once the matcher's BookingCancelled arrive —
    status `cancelled`, when, by whom and what each was — while a withdrawal made before the
    cancellation stays out of it; the counts are of live bookings (0)."""
    fac = await registry.create_facility()
    key = fac["api_key"]
    posting = await registry.open(key, capacity=2)
    pid = posting["id"]
    a = await registry.book(posting)
    b = await registry.book(posting)
    w = await registry.book(posting, "waitlisted", position=1)
    await registry.wait_roster(key, pid, lambda r: r["waitlisted_count"] == 1)
    await registry.book(posting, "cancelled", booking_id=b)  # withdrawn while open
    await registry.wait_roster(key, pid, lambda r: r["confirmed_count"] == 1)

    note = "도서관 공사로 휴관합니다"
    r = await registry.request(
        key,
        "POST",
        f"/v1/postings/{pid}/cancel",
        headers={"Idempotency-Key": uid()},
        json={"note": f"  {note} "},
    )
    assert r.status_code == 200, r.text
    cancelled = r.json()
    assert cancelled["cancel_note"] == note and cancelled["cancel_reason"] == "facility"
    # the answer counts what the cancellation ends: the bookings live at that moment
    assert (cancelled["confirmed_count"], cancelled["waitlisted_count"]) == (1, 1)
    assert (await registry.get(key, pid))["cancel_note"] == note
    listed = await registry.request(key, "GET", "/v1/postings", params={"status": "cancelled"})
    assert [p["cancel_note"] for p in listed.json()["data"] if p["id"] == pid] == [note]

    # the matcher cancels what was booked (by the facility, after PostingCancelled)
    await registry.book(posting, "cancelled", booking_id=a, cancelled_by="facility")
    await registry.book(
        posting, "cancelled", booking_id=w, cancelled_by="facility", was_confirmed=False
    )
    roster = await registry.wait_roster(
        key,
        pid,
        lambda r: (
            r["confirmed_count"] == 0
            and r["waitlisted_count"] == 0
            and [e["status"] for e in r["entries"]] == ["cancelled", "cancelled"]
        ),
    )
    assert [(e["booking_id"], e["was_status"]) for e in roster["entries"]] == [
        (a, "confirmed"),
        (w, "waitlisted"),
    ]
    for entry in roster["entries"]:
        assert entry["cancelled_by"] == "facility" and entry["cancelled_at"] is not None
        assert entry["attendance"] is None and entry["check_in_code"] is None
        assert entry["waitlist_position"] is None
    assert b not in {e["booking_id"] for e in roster["entries"]}
    after = await registry.get(key, pid)
    assert (after["confirmed_count"], after["waitlisted_count"]) == (0, 0)

    # no note: null; an open posting's roster still leaves a withdrawal out
    other = await registry.open(key)
    x = await registry.book(other)
    await registry.wait_roster(key, other["id"], lambda r: r["confirmed_count"] == 1)
    await registry.book(other, "cancelled", booking_id=x)
    assert (await registry.wait_roster(key, other["id"], lambda r: not r["entries"])) is not None
    r = await registry.request(
        key, "POST", f"/v1/postings/{other['id']}/cancel", headers={"Idempotency-Key": uid()}
    )
    assert r.status_code == 200 and r.json()["cancel_note"] is None
    assert (await registry.roster(key, other["id"]))["entries"] == []


async def test_suspending_a_facility_cancels_its_postings_and_stops_its_keys(
    registry: Registry,
) -> None:
    """Suspension cancels every open and pending posting (PostingCancelled with reason
    facility_suspended), leaves others' postings alone, and the facility's keys answer 401;
    its keys cannot be rotated any more (409)."""
    fac = await registry.create_facility()
    bystander = await registry.create_facility()
    key = fac["api_key"]
    opened = await registry.open(key)
    pending = await registry.submit(key)
    theirs = await registry.submit(bystander["api_key"])
    r = await registry.request(
        registry.admin_token, "POST", f"/v1/admin/facilities/{fac['id']}/suspend"
    )
    assert r.status_code == 200, r.text
    assert set(r.json()["cancelled_posting_ids"]) == {opened["id"], pending["id"]}
    assert r.json()["facility"]["status"] == "suspended"
    for p in (opened, pending):
        ev = (await registry.watcher.wait_for(p["id"], "PostingCancelled"))[0].data
        assert ev["reason"] == "facility_suspended"
    assert registry.watcher.of(theirs["id"], "PostingCancelled") == []
    r = await registry.request(key, "GET", "/v1/postings")
    assert r.status_code == 401
    r = await registry.request(
        registry.admin_token, "POST", f"/v1/admin/facilities/{fac['id']}/keys/rotate"
    )
    assert r.status_code == 409
    again = await registry.request(
        registry.admin_token, "POST", f"/v1/admin/facilities/{fac['id']}/suspend"
    )
    assert again.status_code == 200 and again.json()["cancelled_posting_ids"] == []


async def test_admin_facilities_validation_and_paging(registry: Registry) -> None:
    """A dong outside Gwangsan-gu is 400 naming `dong`; the key is shown once and stored only
    hashed (the list and the facility never show it); the list pages oldest first with a
    cursor and contains every facility created."""
    r = await registry.request(
        registry.admin_token,
        "POST",
        "/v1/admin/facilities",
        json={
            "name": "x",
            "kind": "park",
            "dong": "상무1동",
            "requires_child_safety_check": False,
        },
    )
    assert r.status_code == 400 and r.json()["errors"][0]["field"] == "dong"
    made = [await registry.create_facility(kind="park", dong="평동") for _ in range(3)]
    seen: list[dict[str, Any]] = []
    cursor = None
    for _ in range(1000):
        params: dict[str, Any] = {"limit": 200, **({"cursor": cursor} if cursor else {})}
        r = await registry.request(
            registry.admin_token, "GET", "/v1/admin/facilities", params=params
        )
        assert r.status_code == 200, r.text
        seen.extend(r.json()["data"])
        cursor = r.json()["next_cursor"]
        if cursor is None:
            break
    ids = [f["id"] for f in seen]
    assert len(ids) == len(set(ids))
    positions = [ids.index(f["id"]) for f in made]
    assert positions == sorted(positions)
    assert all("api_key" not in f for f in seen)
    assert all(m["api_key"] not in r.text for m in made)
    one = await registry.request(
        registry.admin_token, "GET", f"/v1/admin/facilities/{made[0]['id']}"
    )
    assert one.status_code == 200 and "api_key" not in one.json()
