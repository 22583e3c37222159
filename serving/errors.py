"""The errors a request can end in, and how they cross a process boundary.

Every error the API answers with carries what the client needs: :class:`RequestError` (422) names the field
that is wrong for the served model; :class:`Overloaded` (503 with ``Retry-After``) says the endpoint's queue
is full; :class:`Unavailable` (503) says the replica that held the request is gone; :class:`DeadlineExceeded`
(504) says the request ran past ``request_timeout_s``. Deployments answer them as
``{"error": {"kind", "field", "message"}}`` (:func:`error_answer`) and the ingress raises them again
(:func:`raise_error`), so the mapping does not depend on how Ray wraps exceptions.
"""

from __future__ import annotations

import time

__all__ = [
    "ServingError",
    "RequestError",
    "Overloaded",
    "Unavailable",
    "DeadlineExceeded",
    "error_answer",
    "raise_error",
    "check_deadline",
]


class ServingError(Exception):
    """Base of the errors the API maps to a status; ``field`` names the culprit, ``message`` says why."""

    status = 500
    kind = "internal"

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class RequestError(ServingError, ValueError):
    """A request that is well-typed but wrong for the served model (-> 422)."""

    status = 422
    kind = "request"


class Overloaded(ServingError):
    """The endpoint already holds as many requests as it may queue (-> 503 with ``Retry-After``)."""

    status = 503
    kind = "overloaded"

    def __init__(self, field: str, message: str, retry_after_s: float = 1.0) -> None:
        super().__init__(field, message)
        self.retry_after_s = retry_after_s


class Unavailable(Overloaded):
    """The replica serving the request died or cannot be reached (-> 503 with ``Retry-After``)."""

    kind = "unavailable"


class DeadlineExceeded(ServingError):
    """The request ran past its deadline and was stopped (-> 504)."""

    status = 504
    kind = "deadline"


_KINDS = {c.kind: c for c in (RequestError, Overloaded, Unavailable, DeadlineExceeded)}


def error_answer(e: ServingError) -> dict:
    """The JSON-able form of ``e`` that a deployment returns instead of raising."""
    return {"error": {"kind": e.kind, "field": e.field, "message": e.message}}


def raise_error(result):
    """``result`` unchanged, or the :class:`ServingError` its ``{"error": ...}`` form describes."""
    if isinstance(result, dict) and "error" in result:
        err = result["error"]
        raise _KINDS.get(err.get("kind", "request"), RequestError)(err["field"], err["message"])
    return result


def check_deadline(deadline: float | None, what: str = "request") -> None:
    """Raise :class:`DeadlineExceeded` once ``time.time()`` is past ``deadline`` (None: no deadline).

    Deadlines are wall-clock seconds since the epoch, so they keep their meaning across the processes of
    one machine (the ingress sets it, a replica checks it between steps of its work)."""
    if deadline is not None and time.time() > deadline:
        raise DeadlineExceeded(what, "stopped at the server's request_timeout_s; ask for less work")
