"""Command line: ``python -m benchmarks run <suite> [--json FILE] [--repeat N] [--warmup N] [--scale X]``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from benchmarks._harness import format_table, run_scenario, write_json
from benchmarks.suites import SUITES, load_suite


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("list", help="list the suites")
    run = sub.add_parser("run", help="run one suite and print its table")
    run.add_argument("suite", help=f"one of: {', '.join(sorted(SUITES))}")
    run.add_argument("--json", type=Path, help="also write the rows to this file")
    run.add_argument("--repeat", type=int, default=3, help="runs per system and scenario (median taken, >= 3)")
    run.add_argument("--warmup", type=int, default=1, help="unrecorded runs per system before the repeats")
    run.add_argument("--scale", type=float, default=1.0, help="multiply message counts (e.g. 0.1 for a quick run)")
    run.add_argument("--scenario", action="append", help="run only these scenarios (repeatable)")
    args = parser.parse_args(argv)

    if args.command == "list":
        for name, description in sorted(SUITES.items()):
            print(f"{name:24} {description}")
        return 0
    if args.suite not in SUITES:
        parser.error(f"unknown suite {args.suite!r}; choose from {', '.join(sorted(SUITES))}")

    with load_suite(args.suite, args.scale) as scenarios:
        chosen = [s for s in scenarios if not args.scenario or s.name in args.scenario]
        if not chosen:
            parser.error(f"no scenario of {args.suite!r} matches {args.scenario}")
        rows = []
        for scenario in chosen:
            print(f"scenario {scenario.name}: {', '.join(scenario.systems)}", file=sys.stderr)
            rows.extend(run_scenario(args.suite, scenario, args.repeat, warmup=args.warmup))
    print(
        f"\nsuite {args.suite} (median of {args.repeat} runs after {args.warmup} unrecorded; "
        "ratio = system median / baseline median; "
        "paired = median of per-repeat system / baseline)\n"
    )
    print(format_table(rows, {s.name: s.baseline for s in chosen}))
    if args.json:
        write_json(rows, args.json)
        print(f"\nwrote {len(rows)} rows to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
