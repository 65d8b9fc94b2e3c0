"""Typed exceptions for Horizon's JSend answers.

A JSend ``fail`` (the request was wrong, 4xx) becomes a :class:`RequestError`
carrying one message per offending field, except a 429 (over a rate or a
quota: :class:`UnavailableError`); a JSend ``error`` (the server failed,
5xx) becomes a :class:`ServerError` with the server's message. Work the
server ran as a job (a ``202``) that ended ``failed`` or ``cancelled`` is a
:class:`JobError`, and one still running after the client's ``job_timeout``
a :class:`TimeoutError`.
"""

from __future__ import annotations

from typing import Any, Dict, Optional


class HorizonError(Exception):
    """Base class of every error this client raises."""

    def __init__(self, message: str, status_code: Optional[int] = None) -> None:
        super().__init__(message)
        self.message = message
        self.status_code = status_code


class RequestError(HorizonError):
    """A JSend ``fail``: the request was wrong (HTTP 4xx).

    ``fields`` maps each offending field (``"series[2].values"``, ``"method"``,
    ``"body"``, ...) to what is wrong with it.
    """

    def __init__(self, fields: Dict[str, str], status_code: int) -> None:
        self.fields: Dict[str, str] = dict(fields)
        text = "; ".join(f"{k}: {v}" for k, v in self.fields.items()) or "request refused"
        super().__init__(f"HTTP {status_code}: {text}", status_code)


class NotFoundError(RequestError):
    """A JSend ``fail`` with 404: an unknown model or route."""


class ServerError(HorizonError):
    """A JSend ``error``: the server failed (HTTP 5xx).

    ``status_code`` is None for the outcome of a job (no HTTP answer of its
    own); ``data`` is then the job's last answer.
    """

    def __init__(self, message: str, status_code: Optional[int], data: Any = None) -> None:
        super().__init__(f"HTTP {status_code}: {message}" if status_code is not None else message, status_code)
        self.server_message = message
        self.data = data


class UnavailableError(ServerError):
    """503 (or 429) still answered after every retry: store, broker or capacity unavailable."""


class TimeoutError(ServerError):  # noqa: A001 - mirrors the HTTP meaning, lives in this module
    """504: a wait or a fit took longer than the server's timeout; or a job
    still running after the client's ``job_timeout`` (``status_code`` None,
    ``data`` the job's last answer; the job goes on)."""


class JobError(ServerError):
    """A job (a fit or backtest the server answered ``202`` for) ended
    ``failed`` or ``cancelled``.

    ``job`` (also ``data``) is the job's last answer: ``id``, ``kind``,
    ``status``, ``error``, ``progress``...; ``status_code`` is None.
    """

    def __init__(self, message: str, job: Dict[str, Any]) -> None:
        super().__init__(message, None, job)
        self.job: Dict[str, Any] = job
