"""``mpds parse PATH...``: print each page's record as one JSON line.

One line per file: the record's keys plus ``kind``; a file that cannot be parsed
prints ``{"path": ..., "error": ...}``. Every file is tried; the exit status is 1 if
any failed.
"""

from __future__ import annotations

import argparse
import sys
from typing import TextIO

import orjson

from .parsing import parse_file
from .records import ParseError


def run_parse(paths: list[str], out: TextIO = sys.stdout) -> int:
    """Parse every file in ``paths``, writing JSON lines to ``out``; 1 if any failed.
    A progress bar goes to stderr when it is a terminal."""
    from tqdm import tqdm

    failed = 0
    for path in tqdm(paths, desc="mpds parse", unit="page", disable=None if len(paths) > 1 else True):
        record = parse_file(path)
        if isinstance(record, ParseError):
            failed += 1
        out.write(orjson.dumps(record.to_dict()).decode("utf-8") + "\n")
    out.flush()
    return 1 if failed else 0


def main(argv: list[str] | None = None) -> int:
    """Stand-alone entry point (the ``mpds`` console script wires ``run_parse`` itself)."""
    parser = argparse.ArgumentParser(prog="mpds parse", description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="+", metavar="PATH", help="saved IMDb pages")
    args = parser.parse_args(argv)
    return run_parse(args.paths)


if __name__ == "__main__":
    sys.exit(main())
