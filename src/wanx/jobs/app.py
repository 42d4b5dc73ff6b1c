"""A stand-alone aiohttp app serving only the job routes (tests, and the gateway before it mounts them)."""

from __future__ import annotations

from aiohttp import web

from wanx.jobs.api import add_job_routes
from wanx.jobs.service import JobSettings, ViewerOf, jobs_context, single_user
from wanx.jobs.validate import Validator, basic_validate

__all__ = ["create_jobs_app"]


def create_jobs_app(
    settings: JobSettings, *, validate: Validator = basic_validate, viewer: ViewerOf = single_user
) -> web.Application:
    app = web.Application(client_max_size=64 << 20)
    app.cleanup_ctx.append(jobs_context(settings, validate=validate, viewer=viewer))
    add_job_routes(app)
    return app
