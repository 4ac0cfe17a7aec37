"""The one build step pyproject.toml cannot declare stably: PSC's optional C extensions.

``psc._speedups`` holds the per-record hot paths (``psc/_speedups.c``); ``psc._rdkafka`` a producer that
queues whole batches over librdkafka, loaded at run time (``psc/_rdkafka.c``). Both are optional: without a C
compiler the build goes on and PSC runs the same paths in Python (``psc/_fallback.py``, and the per-record
producer instead of batches).
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension("psc._speedups", sources=["psc/_speedups.c"], depends=["psc/_tally.h"], optional=True),
        # dlopen() is in libc since glibc 2.34, in libdl before.
        Extension(
            "psc._rdkafka", sources=["psc/_rdkafka.c"], depends=["psc/_tally.h"], libraries=["dl"], optional=True
        ),
        Extension("memq._speedups", sources=["memq/_speedups.c"], optional=True),
    ]
)
