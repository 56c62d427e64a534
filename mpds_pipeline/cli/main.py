"""The ``mpds`` command: parse pages, run the sample IMDb server, run the demo, open
the Dagster UI and the review page on a data directory."""

from __future__ import annotations

import argparse
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="mpds", description="MPDS pipeline tools")
    commands = parser.add_subparsers(dest="command", required=True)

    parse = commands.add_parser("parse", help="parse saved IMDb pages, one JSON object per line")
    parse.add_argument("paths", nargs="+")

    server = commands.add_parser("sample-server", help="serve generated IMDb-like pages on loopback")
    server.add_argument("--host", default="127.0.0.1")
    server.add_argument("--port", type=int, default=8000)
    server.add_argument("--faults", default="", help="fault spec, e.g. '429:0.05,503:0.05' (see sample_server.faults)")
    server.add_argument("--seed", type=int, default=0)

    demo = commands.add_parser("demo", help="run the pipeline end to end against the sample server")
    demo.add_argument("--data-dir", default=None, help="default: $MPDS_DATA_DIR or ./data")
    demo.add_argument("--titles", type=int, default=200, help="title ids to crawl")
    demo.add_argument("--persons", type=int, default=200, help="person ids to crawl")

    ranges = commands.add_parser(
        "ranges",
        help="register the configured id ranges as partitions in the data directory's instance "
        "($DAGSTER_HOME, else <data dir>/.dagster; idempotent)",
    )
    ranges.add_argument("--data-dir", default=None, help="default: $MPDS_DATA_DIR or ./data")

    ui = commands.add_parser(
        "ui",
        help="start the Dagster UI and daemon (dagster dev) on a data directory and its instance (<data dir>/.dagster)",
    )
    ui.add_argument("--data-dir", default=None, help="default: $MPDS_DATA_DIR or ./data")
    ui.add_argument("--host", default="127.0.0.1")
    ui.add_argument("--port", type=int, default=3000)

    pool = commands.add_parser(
        "pool",
        help="who holds the imdb_requests slot, in the data directory's instance; frees the slots of this "
        "machine's dead runs (killed, or from before a restart)",
    )
    pool.add_argument("--data-dir", default=None, help="default: $MPDS_DATA_DIR or ./data")
    pool.add_argument(
        "--fail",
        metavar="RUN_ID",
        action="append",
        default=[],
        help="mark this run failed and free its slots: for a run of another machine that you checked is gone",
    )

    review = commands.add_parser("review", help="serve the caption review page on loopback")
    from ..review.server import build_parser as build_review_parser

    build_review_parser(review)

    args = parser.parse_args(argv)
    if args.command == "parse":
        from ..imdb.parse_cli import run_parse

        return run_parse(args.paths)
    if args.command == "sample-server":
        from ..sample_server.server import run_sample_server

        run_sample_server(args.host, args.port, args.faults, seed=args.seed)
        return 0
    if args.command == "demo":
        from .demo import run_demo

        return run_demo(data_dir=args.data_dir, titles=args.titles, persons=args.persons)
    if args.command == "ui":
        from .local import run_ui

        return run_ui(args.data_dir, args.host, args.port)
    if args.command == "pool":
        from .local import run_pool

        return run_pool(args.data_dir, args.fail)
    if args.command == "ranges":
        import os

        from .local import instance_environment, resolve_data_dir

        os.environ.update(instance_environment(resolve_data_dir(args.data_dir)))
        from dagster import DagsterInstance

        from ..defs.assets.partitions import register_configured_ranges

        with DagsterInstance.get() as instance:
            added = register_configured_ranges(instance)
        print(", ".join(f"{kind}: {count} new id ranges" for kind, count in added.items()))
        return 0
    if args.command == "review":
        import os

        from ..review.server import run_from_args

        return run_from_args(args, os.environ.get("MPDS_REVIEW_TOKEN"))
    return 2


if __name__ == "__main__":
    sys.exit(main())
