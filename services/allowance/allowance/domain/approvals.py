"""Who may do what with money (issue 17): named finance staff roles and the maker–checker
rules of approvals (결재). Pure: the callers bring who is acting and the request's state.

Roles: `finance_clerk` (담당자) enters payees, uploads results and *requests* what moves
money; `finance_approver` (결재권자) approves or rejects; `auditor` (감사) reads everything
and changes nothing. The static `finance` token is the bootstrap credential for scripts: it
acts like a clerk, and (when the policy asks one person) may do the money actions directly;
it never approves, since it names nobody whose "different person" could be checked.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

CLERK, APPROVER, AUDITOR, BOOTSTRAP = "finance_clerk", "finance_approver", "auditor", "finance"
STAFF_ROLES = (CLERK, APPROVER, AUDITOR)
ROLE_KO = {
    CLERK: "담당자",
    APPROVER: "결재권자",
    AUDITOR: "감사",
    BOOTSTRAP: "재무 토큰(스크립트)",
}

# Which credentials may call which kind of finance route (shared/web.py `staff(*roles)`).
READ_ROLES = (BOOTSTRAP, CLERK, APPROVER, AUDITOR)
# Open personal data (payout file with full accounts, the withholding report's names).
OPEN_ROLES = (BOOTSTRAP, CLERK, APPROVER)
# Enter data (payees, uploads).
CLERK_ROLES = (BOOTSTRAP, CLERK)
# Request a money action: a clerk, or an approver drafting one for another approver.
REQUEST_ROLES = (BOOTSTRAP, CLERK, APPROVER)
# Do a money action directly (only while the policy asks for one person).
DIRECT_ROLES = (BOOTSTRAP, CLERK, APPROVER)
APPROVER_ROLES = (APPROVER,)

Kind = Literal["period_close", "period_mark_paid", "transfer_results", "budget_change"]
KINDS: tuple[Kind, ...] = ("period_close", "period_mark_paid", "transfer_results", "budget_change")
KIND_KO: dict[str, str] = {
    "period_close": "월 마감",
    "period_mark_paid": "지급 완료 처리",
    "transfer_results": "이체 결과 기록",
    "budget_change": "예산 변경",
}
STATUS_KO = {"pending": "결재 대기", "approved": "승인", "rejected": "반려"}


def approvals_required(app_env: str, configured: int | None) -> int:
    """How many people a money action needs: the setting, else 2 in production and 1 in
    test and demo (whose scripts close months alone through the existing endpoints)."""
    if configured is not None:
        return configured
    return 1 if app_env in ("test", "demo") else 2


@dataclass(frozen=True)
class Actor:
    """Who acts: the credential's role and, for a named staff member, their id."""

    role: str
    staff_id: str | None

    @property
    def identity(self) -> str:
        """What a request records as its requester: the staff id, or the bootstrap role."""
        return self.staff_id or self.role


@dataclass(frozen=True)
class Refusal:
    """Why an action is refused: HTTP status, problem code, English and Korean sentences."""

    status: int
    code: str
    detail: str
    ko: str


def may_act_directly(actor: Actor, required: int) -> Refusal | None:
    """A money action through its own endpoint (close, mark-paid, results, budget): only
    while one person is enough; otherwise it goes through an approval."""
    if required <= 1:
        return None
    return Refusal(
        409,
        "approval_required",
        f"this action needs {required} people: request it with POST /v1/approvals",
        f"이 작업은 {required}명의 결재가 필요합니다."
        " 결재 요청(POST /v1/approvals)으로 올려 주세요.",
    )


def may_request(actor: Actor) -> Refusal | None:
    if actor.role in REQUEST_ROLES:
        return None
    return Refusal(
        403,
        "approval_forbidden",
        f"the {actor.role} role cannot request a money action; a clerk or approver does",
        f"{ROLE_KO.get(actor.role, actor.role)} 권한으로는 결재를 요청할 수 없습니다."
        " 담당자나 결재권자가 요청합니다.",
    )


def may_decide(actor: Actor, status: str, requested_by: str) -> Refusal | None:
    """Approve or reject a request: a named approver, a pending request, not one's own."""
    if actor.role not in APPROVER_ROLES or actor.staff_id is None:
        return Refusal(
            403,
            "approval_forbidden",
            f"the {actor.role} role cannot approve or reject; a named finance approver does",
            f"{ROLE_KO.get(actor.role, actor.role)} 권한으로는 승인하거나 반려할 수 없습니다."
            " 결재권자가 처리합니다.",
        )
    if status != "pending":
        return Refusal(
            409,
            "approval_decided",
            f"this request was {status} already; it cannot be decided again",
            f"이미 {STATUS_KO.get(status, status)}된 요청입니다. 다시 처리할 수 없습니다.",
        )
    if actor.identity == requested_by:
        return Refusal(
            403,
            "approval_self",
            "the person who requested an action cannot approve or reject it",
            "본인이 올린 요청은 본인이 승인하거나 반려할 수 없습니다."
            " 다른 결재권자에게 맡겨 주세요.",
        )
    return None
