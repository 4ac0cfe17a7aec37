"""A Quix Streams pass-through job, run by the connectors suite in its own virtualenv (see ``quix_python``).

Quix Streams pins confluent-kafka below the version this project uses, so it cannot share the project's
environment. Usage: ``python _quix_pass_through.py BOOTSTRAP SOURCE OUT COUNT GUARANTEE COMMIT_INTERVAL_S``;
prints the records per second from the Application's creation until ``count`` records were written and
committed.
"""

from __future__ import annotations

import json
import sys
import time
import uuid


def main(argv: list[str]) -> None:
    from quixstreams import Application  # type: ignore[import-not-found,unused-ignore]

    bootstrap, source, out, count, guarantee, interval = argv
    started = time.perf_counter()
    app = Application(
        broker_address=bootstrap,
        consumer_group=f"bench-quix-{uuid.uuid4().hex[:8]}",
        auto_offset_reset="earliest",
        processing_guarantee=guarantee,
        commit_interval=float(interval),
        auto_create_topics=False,
        use_changelog_topics=False,
        consumer_extra_config={"isolation.level": "read_committed"},
    )
    topic_in = app.topic(source, key_deserializer="bytes", value_deserializer="bytes")
    topic_out = app.topic(out, key_serializer="bytes", value_serializer="bytes")
    app.dataframe(topic_in).to_topic(topic_out)
    app.run(count=int(count), collect=False)  # returns after the final commit of its close
    print(json.dumps({"rate": int(count) / (time.perf_counter() - started)}))


if __name__ == "__main__":
    main(sys.argv[1:])
