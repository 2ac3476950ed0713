# Two commands set up everything on a fresh machine: `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-dev

.PHONY: demo test lint format typecheck bench fuzz report-preview screenshots clean

AXE := tests/a11y/node_modules/axe-core/axe.min.js

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	bash scripts/demo.sh

# axe-core for the HTML report's accessibility test; without npm that test skips
# (and fails in CI).
$(AXE): tests/a11y/package.json tests/a11y/package-lock.json
	@if command -v npm >/dev/null; then npm ci --prefix tests/a11y --no-audit --no-fund --silent; \
	else echo "npm not found: the accessibility test will not run"; fi

test: $(STAMP) $(AXE)
	$(BIN)/python -m pytest --durations=20

report-preview: $(STAMP)
	$(BIN)/python -m scripts.report_preview

# The public site's register and a point page at desktop and phone width, into
# var/screenshots/ (needs Debian's chromium).
screenshots: $(STAMP)
	$(BIN)/python -m scripts.screenshots

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

format: $(STAMP)
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: $(STAMP)
	$(BIN)/python -m bench

# Coverage-guided fuzzing of the reply reader and the YAML reader, 10 minutes each
# (FUZZ_SECONDS=60 make fuzz for a short run). Not part of `make test`.
FUZZ_SECONDS ?= 600
fuzz: $(STAMP)
	$(BIN)/python -m pip install --quiet 'atheris>=2.3'
	$(BIN)/python -m bench.fuzz --seconds $(FUZZ_SECONDS)

clean:
	rm -rf $(VENV) var .mypy_cache .ruff_cache .pytest_cache .hypothesis tests/a11y/node_modules
