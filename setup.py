"""The one build step pyproject.toml cannot declare stably: the optional C extensions.

``psc._speedups`` holds PSC's per-record hot paths (``psc/_speedups.c``); ``psc._rdkafka`` a producer that
queues whole batches over librdkafka, loaded at run time (``psc/_rdkafka.c``); ``psc._failure_trap`` the
librdkafka plugin that keeps failed deliveries of records without a callback (``psc/_failure_trap.c``), so a
Kafka producer needs no Python call per success; ``memq._speedups`` the MemQ producer's append and request
packing (``memq/_speedups.c``); ``singer._speedups`` the text reader's line splitting (``singer/_speedups.c``);
``pacer._speedups`` a dequeue's per-job loops, leases and packed refills (``pacer/_speedups.c``).
All are optional: without a C compiler the build goes on and the same paths run in Python
(``psc/_fallback.py``, ``memq/_fallback.py``, ``singer/_fallback.py``, ``pacer/_fallback.py``, and the
per-record producer instead of batches).
"""

from setuptools import Extension, setup

setup(
    ext_modules=[
        Extension("psc._speedups", sources=["psc/_speedups.c"], depends=["psc/_tally.h"], optional=True),
        # dlopen() is in libc since glibc 2.34, in libdl before.
        Extension(
            "psc._rdkafka",
            sources=["psc/_rdkafka.c"],
            depends=["psc/_tally.h", "psc/_rdkafka_load.h"],
            libraries=["dl"],
            optional=True,
        ),
        Extension(
            "psc._failure_trap",
            sources=["psc/_failure_trap.c"],
            depends=["psc/_rdkafka_load.h"],
            libraries=["dl"],
            optional=True,
        ),
        Extension("memq._speedups", sources=["memq/_speedups.c"], optional=True),
        Extension("singer._speedups", sources=["singer/_speedups.c"], optional=True),
        Extension("pacer._speedups", sources=["pacer/_speedups.c"], optional=True),
    ]
)
