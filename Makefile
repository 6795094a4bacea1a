# Every target creates the virtual environment .venv from requirements.txt when it is
# missing or older than requirements.txt / pyproject.toml.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
INSTALLED := $(VENV)/.installed
NOTEBOOK_DIRS := lectures solutions notebooks

.PHONY: help book book-public test lab student slides bench clean

help:
	@echo "make book         build the HTML book into _build/html (lectures, labs, solutions)"
	@echo "make test         run every test: pytest, every notebook under nbval, ruff, the book build"
	@echo "make lab          open the student labs in JupyterLab"
	@echo "make student      regenerate notebooks/ from solutions/ (clears outputs first)"
	@echo "make book-public  build the book without the Solutions part into _build/public"
	@echo "make slides       the lectures as reveal.js slide decks in _build/slides"
	@echo "make bench        the course's measurements (accuracy, speed, memory) as a table"
	@echo "make clean        remove build outputs and caches (keeps .venv)"

$(INSTALLED): requirements.txt pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --upgrade pip
	$(BIN)/python -m pip install -r requirements.txt
	touch $(INSTALLED)

book: $(INSTALLED)
	$(BIN)/jupyter-book build .
	@echo "Open _build/html/index.html in a browser."

book-public: $(INSTALLED)
	$(BIN)/python -m attention_kit.book --without-solutions _build/public/_toc.yml
	$(BIN)/jupyter-book build . --toc _build/public/_toc.yml --path-output _build/public
	@echo "Open _build/public/_build/html/index.html in a browser."

test: $(INSTALLED)
	MPLBACKEND=Agg $(BIN)/python -m pytest tests $(NOTEBOOK_DIRS) \
		--nbval-lax --nbval-current-env -n 2 --dist loadscope --durations=15

lab: $(INSTALLED)
	$(BIN)/jupyter lab notebooks

student: $(INSTALLED)
	$(BIN)/python -m attention_kit.release --strip

slides: $(INSTALLED)
	$(BIN)/jupyter nbconvert --to slides --execute --output-dir _build/slides lectures/*.ipynb
	@echo "Open _build/slides/<lecture>.slides.html in a browser."

bench: $(INSTALLED)
	$(BIN)/python -m attention_kit.bench

clean:
	rm -rf _build .pytest_cache .ruff_cache
	find . -name __pycache__ -not -path "./$(VENV)/*" -prune -exec rm -rf {} +
	find . -name .ipynb_checkpoints -not -path "./$(VENV)/*" -prune -exec rm -rf {} +
