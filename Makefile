# Two commands on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 5000

.PHONY: demo test install install-test chromium systemd-analyze clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

install: $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .

install-test: $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test]'

# Debian's chromium for the browser tests, installed when missing and we are root.
chromium:
	@if ! command -v chromium >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = "0" ]; then \
	    echo "installing Debian's chromium for the browser tests"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else \
	    echo "chromium is missing and you are not root: install Debian's chromium package" >&2; exit 1; \
	  fi; \
	fi

# systemd-analyze verifies the service files of `lms-bridge install-service` (Debian's systemd package).
systemd-analyze:
	@if ! command -v systemd-analyze >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = "0" ]; then \
	    echo "installing Debian's systemd for systemd-analyze"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq systemd >/dev/null; \
	  else \
	    echo "systemd-analyze is missing and you are not root: the service-file test will be skipped" >&2; \
	  fi; \
	fi

demo: install
	$(BIN)/lms-bridge demo --port $(PORT)

test: install-test chromium systemd-analyze
	$(BIN)/python -m pytest -q

clean:
	rm -rf $(VENV) build *.egg-info
