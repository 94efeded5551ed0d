"""Where the simulator finds the matcher and the two secrets: the environment first, then
the running stack's `.run/stack.env`."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from shared.stackenv import client_env

ROOT = Path(__file__).resolve().parents[2]
SIM_PORT_DEFAULT = 8009


@dataclass(frozen=True)
class SimConfig:
    """`webhook_secret`: what we sign webhooks with (the matcher's PARTNER_WEBHOOK_SECRET;
    the first one if several are configured). `notify_secret`: what the matcher signs its
    notifications with (PARTNER_NOTIFY_SECRET)."""

    matcher_url: str
    webhook_secret: str
    notify_secret: str

    @classmethod
    def load(cls) -> SimConfig:
        stack = client_env()

        def get(key: str, default: str = "") -> str:
            return os.environ.get(key) or stack.get(key) or default

        return cls(
            matcher_url=get("MATCHER_URL", "http://127.0.0.1:8002"),
            webhook_secret=get("PARTNER_WEBHOOK_SECRET").split(",")[0].strip(),
            notify_secret=get("PARTNER_NOTIFY_SECRET"),
        )
