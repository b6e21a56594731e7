# Every target installs what it needs into .venv first, so each works on a fresh clone.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install demo test lint pytest bench screenshots clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/relay demo --duration $${DURATION:-30}

test: lint pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

pytest: $(STAMP)
	$(BIN)/pytest -q

bench: $(STAMP)
	$(BIN)/python bench/poll_cost.py
	$(BIN)/python bench/isolation.py  # needs Redis on 127.0.0.1:6379

screenshots: $(STAMP)  # the README's pictures of the dashboard, into docs/img (needs Redis and Chromium)
	$(BIN)/python -m docs.screenshots

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache
