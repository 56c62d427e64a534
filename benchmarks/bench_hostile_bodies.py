"""Hostile response bodies (not a test): peak memory of one download of each.

The sample server (in this process) serves each body; each download runs in its own
child process, so neither the server's memory nor another download's is counted. The
child warms its client up on a small page, reads its peak RSS (ru_maxrss, the kernel's
high-water mark, so no peak is missed between samples), downloads the body with the
image cap, and reads the peak again; the difference is what the body cost.

    .venv/bin/python benchmarks/bench_hostile_bodies.py            # a table
    .venv/bin/python benchmarks/bench_hostile_bodies.py --json     # one JSON object per body
Goal: every body stays within 100 MB of the idle process (the test pins it).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
GOAL_MB = 100
IMAGE_CAP = 20_000_000  # curate/images.py's default max_bytes
# (name, fault rule, what the client must do)
BODIES = [
    ("gzip bomb, 1 MiB -> 1 GiB", "gzip_bomb,size_mb=1024", "too_large"),
    ("200 MiB with Content-Length", "huge,size_mb=200", "too_large"),
    ("200 MiB chunked, no Content-Length", "huge_chunked,size_mb=200", "too_large"),
    ("15 MiB chunked (under the cap)", "huge_chunked,size_mb=15", "ok"),
]
WARM_PATH = "/robots.txt"


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def measure_child(base_url: str, path: str, max_bytes: int) -> dict:
    """One download in this (child) process: the RSS it added and what the client said."""
    sys.path.insert(0, str(REPO))
    from mpds_pipeline.net.client import PoliteClient
    from mpds_pipeline.net.client_settings import ClientSettings

    settings = ClientSettings(
        base_url=base_url,
        rate_per_second=0,
        concurrency=1,
        max_retries=0,
        timeout_s=60,
        obey_robots=False,
        extra_allowed_hosts=(),
    )

    async def run() -> dict:
        async with PoliteClient(settings) as client:
            await client.fetch(base_url + WARM_PATH)  # threads, connection and imports in place
            idle = _peak_rss_mb()
            started = time.perf_counter()
            resp = await client.fetch(base_url + path, max_bytes=max_bytes)
            elapsed = time.perf_counter() - started
            peak = _peak_rss_mb()
        return {
            "idle_mb": round(idle, 1),
            "peak_mb": round(peak, 1),
            "added_mb": round(peak - idle, 1),
            "elapsed_s": round(elapsed, 3),
            "status_code": resp.status_code,
            "too_large": resp.too_large,
            "bytes": len(resp.content),
            "error": resp.error,
        }

    return asyncio.run(run())


def measure_all(max_bytes: int = IMAGE_CAP) -> list[dict]:
    sys.path.insert(0, str(REPO))
    from mpds_pipeline.sample_server import FaultPlan, SampleImdbServer

    rules = ";".join(f"{rule},path=^/hostile/{n}$" for n, (_name, rule, _want) in enumerate(BODIES))
    results = []
    with SampleImdbServer(faults=FaultPlan.parse(rules)) as server:
        for n, (name, rule, want) in enumerate(BODIES):
            child = subprocess.run(
                [sys.executable, __file__, "--child", server.base_url, f"/hostile/{n}", str(max_bytes)],
                capture_output=True,
                text=True,
                timeout=300,
                cwd=REPO,
            )
            if child.returncode != 0:
                raise RuntimeError(f"{name}: the download child failed:\n{child.stderr[-3000:]}")
            results.append(
                {
                    "body": name,
                    "rule": rule,
                    "expected": want,
                    "max_bytes": max_bytes,
                    **json.loads(child.stdout.strip().splitlines()[-1]),
                }
            )
    return results


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", action="store_true", help="one JSON object per line")
    parser.add_argument("--max-bytes", type=int, default=IMAGE_CAP, help="the body cap passed to fetch()")
    parser.add_argument("--child", nargs=3, metavar=("BASE_URL", "PATH", "MAX_BYTES"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        base_url, path, max_bytes = args.child
        print(json.dumps(measure_child(base_url, path, int(max_bytes))))
        return 0
    results = measure_all(args.max_bytes)
    if args.json:
        for row in results:
            print(json.dumps(row))
        return 0
    print(f"cap {args.max_bytes:,} bytes; goal: added RSS <= {GOAL_MB} MB")
    print(f"{'body':38} {'added MB':>9} {'idle MB':>8} {'time s':>7}  outcome")
    for row in results:
        outcome = (
            "refused: " + row["error"] if row["too_large"] else f"HTTP {row['status_code']}, {row['bytes']:,} bytes"
        )
        print(f"{row['body']:38} {row['added_mb']:9.1f} {row['idle_mb']:8.1f} {row['elapsed_s']:7.2f}  {outcome}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
