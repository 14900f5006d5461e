# Two commands on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 5000
# The Moodle source `make test-moodle` installs (any Moodle 4.5 download will do).
MOODLE_TARBALL ?= ../shared/moodle/moodle-4.5.6.tar.xz

.PHONY: demo test test-postgres test-moodle install install-test chromium postgres systemd-analyze clean i18n-extract i18n-update i18n-compile

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Reinstall only when pyproject.toml changed since the last install (the stamp file records it).
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	@touch $@

install: $(VENV)/.installed

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[test]'
	@touch $@

install-test: $(VENV)/.installed-test

# Debian's chromium for the browser tests, installed when missing and we are root.
# Debian's Noto fonts too: the tests check that Sinhala, Tamil, Bengali, Devanagari, Thaana and Hangul render.
chromium:
	@if ! command -v chromium >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = "0" ]; then \
	    echo "installing Debian's chromium for the browser tests"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else \
	    echo "chromium is missing and you are not root: install Debian's chromium package" >&2; exit 1; \
	  fi; \
	fi
	@if ! fc-list 2>/dev/null | grep -q "Noto Sans Thaana" || ! fc-list | grep -q "Noto Sans CJK"; then \
	  if [ "$$(id -u)" = "0" ]; then \
	    echo "installing Debian's Noto fonts for the region's scripts"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq fonts-noto-core fonts-noto-cjk >/dev/null; \
	  else \
	    echo "Noto fonts are missing and you are not root: install fonts-noto-core and fonts-noto-cjk" >&2; exit 1; \
	  fi; \
	fi

# Debian's PostgreSQL server for `make test-postgres`, installed when missing and we are root.
postgres:
	@if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 && ! command -v initdb >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = "0" ]; then \
	    echo "installing Debian's postgresql for the PostgreSQL run of the suite"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null; \
	  else \
	    echo "PostgreSQL is missing and you are not root: install Debian's postgresql package" >&2; exit 1; \
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

# The whole suite again with every app on PostgreSQL: a throwaway cluster on 127.0.0.1 (tests/pg_cluster.py),
# started for the run and stopped after it, plus the tests only PostgreSQL can show (several servers, one store).
test-postgres: install-test chromium systemd-analyze postgres
	$(BIN)/python tests/pg_cluster.py -- $(BIN)/python -m pytest -q

# A real Moodle 4.5 on 127.0.0.1 (Debian's apache2, PHP 8.2, PostgreSQL 15; installed when missing and root),
# the tool installed in it as the README says, the flows driven in headless Chromium, checked in Moodle.
test-moodle: install-test chromium
	MOODLE_TARBALL="$(abspath $(MOODLE_TARBALL))" $(BIN)/python -m pytest -q tests_moodle

clean:
	rm -rf $(VENV) build *.egg-info

# Translations (Babel): extract marked strings, merge them into every language, compile the .mo files.
# The .po and .mo files are committed; messages.pot and the en_XA pseudo-locale are generated.
# tests/test_i18n.py fails when a catalogue misses a string, has a fuzzy one, or its .mo is stale.
I18N := lms_bridge/translations
i18n-extract: install
	$(BIN)/python -m lms_bridge.i18n_tools extract

i18n-update: i18n-extract
	$(BIN)/pybabel -q update -i $(I18N)/messages.pot -d $(I18N) --no-fuzzy-matching --ignore-obsolete --no-location

i18n-compile: i18n-extract
	$(BIN)/python -m lms_bridge.i18n_tools pseudo
	$(BIN)/pybabel -q compile -d $(I18N) --statistics
