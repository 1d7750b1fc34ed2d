"""create_app: build the xsell Flask app (one per gunicorn worker)."""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable

from flask import Flask, Response

from service import (
    bench,
    config,
    console,
    errors,
    experiments,
    feedback,
    health,
    http_metrics,
    intake,
    metrics,
    models,
    offers,
    openapi,
    personalizer,
    rank,
    shoppers,
)
from service.resources import Resources
from service.settings import Settings

__all__ = ["create_app"]


def create_app(settings: Settings | None = None, *, clock: Callable[[], float] = time.time) -> Flask:
    """Build the xsell app; tests and the CLI pass their own settings (tests also a clock)."""
    settings = settings or Settings()
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(process)d %(name)s %(levelname)s %(message)s"
    )
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes
    app.extensions["xsell"] = Resources.open(settings, clock=clock)
    errors.register(app)
    http_metrics.instrument(app)  # request latency per route, answers by status and error code
    intake.register(app)  # 415 for bodies not sent as JSON, 413 for over-long chunked ones
    for blueprint in (
        rank.bp,
        offers.bp,
        feedback.bp,
        shoppers.bp,
        models.bp,
        health.bp,
        metrics.bp,
        config.bp,
        experiments.bp,  # experiments against a holdout (#15)
        openapi.bp,
    ):
        app.register_blueprint(blueprint)
    personalizer.register(app)
    app.register_blueprint(console.bp)  # the operator console, /console/
    if settings.bench_endpoints:
        app.register_blueprint(bench.bp)
    worker = str(os.getpid())

    @app.after_request
    def _name_the_worker(response: Response) -> Response:
        # Lets operators (and the multi-worker tests) see which process answered.
        response.headers["X-Xsell-Worker"] = worker
        return response

    return app
