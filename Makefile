# `make demo` and `make test` work on a fresh machine with only Python 3.11+ and pip:
# the first run makes .venv and installs the project into it. The demo installs the
# runtime alone (no TensorFlow); the tests add the test, GUI, ray and train extras.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: demo test bench clean

$(BIN)/.runtime: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e .
	touch $@

$(BIN)/.installed: $(BIN)/.runtime
	$(BIN)/pip install --quiet -e '.[test]'
	@# the desktop client's extras build against ALSA; without its headers the GUI tests skip
	$(BIN)/pip install --quiet -e '.[gui]' || echo "note: GUI extras not installed (apt-get install libasound2-dev)"
	@# Ray for the cluster tests (tests/test_ray.py); where no wheel exists for this Python they skip
	$(BIN)/pip install --quiet -e '.[ray]' || echo "note: the ray extra not installed: its tests skip"
	@# TensorFlow, to check the texture network's numpy forward pass against the training's (tests/test_controller.py)
	$(BIN)/pip install --quiet -e '.[train]' || echo "note: the train extra not installed: the network's equality test skips"
	touch $@

demo: $(BIN)/.runtime
	mkdir -p out
	$(BIN)/musicoder convert examples/demo.ogg -o out/demo_water_hifi.wav --texture water --quality hifi \
		--spectrogram out/demo_water_hifi.png -y

test: $(BIN)/.installed
	$(BIN)/python -m pytest -q

bench: $(BIN)/.installed
	$(BIN)/python -m bench

clean:
	rm -rf out .pytest_cache
