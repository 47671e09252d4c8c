"""Run every benchmark and print one table (and, with --json, write it): python bench/run.py."""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from dataclasses import asdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import Row  # noqa: E402
from connection import bench_connection  # noqa: E402
from echoes import bench_echoes, bench_reach, bench_signatures  # noqa: E402
from evidence import bench_evidence, bench_stamps  # noqa: E402
from micro import bench_alerts, bench_parsing, bench_saving, bench_search, bench_size  # noqa: E402
from postgres import bench_postgres  # noqa: E402
from room import bench_room  # noqa: E402
from system import bench_backfill, bench_daemon_idle, bench_idle_sync, bench_media, bench_releases  # noqa: E402
from workers import bench_workers  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smaller sizes, for a check (about a minute)")
    parser.add_argument("--json", type=Path, help="also write the rows as JSON to this file")
    parser.add_argument("--only", help="comma-separated: parse,connection,save,size,alerts,search,backfill,sync,idle,media,releases,room,signatures,echoes,reach,evidence,stamps,postgres,workers")
    args = parser.parse_args()
    quick = args.quick
    suites = {
        "parse": bench_parsing,
        "connection": bench_connection,
        "save": lambda: bench_saving(5_000 if quick else 20_000),
        "size": lambda: bench_size(5_000 if quick else 20_000),
        "alerts": lambda: bench_alerts(500 if quick else 2_000),
        "search": lambda: bench_search(50_000 if quick else 1_000_000),
        "backfill": lambda: bench_backfill((2_000,) if quick else (5_000, 25_000, 100_000)),
        "sync": lambda: bench_idle_sync(20 if quick else 100),
        "idle": lambda: bench_daemon_idle(10 if quick else 50, 10.0 if quick else 60.0),
        "media": lambda: bench_media(200 if quick else 1_000),
        "releases": lambda: bench_releases(20 if quick else 100),
        "room": lambda: bench_room(50_000 if quick else 1_000_000),
        "signatures": lambda: bench_signatures(500 if quick else 2_000),
        "echoes": lambda: bench_echoes(50_000 if quick else 1_000_000),
        "reach": lambda: bench_reach(50 if quick else 200),
        "evidence": lambda: bench_evidence(5_000 if quick else 20_000),
        "stamps": lambda: bench_stamps(),
        "postgres": lambda: bench_postgres(10_000 if quick else 100_000),
        "workers": bench_workers,
    }
    chosen = args.only.split(",") if args.only else list(suites)
    rows: list[Row] = []
    started = time.perf_counter()
    for name in chosen:
        print(f"running {name} ...", file=sys.stderr, flush=True)
        rows.extend(suites[name]())
    machine = f"{platform.python_implementation()} {platform.python_version()}, {os.cpu_count()} cores, {platform.machine()}"
    print(table(rows))
    print(f"\n{machine}; {time.perf_counter() - started:.0f} s")
    if args.json:
        args.json.write_text(json.dumps({"machine": machine, "rows": [asdict(r) for r in rows]}, indent=2,
                                        ensure_ascii=False))


def table(rows: list[Row]) -> str:
    lines = ["| benchmark | legation | reference | comparison |", "| --- | ---: | ---: | --- |"]
    for row in rows:
        ref = f"{row.reference}: {_fmt(row.reference_value)}" if row.reference_value is not None else row.reference
        lines.append(f"| {row.name} | {_fmt(row.value)} {row.unit} | {ref} | {row.verdict} |")
    return "\n".join(lines)


def _fmt(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:,.0f}" if value >= 100 else f"{value:,.2f}"


if __name__ == "__main__":
    main()
