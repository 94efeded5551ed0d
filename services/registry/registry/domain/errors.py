"""How a rule says no: one `FieldError` per thing wrong with a field, and a `Refusal` that
carries the HTTP status and stable code it is answered with (the use case that meets it
turns it into a problem+json answer, so the rule and its answer cannot drift apart)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class FieldError:
    """One thing wrong with one field of a request, said so a person can act on it."""

    field: str
    message: str
    code: str

    def as_dict(self) -> dict[str, str]:
        return {"field": self.field, "message": self.message, "code": self.code}


class Refusal(ValueError):
    """A request the rules refuse: `status` (400, 404, 409, …) and `code` say how it is
    answered, `errors` name the fields when there are any."""

    def __init__(
        self, status: int, code: str, detail: str, errors: Sequence[FieldError] = ()
    ) -> None:
        super().__init__(detail)
        self.status = status
        self.code = code
        self.detail = detail
        self.errors = list(errors)


def fields_detail(errors: Sequence[FieldError]) -> str:
    """`invalid fields: a, b`: the sentence of a refusal that names fields."""
    return "invalid fields: " + ", ".join(sorted({e.field for e in errors}))


def invalid(
    errors: Sequence[FieldError], status: int = 400, code: str = "invalid_request"
) -> Refusal:
    """The refusal of a request whose fields break rules (400 unless said otherwise)."""
    return Refusal(status, code, fields_detail(errors), errors)
