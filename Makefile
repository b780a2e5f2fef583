# Tastemaker: make run | make test | make install
PY ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Extras: torch (CPU build, pinned) for the v2 sequence recipes, ann (hnswlib) for approximate top-k.
# `make install EXTRAS=dev` installs neither.
EXTRAS ?= dev,torch,ann
# `make run PORT=8081 ARGS="--job-threads 4"`: another port, more `tastemaker serve` flags.
PORT ?= 8080
ARGS ?=

.PHONY: install run quickstart test lint clean

$(STAMP): pyproject.toml
	@command -v $(PY) >/dev/null 2>&1 || { echo "need Python 3.11 on PATH (or: make PY=/path/to/python3.11)"; exit 1; }
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[$(EXTRAS)]'
	@# the serving kernels into numba's cache now, not in a new installation's first GetRecommendations (~25 s)
	$(BIN)/tastemaker compile-kernels
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(BIN)/tastemaker serve --host 127.0.0.1 --port $(PORT) --data-dir ./.tastemaker $(ARGS)

quickstart: $(STAMP)
	$(BIN)/tastemaker quickstart

# Two pytest-xdist workers: while one waits on a server start, a job or a subprocess, the other runs
# (tests/conftest.py keeps each file, and the files that share a browser or a Spark JVM, on one worker).
# `make test TEST_WORKERS=0` runs the suite in one process.
TEST_WORKERS ?= 2

test: $(STAMP)
	$(BIN)/python -m pytest -q -p no:cacheprovider --durations=25 -n $(TEST_WORKERS) --dist loadfile

lint: $(STAMP)
	$(BIN)/ruff check tastemaker tests bench
	$(BIN)/lint-imports --no-cache
	$(BIN)/mypy tastemaker

clean:
	rm -rf $(VENV) .tastemaker
