"""Serve the job routes alone, as a killable process for the durability tests.

``python tests/helpers/jobs_server.py --port P --journal FILE --upstream URL [--upstream URL ...]``
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from aiohttp import web

from wanx.jobs.app import create_jobs_app
from wanx.jobs.runner import RunnerSettings
from wanx.jobs.service import JobSettings
from wanx.logs import configure_logging


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--journal", type=Path, required=True)
    parser.add_argument("--upstream", action="append", required=True)
    parser.add_argument("--poll", type=float, default=0.1)
    parser.add_argument("--max-attempts", type=int, default=3)
    args = parser.parse_args()
    configure_logging(level="info")
    logging.getLogger("aiohttp").setLevel(logging.WARNING)
    settings = JobSettings(
        journal=args.journal,
        upstreams=tuple(args.upstream),
        runner=RunnerSettings(poll_interval=args.poll, max_attempts=args.max_attempts),
    )
    web.run_app(create_jobs_app(settings), host="127.0.0.1", port=args.port, access_log=None, print=None)


if __name__ == "__main__":
    main()
