"""The fixture server with fault injection: ``replay.server`` plus ``--fault`` and ``--robots``.

Run as ``PYTHONPATH=tests python -m support.faultserver [replay.server's options] --fault …``;
``FaultServer`` starts one in a child process, as ``ReplayServer`` does the plain one.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import ClassVar

from replay.server import ReplayServer, add_serve_arguments, checked, serve
from support.faults import FaultPlan, FaultRule

#: The folder that holds ``support`` (tests/): on the child's PYTHONPATH.
TESTS = Path(__file__).resolve().parents[1]


def add_fault_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--fault",
        action="append",
        default=[],
        type=checked(FaultRule.parse),
        metavar="PATH_REGEX=SPEC",
        help="misbehave on matching paths, one SPEC step per request: 503,503,200 or drop, short, hang, "
        "429:SECS, big:BYTES, gzipbomb, charset:NAME, nocharset, metacharset:NAME, latemeta:NAME, "
        "liecharset:NAME (see tests/support/faults.py); repeatable, the first matching rule wins",
    )
    parser.add_argument(
        "--robots",
        action="append",
        default=[],
        type=checked(lambda value: FaultPlan.from_args(robots=[value])),
        metavar="SPEC",
        help="robots.txt: disallow:/PATH adds a Disallow line; 404, 503, hang … answer it so; repeatable",
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m support.faultserver", description=__doc__)
    add_serve_arguments(parser)
    add_fault_arguments(parser)
    args = parser.parse_args(argv)
    plan = FaultPlan.from_args(args.fault, args.robots)
    plan.prepare()
    return serve(args, misbehaviour=plan)


class FaultServer(ReplayServer):
    """A fault-injecting fixture server in a child process, for the duration of a ``with`` block."""

    module: ClassVar[str] = "support.faultserver"
    env: ClassVar[dict[str, str]] = {
        "PYTHONPATH": os.pathsep.join(filter(None, [str(TESTS), os.environ.get("PYTHONPATH")]))
    }


if __name__ == "__main__":
    sys.exit(main())
