"""Unit tests of the registry's domain rules: pure functions, no I/O."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st
from registry import domain
from registry.settings import GWANGSAN_DONGS

NOW = datetime(2026, 3, 2, 1, 0, tzinfo=UTC)
BOUNDS = domain.PostingBounds()
POLICY = domain.AttendancePolicy(window=timedelta(hours=72), slack=timedelta(minutes=60))


def terms(
    start_in: timedelta = timedelta(days=2),
    minutes: int = 180,
    capacity: int = 5,
    selection: domain.Selection = "first_come",
    close_before: timedelta | None = None,
) -> domain.ShiftTerms:
    starts = NOW + start_in
    return domain.ShiftTerms(
        starts_at=starts,
        ends_at=starts + timedelta(minutes=minutes),
        capacity=capacity,
        selection=selection,
        applications_close_at=None if close_before is None else starts - close_before,
    )


def fields(errors: list[domain.FieldError]) -> set[tuple[str, str]]:
    return {(e.field, e.code) for e in errors}


# --- facilities -------------------------------------------------------------------------------


def test_dong_must_be_one_of_the_configured_gwangsan_dongs() -> None:
    """All 21 configured dongs pass; a dong of another district is refused, naming `dong`."""
    assert len(GWANGSAN_DONGS) == 21 and len(set(GWANGSAN_DONGS)) == 21
    for dong in GWANGSAN_DONGS:
        assert domain.validate_dong(dong, GWANGSAN_DONGS) == []
    assert fields(domain.validate_dong("상무1동", GWANGSAN_DONGS)) == {("dong", "dong")}


def test_facility_child_safety_setting_is_a_floor_for_its_postings() -> None:
    """A facility that requires the check imposes it; otherwise the posting decides."""
    assert domain.posting_requires_child_safety_check(True, None)
    assert domain.posting_requires_child_safety_check(True, False)
    assert domain.posting_requires_child_safety_check(False, True)
    assert not domain.posting_requires_child_safety_check(False, None)
    assert not domain.posting_requires_child_safety_check(False, False)


def test_new_ids_carry_their_prefix_and_are_unique() -> None:
    """Ids are Stripe-like: prefix, underscore, random part."""
    ids = {domain.new_id("pst") for _ in range(1000)}
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
    for current, target in itertools.product(domain.POSTING_STATUSES, repeat=2):
        if (current, target) in allowed:
            assert domain.transition(current, target) == target
        else:
            assert not domain.can_transition(current, target)
            with pytest.raises(domain.TransitionError):
                domain.transition(current, target)
    assert {"pending_budget", "open"} == domain.CANCELLABLE


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
        assert domain.validate_terms(t, NOW, BOUNDS) == [], t


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
    shift: domain.ShiftTerms, expected: set[tuple[str, str]]
) -> None:
    """Each rule of BRIEF §5 that is broken gives one error naming the field and the rule."""
    assert fields(domain.validate_terms(shift, NOW, BOUNDS)) == expected


def test_every_bad_field_is_named_at_once() -> None:
    """Several broken rules are reported together, not one per attempt."""
    bad = domain.ShiftTerms(
        starts_at=NOW - timedelta(hours=1),
        ends_at=NOW - timedelta(hours=1) + timedelta(minutes=10),
        capacity=500,
        selection="draw",
    )
    assert {f for f, _ in fields(domain.validate_terms(bad, NOW, BOUNDS))} == {
        "starts_at",
        "ends_at",
        "capacity",
        "applications_close_at",
    }


def test_naive_timestamps_are_refused() -> None:
    """A timestamp without a UTC offset is ambiguous (Seoul or UTC?) and refused."""
    naive = domain.ShiftTerms(
        starts_at=datetime(2026, 3, 5, 10, 0),
        ends_at=datetime(2026, 3, 5, 12, 0),
        capacity=2,
        selection="first_come",
    )
    assert fields(domain.validate_terms(naive, NOW, BOUNDS)) == {
        ("starts_at", "timezone_required"),
        ("ends_at", "timezone_required"),
    }


def test_bounds_come_from_configuration() -> None:
    """Tighter configured bounds are applied (nothing is hard-coded in the rules)."""
    tight = domain.PostingBounds(duration_max_minutes=60, capacity_max=3, horizon_days_max=1)
    assert fields(domain.validate_terms(terms(minutes=90, capacity=4), NOW, tight)) == {
        ("ends_at", "duration_out_of_range"),
        ("capacity", "capacity_out_of_range"),
        ("starts_at", "too_far_ahead"),
    }


# --- PATCH ------------------------------------------------------------------------------------


def state(status: str = "open", **kw: object) -> domain.PostingState:
    return domain.PostingState(
        status=status,
        title="t",
        description="d",
        tags=("a",),
        terms=terms(**kw),  # type: ignore[arg-type]
    )


def plan(
    patch: domain.PostingPatch,
    current: domain.PostingState | None = None,
    confirmed: int = 0,
    active: int = 0,
) -> domain.PatchPlan:
    return domain.plan_patch(
        current or state(),
        patch,
        confirmed_count=confirmed,
        active_count=active,
        now=NOW,
        bounds=BOUNDS,
    )


def test_patch_of_title_and_description_changes_no_cost() -> None:
    """Text changes are accepted at any time before the start and do not touch the budget."""
    p = plan(domain.PostingPatch(title="new", description="x"), confirmed=3, active=5)
    assert p.changed == ("title", "description") and not p.cost_changed
    assert p.new.title == "new" and p.new.terms == state().terms


def test_patch_with_the_same_values_changes_nothing() -> None:
    """Sending the current values is accepted and changes nothing (no event)."""
    current = state()
    p = plan(domain.PostingPatch(title="t", capacity=current.terms.capacity), current)
    assert p.changed == ()


def test_capacity_goes_up_or_down_to_no_less_than_confirmed() -> None:
    """Up is fine; down to exactly the confirmed count is fine; below it is 409 naming
    capacity."""
    assert plan(domain.PostingPatch(capacity=9), confirmed=3).new.terms.capacity == 9
    down = plan(domain.PostingPatch(capacity=3), confirmed=3, active=4)
    assert down.changed == ("capacity",) and down.cost_changed and not down.times_changed
    with pytest.raises(domain.PatchRefusedError) as refused:
        plan(domain.PostingPatch(capacity=2), confirmed=3)
    assert refused.value.status == 409 and refused.value.code == "capacity_below_confirmed"
    assert fields(refused.value.errors) == {("capacity", "below_confirmed")}


def test_capacity_change_is_checked_against_the_bounds() -> None:
    """A capacity above the configured maximum is 400 naming capacity."""
    with pytest.raises(domain.PatchRefusedError) as refused:
        plan(domain.PostingPatch(capacity=201))
    assert refused.value.status == 400
    assert fields(refused.value.errors) == {("capacity", "capacity_out_of_range")}


def test_times_change_only_while_nobody_is_booked() -> None:
    """With no booking a move of the shift is accepted; with a waitlisted citizen alone it is
    409 naming the time fields."""
    current = state()
    later = current.terms.starts_at + timedelta(hours=2)
    ok = plan(domain.PostingPatch(starts_at=later, ends_at=later + timedelta(hours=1)), current)
    assert ok.times_changed and ok.cost_changed
    with pytest.raises(domain.PatchRefusedError) as refused:
        plan(domain.PostingPatch(starts_at=later), current, confirmed=0, active=1)
    assert refused.value.code == "times_locked" and refused.value.status == 409
    assert fields(refused.value.errors) == {("starts_at", "booked")}


def test_new_times_must_satisfy_the_posting_rules() -> None:
    """Moving the end so the shift lasts 9 hours is 400 naming ends_at."""
    current = state()
    with pytest.raises(domain.PatchRefusedError) as refused:
        plan(domain.PostingPatch(ends_at=current.terms.starts_at + timedelta(hours=9)), current)
    assert refused.value.status == 400
    assert fields(refused.value.errors) == {("ends_at", "duration_out_of_range")}


@pytest.mark.parametrize("status", ["pending_budget", "rejected", "cancelled", "closed"])
def test_only_an_open_posting_changes(status: str) -> None:
    """Pending, rejected, cancelled and closed postings refuse changes with 409."""
    with pytest.raises(domain.PatchRefusedError) as refused:
        plan(domain.PostingPatch(title="x"), state(status))
    assert refused.value.status == 409 and refused.value.code == "posting_not_editable"


def test_a_started_shift_no_longer_changes() -> None:
    """Once the shift has started, even its title is fixed (409)."""
    started = state(start_in=-timedelta(minutes=5))
    with pytest.raises(domain.PatchRefusedError) as refused:
        plan(domain.PostingPatch(title="x"), started)
    assert refused.value.code == "shift_started"


# --- budget answers ---------------------------------------------------------------------------


def test_budget_reserved_opens_a_pending_posting_once() -> None:
    """The first reservation publishes; an older revision or another reservation id change
    nothing; the same or a higher revision of the same reservation (a funded update) is
    noted; a cancelled or rejected posting ignores it."""
    pending = domain.BudgetView("pending_budget", None, 0)
    assert domain.on_budget_reserved(pending, reservation_id="r1", revision=1)[0] == "publish"
    opened = domain.BudgetView("open", "r1", 2)
    assert domain.on_budget_reserved(opened, reservation_id="r1", revision=1)[0] == "ignore"
    assert domain.on_budget_reserved(opened, reservation_id="r2", revision=3)[0] == "ignore"
    assert (
        domain.on_budget_reserved(opened, reservation_id="r1", revision=2)[0]
        == "update_reservation"
    )
    assert (
        domain.on_budget_reserved(opened, reservation_id="r1", revision=2)[0]
        == "update_reservation"
    )
    for status in ("cancelled", "rejected", "closed"):
        view = domain.BudgetView(status, None, 0)
        assert domain.on_budget_reserved(view, reservation_id="r1", revision=1)[0] == "ignore"


def test_budget_rejected_rejects_a_submission_or_reverts_an_update() -> None:
    """for_revision 0 rejects a pending posting (and nothing else); for_revision n reverts an
    open posting only if change n moved capacity or times and no later change moved them
    again."""
    pending = domain.BudgetView("pending_budget", None, 0)
    opened = domain.BudgetView("open", "r1", 1)
    cancelled = domain.BudgetView("cancelled", None, 0)

    def reject(view: domain.BudgetView, n: int, moved: bool = True, later: bool = False) -> str:
        return domain.on_budget_rejected(
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

SHIFT = domain.Shift(NOW, NOW + timedelta(hours=3))


def test_attendance_phases_follow_the_window() -> None:
    """Closed before the start; recording from the start until window after the end
    (inclusive); corrections after."""
    window_end = SHIFT.ends_at + POLICY.window
    assert domain.attendance_phase(NOW - timedelta(seconds=1), SHIFT, POLICY) == "not_started"
    assert domain.attendance_phase(NOW, SHIFT, POLICY) == "recording"
    assert domain.attendance_phase(window_end, SHIFT, POLICY) == "recording"
    assert domain.attendance_phase(window_end + timedelta(seconds=1), SHIFT, POLICY) == (
        "correcting"
    )
    assert domain.attendance_window_closes_at(SHIFT, POLICY) == window_end


def entry(
    status: domain.AttendanceStatus = "attended",
    check_in: timedelta | None = None,
    check_out: timedelta | None = None,
) -> domain.AttendanceInput:
    return domain.AttendanceInput(
        booking_id="bkg_1",
        status=status,
        checked_in_at=None if check_in is None else NOW + check_in,
        checked_out_at=None if check_out is None else NOW + check_out,
    )


def test_attended_minutes_are_clipped_to_the_scheduled_shift() -> None:
    """No times: the scheduled minutes; early check-in and late check-out are clipped; seconds
    are dropped; only a check-in counts to the end; a no-show is 0."""
    h = timedelta(hours=1)
    assert domain.attended_minutes(entry(), SHIFT) == 180
    assert domain.attended_minutes(entry(check_in=-h, check_out=4 * h), SHIFT) == 180
    assert domain.attended_minutes(entry(check_in=h, check_out=2 * h), SHIFT) == 60
    assert (
        domain.attended_minutes(entry(check_in=timedelta(seconds=30), check_out=2 * h), SHIFT)
        == 119
    )
    assert domain.attended_minutes(entry(check_in=2 * h), SHIFT) == 60
    assert domain.attended_minutes(entry(check_out=timedelta(minutes=45)), SHIFT) == 45
    assert domain.attended_minutes(entry(check_in=-h, check_out=-h / 2), SHIFT) == 0
    assert domain.attended_minutes(entry("no_show"), SHIFT) == 0


@given(
    st.integers(min_value=-60 * 60, max_value=4 * 60 * 60),
    st.integers(min_value=0, max_value=5 * 60 * 60),
)
def test_attended_minutes_never_exceed_the_schedule(in_s: int, length_s: int) -> None:
    """For any check-in and check-out, 0 ≤ minutes ≤ scheduled, and never more than the
    time actually between them."""
    e = entry(check_in=timedelta(seconds=in_s), check_out=timedelta(seconds=in_s + length_s))
    minutes = domain.attended_minutes(e, SHIFT)
    assert 0 <= minutes <= SHIFT.scheduled_minutes
    assert minutes <= length_s // 60


def test_attendance_times_are_checked() -> None:
    """A no-show carries no times; times outside the shift ± slack, naive times, and a
    check-out before the check-in are refused, each naming its field."""
    h = timedelta(hours=1)
    assert domain.validate_attendance(entry(check_in=-h, check_out=4 * h), SHIFT, POLICY, 0) == []
    assert fields(domain.validate_attendance(entry("no_show", check_in=h), SHIFT, POLICY, 2)) == {
        ("records.2.checked_in_at", "no_show")
    }
    late = entry(check_out=4 * h + timedelta(seconds=1))
    assert fields(domain.validate_attendance(late, SHIFT, POLICY, 0)) == {
        ("records.0.checked_out_at", "outside_shift")
    }
    backwards = entry(check_in=2 * h, check_out=h)
    assert fields(domain.validate_attendance(backwards, SHIFT, POLICY, 1)) == {
        ("records.1.checked_out_at", "out_before_in")
    }
    naive = domain.AttendanceInput("bkg_1", "attended", datetime(2026, 3, 2, 2, 0))
    assert fields(domain.validate_attendance(naive, SHIFT, POLICY, 0)) == {
        ("records.0.checked_in_at", "timezone_required")
    }


def test_attendance_decisions_cover_record_replace_correct_and_no_op() -> None:
    """A first record inside the window is recorded, outside it is too late; the same content
    again is unchanged in either phase; other content replaces inside the window and is a
    correction after it; before the start nothing is decided."""
    recorded = domain.RecordedAttendance("att_x", entry(), 180, 1)
    other = entry("no_show")
    assert domain.decide_attendance(None, entry(), "recording") == "record"
    assert domain.decide_attendance(None, entry(), "correcting") == "too_late"
    assert domain.decide_attendance(recorded, entry(), "recording") == "unchanged"
    assert domain.decide_attendance(recorded, entry(), "correcting") == "unchanged"
    assert domain.decide_attendance(recorded, other, "recording") == "replace"
    assert domain.decide_attendance(recorded, other, "correcting") == "correct"
    with pytest.raises(ValueError):
        domain.decide_attendance(None, entry(), "not_started")


def test_attendance_id_is_stable_per_booking() -> None:
    """The same booking always maps to the same attendance id; different bookings differ."""
    assert domain.attendance_id_for("bkg_1") == domain.attendance_id_for("bkg_1")
    assert domain.attendance_id_for("bkg_1") != domain.attendance_id_for("bkg_2")
    assert domain.attendance_id_for("bkg_1").startswith("att_")


# --- cursors and idempotency ------------------------------------------------------------------


@given(
    st.datetimes(timezones=st.just(UTC)), st.from_regex(r"[a-z]{3}_[0-9a-f]{20}", fullmatch=True)
)
def test_cursor_round_trips(at: datetime, ident: str) -> None:
    """Any (created_at, id) survives encode → decode."""
    assert domain.decode_cursor(domain.encode_cursor(domain.Cursor(at, ident))) == domain.Cursor(
        at, ident
    )


@given(st.text(max_size=80))
def test_a_forged_cursor_is_a_cursor_error_and_nothing_else(text: str) -> None:
    """Random text either decodes to a well-formed cursor or raises CursorError (a 400),
    never another exception (a 500)."""
    try:
        cursor = domain.decode_cursor(text)
    except domain.CursorError:
        return
    assert isinstance(cursor.id, str) and cursor.created_at.tzinfo is not None


def test_request_fingerprint_ignores_spacing_and_key_order_only() -> None:
    """The same JSON with other spacing or key order is the same request; another value,
    path or method is not."""
    fp = domain.request_fingerprint
    base = fp("POST", "/v1/postings", b'{"a": 1, "b": [1, 2]}')
    assert fp("post", "/v1/postings", b'{"b":[1,2],"a":1}') == base
    assert fp("POST", "/v1/postings", b'{"a": 2, "b": [1, 2]}') != base
    assert fp("POST", "/v1/postings/x", b'{"a": 1, "b": [1, 2]}') != base
    assert fp("PUT", "/v1/postings", b'{"a": 1, "b": [1, 2]}') != base
    assert fp("POST", "/v1/postings", b"") != fp("POST", "/v1/postings", b"{}")
    assert fp("POST", "/v1/postings", b"not json") == fp("POST", "/v1/postings", b"not json")
