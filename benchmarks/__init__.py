"""Benchmarks: the toolkit and its peers side by side on the same services, in one run.

``python -m benchmarks run <suite> [--json FILE]`` runs each scenario of a suite for every system,
repeated and interleaved, and prints each system's median with its ratio to the scenario's baseline.
"""
