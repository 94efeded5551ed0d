"""Unit tests of the registry's domain rules: pure functions, no I/O."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st
from registry.domain import attendance, budget, facilities, idempotency, postings
from registry.domain.errors import FieldError, Refusal
from registry.domain.ids import new_id

from shared.gwangsan import GWANGSAN_DONGS

NOW = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)
BOUNDS = postings.PostingBounds()
POLICY = attendance.AttendancePolicy(window=timedelta(hours=72), slack=timedelta(minutes=60))


def terms(
    start_in: timedelta = timedelta(days=2),
    minutes: int = 180,
    capacity: int = 5,
    selection: postings.Selection = "first_come",
    close_before: timedelta | None = None,
) -> postings.ShiftTerms:
    starts = NOW + start_in
    return postings.ShiftTerms(
        starts_at=starts,
        ends_at=starts + timedelta(minutes=minutes),
        capacity=capacity,
        selection=selection,
        applications_close_at=None if close_before is None else starts - close_before,
    )


def fields(errors: list[FieldError]) -> set[tuple[str, str]]:
    return {(e.field, e.code) for e in errors}


# --- facilities -------------------------------------------------------------------------------


def test_dong_must_be_one_of_the_configured_gwangsan_dongs() -> None:
    """All 21 configured dongs pass; a dong of another district is refused, naming `dong`."""
    assert len(GWANGSAN_DONGS) == 21 and len(set(GWANGSAN_DONGS)) == 21
    for dong in GWANGSAN_DONGS:
        assert facilities.validate_dong(dong, GWANGSAN_DONGS) == []
    assert fields(facilities.validate_dong("상무1동", GWANGSAN_DONGS)) == {("dong", "dong")}


def test_facility_child_safety_setting_is_a_floor_for_its_postings() -> None:
    """A facility that requires the check imposes it; otherwise the posting decides."""
    assert facilities.posting_requires_child_safety_check(True, None)
    assert facilities.posting_requires_child_safety_check(True, False)
    assert facilities.posting_requires_child_safety_check(False, True)
    assert not facilities.posting_requires_child_safety_check(False, None)
    assert not facilities.posting_requires_child_safety_check(False, False)


def test_new_ids_carry_their_prefix_and_are_unique() -> None:
    """Ids are Stripe-like: prefix, underscore, random part."""
    ids = {new_id("pst") for _ in range(1000)}
    assert len(ids) == 1000 and all(i.startswith("pst_") and len(i) == 24 for i in ids)


# --- state machine ----------------------------------------------------------------------------


def test_posting_state_machine_allows_exactly_the_saga_moves() -> None:
    """Every (from, to) pair: only pending→open/rejected/cancelled and open→cancelled/closed
    are allowed; every other move raises TransitionError."""
    allowed = {
        ("pending_budget", "open"),
        ("pending_budget", "rejected"),
        ("pending_budget", "cancelled"),
        ("open", "cancelled"),
        ("open", "closed"),
    }
    for current, target in itertools.product(postings.POSTING_STATUSES, repeat=2):
        if (current, target) in allowed:
            assert postings.transition(current, target) == target
        else:
            assert not postings.can_transition(current, target)
            with pytest.raises(postings.TransitionError):
                postings.transition(current, target)
    assert {"pending_budget", "open"} == postings.CANCELLABLE


# --- shift terms ------------------------------------------------------------------------------


def test_valid_terms_have_no_errors_at_the_edges_of_every_bound() -> None:
    """30 and 480 minutes, capacity 1 and 200, a draw closing before the start: all fine."""
    for t in (
        terms(minutes=30, capacity=1),
        terms(minutes=480, capacity=200),
        terms(selection="draw", close_before=timedelta(hours=1)),
        terms(selection="first_come", close_before=timedelta(0)),
        terms(start_in=timedelta(days=366) - timedelta(minutes=1)),
    ):
        assert postings.validate_terms(t, NOW, BOUNDS) == [], t


@pytest.mark.parametrize(
    ("shift", "expected"),
    [
        (terms(start_in=timedelta(0)), {("starts_at", "in_past")}),
        (terms(start_in=-timedelta(hours=1)), {("starts_at", "in_past")}),
        (terms(start_in=timedelta(days=367)), {("starts_at", "too_far_ahead")}),
        (terms(minutes=29), {("ends_at", "duration_out_of_range")}),
        (terms(minutes=481), {("ends_at", "duration_out_of_range")}),
        (terms(minutes=0), {("ends_at", "ends_before")}),
        (terms(minutes=-30), {("ends_at", "ends_before")}),
        (terms(capacity=0), {("capacity", "capacity_out_of_range")}),
        (terms(capacity=201), {("capacity", "capacity_out_of_range")}),
        (terms(selection="draw"), {("applications_close_at", "required_for_draw")}),
        (
            terms(selection="draw", close_before=-timedelta(minutes=1)),
            {("applications_close_at", "after_start")},
        ),
        (
            terms(start_in=timedelta(hours=1), close_before=timedelta(hours=2)),
            {("applications_close_at", "in_past")},
        ),
    ],
)
def test_each_broken_rule_names_its_field(
    shift: postings.ShiftTerms, expected: set[tuple[str, str]]
) -> None:
    """Each rule of BRIEF §5 that is broken gives one error naming the field and the rule."""
    assert fields(postings.validate_terms(shift, NOW, BOUNDS)) == expected


def test_every_bad_field_is_named_at_once() -> None:
    """Several broken rules are reported together, not one per attempt."""
    bad = postings.ShiftTerms(
        starts_at=NOW - timedelta(hours=1),
        ends_at=NOW - timedelta(hours=1) + timedelta(minutes=10),
        capacity=500,
        selection="draw",
    )
    assert {f for f, _ in fields(postings.validate_terms(bad, NOW, BOUNDS))} == {
        "starts_at",
        "ends_at",
        "capacity",
        "applications_close_at",
    }


def test_naive_timestamps_are_refused() -> None:
    """A timestamp without a UTC offset is ambiguous (Seoul or UTC?) and refused."""
    naive = postings.ShiftTerms(
        starts_at=datetime(2026, 3, 5, 10, 0),
        ends_at=datetime(2026, 3, 5, 12, 0),
        capacity=2,
        selection="first_come",
    )
    assert fields(postings.validate_terms(naive, NOW, BOUNDS)) == {
        ("starts_at", "timezone_required"),
        ("ends_at", "timezone_required"),
    }


def test_bounds_come_from_configuration() -> None:
    """Tighter configured bounds are applied (nothing is hard-coded in the rules)."""
    tight = postings.PostingBounds(duration_max_minutes=60, capacity_max=3, horizon_days_max=1)
    assert fields(postings.validate_terms(terms(minutes=90, capacity=4), NOW, tight)) == {
        ("ends_at", "duration_out_of_range"),
        ("capacity", "capacity_out_of_range"),
        ("starts_at", "too_far_ahead"),
    }


# --- PATCH ------------------------------------------------------------------------------------


def state(status: str = "open", **kw: object) -> postings.PostingState:
    return postings.PostingState(
        status=status,
        title="t",
        description="d",
        tags=("a",),
        terms=terms(**kw),  # type: ignore[arg-type]
    )


def plan(
    patch: postings.PostingPatch,
    current: postings.PostingState | None = None,
    confirmed: int = 0,
    active: int = 0,
) -> postings.PatchPlan:
    return postings.plan_patch(
        current or state(),
        patch,
        confirmed_count=confirmed,
        active_count=active,
        now=NOW,
        bounds=BOUNDS,
    )


def test_patch_of_title_and_description_changes_no_cost() -> None:
    """Text changes are accepted at any time before the start and do not touch the budget."""
    p = plan(postings.PostingPatch(title="new", description="x"), confirmed=3, active=5)
    assert p.changed == ("title", "description") and not p.cost_changed
    assert p.new.title == "new" and p.new.terms == state().terms


def test_patch_with_the_same_values_changes_nothing() -> None:
    """Sending the current values is accepted and changes nothing (no event)."""
    current = state()
    p = plan(postings.PostingPatch(title="t", capacity=current.terms.capacity), current)
    assert p.changed == ()


def test_capacity_goes_up_or_down_to_no_less_than_confirmed() -> None:
    """Up is fine; down to exactly the confirmed count is fine; below it is 409 naming
    capacity."""
    assert plan(postings.PostingPatch(capacity=9), confirmed=3).new.terms.capacity == 9
    down = plan(postings.PostingPatch(capacity=3), confirmed=3, active=4)
    assert down.changed == ("capacity",) and down.cost_changed and not down.times_changed
    with pytest.raises(postings.PatchRefusedError) as refused:
        plan(postings.PostingPatch(capacity=2), confirmed=3)
    assert refused.value.status == 409 and refused.value.code == "capacity_below_confirmed"
    assert fields(refused.value.errors) == {("capacity", "below_confirmed")}


def test_capacity_change_is_checked_against_the_bounds() -> None:
    """A capacity above the configured maximum is 400 naming capacity."""
    with pytest.raises(postings.PatchRefusedError) as refused:
        plan(postings.PostingPatch(capacity=201))
    assert refused.value.status == 400
    assert fields(refused.value.errors) == {("capacity", "capacity_out_of_range")}


def test_times_change_only_while_nobody_is_booked() -> None:
    """With no booking a move of the shift is accepted; with a waitlisted citizen alone it is
    409 naming the time fields."""
    current = state()
    later = current.terms.starts_at + timedelta(hours=2)
    ok = plan(postings.PostingPatch(starts_at=later, ends_at=later + timedelta(hours=1)), current)
    assert ok.times_changed and ok.cost_changed
    with pytest.raises(postings.PatchRefusedError) as refused:
        plan(postings.PostingPatch(starts_at=later), current, confirmed=0, active=1)
    assert refused.value.code == "times_locked" and refused.value.status == 409
    assert fields(refused.value.errors) == {("starts_at", "booked")}


def test_new_times_must_satisfy_the_posting_rules() -> None:
    """Moving the end so the shift lasts 9 hours is 400 naming ends_at."""
    current = state()
    with pytest.raises(postings.PatchRefusedError) as refused:
        plan(postings.PostingPatch(ends_at=current.terms.starts_at + timedelta(hours=9)), current)
    assert refused.value.status == 400
    assert fields(refused.value.errors) == {("ends_at", "duration_out_of_range")}


@pytest.mark.parametrize("status", ["pending_budget", "rejected", "cancelled", "closed"])
def test_only_an_open_posting_changes(status: str) -> None:
    """Pending, rejected, cancelled and closed postings refuse changes with 409."""
    with pytest.raises(postings.PatchRefusedError) as refused:
        plan(postings.PostingPatch(title="x"), state(status))
    assert refused.value.status == 409 and refused.value.code == "posting_not_editable"


def test_a_started_shift_no_longer_changes() -> None:
    """Once the shift has started, even its title is fixed (409)."""
    started = state(start_in=-timedelta(minutes=5))
    with pytest.raises(postings.PatchRefusedError) as refused:
        plan(postings.PostingPatch(title="x"), started)
    assert refused.value.code == "shift_started"


# --- budget answers ---------------------------------------------------------------------------


def test_budget_reserved_opens_a_pending_posting_once() -> None:
    """The first reservation publishes; an older revision or another reservation id change
    nothing; the same or a higher revision of the same reservation (a funded update) is
    noted; a cancelled or rejected posting ignores it."""
    pending = budget.BudgetView("pending_budget", None, 0)
    assert budget.on_budget_reserved(pending, reservation_id="r1", revision=1)[0] == "publish"
    opened = budget.BudgetView("open", "r1", 2)
    assert budget.on_budget_reserved(opened, reservation_id="r1", revision=1)[0] == "ignore"
    assert budget.on_budget_reserved(opened, reservation_id="r2", revision=3)[0] == "ignore"
    assert (
        budget.on_budget_reserved(opened, reservation_id="r1", revision=2)[0]
        == "update_reservation"
    )
    assert (
        budget.on_budget_reserved(opened, reservation_id="r1", revision=2)[0]
        == "update_reservation"
    )
    for status in ("cancelled", "rejected", "closed"):
        view = budget.BudgetView(status, None, 0)
        assert budget.on_budget_reserved(view, reservation_id="r1", revision=1)[0] == "ignore"


def test_budget_rejected_rejects_a_submission_or_reverts_an_update() -> None:
    """for_revision 0 rejects a pending posting (and nothing else); for_revision n reverts an
    open posting only if change n moved capacity or times and no later change moved them
    again."""
    pending = budget.BudgetView("pending_budget", None, 0)
    opened = budget.BudgetView("open", "r1", 1)
    cancelled = budget.BudgetView("cancelled", None, 0)

    def reject(view: budget.BudgetView, n: int, moved: bool = True, later: bool = False) -> str:
        return budget.on_budget_rejected(
            view, for_revision=n, refused_change_moved_cost=moved, superseded=later
        )[0]

    assert reject(pending, 0) == "reject"
    assert reject(opened, 0) == "ignore"
    assert reject(cancelled, 0) == "ignore"
    assert reject(opened, 2) == "revert"
    assert reject(opened, 2, later=True) == "ignore"
    assert reject(opened, 2, moved=False) == "ignore"
    assert reject(cancelled, 2) == "ignore"


# --- attendance -------------------------------------------------------------------------------

SHIFT = attendance.Shift(NOW, NOW + timedelta(hours=3))


def test_attendance_phases_follow_the_window() -> None:
    """Closed before the start; recording from the start until window after the end
    (inclusive); corrections after."""
    window_end = SHIFT.ends_at + POLICY.window
    assert attendance.attendance_phase(NOW - timedelta(seconds=1), SHIFT, POLICY) == "not_started"
    assert attendance.attendance_phase(NOW, SHIFT, POLICY) == "recording"
    assert attendance.attendance_phase(window_end, SHIFT, POLICY) == "recording"
    assert attendance.attendance_phase(window_end + timedelta(seconds=1), SHIFT, POLICY) == (
        "correcting"
    )
    assert attendance.attendance_window_closes_at(SHIFT, POLICY) == window_end


def entry(
    status: attendance.AttendanceStatus = "attended",
    check_in: timedelta | None = None,
    check_out: timedelta | None = None,
) -> attendance.AttendanceInput:
    return attendance.AttendanceInput(
        booking_id="bkg_1",
        status=status,
        checked_in_at=None if check_in is None else NOW + check_in,
        checked_out_at=None if check_out is None else NOW + check_out,
    )


def test_attended_minutes_are_clipped_to_the_scheduled_shift() -> None:
    """No times: the scheduled minutes; early check-in and late check-out are clipped; seconds
    are dropped; only a check-in counts to the end; a no-show is 0."""
    h = timedelta(hours=1)
    assert attendance.attended_minutes(entry(), SHIFT) == 180
    assert attendance.attended_minutes(entry(check_in=-h, check_out=4 * h), SHIFT) == 180
    assert attendance.attended_minutes(entry(check_in=h, check_out=2 * h), SHIFT) == 60
    assert (
        attendance.attended_minutes(entry(check_in=timedelta(seconds=30), check_out=2 * h), SHIFT)
        == 119
    )
    assert attendance.attended_minutes(entry(check_in=2 * h), SHIFT) == 60
    assert attendance.attended_minutes(entry(check_out=timedelta(minutes=45)), SHIFT) == 45
    assert attendance.attended_minutes(entry(check_in=-h, check_out=-h / 2), SHIFT) == 0
    assert attendance.attended_minutes(entry("no_show"), SHIFT) == 0


@given(
    st.integers(min_value=-60 * 60, max_value=4 * 60 * 60),
    st.integers(min_value=0, max_value=5 * 60 * 60),
)
def test_attended_minutes_never_exceed_the_schedule(in_s: int, length_s: int) -> None:
    """For any check-in and check-out, 0 ≤ minutes ≤ scheduled, and never more than the
    time actually between them."""
    e = entry(check_in=timedelta(seconds=in_s), check_out=timedelta(seconds=in_s + length_s))
    minutes = attendance.attended_minutes(e, SHIFT)
    assert 0 <= minutes <= SHIFT.scheduled_minutes
    assert minutes <= length_s // 60


def test_attendance_times_are_checked() -> None:
    """A no-show carries no times; times outside the shift ± slack, naive times, and a
    check-out before the check-in are refused, each naming its field."""
    h = timedelta(hours=1)
    assert (
        attendance.validate_attendance(entry(check_in=-h, check_out=4 * h), SHIFT, POLICY, 0) == []
    )
    assert fields(
        attendance.validate_attendance(entry("no_show", check_in=h), SHIFT, POLICY, 2)
    ) == {("records.2.checked_in_at", "no_show")}
    late = entry(check_out=4 * h + timedelta(seconds=1))
    assert fields(attendance.validate_attendance(late, SHIFT, POLICY, 0)) == {
        ("records.0.checked_out_at", "outside_shift")
    }
    backwards = entry(check_in=2 * h, check_out=h)
    assert fields(attendance.validate_attendance(backwards, SHIFT, POLICY, 1)) == {
        ("records.1.checked_out_at", "out_before_in")
    }
    naive = attendance.AttendanceInput("bkg_1", "attended", datetime(2026, 3, 2, 2, 0))
    assert fields(attendance.validate_attendance(naive, SHIFT, POLICY, 0)) == {
        ("records.0.checked_in_at", "timezone_required")
    }


def test_attendance_decisions_cover_record_replace_correct_and_no_op() -> None:
    """A first record inside the window is recorded, outside it is too late; the same content
    again is unchanged in either phase; other content replaces inside the window and is a
    correction after it; before the start nothing is decided."""
    recorded = attendance.RecordedAttendance("att_x", entry(), 180, 1)
    other = entry("no_show")
    assert attendance.decide_attendance(None, entry(), "recording") == "record"
    assert attendance.decide_attendance(None, entry(), "correcting") == "too_late"
    assert attendance.decide_attendance(recorded, entry(), "recording") == "unchanged"
    assert attendance.decide_attendance(recorded, entry(), "correcting") == "unchanged"
    assert attendance.decide_attendance(recorded, other, "recording") == "replace"
    assert attendance.decide_attendance(recorded, other, "correcting") == "correct"
    with pytest.raises(ValueError):
        attendance.decide_attendance(None, entry(), "not_started")


def test_an_attendance_request_names_each_booking_once_and_is_bounded() -> None:
    """More records than the bound is 400 naming `records`; a booking twice is 400 naming
    the second occurrence."""
    two = [entry(), attendance.AttendanceInput("bkg_2", "no_show")]
    attendance.check_request(two, records_max=2)
    with pytest.raises(Refusal) as too_many:
        attendance.check_request(two, records_max=1)
    assert too_many.value.status == 400 and fields(too_many.value.errors) == {
        ("records", "too_many")
    }
    with pytest.raises(Refusal) as twice:
        attendance.check_request([entry(), entry("no_show")], records_max=10)
    assert fields(twice.value.errors) == {("records.1.booking_id", "duplicate")}


def test_attendance_opens_at_the_start_of_a_posting_that_runs() -> None:
    """A posting that is not open or closed has no attendance (409); before the start it is
    not open (409); then records are checked against the shift (400) and the phase is
    answered."""
    for status in ("pending_budget", "rejected", "cancelled"):
        with pytest.raises(Refusal) as not_running:
            attendance.opening(status, SHIFT, [entry()], NOW, POLICY)
        assert (not_running.value.status, not_running.value.code) == (409, "posting_not_running")
    with pytest.raises(Refusal) as early:
        attendance.opening("open", SHIFT, [entry()], NOW - timedelta(seconds=1), POLICY)
    assert (early.value.status, early.value.code) == (409, "attendance_not_open")
    with pytest.raises(Refusal) as bad:
        attendance.opening("open", SHIFT, [entry(check_in=timedelta(hours=-2))], NOW, POLICY)
    assert bad.value.status == 400 and fields(bad.value.errors) == {
        ("records.0.checked_in_at", "outside_shift")
    }
    assert attendance.opening("open", SHIFT, [entry()], NOW, POLICY) == "recording"
    late = SHIFT.ends_at + POLICY.window + timedelta(seconds=1)
    assert attendance.opening("closed", SHIFT, [entry()], late, POLICY) == "correcting"


def test_an_attendance_plan_records_replaces_corrects_or_keeps_each_seated_booking() -> None:
    """Only confirmed bookings of the posting (409 naming the others); a first record after
    the window is 409; the plan carries the stored record when unchanged and revision + 1
    when it writes."""
    seated = {"bkg_1": "ctz_1", "bkg_2": "ctz_2"}
    stored = {"bkg_1": attendance.RecordedAttendance("att_1", entry(), 180, 1)}
    with pytest.raises(Refusal) as stranger:
        attendance.plan_records(
            [attendance.AttendanceInput("bkg_9", "no_show")],
            phase="recording",
            shift=SHIFT,
            seated=seated,
            stored=stored,
        )
    assert stranger.value.code == "booking_not_in_roster" and stranger.value.status == 409
    assert fields(stranger.value.errors) == {("records.0.booking_id", "not_in_roster")}

    same, new = entry(), attendance.AttendanceInput("bkg_2", "no_show")
    kept, recorded = attendance.plan_records(
        [same, new], phase="recording", shift=SHIFT, seated=seated, stored=stored
    )
    assert (kept.action, kept.outcome, kept.writes, kept.revision) == (
        "unchanged",
        "unchanged",
        False,
        1,
    )
    assert (recorded.outcome, recorded.revision, recorded.minutes) == ("recorded", 1, 0)
    assert recorded.citizen_id == "ctz_2"
    assert recorded.attendance_id == attendance.attendance_id_for("bkg_2")

    shorter = entry(check_out=timedelta(hours=1))
    [corrected] = attendance.plan_records(
        [shorter], phase="correcting", shift=SHIFT, seated=seated, stored=stored
    )
    assert (corrected.outcome, corrected.revision, corrected.minutes) == ("corrected", 2, 60)
    assert corrected.previous == stored["bkg_1"] and corrected.shown == shorter
    with pytest.raises(Refusal) as too_late:
        attendance.plan_records(
            [shorter, new], phase="correcting", shift=SHIFT, seated=seated, stored=stored
        )
    assert too_late.value.code == "attendance_window_closed"
    assert fields(too_late.value.errors) == {("records.1.booking_id", "window_closed")}


def test_attendance_id_is_stable_per_booking() -> None:
    """The same booking always maps to the same attendance id; different bookings differ."""
    assert attendance.attendance_id_for("bkg_1") == attendance.attendance_id_for("bkg_1")
    assert attendance.attendance_id_for("bkg_1") != attendance.attendance_id_for("bkg_2")
    assert attendance.attendance_id_for("bkg_1").startswith("att_")


# --- idempotency ------------------------------------------------------------------


def test_request_fingerprint_ignores_spacing_and_key_order_only() -> None:
    """The same JSON with other spacing or key order is the same request; another value,
    path or method is not."""
    fp = idempotency.request_fingerprint
    base = fp("POST", "/v1/postings", b'{"a": 1, "b": [1, 2]}')
    assert fp("post", "/v1/postings", b'{"b":[1,2],"a":1}') == base
    assert fp("POST", "/v1/postings", b'{"a": 2, "b": [1, 2]}') != base
    assert fp("POST", "/v1/postings/x", b'{"a": 1, "b": [1, 2]}') != base
    assert fp("PUT", "/v1/postings", b'{"a": 1, "b": [1, 2]}') != base
    assert fp("POST", "/v1/postings", b"") != fp("POST", "/v1/postings", b"{}")
    assert fp("POST", "/v1/postings", b"not json") == fp("POST", "/v1/postings", b"not json")
