"""Settings of the matcher service (environment variables; see docs/operations.md).

Every policy value (BRIEF §5) and every bound on work (waitlists, held applications,
notification retries, concurrency, body size) is a setting with its default and source here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import timedelta

from pydantic import Field, SecretStr, field_validator

from matcher.domain.policy import Policy, WeekCaps
from matcher.domain.schedule import Schedule
from shared.auth import PARTNER_KEY_PREFIX, key_id_of
from shared.context import ServiceContext
from shared.gwangsan import GWANGSAN_DONGS
from shared.settings import ServiceSettings

# The `producer` of every event the matcher writes (its outbox and its webhook ingest).
PRODUCER = "matcher"
# The public prefix of a partner API token (`pk_<key id>_<secret>`, shared/auth.py).
PARTNER_TOKEN_PREFIX = PARTNER_KEY_PREFIX


class MatcherSettings(ServiceSettings):
    service_name: str = "matcher"
    port: int = 8002
    # The decision worker fetches ahead of its batches and gathers 3 ms after each fetch
    # that brought applications (shared settings; docs/performance.md, lever 17): in
    # alternated runs a rush of 5,000 was answered 0.3–0.9 s sooner after the last
    # webhook, in every pair, with the 500/s tail within the runs' spread.
    consumer_prefetch_max: int = Field(default=2_000, ge=0)
    consumer_prefetch_gather_ms: int = Field(default=3, ge=0, le=100)
    # The decision worker commits its offsets at most every 100 ms (lever 18: in three
    # alternated 500/s runs the p99 fell in every pair, 70 against 101 ms on the means,
    # and Kafka took ~4 points of a core less).
    consumer_commit_interval_ms: int = Field(default=100, ge=0, le=5_000)

    # --- partner contract (BRIEF §6) ---------------------------------------------------
    # Standard Webhooks secrets (`whsec_…`) the partner signs with; comma-separated so a
    # rotation can accept the old and the new secret at once. From .run/stack.env.
    partner_webhook_secret: SecretStr = SecretStr("")
    # Where our signed notifications go, and the secret we sign them with.
    partner_notify_url: str = "http://127.0.0.1:8009/notifications"
    partner_notify_secret: SecretStr = SecretStr("")
    # The allowance's public key that partner-submitted bank details are sealed to at
    # ingest (`s1:<base64 of 32 bytes>`, shared/payee_seal.py, decision 0014). Public: the
    # matcher cannot open what it seals. Without it `citizen.payee_submitted` answers 503
    # (production refuses to start).
    payee_seal_public_key: str = ""
    # A webhook is a few hundred bytes; 16 KiB leaves room and bounds parsing work (413).
    webhook_body_size_max_bytes: int = 16 * 1024
    # The longest a webhook waits for Kafka to take it before the 503 (docs/decisions/0004).
    webhook_enqueue_timeout_s: float = Field(default=2.0, gt=0)

    # --- partner pull API (issue 18) -----------------------------------------------------
    # The partner's id (the one partner today; tokens and audit rows name it).
    partner_id: str = Field(default="danggeun", min_length=1, max_length=100)
    # The partner's API token (`pk_<16 hex>_<secret>`, `gwangsan partner new-token` makes
    # one): at start its SHA-256 is stored, if its key id is new, and the partner's other
    # tokens then expire after the rotation overlap. Only the hash is kept in the
    # database; a rotation (POST /v1/admin/partner/token/rotate) issues tokens itself.
    partner_api_token: SecretStr = SecretStr("")
    # How long the partner's previous tokens keep working after a rotation, so the partner
    # can deploy the new one without a gap (an admin may ask for less, e.g. 0 after a leak).
    partner_token_rotation_overlap_s: int = Field(default=86_400, ge=0)
    # The longest overlap an admin may ask for on a rotation.
    partner_token_rotation_overlap_max_s: int = Field(default=7 * 86_400, ge=0)
    # Items per page of the partner's lists when it does not say (bounded by PAGE_SIZE_MAX).
    partner_page_size_default: int = Field(default=100, ge=1)

    # --- eligibility (BRIEF §5) ---------------------------------------------------------
    # The verified neighbourhood must be one of Gwangsan-gu's 21 dongs (shared.gwangsan,
    # with its source); comma-separated.
    eligible_dongs: str = ",".join(GWANGSAN_DONGS)
    # 동네 인증 must be at most this old on the day of the application (BRIEF §5: 1 year).
    neighbourhood_verified_max_age_days: int = 365
    # Minimum age on the shift date (BRIEF §5: 19, the civil-law age of majority).
    age_min_years: int = 19
    # The weekly hour cap is not a setting: it is the allowance's cap table (PUT
    # /v1/admin/caps), announced as CapsChanged and held in `week_caps` (domain.WeekCaps).

    # --- waitlists, promotion, strikes (BRIEF §5) ---------------------------------------
    # Bound of each posting's waitlist; large enough that a rush of 5,000 applications for
    # one shift is all waitlisted (BRIEF §11), small enough to bound a posting's rows.
    waitlist_length_max: int = 10_000
    # Waitlist promotion stops this long before the start (BRIEF §5: 1 h).
    promotion_cutoff_minutes: int = 60
    # A cancellation later than this before the start is a strike (BRIEF §5: 2 h).
    late_cancel_cutoff_minutes: int = 120
    # 3 strikes in 90 days suspend booking for 30 days (BRIEF §5).
    strike_window_days: int = 90
    strikes_to_suspend: int = 3
    suspension_days: int = 30

    # --- reminders and reconfirmation (issue 18) -----------------------------------------
    # Reminders before a confirmed booking's start, in minutes, comma-separated; empty turns
    # them off. 24 h and 2 h: the two reminders the shift systems we compared send (ephios,
    # Engelsystem), the day before to plan and shortly before to leave home.
    reminder_leads_minutes: str = "1440,120"
    # Reconfirmation is opt-in (a partner that has not implemented `booking.reconfirmed`
    # must never lose bookings): a posting requires it when the facility set
    # `reconfirmation_required`, or when it carries one of these tags (comma-separated;
    # none by default).
    reconfirmation_tags: str = ""
    # Asked 48 h before the start; not reconfirmed by 16 h before, the booking is released
    # (no strike) so the waitlist still has the evening before to take the seat, well before
    # the 2 h late-cancellation cut-off and the 1 h promotion cut-off (BRIEF §5).
    reconfirm_ask_minutes: int = Field(default=48 * 60, gt=0)
    reconfirm_deadline_minutes: int = Field(default=16 * 60, gt=0)
    # How often the scheduled notices are looked for; a minute of lateness is harmless.
    reminder_sweep_interval_ms: int = 1_000

    # --- draw (BRIEF §4.3) ----------------------------------------------------------------
    # A citizen with this many allowance minutes in the draw's window weighs half as much
    # in a draw as one with none (weight = H / (H + minutes)); 600 min = 10 h, about a
    # week's cap.
    draw_half_weight_minutes: int = 600
    draw_sweep_interval_ms: int = 500
    # The weighting counts the allowance minutes of this many Seoul calendar months: the
    # month of `applications_close_at` and the ones before it (issue 19: "default the last 3
    # months"), so wins spread over time, not only within a month (docs/fairness.md).
    draw_window_months: int = Field(default=3, ge=1, le=24)

    # --- applications for postings not seen yet ------------------------------------------
    # How long an application waits for its PostingPublished before `unknown_posting`.
    held_application_wait_s: int = 600
    held_sweep_interval_ms: int = 1_000

    # --- citizen data retention (PIPA art. 21: destroy once no longer needed) -------------
    # A citizen's profile is cleared after this long without activity (no profile
    # received, no shift of theirs ending): 365 days, the 동네 인증's own validity
    # (BRIEF §5), after which the stored profile could not pass eligibility anyway.
    citizen_profile_retention_days: int = Field(default=365, ge=1)
    retention_sweep_interval_ms: int = 60_000
    # Bound of one sweep's work (held applications expired, draws run) per pass.
    sweep_batch_size_max: int = 500

    # --- partner notifications (HTTP outbox) ----------------------------------------------
    notify_concurrency_max: int = 32
    notify_timeout_ms: int = 5_000
    # Retried with exponential backoff and full jitter for at most this long (and at most
    # this many attempts), then parked as `failed` for an operator to re-send.
    notify_retry_for_s: int = 3_600
    notify_attempts_max: int = 500
    notify_backoff_base_ms: int = 100
    notify_backoff_cap_ms: int = 10_000
    # Due notifications read per query into the sender's queue (one per booking at a time).
    notify_prefetch_max: int = 1_000
    # Delivered notifications are kept this long for support questions, then deleted.
    notify_retention_days: int = 30
    # The sender is woken by NOTIFY after each commit; this poll is only the fallback.
    notify_poll_interval_ms: int = 1_000
    # After a send ends, the sender waits this long for others to end before it marks them
    # delivered and looks for the next due notification of their keys: one mark and one
    # query per few milliseconds instead of a pair per send (docs/performance.md).
    notify_mark_linger_ms: int = Field(default=10, ge=0, le=1_000)
    # Of any partner answer at most this much is read (its status is what counts); a longer
    # body is dropped with its connection, so a partner cannot fill the matcher's memory.
    notify_response_read_max_bytes: int = 4 * 1024
    # Retries (rows already tried) take at most this many of the concurrent sends, so keys
    # that keep failing never hold every slot; first attempts always find one.
    notify_retry_concurrency_max: int = 16
    # Circuit breaker of the partner endpoint: this many consecutive failed attempts open
    # it; while open nothing is sent (rows wait, their retry budget untouched); after the
    # cooldown one probe decides. Failing this long without a success: the endpoint is
    # reported down (`gwangsan_partner_endpoint_down`, alert GwangsanPartnerEndpointDown).
    notify_breaker_failures: int = 20
    notify_breaker_cooldown_ms: int = 10_000
    notify_endpoint_down_after_s: int = 300
    # Sender shards (shared/shards.py): notifications are split by the hash of their
    # ordering key, and the live worker processes share the shards (each held by one at a
    # time, so a key's notifications still go out in order). The most processes that send
    # at once; 1 = one sender. At most 64 (docs/operations.md). 1 by default, like
    # OUTBOX_SHARDS (issue 20's measurement); raise it to scale the sender out.
    notify_shards: int = Field(default=1, ge=1, le=64)

    @field_validator("partner_api_token")
    @classmethod
    def _partner_token_shape(cls, value: SecretStr) -> SecretStr:
        """A configured token must be one `issue_key` makes: its key id finds its row."""
        token = value.get_secret_value()
        key_id = key_id_of(token, PARTNER_TOKEN_PREFIX) if token else ""
        if token and (key_id is None or not re.fullmatch(r"[0-9a-f]{16}", key_id)):
            raise ValueError(
                f"PARTNER_API_TOKEN must look like {PARTNER_TOKEN_PREFIX}<16 hex>_<secret>;"
                " make one with `gwangsan partner new-token`"
            )
        return value

    def webhook_secrets(self) -> list[str]:
        raw = self.partner_webhook_secret.get_secret_value()
        return [s.strip() for s in raw.split(",") if s.strip()]

    def schedule(self) -> Schedule:
        """The scheduled notices' policy (matcher.domain.schedule)."""
        return Schedule(
            reminder_leads=tuple(
                timedelta(minutes=int(m))
                for m in self.reminder_leads_minutes.split(",")
                if m.strip()
            ),
            reconfirm_ask_lead=timedelta(minutes=self.reconfirm_ask_minutes),
            reconfirm_deadline_lead=timedelta(minutes=self.reconfirm_deadline_minutes),
            reconfirm_tags=frozenset(
                t.strip() for t in self.reconfirmation_tags.split(",") if t.strip()
            ),
        )

    def policy(self, week_caps: WeekCaps | None = None) -> Policy:
        """The rules' configuration; `week_caps` is what the matcher holds from the
        allowance (`store.week_caps`), none known when not given."""
        return Policy(
            eligible_dongs=frozenset(d.strip() for d in self.eligible_dongs.split(",") if d),
            neighbourhood_verified_max_age=timedelta(days=self.neighbourhood_verified_max_age_days),
            age_min_years=self.age_min_years,
            week_caps=week_caps or WeekCaps(),
            waitlist_length_max=self.waitlist_length_max,
            promotion_cutoff=timedelta(minutes=self.promotion_cutoff_minutes),
            late_cancel_cutoff=timedelta(minutes=self.late_cancel_cutoff_minutes),
            strike_window=timedelta(days=self.strike_window_days),
            strikes_to_suspend=self.strikes_to_suspend,
            suspension=timedelta(days=self.suspension_days),
            draw_half_weight_minutes=self.draw_half_weight_minutes,
            draw_window_months=self.draw_window_months,
        )


@dataclass(frozen=True)
class WebhookSecrets:
    """The partner's webhook secrets, split once at start-up (the ingest path verifies
    against them on every request)."""

    secrets: tuple[str, ...]


# The running service's context, typed for this service (shared/context.py).
Context = ServiceContext[MatcherSettings]
