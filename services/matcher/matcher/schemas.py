"""The matcher's HTTP models: the partner's webhook bodies (the partner contract: strict,
closed, validated exactly as documented) and the admin API's views."""

from __future__ import annotations

import json
from datetime import date, datetime
from typing import Annotated, Any, Literal

import pydantic
from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    PlainSerializer,
    TypeAdapter,
)

from matcher.domain.eligibility import adult_from
from shared.events import CitizenProfile
from shared.problems import Problem, validation_errors
from shared.web import Page

# --- partner webhooks (in) -------------------------------------------------------------------

_Id = Annotated[str, Field(min_length=1, max_length=100, pattern=r"^[\x21-\x7e]+$")]


def _is_surrogate(ch: str) -> bool:
    return "\ud800" <= ch <= "\udfff"


def _storable_text(value: str) -> str:
    """Text Postgres (UTF-8) can store: no NUL character, no lone surrogate. Refused at
    the door, never accepted and then lost to a consumer that cannot write it."""
    if "\x00" in value:
        raise ValueError("a NUL character (U+0000) is not allowed in text")
    if any(_is_surrogate(ch) for ch in value):
        raise ValueError("a lone surrogate is not allowed in text")
    return value


_Text = Annotated[str, AfterValidator(_storable_text)]


class _Body(BaseModel):
    # strict: a boolean is a JSON boolean only (`"yes"`, `"1"`, `1` are refused), a number
    # a JSON number, a date or a time an ISO string (never a number of seconds).
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class CitizenData(_Body):
    """The citizen as the partner sends it (BRIEF §6); what reaches our topic is derived
    from it (`to_profile`: no birth date in clear, docs/decisions/0013)."""

    partner_user_id: _Text = Field(min_length=1, max_length=100)
    dong: _Text = Field(min_length=1, max_length=50)
    neighbourhood_verified_at: AwareDatetime
    birth_date: date
    child_safety_check: bool

    def to_profile(self, age_min_years: int) -> CitizenProfile:
        """What the topic carries: the day of the minimum age, not the birth date."""
        return CitizenProfile(
            partner_user_id=self.partner_user_id,
            dong=self.dong,
            neighbourhood_verified_at=self.neighbourhood_verified_at,
            adult_from=adult_from(self.birth_date, age_min_years),
            child_safety_check=self.child_safety_check,
        )


class SubmittedData(_Body):
    application_id: _Id
    posting_id: _Id
    citizen: CitizenData


class WithdrawnData(_Body):
    application_id: _Id
    posting_id: _Id
    partner_user_id: _Text = Field(min_length=1, max_length=100)


class ApplicationSubmittedWebhook(_Body):
    type: Literal["application.submitted"]
    timestamp: AwareDatetime
    data: SubmittedData


class ApplicationWithdrawnWebhook(_Body):
    type: Literal["application.withdrawn"]
    timestamp: AwareDatetime
    data: WithdrawnData


class PayeeSubmittedData(_Body):
    """A citizen's bank details (issue 16). Only their shape is checked here: the matcher
    seals them at once to the allowance, which checks the bank code, the account number
    and the holder and answers `payee.accepted` / `payee.rejected` (decision 0014)."""

    partner_user_id: _Text = Field(min_length=1, max_length=100)
    bank_code: _Text = Field(max_length=10)
    account_number: _Text = Field(max_length=40)
    account_holder: _Text = Field(max_length=100)
    consent_at: AwareDatetime


class PayeeSubmittedWebhook(_Body):
    type: Literal["citizen.payee_submitted"]
    timestamp: AwareDatetime
    data: PayeeSubmittedData


AnyWebhook = ApplicationSubmittedWebhook | ApplicationWithdrawnWebhook | PayeeSubmittedWebhook
WEBHOOK_TYPES = ("application.submitted", "application.withdrawn", "citizen.payee_submitted")
PartnerWebhook = Annotated[AnyWebhook, Field(discriminator="type")]
WEBHOOK_BODY = TypeAdapter(PartnerWebhook)


def inline_schema() -> dict[str, Any]:
    """The webhook body's JSON schema with its `$defs` inlined, so it can sit inside the
    OpenAPI document (where `#/$defs/…` would not resolve)."""
    schema = WEBHOOK_BODY.json_schema()
    defs = schema.pop("$defs", {})
    schema.pop("discriminator", None)  # its mapping points into $defs; `type` is a const

    def resolve(node: Any) -> Any:
        if isinstance(node, dict):
            ref = node.get("$ref")
            if isinstance(ref, str) and ref.startswith("#/$defs/"):
                return resolve(defs[ref.removeprefix("#/$defs/")])
            return {k: resolve(v) for k, v in node.items()}
        if isinstance(node, list):
            return [resolve(v) for v in node]
        return node

    resolved: dict[str, Any] = resolve(schema)
    return resolved


def webhook_problem(exc: pydantic.ValidationError) -> Problem:
    """The 400 of a body that fails validation, naming each bad field by its path in the
    body (not by the union's tag)."""
    errors = validation_errors(exc.errors())
    for err, raw in zip(errors, exc.errors(), strict=True):
        loc = [str(p) for p in raw.get("loc", ())]
        if loc and loc[0] in WEBHOOK_TYPES:
            loc = loc[1:]  # the union's tag, not a field of the body
        err["field"] = ".".join(loc) or ("type" if "tag" in str(raw.get("type")) else "body")
    fields = ", ".join(sorted({e["field"] for e in errors}))
    return Problem(400, "invalid_payload", f"invalid webhook payload: {fields}", errors=errors)


def _surrogate_paths(node: Any, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """The field paths of every text (key or value) holding a lone surrogate."""
    found: list[tuple[str, ...]] = []
    if isinstance(node, dict):
        for key, value in node.items():
            if any(_is_surrogate(ch) for ch in str(key)):
                found.append((*path, str(key)))
            found.extend(_surrogate_paths(value, (*path, str(key))))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            found.extend(_surrogate_paths(value, (*path, str(i))))
    elif isinstance(node, str) and any(_is_surrogate(ch) for ch in node):
        found.append(path)
    return found


def parse_webhook(body: bytes) -> AnyWebhook:
    """The body as its typed model, or the 400 `Problem` naming each bad field. A JSON
    string escaping a lone surrogate (`"\\ud800"`) is invalid JSON to the fast parser;
    the slow, lenient one runs only then, to say which field held it. A body that is not
    UTF-8 is refused first: the fast parser would read an encoded surrogate
    (`\\xed\\xa0\\x80`) as text, even in a field's name."""
    try:
        body.decode()
    except UnicodeDecodeError as exc:
        message = f"the body is not UTF-8 (byte {exc.start})"
        errors = [{"field": "body", "message": message, "code": "utf8_invalid"}]
        raise Problem(
            400, "invalid_payload", f"invalid webhook payload: {message}", errors=errors
        ) from None
    try:
        return WEBHOOK_BODY.validate_json(body)
    except pydantic.ValidationError as exc:
        problem = webhook_problem(exc)
    if any(e.get("code") == "json_invalid" for e in problem.errors or []):
        try:
            paths = _surrogate_paths(json.loads(body))
        except ValueError:
            paths = []
        if paths:
            # a name may itself hold the surrogate: written as its escape, or the answer
            # could not be encoded
            fields = sorted(".".join(p).encode("utf-8", "backslashreplace").decode() for p in paths)
            message = "a lone surrogate is not allowed in text"
            errors = [{"field": f, "message": message, "code": "string_surrogate"} for f in fields]
            detail = f"invalid webhook payload: {', '.join(fields)}"
            problem = Problem(400, "invalid_payload", detail, errors=errors)
    raise problem


class Accepted(BaseModel):
    status: Literal["accepted"] = "accepted"
    webhook_id: str


# --- admin views (out) ---------------------------------------------------------------------

# An instant as the admin API has always written it: `datetime.isoformat()` (`+00:00`).
Instant = Annotated[datetime, PlainSerializer(lambda at: at.isoformat(), return_type=str)]


class NotificationView(BaseModel):
    notification_id: str
    type: str
    status: str
    posting_id: str | None
    application_id: str | None
    booking_id: str | None
    attempts: int
    created_at: datetime
    first_attempt_at: datetime | None
    last_attempt_at: datetime | None
    next_attempt_at: datetime
    last_status_code: int | None
    last_error: str | None
    delivered_at: datetime | None
    failed_at: datetime | None


class NotificationPage(Page[NotificationView]):
    """Partner notifications of one status, oldest first."""


class ResendView(BaseModel):
    notification_id: str
    status: str


class ApplicationView(BaseModel):
    """An application and its decision (a held one reads `held`, never booked)."""

    application_id: str
    posting_id: str
    citizen_id: str
    citizen_display: str
    status: str
    reason: str | None
    booking_id: str | None
    waitlist_position: int | None
    received_at: Instant | None
    decided_at: Instant | None
    cancelled_by: str | None
    strike: bool


class ApplicationPage(Page[ApplicationView]):
    """A posting's applications by application id."""


class PostingView(BaseModel):
    """A posting as the matcher sees it, with its applications counted by status."""

    posting_id: str
    facility_id: str
    facility_name: str
    facility_dong: str
    title: str
    description: str
    tags: list[str]
    starts_at: Instant
    ends_at: Instant
    capacity: int
    selection: str
    applications_close_at: Instant | None
    requires_child_safety_check: bool
    status: str
    revision: int
    confirmed_count: int
    waitlisted_count: int
    waitlist_max: int
    queue_next: int
    drawn_at: Instant | None
    published_at: Instant
    updated_at: Instant
    applications: dict[str, int]
    held: int


class DrawView(BaseModel):
    """A stored draw: seed, inputs and outcome, enough for an auditor to re-run it."""

    posting_id: str
    algorithm: str
    salt: str
    seed: str
    month: str
    half_weight_minutes: int
    seats: int
    waitlist_room: int
    inputs: list[dict[str, Any]]
    excluded: list[dict[str, str]]
    outcome: dict[str, list[str]]
    drawn_at: Instant


class DrawCheck(BaseModel):
    """A stored draw re-run from its seed and inputs."""

    posting_id: str
    algorithm: str
    seed_matches: bool
    matches: bool
    recomputed: dict[str, list[str]]


class StrikeView(BaseModel):
    booking_id: str
    kind: str
    occurred_at: Instant
    voided_at: Instant | None


class SuspensionView(BaseModel):
    starts_at: Instant
    ends_at: Instant
    lifted_at: Instant | None


class CitizenView(BaseModel):
    """A citizen's standing: strikes and suspensions (no profile data)."""

    citizen_id: str
    display: str
    suspended: bool
    suspended_until: Instant | None
    strikes: list[StrikeView]
    suspensions: list[SuspensionView]
