"""Checks of deploy/ and docker-compose.yml that run the real tools (kustomize, promtool,
docker-compose): pure like tests/unit (no Kafka, no Postgres) but kept apart so that
`make test-unit` needs nothing outside .venv and stays fast; `make test-deploy` runs them."""
