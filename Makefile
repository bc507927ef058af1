# Two commands for a fresh machine: `make run` (studio on the demo) and `make test` (whole suite).
VENV ?= .venv
PY := $(VENV)/bin/python
TORCH_PIN ?= torch==2.13.0
STAMP := $(VENV)/.hanami-installed

.PHONY: install run test chromium bench clean

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# The CPU build of torch first, so that no dependency pulls a multi-GB CUDA build.
	$(PY) -m pip install -q "$(TORCH_PIN)"
	$(PY) -m pip install -q -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

# Serves this computer only (app/access.py refuses others however the studio is started). To serve
# others, the owner sets HANAMI_ALLOW_REMOTE=1 and a login, e.g. `HANAMI_ALLOW_REMOTE=1 .venv/bin/panel
# serve app --address 0.0.0.0 --basic-auth PASSWORD --cookie-secret SECRET --allow-websocket-origin=HOST:PORT`.
run: install
	$(VENV)/bin/panel serve app --address localhost --port $${PORT:-5006} --allow-websocket-origin=localhost:$${PORT:-5006}

chromium:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq chromium; \
	  else echo "chromium missing: browser tests will skip (sudo apt-get install chromium)"; fi; }

test: install chromium
	$(PY) -m pytest $(PYTEST_ARGS)

bench: install
	for b in bench/*.py; do $(PY) $$b || exit 1; done

clean:
	rm -rf $(VENV) .pytest_cache
