"""Image classification: model specs, decoding, preprocessing and the ONNX Runtime classifier.

Import the module you need; this package imports nothing, so the web tier can use
``imgrec.model.decode`` without loading ONNX Runtime::

    from imgrec.model.classifier import load_classifier
    classifier = load_classifier("mobilenet_v2")
    [result] = classifier.classify_images([jpeg_bytes])
"""
