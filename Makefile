# One command for each thing a developer does. Every target sets up what it needs from a
# fresh clone: Python tools in .tools/ and .venv/ (uv, pinned by uv.lock), Kafka jars in
# .cache/ (Maven Central), Debian packages the tests use (docker-compose, promtool, chromium
# with its Korean locale and a Korean font), npm packages tests/browser injects (.tools/npm/).

SHELL := /bin/bash
PYTHON ?= python3
UV_VERSION := 0.13.8
UV := .tools/bin/uv
PY := .venv/bin/python
export UV_PYTHON_DOWNLOADS := never
export UV_PROJECT_ENVIRONMENT := .venv

.PHONY: setup run demo demo-year up down status test test-unit test-deploy lint format bench bench-quick clean help

help:
	@echo "make run        set up, start Kafka, Postgres and the three services, seed and play the demo, serve until Ctrl-C"
	@echo "make demo       play the demo scenario on the local stack, check invariants, print the summary, exit"
	@echo "make demo-year  play a pilot year twice (fair draw, first come only) and print the outcome report"
	@echo "make test       set up, start what tests need, run every test suite, stop what it started"
	@echo "make test-unit  the pure tests (tests/unit): no Kafka, Postgres or other tools, seconds"
	@echo "make test-deploy the checks of deploy/ and docker-compose.yml (kustomize, promtool, docker-compose)"
	@echo "make lint       ruff (lint + format check) and mypy --strict"
	@echo "make up / down  start / stop the local stack (Kafka, Postgres, services) in the background"
	@echo "make status     what is running"
	@echo "make bench      the benchmarks (docs/performance.md)"

$(UV):
	$(PYTHON) -m venv .tools
	.tools/bin/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

.venv/.synced: $(UV) uv.lock pyproject.toml services/*/pyproject.toml
	$(UV) sync --frozen --all-packages --python $(PYTHON)
	@touch $@

# Depends on the Makefile so that a package added here is installed on machines that already
# have the stamp (the check itself is cheap: apt runs only when something is missing).
.debian/.installed: Makefile
	@mkdir -p .debian
	@missing=""; \
	command -v docker-compose >/dev/null || missing="$$missing docker-compose"; \
	command -v promtool >/dev/null || missing="$$missing prometheus"; \
	command -v chromium >/dev/null || missing="$$missing chromium"; \
	[ -e /usr/lib/chromium/locales/ko.pak ] || missing="$$missing chromium-l10n"; \
	fc-list :lang=ko 2>/dev/null | grep -q . || missing="$$missing fonts-nanum"; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null) \
	    || { echo "could not install$$missing (need root and Debian's package mirror)"; exit 2; }; \
	fi
	@touch $@

# kustomize renders deploy/k8s in tests (Go module proxy; v5.8.1 builds with Go 1.26).
.tools/bin/kustomize: | $(UV)
	GOBIN=$(CURDIR)/.tools/bin GOFLAGS=-mod=mod go install sigs.k8s.io/kustomize/kustomize/v5@v5.8.1

# axe-core, injected into pages by tests/browser (npm registry; pinned by the lock file).
.tools/npm/.installed: tools/browser/package.json tools/browser/package-lock.json
	@mkdir -p .tools/npm
	cp tools/browser/package.json tools/browser/package-lock.json .tools/npm/
	cd .tools/npm && npm ci --no-audit --no-fund --ignore-scripts --loglevel=error
	@touch $@

setup: .venv/.synced .debian/.installed .tools/bin/kustomize .tools/npm/.installed

up: setup
	$(PY) -m devstack up

down: setup
	$(PY) -m devstack down

status: setup
	$(PY) -m devstack status

run: setup
	$(PY) -m tools.demo run

demo: setup
	$(PY) -m tools.demo check

demo-year: setup
	$(PY) -m tools.demo run --months 12

test: setup
	$(PY) -m tools.run_tests

# Only the Python part of setup: the pure tests need neither the stack nor the deploy tools.
test-unit: .venv/.synced
	$(PY) -m pytest tests/unit -q -p no:cacheprovider

test-deploy: setup
	$(PY) -m pytest tests/deploy -q -p no:cacheprovider

lint: setup
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .
	$(PY) -m mypy shared devstack services tools bench

format: setup
	$(PY) -m ruff format .
	$(PY) -m ruff check --fix .

bench: setup
	$(PY) -m bench --private

bench-quick: setup
	$(PY) -m bench --quick --private

clean:
	-$(PY) -m devstack down
	rm -rf .run .venv .tools .debian
