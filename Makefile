# VoxCast — two commands do all the set-up on a fresh machine:
#   make serve   create .venv, install, import the demo study, start the server
#   make test    install what the tests need (Python packages, dcmtk) and run the test suite
#   make bench   install the reference tools (VTK, matplotlib, dcmtk) and run voxcast bench

PYTHON    ?= python3
VENV      ?= .venv
PY        := $(VENV)/bin/python
VOXCAST   := $(VENV)/bin/voxcast
DATA_DIR  ?= ./voxcast-data
DEMO      ?= ../shared/data/petct-acrin042
PYTEST_ARGS ?=
BENCH_ARGS ?= --quick

.PHONY: serve test bench install install-test install-bench system-test-deps system-bench-deps demo bench-ingest clean

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-test: $(VENV)/.installed pyproject.toml
	$(PY) -m pip install --quiet -e '.[test,dev]'
	touch $@

$(VENV)/.installed-bench: $(VENV)/.installed pyproject.toml
	$(PY) -m pip install --quiet -e '.[bench]'
	touch $@

install: $(VENV)/.installed

install-bench: $(VENV)/.installed-bench

install-test: $(VENV)/.installed-test

# dcmtk is a real third-party DICOM peer for the tests (storescu, echoscu, storescp); Mesa's
# EGL and software OpenGL let VTK (the 3D reference of the render benchmark) draw offscreen.
# chromium is the real browser of tests/browser (WebRTC, WebSocket); iproute2 and util-linux
# make the private network namespaces those WebRTC tests run in; a Chinese font lets the
# viewer's screenshots (Simplified Chinese by default) show its text.
SYSTEM_TEST_PACKAGES = dcmtk libegl-mesa0 libgl1-mesa-dri chromium iproute2 util-linux \
                       fonts-wqy-microhei
# voxcast bench needs only dcmtk (the ingest peer and ceiling) and Mesa (VTK offscreen).
SYSTEM_BENCH_PACKAGES = dcmtk libegl-mesa0 libgl1-mesa-dri
system-bench-deps:
	@$(MAKE) --no-print-directory system-test-deps SYSTEM_TEST_PACKAGES="$(SYSTEM_BENCH_PACKAGES)"

system-test-deps:
	@missing=$$(for p in $(SYSTEM_TEST_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "ok installed" || echo $$p; done); \
	if [ -n "$$missing" ]; then \
	  echo "installing $$missing (Debian packages) for the tests"; \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing; \
	fi

# Import the demo study once per data directory: the ACRIN PET-CT when present, otherwise
# the synthetic phantom study that VoxCast generates itself.
demo: install
	@if [ -f "$(DATA_DIR)/.demo-imported" ]; then \
	  echo "demo study already imported into $(DATA_DIR)"; \
	elif [ -d "$(DEMO)" ]; then \
	  echo "importing the demo PET-CT study from $(DEMO)"; \
	  $(VOXCAST) ingest --data-dir "$(DATA_DIR)" "$(DEMO)" && touch "$(DATA_DIR)/.demo-imported"; \
	else \
	  echo "The demo study $(DEMO) is not here. Import your own studies with:"; \
	  echo "    $(VOXCAST) ingest --data-dir $(DATA_DIR) PATH_TO_DICOM_FOLDER_OR_ZIP"; \
	  echo "or send them to the DICOM SCP (AE VOXCAST, port 11112) or STOW-RS (/dicomweb/studies)."; \
	  echo "Meanwhile, importing a synthetic phantom study (patient SYNTHETIC^PHANTOM)."; \
	  $(VOXCAST) phantom --data-dir "$(DATA_DIR)" && touch "$(DATA_DIR)/.demo-imported"; \
	fi

serve: demo
	$(VOXCAST) serve --data-dir "$(DATA_DIR)"

test: install-test system-test-deps
	$(PY) -m pytest $(PYTEST_ARGS)

# The benchmark suite: `make bench` is the quick run (under 2 minutes); the full reference run
# is `make bench BENCH_ARGS="--out benchmarks/results/cpu-2core"` (see benchmarks/results).
bench: install-bench system-bench-deps
	$(VOXCAST) bench $(BENCH_ARGS)

bench-ingest: install-test system-test-deps
	$(PY) -m benchmarks.ingest

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache
