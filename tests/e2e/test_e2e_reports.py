"""The outcome report (`GET /v1/reports/outcomes`, issue 19) on the running stack: the demo
month (small size) is played through the APIs, then the report's figures for the
scenario's facilities are compared with an independent count from what the play recorded
(attendance, decisions, BRIEF §5's money model); the CSV and XLSX say the same; bad ranges
are 400 problems with Korean texts."""

from __future__ import annotations

import csv
import io
from collections import defaultdict
from typing import Any

import httpx
import openpyxl
import pytest
from allowance.domain.outcomes import gini

from shared.seoul import seoul_date
from tools.api_client import Api, ApiError
from tools.demo.__main__ import play_and_check
from tools.demo.play import Outcome, rate_on, shift_pay
from tools.demo.scenario import SEED_DEFAULT

pytestmark = [pytest.mark.stack, pytest.mark.slow]


def _independent(out: Outcome, rate_of: dict[str, int]) -> dict[str, dict[str, Any]]:
    """Per facility id, the figures the report must show, counted from the play's record."""
    plan = out.plan
    facility_of = {p.key: out.facility_ids[p.facility] for p in plan.postings}
    starts_of = {p.key: p.starts_at for p in plan.postings}

    def empty() -> dict[str, Any]:
        return {
            **dict.fromkeys(("posted", "cancelled", "seats", "records", "attended"), 0),
            **dict.fromkeys(("minutes", "first", "draws"), 0),
            "served": set(),
            "applicants": set(),
            "draw_winners": set(),
            "gross": defaultdict(int),
        }

    figures: dict[str, dict[str, Any]] = defaultdict(empty)
    for p in plan.postings:
        status = out.posting_status.get(p.key)
        if status not in ("open", "cancelled"):
            continue
        f = figures[facility_of[p.key]]
        f["posted"] += 1
        f["cancelled"] += int(status == "cancelled")
        f["seats"] += 0 if status == "cancelled" else p.capacity
        f["draws"] += int(p.selection == "draw" and status == "open")
    for a in out.attendance:
        f = figures[facility_of[a["posting"]]]
        f["records"] += 1
        if a["status"] == "attended":
            f["attended"] += 1
            f["minutes"] += a["minutes"]
            f["served"].add(a["citizen_id"])
            f["gross"][a["citizen_id"]] += shift_pay(rate_of[a["posting"]], a["minutes"])
    key_of = {app_id: pkey for (_, pkey), app_id in out.application_ids.items()}
    for app_id, app in out.applications.items():
        pkey = key_of[app_id]
        if out.posting_status.get(pkey) not in ("open", "cancelled"):
            continue
        figures[facility_of[pkey]]["applicants"].add(app["citizen_id"])
        if plan.posting(pkey).selection == "draw" and app["status"] in ("confirmed", "withdrawn"):
            figures[facility_of[pkey]]["draw_winners"].add(app["citizen_id"])
    first: dict[str, tuple[Any, str]] = {}
    ids = out.posting_ids
    for a in out.attendance:
        if a["status"] == "attended":
            mark = (starts_of[a["posting"]], ids[a["posting"]])
            if a["citizen_id"] not in first or mark < first[a["citizen_id"]][0]:
                first[a["citizen_id"]] = (mark, a["posting"])
    for _, pkey in first.values():
        figures[facility_of[pkey]]["first"] += 1
    return figures


async def test_the_outcome_report_agrees_with_an_independent_count(
    stack_env: dict[str, str], sim_url: str, system: Api
) -> None:
    """Per facility of the scenario: shifts posted, cancelled and seats; seats held, attended,
    no-shows and hours; citizens served and first-timers; applicants and the share who
    worked; allowance accrued and capped (all of them, summed, equal the money model); the
    Gini over the facility's citizens where nobody was capped; the draws and their winners."""
    lines: list[str] = []
    result = await play_and_check(
        stack_env, SEED_DEFAULT, "small", sim_url, check=False, out=lines.append
    )
    out = result.outcome
    assert out.ok, [w for w, held in out.expectations if not held]
    period = out.plan.period
    rates = (await system.allowance_admin.get_rates())["rates"]
    rate_of = {p.key: rate_on(rates, seoul_date(p.starts_at)) for p in out.plan.postings}
    expected = _independent(out, rate_of)
    for p in out.plan.of_role("draw"):  # the draw's winners, as the matcher lists them now
        apps = await system.matcher_admin.posting_applications(out.posting_ids[p.key])
        winners = {a["citizen_id"] for a in apps if a["status"] == "confirmed"}
        expected[out.facility_ids[p.facility]]["draw_winners"] |= winners
    report = await system.finance.outcome_report(period, period, "facility")
    assert isinstance(report, dict)
    assert (report["from"], report["to"], report["by"]) == (period, period, "facility")
    groups = {g["key"]: g for g in report["groups"] if g["key"] in set(out.facility_ids)}
    assert set(groups) == set(expected)
    accrued = capped = 0
    for facility_id, e in expected.items():
        g = groups[facility_id]
        assert g["label"] == out.plan.facilities[out.facility_ids.index(facility_id)].name
        assert (g["shifts_posted"], g["shifts_cancelled"], g["seats_offered"]) == (
            e["posted"], e["cancelled"], e["seats"],
        )  # fmt: skip
        assert (g["seats_filled"], g["attended"]) == (e["records"], e["attended"])
        assert g["no_shows"] == e["records"] - e["attended"]
        if e["records"]:
            assert g["no_show_rate"] == pytest.approx(g["no_shows"] / e["records"])
        assert g["hours_worked"] == round(e["minutes"] / 60, 1)
        assert g["citizens_served"] == len(e["served"])
        assert g["first_time_citizens"] == e["first"]
        assert g["applicants"] == len(e["applicants"])
        if e["applicants"]:
            share = len(e["served"] & e["applicants"]) / len(e["applicants"])
            assert g["first_shift_share"] == pytest.approx(share)
        if g["allowance_capped_won"] == 0:
            assert g["allowance_accrued_won"] == sum(e["gross"].values())
            citizens = e["applicants"] | set(e["gross"])
            assert g["gini_allowance"] == pytest.approx(
                gini([e["gross"].get(c, 0) for c in citizens])
            )
            paid = [won for won in e["gross"].values() if won > 0]
            assert g["gini_allowance_paid"] == pytest.approx(gini(paid))
        assert g["allowance_paid_won"] is None  # transfers belong to months, not facilities
        assert g["draws"] == e["draws"]
        if e["draws"]:
            assert g["draw_winners"] == len(e["draw_winners"])
            assert 0 <= g["draw_probability_min"] <= g["draw_probability_max"] <= 1
        accrued += g["allowance_accrued_won"]
        capped += g["allowance_capped_won"]
    model = out.model
    assert model is not None
    ours = set(out.citizen_ids.values())
    assert accrued == sum(model.payable(c) for c in ours)
    assert capped == sum(model.capped(c) for c in ours) and capped > 0
    draws = [d for d in report["draws"] if d["group"] in groups]
    assert len(draws) == sum(e["draws"] for e in expected.values())
    assert all(d["probability_method"] in ("exact",) or d["probability_method"].startswith(
        "monte_carlo/") for d in draws)  # fmt: skip

    # The files say what the JSON says.
    csv_bytes = await system.finance.outcome_report(period, period, "facility", "csv")
    assert isinstance(csv_bytes, bytes) and csv_bytes.startswith("\ufeff".encode())
    rows = list(csv.reader(io.StringIO(csv_bytes.decode("utf-8-sig"))))
    header, body = rows[0], {r[0]: r for r in rows[1:]}
    assert header[:3] == ["구분코드", "구분", "게시 근무"]
    assert "total" in body
    for facility_id, g in groups.items():
        row = dict(zip(header, body[facility_id], strict=True))
        assert int(row["발생 수당(원)"]) == g["allowance_accrued_won"]
        assert int(row["출석"]) == g["attended"]
        assert float(row["수당 지니계수"]) == pytest.approx(g["gini_allowance"], abs=1e-4)
    xlsx = await system.finance.outcome_report(period, period, "facility", "xlsx")
    assert isinstance(xlsx, bytes)
    sheet = openpyxl.load_workbook(io.BytesIO(xlsx))["성과 보고"]
    values = list(sheet.iter_rows(values_only=True))
    by_key = {str(r[0]): dict(zip(values[0], r, strict=True)) for r in values[1:]}
    for facility_id, g in groups.items():
        assert by_key[facility_id]["발생 수당(원)"] == g["allowance_accrued_won"]
        assert by_key[facility_id]["참여 시민"] == g["citizens_served"]

    # By month the total of the month carries the spread over every citizen of the month.
    month = await system.finance.outcome_report(period, period, "month")
    assert isinstance(month, dict)
    assert [g["key"] for g in month["groups"]] == [period]
    assert 0 <= month["total"]["gini_allowance"] < 1


@pytest.mark.parametrize(
    ("period_from", "period_to", "code"),
    [
        ("2026-05", "2026-03", "report_range_reversed"),
        ("2024-01", "2026-01", "report_range_too_long"),
        ("2026-13", "2026-12", "invalid_period"),
        ("2026-1", "2026-02", "invalid_period"),
    ],
)
async def test_bad_report_ranges_are_400_problems_in_korean(
    system: Api, stack_env: dict[str, str], period_from: str, period_to: str, code: str
) -> None:
    """Reversed, longer than 24 months (25 here) and malformed months are refused with a
    problem naming the code, in Korean when the caller asks for it."""
    with pytest.raises(ApiError) as caught:
        await system.finance.outcome_report(period_from, period_to)
    assert caught.value.status == 400
    assert isinstance(caught.value.problem, dict) and caught.value.problem["code"] == code
    async with httpx.AsyncClient(base_url=stack_env["ALLOWANCE_URL"]) as http:
        answer = await http.get(
            "/v1/reports/outcomes",
            params={"from": period_from, "to": period_to},
            headers={
                "Authorization": f"Bearer {stack_env['FINANCE_TOKEN']}",
                "Accept-Language": "ko",
            },
        )
    assert answer.status_code == 400
    body = answer.json()
    assert body["code"] == code and any("\uac00" <= ch <= "\ud7a3" for ch in body["detail"])


async def test_unknown_grouping_or_format_is_400(system: Api) -> None:
    for params in ({"by": "citizen"}, {"format": "pdf"}):
        with pytest.raises(ApiError) as caught:
            await system.finance.content(
                "GET", "/v1/reports/outcomes", params={"from": "2026-01", "to": "2026-02", **params}
            )
        assert caught.value.status == 400
