"""Benchmarks of the API beside peers and ceilings; run with `python -m bench.<name>`."""
