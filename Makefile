# The two commands of the README: `make demo` and `make test`.  Everything else is
# a step they run; each step is idempotent and cheap when already done.
VENV    ?= .venv
PYTHON  ?= python3
BIN     := $(VENV)/bin
PYTEST_ARGS ?=

.PHONY: demo test setup system venv prompts asterisk-up asterisk-down postgres-up serve lint typecheck pytest bench clean

demo: setup asterisk-up
	ONCE=$(ONCE) scripts/demo

test: setup asterisk-up lint typecheck pytest

setup: system venv prompts

system:
	scripts/install-system-packages

venv: $(VENV)/.installed
$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[test]'
	touch $@

prompts: venv
	$(BIN)/hotline prompts build

# Under the sandbox lock: installing config or prompts into a sandbox a test run or a
# benchmark is using would reload Asterisk (and replace prompts) under its calls.
SANDBOX_LOCK = $${HOTLINE_CACHE:-$$HOME/.cache/hotline}/sandbox.lock
asterisk-up: prompts
	mkdir -p "$$(dirname $(SANDBOX_LOCK))"
	flock -o $(SANDBOX_LOCK) scripts/asterisk-sandbox up

asterisk-down:
	scripts/asterisk-sandbox down

postgres-up:
	scripts/test-postgres up

serve: setup asterisk-up
	$(BIN)/hotline serve

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: venv
	$(BIN)/mypy

# PostgreSQL runs for the length of the tests; the Asterisk fixture stops the sandbox
# at the end (HOTLINE_KEEP_ASTERISK=1 keeps it for the next run).
pytest: venv
	url=$$(scripts/test-postgres up) && \
	  { HOTLINE_TEST_PG_URL=$$url $(BIN)/pytest $(PYTEST_ARGS); rc=$$?; scripts/test-postgres down; exit $$rc; }

bench: setup asterisk-up
	$(BIN)/python bench/answer_latency.py --quick
	$(BIN)/python bench/acd_load.py --quick
	$(BIN)/python bench/transcribe.py --quick

clean:
	rm -rf $(VENV) var build *.egg-info
