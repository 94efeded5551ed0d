"""`python -m allowance`: run the allowance service."""

from allowance.app import build
from allowance.settings import AllowanceSettings
from shared.service import serve

if __name__ == "__main__":
    settings = AllowanceSettings()
    serve(build(settings), settings)
