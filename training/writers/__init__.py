"""Writer identification: who wrote these characters.

A package of its own, since it is a task with its own data splits (by sample within a writer for the
closed set, by writer for the open set), models, losses and metrics, and its own serving contract:

- `config`: one YAML per experiment (`training/configs/writers_*.yaml`), `--set` overrides;
- `data`: FEMNIST by writer (closed-set top-N writers split 70/15/15 within each writer; open-set
  writers split into train / validation / held-out); `iam`: the IAM sentence images the study used;
- `models`: the study's 3-layer CNN (closed set), the embedding net + ArcFace (open set);
- `metrics`: per-character and aggregated accuracy, enrol/identify top-1/top-5, verification EER;
- `train`: both training loops; `export`: the embedding model → ONNX + `writer_manifest.json`.
"""
