"""The service's own exceptions: a leaf module, importing nothing from ``service``.

Views, the resources and the key checks raise these; ``service.errors`` turns them
(and the domain errors of ``logs`` and ``policies``) into HTTP answers. Keeping them
here lets every module raise them without importing the error handlers, so no cycle
runs through ``service.errors``.
"""

from __future__ import annotations

__all__ = ["AuthError", "InvalidField", "ModelUnavailable", "NotFound", "UnsupportedBody"]


class ModelUnavailable(Exception):
    """No model can be served right now."""


class InvalidField(ValueError):
    """A request field is well-formed JSON but unusable; `field` names it."""

    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}")
        self.field = field


class UnsupportedBody(ValueError):
    """A request body is not declared as JSON (415); a cross-site form could have sent it."""


class NotFound(LookupError):
    """A resource named in the path does not exist; `field` names the path parameter."""

    def __init__(self, field: str, message: str):
        super().__init__(message)
        self.field = field


class AuthError(Exception):
    """The request lacks a valid API key; `status` (401 or 403) and `code` say which way."""

    def __init__(self, status: int, code: str, message: str):
        super().__init__(message)
        self.status, self.code = status, code
