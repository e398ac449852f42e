# candleflow developer entry points. `make test` works on a fresh machine.
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
STAMP := $(VENV)/.installed

.PHONY: test lint unit integration test-brokers deps servers lock bench clean run-local

# Everything: lint, unit and integration suites, the broker suite, then the real docker compose stack
# (e2e, then its faults).
test: deps servers lint
	$(PY) -m pytest tests --ignore=tests/e2e --ignore=tests/faults --ignore=tests/brokers --ignore=tests/hosts
	$(MAKE) test-brokers
	$(MAKE) e2e
	$(MAKE) faults

# No servers: the unit tier asks for no Redis or Postgres (tests/unit/core/test_unit_tier.py checks).
# ruff: the rules, and why each ignored one is ignored, are in pyproject.toml. bandit: the deployed
# code, reviewed false positives marked `# nosec` where they are (its notes that a marked line has
# sub-expressions it did not flag are dropped from the output). hadolint: every Dockerfile, with
# the ignored rules and their reasons in .hadolint.yaml.
lint: deps
	$(VENV)/bin/ruff check services tests bench
	@$(VENV)/bin/bandit -q -c pyproject.toml -r services >$(VENV)/bandit.out 2>&1; status=$$?; \
	  grep -v -e "nosec encountered" -e "Test in comment" $(VENV)/bandit.out; exit $$status
	$(VENV)/bin/hadolint compose/*/Dockerfile

unit: deps
	$(PY) -m pytest tests/unit

# Real Redis, Postgres and worker processes, started by the suite from the `servers` binaries.
integration: deps servers
	$(PY) -m pytest tests/integration

# An interrupted `make deps` can leave a venv whose python or pip is missing or broken, and a stamp
# that says all is well: such a venv loses its stamp here, so the stamp's recipe rebuilds it. The
# stamp is made by a second make, which sees the stamp as it is after this check.
deps:
	@$(PY) -m pip --version >/dev/null 2>&1 || { echo "$(VENV): python or pip missing or broken, rebuilding it"; rm -f $(STAMP); }
	@$(MAKE) --no-print-directory $(STAMP)

$(STAMP): pyproject.toml requirements.lock
	$(PY) -m pip --version >/dev/null 2>&1 || python3 -m venv --clear $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.lock
	$(PY) -m pip install -q --no-deps -e .
	touch $(STAMP)

# The pipeline over each broker on real servers the suite starts (tests/brokers: RabbitMQ, Redis
# Sentinel), and workers on many hosts (tests/hosts, when present).
test-brokers: deps servers
	$(PY) -m pytest tests/brokers $(wildcard tests/hosts)

# Real Redis and PostgreSQL binaries for the test suite (it starts its own servers), promtool
# (Debian's prometheus package) for the alert-rule tests, RabbitMQ and Redis Sentinel for the
# broker suite, and iproute2 (`ip netns`, veth) for the multi-host test.
servers:
	@command -v redis-server >/dev/null && ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 \
	  && command -v promtool >/dev/null && command -v redis-sentinel >/dev/null \
	  && test -x /usr/lib/rabbitmq/bin/rabbitmq-server && command -v ip >/dev/null \
	  || (apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q redis-server postgresql \
	      prometheus redis-sentinel rabbitmq-server iproute2)
	@# The packages start system-wide services; the suite uses its own, so stop these.
	@-for s in redis-server postgresql prometheus redis-sentinel rabbitmq-server; do \
	  service $$s stop >/dev/null 2>&1; done; true

# Re-resolve the lock from pyproject's pins (run after changing dependencies).
lock:
	rm -rf /tmp/candleflow-lock && python3 -m venv /tmp/candleflow-lock
	/tmp/candleflow-lock/bin/pip install -q . '.[test]'
	/tmp/candleflow-lock/bin/pip freeze --exclude candleflow > requirements.lock

bench: deps
	$(PY) bench/indicators.py
	$(PY) bench/ingest.py
	$(PY) bench/exporter.py
	$(PY) bench/pipeline.py
	$(PY) bench/api_load.py

clean:
	rm -rf $(VENV) .pytest_cache

# The whole stack as local processes (the Procfile, run by honcho), against REDIS_URL / DATABASE_URL.
# With neither EXCHANGE nor EXCHANGE_API_URL set (environment or .env) the workers use the Procfile's
# simulator, http://127.0.0.1:$SIM_PORT (8090), and run-local says so.
run-local: deps
	$(VENV)/bin/candleflow run-local

include compose/compose.mk
