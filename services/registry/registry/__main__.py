"""`python -m registry`: run the registry service."""

from registry.app import build
from registry.settings import RegistrySettings
from shared.service import serve

if __name__ == "__main__":
    settings = RegistrySettings()
    serve(build(settings), settings)
