# The README's two quick-start commands: `make serve` and `make test`.
# Both build the virtual environment on first use; nothing else needs installing by hand.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: serve test lint install browser

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e '.[train,test]'
	touch $(STAMP)

install: $(STAMP)

# Debian's chromium and a CJK font for the browser test (Playwright cannot download browsers here).
browser:
	@command -v chromium >/dev/null 2>&1 && fc-list 2>/dev/null | grep -qi wqy || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium fonts-wqy-zenhei >/dev/null; \
	  else echo "browser tests need: apt-get install chromium fonts-wqy-zenhei"; fi; }

serve: $(STAMP)
	$(VENV)/bin/sentencing serve

lint: $(STAMP)
	$(VENV)/bin/ruff check .

test: $(STAMP) browser
	$(VENV)/bin/ruff check .
	$(PY) -m pytest -q
