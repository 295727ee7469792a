VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# Small dense linear algebra is fastest single-threaded on a 2-core machine.
export OPENBLAS_NUM_THREADS ?= 1

.PHONY: install test demo bench docs clean

$(STAMP): pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

test: $(STAMP)
	$(PY) -m pytest -q -n 2 --dist loadfile --max-worker-restart=0

demo: $(STAMP)
	$(VENV)/bin/ssmneuro demo --out demo_output
	@echo "open demo_output/*/report.html in a browser"

bench: $(STAMP)
	$(PY) benchmarks/inference.py

docs: $(STAMP)
	$(PY) -m pip install -q -e ".[docs]"
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --site-dir site

clean:
	rm -rf $(VENV) .pytest_cache
