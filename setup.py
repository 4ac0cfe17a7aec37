"""The one build step pyproject.toml cannot declare stably: PSC's optional C extension.

``psc._speedups`` holds the per-record hot paths (``psc/_speedups.c``). It is optional: without a C
compiler the build goes on and PSC runs the same paths in Python (``psc/_fallback.py``).
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension("psc._speedups", sources=["psc/_speedups.c"], optional=True),
        Extension("memq._speedups", sources=["memq/_speedups.c"], optional=True),
    ]
)
