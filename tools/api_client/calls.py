"""One method per HTTP call, grouped by surface (BRIEF §6). A new call is one method here:
its path, its body, the statuses that answer it.

Bodies are the JSON objects the services document in their OpenAPI (`/docs`); results are
the decoded JSON objects (`Json`), the bytes of a file, or None where "there is none" (404)
is an answer. Any other status raises `ApiError` carrying the problem+json body.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from tools.api_client.core import CREATED, OK_OR_CREATED, Json, Surface


class Clock(Surface):
    """`GET|PUT /v1/admin/clock` (admin token; only with APP_ENV test or demo)."""

    async def get(self) -> datetime:
        return datetime.fromisoformat((await self.json("GET", "/v1/admin/clock"))["now"])

    async def set(self, now: datetime) -> datetime:
        body = await self.json("PUT", "/v1/admin/clock", json={"now": now.isoformat()})
        return datetime.fromisoformat(body["now"])


class RegistryAdmin(Surface):
    """The registry's admin API (admin token)."""

    async def create_facility(self, body: Json) -> Json:
        """The facility and its API key (shown this once)."""
        return await self.json("POST", "/v1/admin/facilities", json=body, expect=CREATED)

    async def list_facilities(self, **params: Any) -> Json:
        return await self.json("GET", "/v1/admin/facilities", params=params)

    async def get_facility(self, facility_id: str) -> Json:
        return await self.json("GET", f"/v1/admin/facilities/{facility_id}")

    async def all_facilities(self) -> list[Json]:
        """Every facility (all pages), oldest first."""
        return await self.all_items("/v1/admin/facilities", "items")

    async def edit_facility(self, facility_id: str, changes: Json) -> Json:
        """Change name, kind, dong, address or contact_phone (only the fields given)."""
        return await self.json("PATCH", f"/v1/admin/facilities/{facility_id}", json=changes)

    async def facility_changes(self, facility_id: str) -> list[Json]:
        """What administrators changed on the facility (all pages), oldest first."""
        return await self.all_items(f"/v1/admin/facilities/{facility_id}/changes", "items")

    async def rotate_facility_key(self, facility_id: str, overlap_s: int | None = None) -> Json:
        """A new key; the old ones keep working `overlap_s` seconds (default: the
        configured overlap, 0 out of the box)."""
        path = f"/v1/admin/facilities/{facility_id}/keys/rotate"
        body = {"overlap_s": overlap_s} if overlap_s is not None else None
        return await self.json("POST", path, json=body, expect=OK_OR_CREATED)

    async def suspend_facility(self, facility_id: str) -> Json:
        path = f"/v1/admin/facilities/{facility_id}/suspend"
        return await self.json("POST", path, expect=OK_OR_CREATED)

    async def resume_facility(self, facility_id: str) -> Json:
        """Lift a suspension: the facility and its new key (shown this once)."""
        path = f"/v1/admin/facilities/{facility_id}/resume"
        return await self.json("POST", path, expect=OK_OR_CREATED)


class Facility(Surface):
    """The facility API (the facility's own key): its postings, rosters and attendance."""

    async def post_posting(self, body: Json, idempotency_key: str | None = None) -> Json:
        return await self.json(
            "POST", "/v1/postings", json=body, expect=CREATED, idempotency_key=idempotency_key
        )

    async def list_postings(self, **params: Any) -> Json:
        return await self.json("GET", "/v1/postings", params=params)

    async def estimate_posting(self, starts_at: datetime, ends_at: datetime, capacity: int) -> Json:
        """What a shift would cost if posted now (seats × the full shift's payout)."""
        params = {
            "starts_at": starts_at.isoformat(),
            "ends_at": ends_at.isoformat(),
            "capacity": capacity,
        }
        return await self.json("GET", "/v1/postings/estimate", params=params)

    async def get_posting(self, posting_id: str) -> Json:
        return await self.json("GET", f"/v1/postings/{posting_id}")

    async def patch_posting(self, posting_id: str, changes: Json) -> Json:
        return await self.json("PATCH", f"/v1/postings/{posting_id}", json=changes)

    async def cancel_posting(
        self, posting_id: str, note: str | None = None, idempotency_key: str | None = None
    ) -> Json:
        return await self.json(
            "POST", f"/v1/postings/{posting_id}/cancel", json={"note": note} if note else None,
            expect=OK_OR_CREATED, idempotency_key=idempotency_key,
        )  # fmt: skip

    async def get_roster(self, posting_id: str) -> Json:
        return await self.json("GET", f"/v1/postings/{posting_id}/roster")

    async def record_attendance(self, posting_id: str, records: list[Json]) -> Json:
        path = f"/v1/postings/{posting_id}/attendance"
        return await self.json("PUT", path, json={"records": records})

    async def check_in(
        self, posting_id: str, code: str, idempotency_key: str | None = None
    ) -> Json:
        """Check the booking with this code in (the time is the shared clock's)."""
        return await self.json(
            "POST", f"/v1/postings/{posting_id}/check-in", json={"code": code},
            idempotency_key=idempotency_key,
        )  # fmt: skip

    async def check_out(
        self, posting_id: str, code: str, idempotency_key: str | None = None
    ) -> Json:
        """Check the booking out; the answer carries the attendance it recorded."""
        return await self.json(
            "POST", f"/v1/postings/{posting_id}/check-out", json={"code": code},
            idempotency_key=idempotency_key,
        )  # fmt: skip

    async def check_in_qr(self, posting_id: str, booking_id: str) -> bytes:
        """A booking's check-in code as a QR code (SVG bytes)."""
        path = f"/v1/postings/{posting_id}/check-in-qr"
        return (await self.send("GET", path, params={"booking_id": booking_id})).content


class MatcherAdmin(Surface):
    """The matcher's admin reads and actions (admin token)."""

    async def get_application(self, application_id: str) -> Json | None:
        return await self.json_or_none("GET", f"/v1/admin/applications/{application_id}")

    async def get_posting(self, posting_id: str) -> Json | None:
        return await self.json_or_none("GET", f"/v1/admin/postings/{posting_id}")

    async def posting_applications(self, posting_id: str) -> list[Json]:
        """Every application of a posting (all pages)."""
        path = f"/v1/admin/postings/{posting_id}/applications"
        return await self.all_items(path, "items")

    async def get_draw(self, posting_id: str) -> Json | None:
        return await self.json_or_none("GET", f"/v1/admin/draws/{posting_id}")

    async def verify_draw(self, posting_id: str) -> Json:
        return await self.json("POST", f"/v1/admin/draws/{posting_id}/verify")

    async def published_draw(self, posting_id: str) -> Json | None:
        """What the public may see of a draw (commitment, frozen entries, the record once
        drawn); the partner pull API answers the same at `/v1/partner/postings/{id}/draw`."""
        return await self.json_or_none("GET", f"/v1/admin/postings/{posting_id}/draw")

    async def get_citizen(self, citizen_id: str) -> Json:
        return await self.json("GET", f"/v1/admin/citizens/{citizen_id}")

    async def get_citizen_allowance(self, partner_user_id: str, month: str | None = None) -> Json:
        """The citizen's allowance by partner id: the week's hours, the month's won and its
        payment status (`month` `YYYY-MM`, the current Seoul month when None)."""
        params = {"month": month} if month else {}
        path = f"/v1/admin/citizens/{partner_user_id}/allowance"
        return await self.json("GET", path, params=params)

    async def list_notifications(self, status: str, **params: Any) -> Json:
        """One page of the partner notifications in `status` (failed, pending, delivered)."""
        params = {"status": status, **params}
        return await self.json("GET", "/v1/admin/notifications", params=params)

    async def resend_notification(self, notification_id: str) -> Json:
        path = f"/v1/admin/notifications/{notification_id}/resend"
        return await self.json("POST", path, expect=OK_OR_CREATED)

    async def rotate_partner_token(self, overlap_s: int | None = None) -> Json:
        """A new partner API token (`token`, shown once); the previous ones keep working
        for `overlap_s` (the configured overlap if None)."""
        body = {} if overlap_s is None else {"overlap_s": overlap_s}
        return await self.json("POST", "/v1/admin/partner/token/rotate", json=body)


class AllowanceAdmin(Surface):
    """The allowance's admin API (admin token): rates, caps, the budget."""

    async def get_rates(self) -> Json:
        return await self.json("GET", "/v1/admin/rates")

    async def set_rates(self, rates: list[Json], note: str = "") -> Json:
        return await self.json("PUT", "/v1/admin/rates", json={"rates": rates, "note": note})

    async def get_minimum_wages(self) -> Json:
        return await self.json("GET", "/v1/admin/minimum-wages")

    async def set_minimum_wages(self, minimum_wages: list[Json], note: str = "") -> Json:
        body = {"minimum_wages": minimum_wages, "note": note}
        return await self.json("PUT", "/v1/admin/minimum-wages", json=body)

    async def get_caps(self) -> Json:
        return await self.json("GET", "/v1/admin/caps")

    async def set_caps(self, caps: list[Json], note: str = "") -> Json:
        """Replace the caps per year (the matcher learns the weekly hours from it)."""
        return await self.json("PUT", "/v1/admin/caps", json={"caps": caps, "note": note})

    async def get_withholding(self) -> Json:
        return await self.json("GET", "/v1/admin/withholding")

    async def set_withholding(self, entries: list[Json], note: str = "") -> Json:
        """Replace the withholding table; it applies from the next month close."""
        body = {"withholding": entries, "note": note}
        return await self.json("PUT", "/v1/admin/withholding", json=body)

    async def get_budget(self, fiscal_year: int) -> Json | None:
        """The fiscal year's budget, or None if none was ever set."""
        params = {"fiscal_year": fiscal_year}
        return await self.json_or_none("GET", "/v1/admin/budget", params=params)

    async def set_budget(
        self, fiscal_year: int, amount_won: int, note: str, previous_amount_won: int | None = None
    ) -> Json:
        """Raise or cut the total (a ledger entry). With `previous_amount_won`, refused (409
        `budget_changed`) if someone else changed the total meanwhile."""
        body = {"fiscal_year": fiscal_year, "amount_won": amount_won, "note": note}
        if previous_amount_won is not None:
            body["previous_amount_won"] = previous_amount_won
        return await self.json("PUT", "/v1/admin/budget", json=body)

    async def create_staff(self, name: str, role: str) -> Json:
        """A named finance staff member (finance_clerk, finance_approver or auditor); the
        answer's `token` is shown this once."""
        body = {"name": name, "role": role}
        return await self.json("POST", "/v1/admin/staff", json=body, expect=OK_OR_CREATED)


class Finance(Surface):
    """The allowance's finance API (finance token): budget, ledger, statements, close."""

    async def get_budget(self, **params: Any) -> Json:
        return await self.json("GET", "/v1/budget", params=params)

    async def get_ledger(self, **params: Any) -> Json | bytes:
        """One page of JSON, or the CSV / XLSX file (`format=`)."""
        return await self.content("GET", "/v1/ledger", params=params)

    async def ledger_entries(self, period: str) -> list[Json]:
        """Every ledger entry of a period (all JSON pages)."""
        return await self.all_items("/v1/ledger", "entries", period=period, format="json")

    async def get_trial_balance(self, **params: Any) -> Json:
        return await self.json("GET", "/v1/ledger/trial-balance", params=params)

    async def get_statements(self, period: str, **params: Any) -> Json | bytes:
        """One page of a period's statements (or a file, with `format=`)."""
        return await self.content("GET", f"/v1/periods/{period}/statements", params=params)

    async def all_statements(self, period: str) -> tuple[list[Json], str]:
        """Every statement of a period (all pages) and the period's status."""
        rows: list[Json] = []
        status = "open"
        async for page in self.pages(f"/v1/periods/{period}/statements", "statements"):
            rows.extend(page["statements"])
            status = str(page["status"])
        return rows, status

    async def close_period(self, period: str) -> Json:
        return await self.json("POST", f"/v1/periods/{period}/close", expect=OK_OR_CREATED)

    async def get_payout_file(self, period: str, format: str = "csv") -> Json | bytes:
        path = f"/v1/periods/{period}/payout-file"
        return await self.content("GET", path, params={"format": format})

    async def outcome_report(
        self, period_from: str, period_to: str, by: str = "month", format: str = "json"
    ) -> Json | bytes:
        """The outcome report of the months (issue 19): JSON, or the CSV / XLSX file."""
        params = {"from": period_from, "to": period_to, "by": by, "format": format}
        return await self.content("GET", "/v1/reports/outcomes", params=params)

    async def mark_paid(self, period: str) -> Json:
        """Record that a closed month's payout file was transferred."""
        return await self.json("POST", f"/v1/periods/{period}/mark-paid", expect=OK_OR_CREATED)

    async def get_payout_file_as(
        self, period: str, format: str = "xlsx", layout: str = "bank"
    ) -> Json | bytes:
        """The payout file in a layout (`bank` or `ehojo`), CSV or XLSX, totals row inside."""
        path = f"/v1/periods/{period}/payout-file"
        return await self.content("GET", path, params={"format": format, "layout": layout})

    async def get_withholding_report(self, period: str, format: str = "csv") -> Json | bytes:
        path = f"/v1/periods/{period}/withholding"
        return await self.content("GET", path, params={"format": format})

    async def post_transfer_results(self, period: str, results: list[Json]) -> Json:
        """The bank's result per line: `[{citizen_id, status: paid|failed, reason?}]`."""
        path = f"/v1/periods/{period}/transfer-results"
        return await self.json("POST", path, json=results)

    async def put_payee(self, citizen_ref: str, bank_details: Json) -> Json:
        path = f"/v1/payees/{citizen_ref}"
        return await self.json("PUT", path, json=bank_details, expect=OK_OR_CREATED)

    async def get_payee(self, citizen_ref: str) -> Json | None:
        """A citizen's payee details, masked; None when none are stored (404)."""
        return await self.json_or_none("GET", f"/v1/payees/{citizen_ref}")
