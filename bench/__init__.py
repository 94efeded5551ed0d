"""Benchmarks of the local stack: `python -m bench [--quick]` (docs/performance.md)."""
