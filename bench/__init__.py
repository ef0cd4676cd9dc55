"""On-demand tools, not in the test suite (small versions of several run there):

- `bench.perf`: the performance harness (the benchmark against the seed-style baseline, paired
  A/B runs of settings or trees, in-process stage timings);
- `bench.proofs`: hardening proofs (fuzzing, load, hostile connections, memory; docs/reliability.md)
  and the checks that a change keeps the service's answers and model inputs identical;
- `bench.eval`: evaluations of the models as served (photos, synthetic words, grapheme roots).

The modules here are what they share: the real service on a free port (`server`), the command
lines' common parts (`cli`), the upload set and the photo test set (`photos`, `photo_set`), the
system Chromium (`browser`), and the README screenshot tool."""
