# neurocodec: `make demo` sets everything up and round-trips an example; `make test` runs the suite.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cat pyproject.toml | cksum | cut -d' ' -f1)

.PHONY: demo test test-all install sysdeps bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	# The local CPU wheel: never let pip pick a CUDA build.
	$(BIN)/pip install -q torch==2.13.0

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e '.[eval,data,dev,listen]'
	# the 'parity' extra: the reference EnCodec package without its torchaudio dependency
	$(BIN)/pip install -q --no-deps 'encodec==0.1.1' 'einops>=0.6'
	rm -f $(VENV)/.installed-*
	touch $@

install: $(STAMP)

demo: install
	$(BIN)/neurocodec demo --out demo-out

sysdeps:
	bash scripts/install_sysdeps.sh

test: install sysdeps
	$(BIN)/python -m pytest -q -p no:cacheprovider

test-all: install sysdeps
	$(BIN)/python -m pytest -q -p no:cacheprovider -m ''

bench: install
	for b in bench/bench_*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

clean:
	rm -rf $(VENV) demo-out build *.egg-info src/*.egg-info
