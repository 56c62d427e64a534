"""Crawl-engine benchmark (not a test): pages/s and peak RSS on loopback, rate limit off.

The sample server runs in its own process, so its memory is not counted; the crawl runs
in a child process whose peak RSS (ru_maxrss) is reported.

    .venv/bin/python benchmarks/bench_crawl.py                 # 10,000 ids, concurrency 16
    .venv/bin/python benchmarks/bench_crawl.py --ids 2000 --mode data
Goal: peak RSS <= 500 MB for a 10,000-id partition.
"""

from __future__ import annotations

import argparse
import json
import re
import resource
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def run_child(args: argparse.Namespace) -> None:
    sys.path.insert(0, str(REPO))
    from mpds_pipeline.imdb.crawl import crawl_partition
    from mpds_pipeline.net.client_settings import ClientSettings

    settings = ClientSettings(
        base_url=args.base_url,
        rate_per_second=0,
        concurrency=args.concurrency,
        timeout_s=30,
        max_retries=2,
        backoff_base_s=0.05,
    )
    result = crawl_partition(
        args.kind, range(1, args.ids + 1), settings, Path(args.archive_dir), archive_mode=args.mode
    )
    archive = Path(args.archive_dir) / "pages.warc.gz"
    print(
        json.dumps(
            {
                "ids": args.ids,
                "concurrency": args.concurrency,
                "archive_mode": args.mode,
                "elapsed_s": round(result.elapsed_s, 2),
                "pages_per_s": round(result.pages_per_s, 1),
                "requests_made": result.requests_made,
                "status_counts": result.status_counts(),
                "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
                "archive_mb": round(archive.stat().st_size / 2**20, 1),
            }
        )
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--ids", type=int, default=10_000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--kind", default="title", choices=["title", "person"])
    parser.add_argument("--mode", default="full", choices=["full", "data"])
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--base-url", help=argparse.SUPPRESS)
    parser.add_argument("--archive-dir", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        run_child(args)
        return 0

    server = subprocess.Popen(
        [sys.executable, "-m", "mpds_pipeline.sample_server", "--port", "0"],
        cwd=REPO,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        base_url = re.search(r"http://\S+", server.stdout.readline()).group(0)
        with tempfile.TemporaryDirectory() as tmp:
            child = subprocess.run(
                [
                    sys.executable,
                    __file__,
                    "--child",
                    "--base-url",
                    base_url,
                    "--archive-dir",
                    tmp,
                    "--ids",
                    str(args.ids),
                    "--concurrency",
                    str(args.concurrency),
                    "--kind",
                    args.kind,
                    "--mode",
                    args.mode,
                ],
                cwd=REPO,
                capture_output=True,
                text=True,
                check=True,
            )
        figures = json.loads(child.stdout.strip().splitlines()[-1])
    finally:
        server.terminate()
        server.wait(timeout=10)
    figures["rss_goal_met"] = figures["peak_rss_mb"] <= 500
    print(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
