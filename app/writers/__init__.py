"""Writer identification: enrol writers from a few handwritten characters, then tell who wrote a sample.

Pure modules (no web framework): `manifest` (the embedding model's contract), `embedder` (ONNX →
L2-normalised embeddings), `matching` (cosine top-k, "unknown"), `store` (the enrolments' database),
`images` (what `store_images=true` keeps: the decoded image as a bounded PNG).
The HTTP side is `app/routers/writers.py`.
"""
