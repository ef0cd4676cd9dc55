"""What is loaded once per process and serves every request: the models and the writer embedder
(verified against their manifests), ONNX Runtime sessions, the writer store, compute slots, the
dynamic batcher and the worker processes."""
