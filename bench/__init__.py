"""On-demand proofs of the service's hardening (docs/reliability.md); small versions run in tests."""
