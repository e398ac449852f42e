# Container targets, included by the Makefile (`include compose/compose.mk`).
#
#   make images-offline   Debian base (debootstrap), Python/Redis/Postgres/Prometheus images, wheelhouse
#   make images           the app image, on official images when a registry answers, else offline ones
#   make e2e              the e2e suite: engine, images, the demo stack under docker compose, checks
#   make faults           the fault suite (docs/reliability.md): its own stack, faults mid-run, a table of figures
#   make stack-up         the demo stack on this machine (same image choice as `make images`)
#   make stack-down       stop it (volumes kept; `docker compose down -v` drops the data)

.PHONY: engine images-offline images e2e faults stack-up stack-down

# Starts dockerd (and installs docker.io / the compose plugin) when needed.
engine:
	compose/ensure-engine

images-offline: engine
	compose/offline/build-images

images: engine
	set -a; eval "$$(compose/select-images)"; set +a; docker compose build

e2e: deps
	$(PY) -m pytest tests/e2e -m e2e

# Scenarios of issue #12 against a compose project of its own (candleflow-faults, free ports); exits
# non-zero when one fails.
faults: deps
	$(PY) -m pytest tests/faults -m e2e

stack-up: engine
	set -a; eval "$$(compose/select-images)"; set +a; docker compose --profile demo up -d --build

stack-down:
	docker compose --profile demo down
