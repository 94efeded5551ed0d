"""Fixtures of the matcher's domain tests."""

from __future__ import annotations

import pytest
from matcher.domain.policy import Policy
from matcher.settings import MatcherSettings


@pytest.fixture
def policy() -> Policy:
    """The BRIEF §5 defaults, as the service configures them."""
    return MatcherSettings().policy()
