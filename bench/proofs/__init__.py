"""Hardening proofs (docs/reliability.md: bodies, images, the v2 codec and the OpenAPI schema fuzzed,
load, hostile connections, memory) and the checks that a change keeps answers and model inputs
identical. Each exits 1 when its claim fails."""
