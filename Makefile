# fxcrawl: `make run` replays the offline site into SQLite and shows it; `make test` runs the suite.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: install run test lint bench bench-large golden clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

run: install
	$(BIN)/fxcrawl crawl search --keyword 现代 --pages 1,951-955,1000 --replay --log-level WARNING
	$(BIN)/fxcrawl crawl latest --replay --log-level WARNING
	$(BIN)/fxcrawl articles list --limit 100
	$(BIN)/fxcrawl fast-news list --limit 10
	$(BIN)/fxcrawl runs list --limit 5

test: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports
	$(BIN)/mypy
	$(BIN)/pytest -n 2

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

golden: install
	$(BIN)/fxcrawl fixtures golden

bench: install
	$(BIN)/python -m benchmarks

# Full-text search on a large synthetic store (SQLite and PostgreSQL); hours at the default size.
BENCH_LARGE_ARTICLES ?= 1000000
bench-large: install
	$(BIN)/python -m benchmarks.search_large --articles $(BENCH_LARGE_ARTICLES)

clean:
	rm -rf $(VENV) data .pytest_cache .ruff_cache
