# The two commands of the README: `make demo` runs the main job, `make test` runs every test.
# Both create the virtual environment .venv (Python 3.11+) and install the project into it on first use.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test install sync-check nbtest pytest clean

demo: $(STAMP)
	$(BIN)/lumbar-rsna demo $(ARGS)

test: $(STAMP) sync-check nbtest pytest

install: $(STAMP)

$(STAMP): settings.ini setup.py pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $(STAMP)

# Notebooks are the source: exporting and cleaning them must not change any file.
sync-check: $(STAMP)
	@before="$$(git status --porcelain; git diff | md5sum)"; \
	$(BIN)/nbdev_clean && $(BIN)/nbdev_export || exit 1; \
	after="$$(git status --porcelain; git diff | md5sum)"; \
	if [ "$$before" != "$$after" ]; then \
	  echo "nbdev_clean/nbdev_export changed files: the library is out of sync with nbs/ or a notebook is not clean"; \
	  git status --short; exit 1; \
	fi; echo "notebooks clean and library in sync"

nbtest: $(STAMP)
	cd nbs && MPLBACKEND=Agg OMP_NUM_THREADS=1 ../$(BIN)/nbdev_test --n_workers 2 --timing

pytest: $(STAMP)
	MPLBACKEND=Agg $(BIN)/python -m pytest tests -q -rs

clean:
	rm -rf $(VENV) build dist *.egg-info
