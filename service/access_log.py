"""Gunicorn's logger, minus shopper ids: the id in /v1/shoppers/<id> never reaches a log line.

Shopper routes carry the storefront's raw shopper id in the path, which gunicorn's
access log writes verbatim (and its error log on a failed request). `xsell serve`
passes ``--logger-class service.access_log.RedactingLogger``; every line of both logs
goes through `redact` after formatting, so a custom access log format cannot bring the
id back. The Referer header is dropped too: a page of the storefront may name its
shopper in its own address.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from gunicorn.glogging import Logger

__all__ = ["RedactShopperIds", "RedactingLogger", "redact"]

# Any spelling that could reach the shopper routes (case, repeated slashes); the id runs
# to the next slash, query, space or quote, so an encoded id (%2F, %20) goes whole.
_SHOPPER_PATH = re.compile(r"(/+v1/+shoppers/+)[^/?#\s\"]+", re.IGNORECASE)
REDACTED = "-"


def redact(text: str) -> str:
    """Replace the id in every /v1/shoppers/<id> path of `text` with "-"."""
    return _SHOPPER_PATH.sub(rf"\g<1>{REDACTED}", text)


class RedactShopperIds(logging.Filter):
    """Rewrite a record's message with the shopper ids taken out."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = redact(message)
        if redacted != message:
            record.msg, record.args = redacted, None
        return True


class RedactingLogger(Logger):
    """gunicorn.glogging.Logger whose access and error lines never hold a shopper id."""

    def setup(self, cfg: Any) -> None:
        super().setup(cfg)
        for log in (self.error_log, self.access_log):
            if not any(isinstance(f, RedactShopperIds) for f in log.filters):
                log.addFilter(RedactShopperIds())

    def atoms(self, resp: Any, req: Any, environ: dict[str, Any], request_time: Any) -> dict[str, Any]:
        atoms: dict[str, Any] = super().atoms(resp, req, environ, request_time)
        for name in ("f", "{referer}i", "{http_referer}e"):
            if name in atoms:
                atoms[name] = REDACTED
        return atoms
