# Two commands do all set-up on a fresh Debian machine (root):
#   make demo   bring the lab fleet up and run the whole deploy on it (hosts stay up: ollama-claude lab ssh ...)
#   make test   run the full test suite (fast unit tests first, then the lab end-to-end suites)
SHELL := /bin/bash
VENV ?= .venv
PY := $(VENV)/bin/python
APT_PACKAGES := debootstrap systemd-container openssh-client zstd iproute2 curl nftables chromium tinyproxy-bin
STAMP := $(VENV)/.installed

.PHONY: demo test unit e2e lint system-deps down clean bench

system-deps:
	@missing=""; for p in $(APT_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	command -v npm >/dev/null || missing="$$missing npm"; \
	if [ -n "$$missing" ]; then \
		echo "installing system packages:$$missing"; \
		apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q $$missing; \
	fi

$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install -q -U pip
	$(VENV)/bin/pip install -q -e '.[test]'
	touch $(STAMP)

demo: system-deps $(STAMP)
	$(VENV)/bin/ollama-claude lab status >/dev/null 2>&1 || $(VENV)/bin/ollama-claude lab up
	cd $(CURDIR) && $(VENV)/bin/pyinfra -y inventories/lab.py deploys/ollama_claude.py

down: $(STAMP)
	$(VENV)/bin/ollama-claude lab down

unit: $(STAMP)
	$(PY) -m pytest -q tests/unit tests/test_operations.py

e2e: system-deps $(STAMP)
	OLLAMA_CLAUDE_REQUIRE_LAB=1 $(PY) -m pytest -q tests --ignore=tests/unit --ignore=tests/test_operations.py

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests deploys inventories group_data

test: system-deps $(STAMP)
	$(MAKE) --no-print-directory lint
	$(MAKE) --no-print-directory unit
	$(MAKE) --no-print-directory e2e

# Fleet benchmarks behind a simulated WAN, N = 1 to 32 (18 minutes here; not part of `make test`): bench/results/bench.{json,md,png}
# BENCH_ARGS="--counts 1,4,16" leaves out N = 32 (15 minutes here)
bench: system-deps $(STAMP)
	$(VENV)/bin/pip install -q -e '.[bench]'
	$(PY) -m bench $(BENCH_ARGS)

clean: down
	rm -rf $(VENV) reports
