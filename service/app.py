"""create_app: build the xsell Flask app (one per gunicorn worker)."""

from __future__ import annotations

import logging
import os

from flask import Flask, Response

from service import (
    bench,
    errors,
    feedback,
    health,
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


def create_app(settings: Settings | None = None) -> Flask:
    """Build the xsell app; tests and the CLI pass their own settings."""
    settings = settings or Settings()
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(process)d %(name)s %(levelname)s %(message)s"
    )
    app = Flask(__name__)
    app.config["MAX_CONTENT_LENGTH"] = settings.max_body_bytes
    app.extensions["xsell"] = Resources.open(settings)
    errors.register(app)
    for blueprint in (
        rank.bp,
        offers.bp,
        feedback.bp,
        shoppers.bp,
        models.bp,
        health.bp,
        metrics.bp,
        openapi.bp,
    ):
        app.register_blueprint(blueprint)
    personalizer.register(app)
    if settings.bench_endpoints:
        app.register_blueprint(bench.bp)
    worker = str(os.getpid())

    @app.after_request
    def _name_the_worker(response: Response) -> Response:
        # Lets operators (and the multi-worker tests) see which process answered.
        response.headers["X-Xsell-Worker"] = worker
        return response

    return app
