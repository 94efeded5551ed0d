"""The maker–checker rules (allowance/domain/approvals.py), pure."""

from __future__ import annotations

from allowance.domain import approvals as rules

CLERK = rules.Actor(rules.CLERK, "stf_clerk")
APPROVER = rules.Actor(rules.APPROVER, "stf_a")
OTHER_APPROVER = rules.Actor(rules.APPROVER, "stf_b")
AUDITOR = rules.Actor(rules.AUDITOR, "stf_audit")
BOOTSTRAP = rules.Actor(rules.BOOTSTRAP, None)


def test_two_people_outside_test_and_demo_unless_set() -> None:
    assert rules.approvals_required("production", None) == 2
    assert rules.approvals_required("test", None) == 1
    assert rules.approvals_required("demo", None) == 1
    assert rules.approvals_required("test", 2) == 2


def test_direct_money_actions_only_while_one_person_is_enough() -> None:
    assert rules.may_act_directly(CLERK, 1) is None
    refused = rules.may_act_directly(CLERK, 2)
    assert refused is not None and refused.status == 409 and refused.code == "approval_required"
    assert "결재" in refused.ko


def test_clerks_approvers_and_the_bootstrap_token_request_auditors_do_not() -> None:
    assert rules.may_request(CLERK) is None
    assert rules.may_request(APPROVER) is None
    assert rules.may_request(BOOTSTRAP) is None
    refused = rules.may_request(AUDITOR)
    assert refused is not None and (refused.status, refused.code) == (403, "approval_forbidden")


def test_a_different_named_approver_decides_a_pending_request() -> None:
    assert rules.may_decide(OTHER_APPROVER, "pending", APPROVER.identity) is None
    assert rules.may_decide(APPROVER, "pending", CLERK.identity) is None


def test_refusals() -> None:
    for actor in (CLERK, AUDITOR, BOOTSTRAP, rules.Actor(rules.APPROVER, None)):
        refused = rules.may_decide(actor, "pending", "someone")
        assert refused is not None and refused.code == "approval_forbidden", actor
    self_approval = rules.may_decide(APPROVER, "pending", APPROVER.identity)
    assert self_approval is not None and (self_approval.status, self_approval.code) == (
        403,
        "approval_self",
    )
    for status in ("approved", "rejected"):
        twice = rules.may_decide(OTHER_APPROVER, status, APPROVER.identity)
        assert twice is not None and (twice.status, twice.code) == (409, "approval_decided")
        assert "이미" in twice.ko


def test_the_bootstrap_token_is_recorded_by_its_role() -> None:
    assert BOOTSTRAP.identity == "finance" and CLERK.identity == "stf_clerk"
