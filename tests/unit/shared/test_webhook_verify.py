"""Our webhook verification gives the `standardwebhooks` library's answer on every case:
the same headers, timestamps and signature lists accepted, the same refused."""

from __future__ import annotations

import base64
import time
from datetime import UTC, datetime

from hypothesis import given, settings
from hypothesis import strategies as st
from standardwebhooks import Webhook

from shared import webhooks

KEY = "whsec_" + base64.b64encode(b"k" * 32).decode()
OTHER = "whsec_" + base64.b64encode(b"o" * 32).decode()
BODY = '{"type":"application.submitted","data":{"dong":"수완동"}}'.encode()


def _library_accepts(body: bytes, headers: dict[str, str], secrets: list[str]) -> bool:
    for secret in secrets:
        try:
            Webhook(secret).verify(body, dict(headers), json_parse=False)
        except Exception:  # the library's own error, or ValueError on a malformed header
            continue
        return True
    return False


def _ours_accepts(body: bytes, headers: dict[str, str], secrets: list[str]) -> bool:
    try:
        webhooks.verify(body, headers, secrets)
    except webhooks.SignatureError:
        return False
    return True


def _v1(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    stamp = datetime.fromtimestamp(timestamp, UTC)
    return webhooks.sign(secret, msg_id, stamp, body)["webhook-signature"]


def _pieces(msg_id: str, timestamp: int) -> st.SearchStrategy[str]:
    return st.sampled_from(
        [
            _v1(KEY, msg_id, timestamp, BODY),
            _v1(OTHER, msg_id, timestamp, BODY),
            _v1(KEY, msg_id, timestamp, BODY + b" "),
            "v2," + base64.b64encode(b"x" * 32).decode(),
            "v2,not base64 at all",
            "v1,@@@@",
            "v1,YWJj",  # base64 of the wrong length
            "v1,YWJ",  # bad padding
            "garbage",
            "v1,a,b",
            "",
        ]
    )


@st.composite
def _deliveries(draw: st.DrawFn) -> tuple[dict[str, str], list[str]]:
    now = int(time.time())
    msg_id = draw(st.sampled_from(["msg_1", "msg_한글", "m"]))
    offset = draw(st.sampled_from([0, 5, -5, 200, -200, 400, -400, 10_000]))
    signed_at = now + offset
    stamp = draw(
        st.sampled_from(
            [
                str(signed_at),
                f"{signed_at}.7",
                f" {signed_at} ",
                f"{signed_at:e}",
                "nan",
                "inf",
                "-inf",
                "1e20",
                "yesterday",
                "",
            ]
        )
    )
    signature = " ".join(draw(st.lists(_pieces(msg_id, signed_at), min_size=1, max_size=3)))
    headers = {"webhook-id": msg_id, "webhook-timestamp": stamp, "webhook-signature": signature}
    secrets = draw(st.sampled_from([[KEY], [OTHER], [OTHER, KEY], []]))
    return headers, secrets


@settings(max_examples=600, deadline=None)
@given(_deliveries())
def test_ours_accepts_exactly_what_the_library_accepts(
    delivery: tuple[dict[str, str], list[str]],
) -> None:
    headers, secrets = delivery
    assert _ours_accepts(BODY, headers, secrets) == _library_accepts(BODY, headers, secrets)


def test_a_signed_body_that_is_not_utf8_verifies_over_its_bytes() -> None:
    """The library cannot read such a body (it decodes it first); ours verifies its bytes
    and the caller's parser answers it 400, not 401."""
    body = b'{"dong": "\xff"}'
    now = int(time.time())
    signed = f"msg_1.{now}.".encode() + body
    import hashlib
    import hmac

    key = base64.b64decode(KEY.removeprefix("whsec_"))
    sig = "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()
    headers = {"webhook-id": "msg_1", "webhook-timestamp": str(now), "webhook-signature": sig}
    assert webhooks.verify(body, headers, [KEY]) == "msg_1"
    assert not _ours_accepts(body, headers, [OTHER])
