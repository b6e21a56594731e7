# Every target installs what it needs into .venv first, so each works on a fresh clone.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install demo test lint pytest faults bench screenshots clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)  # DURATION=120 make demo for longer; OAUTH=1 make demo: the account connected as an OAuth app
	$(BIN)/relay demo --duration $${DURATION:-30}$(if $(filter-out 0,$(OAUTH)), --oauth)

test: lint pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

pytest: $(STAMP)
	$(BIN)/pytest -q

faults: $(STAMP)  # the whole fault suite, long cases included (make test runs the fast ones); needs Redis and redis-server
	$(BIN)/pytest -q -p no:randomly -m "slow_fault or not slow_fault" tests/faults

bench: $(STAMP)
	$(BIN)/python bench/throughput.py  # deliveries/s against bare aiohttp, one worker; needs Redis
	$(BIN)/python bench/throughput.py --workers 2
	$(BIN)/python bench/poll_cost.py
	$(BIN)/python bench/isolation.py  # needs Redis on 127.0.0.1:6379
	$(BIN)/python bench/latency.py  # change-to-arrival: sandbox, relay run, receiver; needs Redis
	$(BIN)/python bench/fanout.py  # one event to 1,000 subscriptions; needs Redis
	$(BIN)/python bench/backlog.py  # a receiver down for 60 s, then back; needs Redis
	$(BIN)/python bench/cost.py  # Redis bytes per event and delivery, worker and API RSS; needs Redis
	$(BIN)/python bench/accounts.py --find-max --accounts 500 --max-accounts 4000  # accounts one worker carries at a 10 s poll; needs Redis

screenshots: $(STAMP)  # the README's pictures of the dashboard, into docs/img (needs Redis and Chromium)
	$(BIN)/python -m docs.screenshots

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache
