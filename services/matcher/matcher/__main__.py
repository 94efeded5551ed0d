"""`python -m matcher`: run the matcher service."""

from matcher.app import build
from matcher.settings import MatcherSettings
from shared.service import serve

if __name__ == "__main__":
    settings = MatcherSettings()
    serve(build(settings), settings)
