# Every target creates the virtual environment .venv from requirements.txt when it is
# missing or older than requirements.txt / pyproject.toml.
PYTHON ?= python3
# The Pythons the course supports (course_tools/doctor.py SUPPORTED_PYTHONS says the same;
# course_tools/platforms.py checks that every pin has a wheel for them).
SUPPORTED_PYTHONS := 3.11 3.12 3.13
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
NOTEBOOK_DIRS := lectures $(wildcard solutions) notebooks  # the student edition has no solutions/

.PHONY: help book book-public test lab progress student student-edition slides bench nbgrader doctor platforms clean

help:
	@echo "make book         build the HTML book into _build/html (lectures, labs, solutions)"
	@echo "make test         run every test: pytest, every notebook under nbval, ruff, the book build"
	@echo "make lab          copy the labs into my_labs/ (your own, never overwritten) and open JupyterLab there"
	@echo "make progress     run your labs in my_labs/ and print a table of every exercise's status"
	@echo "make student      regenerate notebooks/ from solutions/ (clears outputs first)"
	@echo "make student-edition  the course without solutions/, for learners: _build/student-edition (and .zip)"
	@echo "make book-public  build the book without the Solutions part into _build/public"
	@echo "make slides       the lectures as reveal.js slide decks in _build/slides"
	@echo "make nbgrader     an nbgrader course directory in nbgrader_course/ (COURSE=path): your grades stay"
	@echo "make bench        the course's measurements (accuracy, speed, memory) as a table (make bench recall char-lm: only those)"
	@echo "make doctor       when something is wrong: versions, pip check, device, Chromium, disk"
	@echo "make platforms    which Pythons and systems have a wheel for every pin (writes platforms.json)"
	@echo "make clean        remove build outputs and caches (keeps .venv and nbgrader_course/)"

$(INSTALLED): requirements.txt pyproject.toml
	@# One plain sentence instead of a failed install when $(PYTHON) is missing or too new/old
	@# (continuation lines start with one tab, so that the sentences have no gaps).
	@test -x $(BIN)/python || command -v $(PYTHON) >/dev/null || { echo "No $(PYTHON) \
	found: install Python 3.12 (any of $(SUPPORTED_PYTHONS) works) and run make \
	PYTHON=python3.12."; exit 1; }
	@test -x $(BIN)/python || $(PYTHON) -c 'import sys; v = "%d.%d" % sys.version_info[:2]; \
	sys.exit(v not in "$(SUPPORTED_PYTHONS)".split())' || { echo "$(PYTHON) is Python \
	$$($(PYTHON) -c 'import platform; print(platform.python_version())'), which the course \
	does not support (it supports $(SUPPORTED_PYTHONS)): run make again with one of those, \
	for example make PYTHON=python3.12."; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --upgrade pip
	$(BIN)/python -m pip install -r requirements.txt
	@# nbgrader is for instructors (make nbgrader, on the command line): keep its menus
	@# and server extensions out of the learners' JupyterLab.
	$(BIN)/jupyter labextension disable --level=sys_prefix @jupyter/nbgrader
	for part in formgrader assignment_list course_list validate_assignment; do \
		$(BIN)/jupyter server extension disable --sys-prefix nbgrader.server_extensions.$$part \
		|| exit 1; done
	touch $(INSTALLED)

book: $(INSTALLED)
	$(BIN)/jupyter-book build .
	@echo "Open _build/html/index.html in a browser."

book-public: $(INSTALLED)
	$(BIN)/python -m course_tools.book --without-solutions _build/public/_toc.yml
	$(BIN)/jupyter-book build . --toc _build/public/_toc.yml --path-output _build/public
	@echo "Open _build/public/_build/html/index.html in a browser."

# Two runs: nbval executes every notebook (on two cores) and stores what it executed in
# _build/.jupyter_cache; then the book tests build the book from that cache, without
# executing any notebook again (course_tools.executed).
test: $(INSTALLED)
	MPLBACKEND=Agg $(BIN)/python -m pytest tests $(NOTEBOOK_DIRS) -m "not book" \
		--nbval-lax --nbval-current-env -n 2 --dist loadscope --durations=15
	MPLBACKEND=Agg ATTENTION_KIT_AFTER_NBVAL=1 $(BIN)/python -m pytest tests -m book \
		-p no:xdist --durations=10

# Your own copies of the labs live in my_labs/ (git-ignored): new labs are copied in,
# nothing there is ever overwritten. NEW="02_scoring_functions ..." puts the course's
# current version of those labs beside yours; OPEN=no skips starting JupyterLab.
MY_LABS ?= my_labs
lab: $(INSTALLED)
	@$(BIN)/python -m course_tools.learner --labs $(MY_LABS) setup --new "$(NEW)"
ifeq ($(filter no 0 false,$(OPEN)),)
	$(BIN)/jupyter lab $(MY_LABS)
else
	@echo "OPEN=$(OPEN): JupyterLab not started (make lab opens it in $(MY_LABS)/)."
endif

# Runs your labs in my_labs/ headless and prints where you stand (changes no file).
# TIME_LIMIT=seconds per lab (default 300), JOBS=labs at once (default 2).
progress: $(INSTALLED)
	@$(BIN)/python -m course_tools.learner --labs $(MY_LABS) progress \
		$(if $(TIME_LIMIT),--time-limit $(TIME_LIMIT)) $(if $(JOBS),--jobs $(JOBS))

student: $(INSTALLED)
	$(BIN)/python -m course_tools.release --strip

# The course without solutions/ for an instructor to hand out (course_tools.edition):
# a folder and a zip archive under _build/.
student-edition: $(INSTALLED)
	$(BIN)/python -m course_tools.edition _build/student-edition

slides: $(INSTALLED)
	$(BIN)/python -m course_tools.slides _build/slides
	@echo "Open _build/slides/<lecture>.slides.html in a browser."

# An nbgrader course directory from solutions/: source/<lab>/<lab>.ipynb with the cell
# metadata nbgrader needs, nbgrader_config.py (grading mode) and, once, points.toml.
# COURSE=path to choose. It is never under _build (make clean spares it), and a second
# run rewrites only source/ and nbgrader_config.py: gradebook.db, release/, submitted/,
# autograded/ and feedback/ stay as they are.
COURSE ?= nbgrader_course
nbgrader: $(INSTALLED)
	$(BIN)/python -m course_tools.grading $(COURSE)
	@echo "Then: cd $(COURSE) && export PATH=$(abspath $(BIN)):\$$PATH (see the README's Grading with nbgrader)"

# make bench runs every measurement; words after it choose some (make bench recall char-lm),
# by the names in course_tools.bench.MEASUREMENTS. Those words are not targets themselves.
ifeq (bench,$(firstword $(MAKECMDGOALS)))
BENCH_ONLY := $(wordlist 2,$(words $(MAKECMDGOALS)),$(MAKECMDGOALS))
$(eval $(BENCH_ONLY):;@:)
endif
bench: $(INSTALLED)
	$(BIN)/python -m course_tools.bench $(BENCH_ONLY)

# Runs without installing anything, so that it can say what is wrong with the install.
doctor:
	@if test -x $(BIN)/python; then $(BIN)/python -m course_tools.doctor; \
	else echo "No .venv yet: run make (or make lab) first, which creates it with $(PYTHON)."; \
		exit 1; fi

# Asks the package index (index pages only, no wheel is downloaded) whether every pin
# has a wheel for each supported Python on Linux, macOS and Windows; writes platforms.json.
platforms: $(INSTALLED)
	$(BIN)/python -m course_tools.platforms --write platforms.json

# Never add the nbgrader course directory here: it holds an instructor's grades.
clean:
	rm -rf _build .pytest_cache .ruff_cache
	find . -name __pycache__ -not -path "./$(VENV)/*" -prune -exec rm -rf {} +
	find . -name .ipynb_checkpoints -not -path "./$(VENV)/*" -prune -exec rm -rf {} +
