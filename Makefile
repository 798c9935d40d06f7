# Two commands: `make run` opens the app on the demo dataset; `make test` runs the whole suite headless.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
TEST_STAMP := $(VENV)/.installed-test

.PHONY: run test lint app clean web-runtime

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# With the onnx extra: the window's ONNX and web page exports need its converter and runtime,
# and a format the window lists should work after the README's way in.
$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[onnx]"
	touch $@

$(TEST_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $@ $(STAMP)

# The web runtime as `make test` gets it (npm where available): the Export page offers the web
# page only when it can build it. The step never fails, so the app opens without npm too.
run: $(STAMP) web-runtime
	@sh packaging/qt-system-libs.sh
	$(BIN)/finetune-gui

# Two test processes (pytest-xdist), a test module each at a time (its module fixtures are made
# once): much of a test's time is single-threaded (TensorFlow building a training step, Qt,
# child processes starting), so two keep a 2-core machine busy. Measured on this 2-core
# machine: 36 min in one process. Modules go out in collection order, longest first (see
# tests/conftest.py), not xdist's most-tests-first. TEST_WORKERS=0 runs in one process.
TEST_WORKERS ?= 2

test: $(TEST_STAMP) web-runtime
	QT_QPA_PLATFORM=offscreen $(BIN)/python -m pytest -q -n $(TEST_WORKERS) --dist loadscope --no-loadscope-reorder tests

# What the web export needs to be built and checked: the pinned ONNX Runtime Web from npm
# (web/package-lock.json, integrity-checked by npm ci) and Chromium. Quick when both are there;
# if either cannot be installed, it says so and `make run` / `make test` go on (the Export page
# then shows the web page as unavailable, or written but not checked in a browser; the web
# tests are skipped with the reason).
web-runtime:
	@sh packaging/web-runtime.sh

lint: $(TEST_STAMP)
	$(BIN)/ruff check src tests benchmarks

# The frozen app in dist/finetune-gui/ (PyInstaller), then its smoke test (scan, train, evaluate,
# predict, sort, every export, the report, the window through Results): docs/packaging.md.
app: $(STAMP)
	sh packaging/build.sh
	sh packaging/smoke-test.sh

clean:
	rm -rf $(VENV) build dist src/*.egg-info
