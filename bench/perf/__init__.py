"""The performance harness: the service against a seed-style baseline over HTTP, paired A/B runs,
in-process stage timings (docs/benchmarks.md, docs/speed.md)."""
