# StudySpot — two commands on a fresh machine: `make demo` and `make test`.
SHELL := /bin/bash
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
DEBIAN_PACKAGES := redis-server mosquitto mosquitto-clients chromium chromium-driver zbar-tools
DEMO_ARGS ?=

.PHONY: demo test lint typecheck pytest bench reliability system-packages esphome venv clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

venv: $(STAMP)

# Installs the Debian packages the tests need when they are missing and we are root.
system-packages:
	@missing=""; for p in $(DEBIAN_PACKAGES); do \
		dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
		if [ "$$(id -u)" = "0" ]; then \
			echo "installing Debian packages:$$missing"; \
			apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
		else \
			echo "missing Debian packages:$$missing (run as root or install them)"; exit 1; \
		fi; \
	fi

demo: $(STAMP)
	$(BIN)/studyspot demo $(DEMO_ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy shared edge cloud studyspot bench

# ESPHome pins its own versions of starlette, paho-mqtt and cryptography, so it lives in its own venv
# (.studyspot/tools/esphome); the firmware tests validate every config with it.
esphome:
	bash deploy/tools/install-esphome.sh

pytest: $(STAMP) system-packages esphome
	$(BIN)/pytest

test: $(STAMP) system-packages lint typecheck pytest

bench: $(STAMP) system-packages
	$(BIN)/python -m bench.harness

# The long reliability/security suite (marker `reliability`: 20 schemathesis examples per operation and
# role, 1,000 bookings of one seat, 10,000 WebSocket connects) plus the fast attack, fuzz and fault
# tests, with a summary table printed and written to bench/RELIABILITY.md.
RELIABILITY_TESTS := tests/reliability tests/cloud/test_auth.py tests/cloud/test_otp.py \
	tests/cloud/test_route_matrix.py tests/cloud/test_tenancy_rls.py tests/cloud/test_fuzz_inputs.py \
	tests/edge/test_fuzz.py tests/edge/test_config_fuzz.py tests/shared tests/edge/test_broker.py tests/edge/test_crash_durability.py \
	tests/cloud/fleet/test_fleet_faults.py
reliability: $(STAMP) system-packages
	RELIABILITY_REPORT=bench/RELIABILITY.md $(BIN)/python -m pytest -p tests.reliability.report \
		-m "reliability or not reliability" $(RELIABILITY_TESTS)

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
