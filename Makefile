# normloom: `make demo` runs the main job on the embedded model, `make test` the tests.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install demo test test-fast lint clean

install: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[model,smoke,dev]"
	touch $(STAMP)

demo: $(STAMP)
	NORMLOOM_GENERATION__MAX_TURNS=8 NORMLOOM_GENERATION__REFINE_ROUNDS=1 \
		$(BIN)/normloom generate --seeds data/seeds/demo.jsonl --out runs/demo

test: $(STAMP)
	$(BIN)/python -m pytest -q

test-fast: $(STAMP)
	$(BIN)/python -m pytest -q -m "not slow"

lint: $(STAMP)
	$(BIN)/ruff format --check . && $(BIN)/ruff check .

clean:
	rm -rf $(VENV) runs/demo
