"""Fixtures of the matcher's domain tests."""

from __future__ import annotations

import pytest
from matcher.domain.policy import Policy
from matcher.settings import MatcherSettings

from .builders import seeded_week_caps


@pytest.fixture
def policy() -> Policy:
    """The BRIEF §5 defaults, as the service configures them, with the weekly caps the
    allowance seeds."""
    return MatcherSettings().policy(seeded_week_caps())
