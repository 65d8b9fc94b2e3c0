"""The HTTP client: DataFrames in, statsforecast-style DataFrames out.

Every request goes through :meth:`HorizonClient._request`, which retries 429
and 503 answers (and connection failures) with exponential backoff, honouring
``Retry-After``, and turns JSend ``fail``/``error`` answers into the typed
exceptions of :mod:`horizon_client.errors`; a ``202`` (work accepted as a
job: large fits and backtests) is followed to the job's end by
:meth:`HorizonClient._follow_job`, so callers get the same answer as a
synchronous one. Fits carry an ``Idempotency-Key``, so a retried fit never
fits twice.
"""

from __future__ import annotations

import email.utils
import json
import numbers
import os
import random
import time
import urllib.parse
import uuid
from dataclasses import dataclass, field
from typing import Any, Dict, Iterable, List, Optional, Sequence, Union

import httpx
import numpy as np
import pandas as pd

from .errors import (
    HorizonError,
    JobError,
    NotFoundError,
    RequestError,
    ServerError,
    TimeoutError,
    UnavailableError,
)

SeasonLength = Union[int, Sequence[int], None]
Levels = Union[float, Iterable[float], None]

#: Statuses worth retrying: rate limited, temporarily unavailable.
RETRY_STATUSES = frozenset({429, 503})

#: A job's statuses once it has ended (``GET /v1/jobs/{id}``).
JOB_ENDED = frozenset({"succeeded", "failed", "cancelled"})

#: The longest wait between two looks at a running job, in seconds (the
#: server updates a job's progress every second).
JOB_POLL_MAX = 1.0

#: The server's default limit on a JSON body (``--max-body-bytes``).
DEFAULT_MAX_JSON_BYTES = 64 * 1024 * 1024


@dataclass
class FitResult:
    """What a fit answered: the model, its new version and one row per series."""

    model: str
    version: int
    method: str
    series: pd.DataFrame = field(repr=False)
    raw: Dict[str, Any] = field(repr=False, default_factory=dict)


@dataclass
class _Columns:
    """The names of the id, time and target columns of the caller's frames."""

    id_col: str
    time_col: str
    target_col: str


@dataclass
class _Encoded:
    """A long-format frame in Horizon's compact form, plus what decoding needs."""

    body: Dict[str, Any]
    ids: List[Any]
    # Per series: the caller's time values (to rebuild integer time axes).
    times: Dict[Any, np.ndarray]
    kind: str  # "datetime", "datetime_tz" (sent as UTC), "datetime_local" (sent as wall clock) or "int"
    tz: Any = None
    # The caller's id for each id as sent (a string).
    by_sent: Dict[str, Any] = field(default_factory=dict)


class HorizonClient:
    """A client for a Horizon server.

    Args:
        base_url: the server, e.g. ``"http://127.0.0.1:8080"``; default
            ``$HORIZON_URL`` or ``http://127.0.0.1:8080``.
        api_key: sent as ``Authorization: Bearer <key>``; default
            ``$HORIZON_API_KEY`` (none when unset).
        timeout: seconds per request (fits of many series can take long).
        max_retries: retries of a 429/503 answer or a failed connection.
        backoff: first wait between retries, in seconds, doubled each time
            (capped at ``max_backoff``) unless the server sends ``Retry-After``.
        job_timeout: seconds to wait for work the server runs as a job (a
            ``202``: fits of more than a million values, backtests of more
            than 10,000 fits) before raising :class:`TimeoutError` (the job
            goes on); None waits as long as the job runs.
        max_json_bytes: the server's limit on a JSON body
            (``--max-body-bytes``, 64 MiB by default). A fit whose JSON body
            would be larger is sent as CSV (the server takes those up to
            4 GiB); a backtest that large is refused locally (``ValueError``).
        id_col, time_col, target_col: the column names of input frames.
    """

    def __init__(
        self,
        base_url: Optional[str] = None,
        api_key: Optional[str] = None,
        *,
        timeout: float = 300.0,
        max_retries: int = 5,
        backoff: float = 0.5,
        max_backoff: float = 30.0,
        job_timeout: Optional[float] = 3600.0,
        max_json_bytes: int = DEFAULT_MAX_JSON_BYTES,
        id_col: str = "unique_id",
        time_col: str = "ds",
        target_col: str = "y",
        transport: Optional[httpx.BaseTransport] = None,
    ) -> None:
        self.base_url = (base_url or os.environ.get("HORIZON_URL") or "http://127.0.0.1:8080").rstrip("/")
        self.api_key = api_key if api_key is not None else os.environ.get("HORIZON_API_KEY")
        self.max_retries = max_retries
        self.backoff = backoff
        self.max_backoff = max_backoff
        self.job_timeout = job_timeout
        self.max_json_bytes = max_json_bytes
        self.columns = _Columns(id_col, time_col, target_col)
        headers = {"Accept": "application/json", "User-Agent": "horizon-client-python/0.1"}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        self._http = httpx.Client(base_url=self.base_url, headers=headers, timeout=timeout, transport=transport)
        # The method of each model this client fitted: the forecast columns' name.
        self._methods: Dict[str, str] = {}
        # How each fitted model's time axis was encoded, to decode forecasts.
        self._encodings: Dict[str, _Encoded] = {}

    # ---- lifecycle ----

    def close(self) -> None:
        """Closes the connection pool."""
        self._http.close()

    def __enter__(self) -> "HorizonClient":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # ---- API ----

    def health(self) -> bool:
        """Whether the server answers ``GET /healthz``."""
        return bool(self._request("GET", "/healthz").get("alive"))

    def fit(
        self,
        df: pd.DataFrame,
        model: str,
        season_length: SeasonLength = None,
        freq: Optional[str] = None,
        method: str = "auto",
        *,
        nonnegative: Optional[bool] = None,
        id_col: Optional[str] = None,
        time_col: Optional[str] = None,
        target_col: Optional[str] = None,
    ) -> FitResult:
        """Fits a new version of ``model`` on every series of ``df``.

        ``df`` is in the long format (one row per observation: id, timestamp,
        value; NaN is a missing value). It travels in one request: JSON in
        the compact form (``sizes``/``y``/``ids``/``ds``), or a CSV table
        when that JSON would be over ``max_json_bytes``. A fit the server
        runs as a job (more than a million values) is waited for.

        Args:
            df: the observations.
            model: the model's name (1-64 of ``A-Z a-z 0-9 _ - .``).
            season_length: an int, a list of ints (several seasons) or None
                (the server looks for seasons itself).
            freq: a pandas frequency alias (``"D"``, ``"h"``, ``"MS"``...);
                None lets the server infer it from the timestamps.
            method: ``"auto"`` or one of the server's methods (``"ets"``,
                ``"arima"``, ``"theta"``, ...).
            nonnegative: clip forecasts at zero (None: the server decides).

        Returns:
            A :class:`FitResult`; ``series`` has one row per series with the
            model chosen for it.

        Raises:
            JobError: the fit ran as a job and failed or was cancelled.
            TimeoutError: that job was still running after ``job_timeout``.
        """
        path = f"/v1/models/{_path(model)}"
        cols = self._cols(id_col, time_col, target_col)
        encoded = _encode(df, cols)
        body = dict(encoded.body)
        body["method"] = method
        _add_options(body, season_length, freq, nonnegative)
        headers = {"Idempotency-Key": uuid.uuid4().hex, "Content-Type": "application/json"}
        params: Optional[Dict[str, str]] = None
        # A frame surely over the limit is not encoded as JSON first: for a
        # large one that costs as much as the CSV it is then sent as.
        over = _json_size_at_least(body) > self.max_json_bytes
        content = b"" if over else _json_bytes(body)
        if over or len(content) > self.max_json_bytes:
            # Over the JSON limit: the same rows as a CSV table (the server
            # takes those up to 4 GiB), the options in the query.
            content = _csv_bytes(encoded)
            params = _table_params(body)
            headers["Content-Type"] = "text/csv"
        data = self._request("PUT", path, content=content, params=params, headers=headers)
        self._methods[model] = str(data.get("method", method))
        self._encodings[model] = encoded
        rows = [
            {
                cols.id_col: _original_id(encoded, s.get("id")),
                "chosen": s.get("chosen"),
                "fallback": s.get("fallback"),
                "n_obs": s.get("n_obs"),
                "n_missing": s.get("n_missing"),
            }
            for s in data.get("series", [])
        ]
        return FitResult(
            model=str(data.get("model", model)),
            version=int(data.get("version", 0)),
            method=self._methods[model],
            series=pd.DataFrame(rows),
            raw=data,
        )

    def forecast(
        self,
        model: Optional[str] = None,
        h: int = 1,
        level: Levels = None,
        *,
        df: Optional[pd.DataFrame] = None,
        series: Optional[Iterable[Any]] = None,
        season_length: SeasonLength = None,
        freq: Optional[str] = None,
        method: str = "auto",
        nonnegative: Optional[bool] = None,
        id_col: Optional[str] = None,
        time_col: Optional[str] = None,
        target_col: Optional[str] = None,
    ) -> pd.DataFrame:
        """Forecasts ``h`` steps ahead.

        With ``model``, forecasts its newest version; with ``df``, first fits
        ``df`` (to ``model``, or to a new uniquely named model) and forecasts
        that: ``client.forecast(df=df, h=12)``.

        Args:
            model: the model to forecast.
            h: the number of steps (a whole number).
            level: prediction interval levels in percent, e.g. ``[80, 95]``
                (any sequence or array of numbers, or one number).
            df: data to fit first (one-shot forecast).
            series: forecast only these series ids.
            season_length, freq, method, nonnegative: fit options, used with ``df``.

        Returns:
            A DataFrame ``unique_id, ds, <method>, <method>-lo-80,
            <method>-hi-80, ...`` (statsforecast's columns).
        """
        cols = self._cols(id_col, time_col, target_col)
        # Checked before a one-shot fit, which would be wasted on a bad h.
        horizon = _whole(h, "h")
        levels = _levels(level)
        if df is not None:
            model = model or f"oneshot-{uuid.uuid4().hex[:16]}"
            self.fit(
                df,
                model,
                season_length=season_length,
                freq=freq,
                method=method,
                nonnegative=nonnegative,
                id_col=cols.id_col,
                time_col=cols.time_col,
                target_col=cols.target_col,
            )
        if model is None:
            raise ValueError("forecast needs a model name or a DataFrame (df=...)")
        body: Dict[str, Any] = {"horizon": horizon, "level": levels}
        encoded = self._encodings.get(model)
        if series is not None:
            body["series"] = [str(s) for s in series]
        data = self._request("POST", f"/v1/models/{_path(model)}/forecast", json_body=body)
        alias = self._method_of(model)
        return _forecast_frame(data.get("series", []), alias, levels, horizon, cols, encoded)

    def cross_validation(
        self,
        df: pd.DataFrame,
        h: int,
        n_windows: int = 1,
        step_size: Optional[int] = None,
        level: Levels = None,
        *,
        method: str = "auto",
        season_length: SeasonLength = None,
        freq: Optional[str] = None,
        refit: bool = True,
        nonnegative: Optional[bool] = None,
        id_col: Optional[str] = None,
        time_col: Optional[str] = None,
        target_col: Optional[str] = None,
    ) -> pd.DataFrame:
        """Rolling-origin evaluation (``POST /v1/backtest``).

        The last ``n_windows`` windows of ``h`` steps (origins ``step_size``
        apart, default ``h``) are forecast from the data before them. A
        backtest the server runs as a job (more than 10,000 fits) is waited
        for. The data travels as JSON (the endpoint takes nothing else), so
        a frame over ``max_json_bytes`` of it is a ``ValueError``.

        Returns:
            A DataFrame ``unique_id, ds, cutoff, y, <method>, <method>-lo-80,
            ...`` like statsforecast's ``cross_validation``; the server's
            metrics (MAE, RMSE, sMAPE, MASE, coverage) overall and per series
            are in ``result.attrs["metrics"]`` and
            ``result.attrs["series_metrics"]``.

        Raises:
            JobError: the backtest ran as a job and failed or was cancelled.
            TimeoutError: that job was still running after ``job_timeout``.
        """
        cols = self._cols(id_col, time_col, target_col)
        horizon = _whole(h, "h")
        levels = _levels(level)
        encoded = _encode(df, cols)
        body = dict(encoded.body)
        body.update(
            {
                "method": method,
                "horizon": horizon,
                "n_windows": _whole(n_windows, "n_windows"),
                "refit": bool(refit),
                "level": levels,
                "include_forecasts": True,
            }
        )
        if step_size is not None:
            body["step_size"] = _whole(step_size, "step_size")
        _add_options(body, season_length, freq, nonnegative)
        content = _json_bytes(body)
        if len(content) > self.max_json_bytes:
            raise ValueError(
                f"this backtest is {len(content) / 2**20:.1f} MiB of JSON, over max_json_bytes "
                f"({self.max_json_bytes / 2**20:.1f} MiB, the server's JSON body limit), and POST "
                "/v1/backtest takes JSON only: cross-validate the series in groups"
            )
        data = self._request("POST", "/v1/backtest", content=content, headers={"Content-Type": "application/json"})
        alias = str(data.get("method", method))
        frame = _backtest_frame(data.get("series", []), alias, levels, cols, encoded)
        frame.attrs["metrics"] = data.get("metrics", {})
        frame.attrs["series_metrics"] = {
            _original_id(encoded, s.get("id")): s.get("metrics", {}) for s in data.get("series", [])
        }
        return frame

    def models(self) -> List[Dict[str, Any]]:
        """Every model on the server (``GET /v1/models``, all pages)."""
        out: List[Dict[str, Any]] = []
        after: Optional[str] = None
        while True:
            params = {"limit": "1000"}
            if after is not None:
                params["after"] = after
            data = self._request("GET", "/v1/models", params=params)
            out.extend(data.get("models", []))
            after = data.get("next_after")
            if after is None:
                return out

    def describe(self, model: str) -> Dict[str, Any]:
        """The first page of a model's versions (``GET /v1/models/{model}``)."""
        return self._request("GET", f"/v1/models/{_path(model)}")

    # ---- plumbing ----

    def _cols(self, id_col: Optional[str], time_col: Optional[str], target_col: Optional[str]) -> _Columns:
        return _Columns(
            id_col or self.columns.id_col,
            time_col or self.columns.time_col,
            target_col or self.columns.target_col,
        )

    def _method_of(self, model: str) -> str:
        known = self._methods.get(model)
        if known:
            return known
        # A model fitted elsewhere: its newest version says which method.
        info = self.describe(model)
        latest = info.get("latest_version")
        if latest is not None:
            page = self._request("GET", f"/v1/models/{_path(model)}", params={"after": str(int(latest) - 1), "limit": "1"})
            for v in page.get("versions", []):
                if v.get("method"):
                    self._methods[model] = str(v["method"])
                    return self._methods[model]
        return "auto"

    def _request(
        self,
        method: str,
        path: str,
        *,
        json_body: Optional[Dict[str, Any]] = None,
        content: Optional[bytes] = None,
        params: Optional[Dict[str, str]] = None,
        headers: Optional[Dict[str, str]] = None,
    ) -> Any:
        """Sends one request (with retries) and returns the JSend ``data``.

        The body is ``json_body``, or ``content`` with the ``Content-Type``
        in ``headers``. A ``202`` (work accepted as a job) is followed until
        the job ends: the answer is then the job's ``result``.
        """
        send_headers = dict(headers or {})
        if json_body is not None:
            content = _json_bytes(json_body)
            send_headers["Content-Type"] = "application/json"
        attempt = 0
        while True:
            try:
                response = self._http.request(method, path, content=content, params=params, headers=send_headers)
            except httpx.TransportError as e:
                if attempt >= self.max_retries:
                    raise UnavailableError(f"could not reach {self.base_url}: {e}", 503) from e
                self._sleep(attempt, None)
                attempt += 1
                continue
            retry_after = response.headers.get("Retry-After")
            wait = _retry_after_seconds(retry_after)
            if (
                response.status_code in RETRY_STATUSES
                and attempt < self.max_retries
                # A wait longer than we would give it (a storage quota: until
                # models are deleted) is no retry: say so at once.
                and (wait is None or wait <= self.max_backoff)
            ):
                self._sleep(attempt, retry_after)
                attempt += 1
                continue
            data = _unwrap(response)
            if response.status_code == 202 and isinstance(data, dict):
                job_id = urllib.parse.quote(str(data.get("id", "")), safe="")
                return self._follow_job(response.headers.get("Location") or f"/v1/jobs/{job_id}", data)
            return data

    def _follow_job(self, location: str, job: Dict[str, Any]) -> Any:
        """The ``result`` of the job at ``location`` (``/v1/jobs/{id}``, a
        ``202``'s ``Location``; ``job`` is the ``202``'s answer), looked at
        every 50 ms at first, then less often (at most every
        ``JOB_POLL_MAX`` seconds), until it ends or ``job_timeout`` passes.

        Raises:
            JobError: the job ended ``failed`` or ``cancelled``.
            TimeoutError: still running after ``job_timeout`` (the job goes on).
        """
        deadline = None if self.job_timeout is None else time.monotonic() + self.job_timeout
        wait = 0.05
        while True:
            status = job.get("status")
            name = f"{job.get('kind', 'job')} job {job.get('id', location)}"
            if status == "succeeded":
                if "result" not in job:
                    raise HorizonError(f"{name} succeeded without a result: {job}")
                return job["result"]
            if status in JOB_ENDED:
                reason = f": {job['error']}" if job.get("error") else ""
                raise JobError(f"{name} {status}{reason}", job)
            if deadline is not None:
                left = deadline - time.monotonic()
                if left <= 0:
                    progress = job.get("progress") or {}
                    raise TimeoutError(
                        f"{name} still {status} after job_timeout={self.job_timeout} s "
                        f"({progress.get('done')} of {progress.get('total')} series done); "
                        f"it goes on: GET {location} shows it",
                        None,
                        job,
                    )
                wait = min(wait, left)
            time.sleep(wait)
            wait = min(wait * 2, JOB_POLL_MAX)
            job = self._request("GET", location)

    def _sleep(self, attempt: int, retry_after: Optional[str]) -> None:
        wait = _retry_after_seconds(retry_after)
        if wait is None:
            wait = min(self.max_backoff, self.backoff * (2**attempt)) * random.uniform(0.5, 1.0)
        time.sleep(min(wait, self.max_backoff))


# ---- answers ----


def _unwrap(response: httpx.Response) -> Any:
    """The ``data`` of a JSend success, or the matching exception."""
    status = response.status_code
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict) or "status" not in body:
        text = response.text[:500]
        if status >= 500:
            raise _server_error(text or response.reason_phrase, status, None)
        if status >= 400:
            raise RequestError({"body": text or response.reason_phrase}, status)
        raise HorizonError(f"HTTP {status}: not a JSend answer: {text}", status)
    kind = body.get("status")
    if kind == "success" and status < 400:
        return body.get("data")
    if kind == "fail":
        data = body.get("data") or {}
        fields = {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {"body": str(data)}
        if status == 404:
            raise NotFoundError(fields, status)
        if status == 429:
            # Over a rate or a quota: not a malformed request.
            raise UnavailableError("; ".join(f"{k}: {v}" for k, v in fields.items()), status, data)
        raise RequestError(fields, status)
    message = str(body.get("message") or f"HTTP {status}")
    raise _server_error(message, int(body.get("code") or status), body.get("data"))


def _server_error(message: str, status: int, data: Any) -> ServerError:
    if status in (429, 503):
        return UnavailableError(message, status, data)
    if status == 504:
        return TimeoutError(message, status, data)
    return ServerError(message, status, data)


def _retry_after_seconds(value: Optional[str]) -> Optional[float]:
    """``Retry-After`` as seconds: either a number or an HTTP date."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


# ---- encoding ----


def _json_bytes(body: Dict[str, Any]) -> bytes:
    """A request body as compact JSON."""
    # allow_nan=False: a NaN that slipped through is our bug, not the server's.
    return json.dumps(body, allow_nan=False, separators=(",", ":")).encode()


def _json_size_at_least(body: Dict[str, Any]) -> int:
    """A lower bound of ``len(_json_bytes(body))`` for a compact-form body,
    without encoding it: every value takes at least a digit and a comma, and
    every timestamp its text, quotes and a comma (one frame's ISO
    timestamps all have the same length)."""
    size = 2 * len(body["y"])
    ds = body.get("ds")
    if ds:
        size += len(ds) * (len(ds[0]) + 3 if isinstance(ds[0], str) else 2)
    return size


def _whole(value: Any, name: str) -> int:
    """``value`` as an int: an integer, or a float without a fraction; text,
    ``2.7`` or a bool is a ``ValueError`` (``int()`` would truncate or split)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name} must be a whole number, not {value!r}")
    if isinstance(value, numbers.Integral):
        return int(value)
    if not float(value).is_integer():
        raise ValueError(f"{name} must be a whole number, not {value!r}")
    return int(value)


def _levels(level: Levels) -> List[float]:
    """Interval levels as floats: None, one number, or any sequence or array
    of numbers (``[80, 95]``, ``np.array([80, 95])``)."""
    if level is None:
        return []
    if isinstance(level, (str, bytes)):
        raise ValueError(f"level must be numbers such as [80, 95], not the text {level!r}")
    if isinstance(level, numbers.Real):
        return [float(level)]
    out = []
    for v in level:
        if isinstance(v, (str, bytes)):
            raise ValueError(f"level must be numbers such as [80, 95], not the text {v!r}")
        out.append(float(v))
    return out


def _add_options(body: Dict[str, Any], season_length: SeasonLength, freq: Optional[str], nonnegative: Optional[bool]) -> None:
    if season_length is not None:
        if isinstance(season_length, (str, bytes)):
            raise ValueError(f"season_length must be an integer or a list of integers, not the text {season_length!r}")
        if isinstance(season_length, numbers.Real):
            body["season_length"] = _whole(season_length, "season_length")
        else:
            body["season_length"] = [_whole(s, "season_length") for s in season_length]
    if freq is not None:
        body["freq"] = freq
    if nonnegative is not None:
        body["nonnegative"] = bool(nonnegative)


def _encode(df: pd.DataFrame, cols: _Columns) -> _Encoded:
    """A long-format frame as the compact form ``{ids, sizes, y, ds?}``."""
    missing = [c for c in (cols.id_col, cols.time_col, cols.target_col) if c not in df.columns]
    if missing:
        raise ValueError(f"the frame has no column {missing}; columns are {list(df.columns)}")
    if df.empty:
        raise ValueError("the frame has no rows")
    frame = df[[cols.id_col, cols.time_col, cols.target_col]]
    no_id = np.flatnonzero(frame[cols.id_col].isna().to_numpy())
    if len(no_id):
        raise ValueError(f"{cols.id_col} is missing at row {no_id[0]}: every row needs the id of its series")
    time = frame[cols.time_col]
    kind, tz = "int", None
    if isinstance(time.dtype, pd.PeriodDtype):
        # A period is sent as its start (pandas' own to_timestamp).
        time = time.dt.to_timestamp()
    if pd.api.types.is_datetime64_any_dtype(time):
        kind = "datetime"
    elif not pd.api.types.is_numeric_dtype(time):
        time = pd.to_datetime(time)
        kind = "datetime"
    # Checked in the caller's order, before sorting (which would move a
    # missing time to the end of its series), so that the row is theirs.
    missing = np.flatnonzero(time.isna().to_numpy())
    if len(missing):
        raise ValueError(f"{cols.time_col} is missing at row {missing[0]}: every row needs a timestamp or an integer position")
    if kind == "datetime":
        if getattr(time.dt, "tz", None) is not None:
            kind, tz = "datetime_tz", time.dt.tz
        _check_whole_seconds(time, tz, cols)
        t_col = time.to_numpy()
    else:
        t_col = _positions(time, cols)
    frame = pd.DataFrame({"id": frame[cols.id_col].to_numpy(), "t": t_col, "y": frame[cols.target_col].to_numpy()})
    frame = frame.sort_values(["id", "t"], kind="stable")
    ids_col = frame["id"].to_numpy()
    # Series boundaries of the sorted ids.
    change = np.flatnonzero(ids_col[1:] != ids_col[:-1]) + 1
    starts = np.concatenate([[0], change])
    sizes = np.diff(np.concatenate([starts, [len(frame)]]))
    ids = [ids_col[s] for s in starts]
    sent = [str(i) for i in ids]
    if len(set(sent)) != len(sent):
        clash = next(i for k, i in enumerate(ids) if sent.index(str(i)) != k)
        raise ValueError(f"ids {clash!r} of different types read the same as text ({str(clash)!r}); make them one type")
    y = frame["y"].to_numpy(dtype=float)
    if np.isinf(y).any():
        row = frame.index[np.flatnonzero(np.isinf(y))[0]]
        raise ValueError(f"{cols.target_col} is infinite at row {row}: use NaN for a missing value")
    # NaN (v != v) is a missing value; infinities were refused above.
    y_list: List[Optional[float]] = [None if v != v else v for v in y.tolist()]
    body: Dict[str, Any] = {"ids": sent, "sizes": [int(s) for s in sizes], "y": y_list}
    t_values = frame["t"].to_numpy()
    if kind == "datetime":
        body["ds"] = _iso(t_values)
    elif kind == "datetime_tz":
        stamps = pd.DatetimeIndex(t_values)
        wall = stamps.tz_localize(None)
        if len(set(wall - wall.normalize())) == 1:
            # One clock time every day (daily or coarser data): the wall
            # clock is the calendar, whatever the DST offset of each date.
            kind = "datetime_local"
            body["ds"] = _iso(wall.to_numpy())
        else:
            # Within the day the wall clock skips and repeats hours at DST
            # changes: UTC is the regular grid.
            utc = stamps.tz_convert("UTC").tz_localize(None).to_numpy()
            body["ds"] = _as_text(utc.astype("datetime64[s]"), "s", suffix="Z")
    else:
        # Integer positions: the server places them on their step (gaps
        # become missing values) and labels the forecast steps.
        body["ds"] = t_values.tolist()
    times = {ids[i]: t_values[starts[i] : starts[i] + sizes[i]] for i in range(len(ids))}
    by_sent = {str(i): i for i in ids}
    return _Encoded(body=body, ids=ids, times=times, kind=kind, tz=tz, by_sent=by_sent)


def _positions(time: pd.Series, cols: _Columns) -> np.ndarray:
    """A numeric time column as int64 positions. A number with a fraction
    (``0.5``) or an infinite one is a ``ValueError`` naming its row: the
    server places integers on their step, and nothing else."""
    if pd.api.types.is_integer_dtype(time) or pd.api.types.is_bool_dtype(time):
        return time.to_numpy(dtype=np.int64)
    values = time.to_numpy(dtype=float)
    bad = np.flatnonzero(~np.isfinite(values) | (values != np.round(values)) | (np.abs(values) >= 2.0**63))
    if len(bad):
        raise ValueError(
            f"{cols.time_col} is {float(values[bad[0]])!r} at row {bad[0]}, not a whole number: numeric "
            f"{cols.time_col} values are integer positions (1, 2, 3 or 10, 20, 40...); use integers or timestamps"
        )
    return values.astype(np.int64)


def _check_whole_seconds(time: pd.Series, tz: Any, cols: _Columns) -> None:
    """Refuses timestamps with a fraction of a second (naming the first row):
    the server's steps are whole minutes or longer."""
    naive = time.dt.tz_convert(None) if tz is not None else time
    values = naive.to_numpy()
    frac = np.flatnonzero(values != values.astype("datetime64[s]"))
    if len(frac):
        raise ValueError(
            f"{cols.time_col} at row {frac[0]} ({time.iloc[frac[0]]}) has a fraction of a second: the server "
            "supports steps of a minute or longer; send such series with integer positions instead"
        )


def _csv_bytes(encoded: _Encoded) -> bytes:
    """An encoded frame as a CSV table ``unique_id,ds,y`` (``null`` is a
    missing ``y``), for a fit too large for a JSON body."""
    body = encoded.body
    ids = []
    for i in body["ids"]:
        if i != i.strip():
            # The server trims CSV fields: the id would come back as another.
            raise ValueError(f"id {i!r} starts or ends with blanks, which a CSV fit body (frames over max_json_bytes) drops; strip the ids")
        ids.append('"' + i.replace('"', '""') + '"' if any(c in i for c in ',"\r\n') else i)
    rows = np.repeat(np.array(ids, dtype=object), body["sizes"]).tolist()
    times = [str(t) for t in body["ds"]]
    # JSON's numbers are the shortest text that reads back as the same
    # double, and its null is a missing value in a CSV body too.
    values = json.dumps(body["y"], allow_nan=False, separators=(",", ":"))[1:-1].split(",")
    lines = ["unique_id,ds,y"] + [",".join(r) for r in zip(rows, times, values)]
    return ("\n".join(lines) + "\n").encode()


def _table_params(body: Dict[str, Any]) -> Dict[str, str]:
    """A fit body's options as the query string of a table (CSV) fit body."""
    params = {"method": str(body["method"])}
    season = body.get("season_length")
    if season is not None:
        params["season_length"] = ",".join(str(s) for s in season) if isinstance(season, list) else str(season)
    if "freq" in body:
        params["freq"] = str(body["freq"])
    if "nonnegative" in body:
        params["nonnegative"] = "true" if body["nonnegative"] else "false"
    return params


def _iso(values: np.ndarray) -> List[str]:
    """Naive timestamps as ISO 8601: dates when every one is a midnight."""
    seconds = values.astype("datetime64[s]")
    days = values.astype("datetime64[D]")
    if np.all(seconds == days):
        return _as_text(days, "D")
    return _as_text(seconds, "s")


def _as_text(values: np.ndarray, unit: str, suffix: str = "") -> List[str]:
    """``datetime64`` values as ISO 8601 text to ``unit``, each distinct
    value formatted once (series of one frame mostly share their times)."""
    distinct, inverse = np.unique(values, return_inverse=True)
    text = np.char.add(np.datetime_as_string(distinct, unit=unit), suffix) if suffix else np.datetime_as_string(distinct, unit=unit)
    return text[inverse.ravel()].tolist()


def _original_id(encoded: _Encoded, sent: Any) -> Any:
    """The caller's id (e.g. an int) for the string id the server echoes."""
    return encoded.by_sent.get(sent, sent)


def _path(model: str) -> str:
    """A model name as one path segment: a name with ``/``, ``?`` or ``#``
    reaches the server whole (and is refused there), never another model.
    ``""``, ``.`` and ``..`` are refused here (``ValueError``): URL
    normalisation would make them another path (``/v1/models/.`` is
    ``/v1/models/``, the listing)."""
    name = str(model)
    if name in ("", ".", ".."):
        raise ValueError(f"{name!r} is not a model name: 1 to 64 characters of A-Z a-z 0-9 _ - ., not '.' or '..'")
    return urllib.parse.quote(name, safe="")


# ---- decoding ----


def _level_name(level: float) -> str:
    return str(int(level)) if float(level).is_integer() else str(level)


def _decode_times(ds: Optional[List[Any]], encoded: Optional[_Encoded], sid: Any, after: int, n: int) -> Any:
    """Timestamps of ``n`` steps: the server's ``ds`` when given, else the
    caller's integer axis continued after position ``after``."""
    if ds is not None and all(isinstance(v, int) for v in ds):
        # A series fitted on integer positions (a table body's ``ds``).
        return np.array(ds)
    if ds is not None:
        kind = encoded.kind if encoded is not None else "datetime"
        parsed = pd.to_datetime(pd.Series(ds), utc=kind == "datetime_tz")
        if kind == "datetime_tz":
            return parsed.dt.tz_convert(encoded.tz).array
        if kind == "datetime_local":
            # A wall clock that a DST change repeats is its first occurrence
            # (summer time); one that it skips moves to the change.
            first = np.ones(len(parsed), dtype=bool)
            return parsed.dt.tz_localize(encoded.tz, ambiguous=first, nonexistent="shift_forward").array
        return parsed.to_numpy()
    if encoded is not None and sid in encoded.times and encoded.kind == "int":
        # Positions on the grid the server placed the series on: its step is
        # the smallest gap between neighbours.
        t = encoded.times[sid]
        gaps = np.diff(t)
        gaps = gaps[gaps > 0]
        step = gaps.min() if len(gaps) else 1
        return np.array([t[0] + step * (after + 1 + j) for j in range(n)])
    return np.arange(after + 1, after + 1 + n)


def _forecast_frame(
    series: List[Dict[str, Any]],
    alias: str,
    levels: List[float],
    h: int,
    cols: _Columns,
    encoded: Optional[_Encoded],
) -> pd.DataFrame:
    parts = []
    for s in series:
        sid = _original_id(encoded, s["id"]) if encoded else s["id"]
        mean = s.get("mean", [])
        n = len(mean)
        last = len(encoded.times[sid]) - 1 if encoded and sid in encoded.times else -1
        part: Dict[str, Any] = {
            cols.id_col: [sid] * n,
            cols.time_col: _decode_times(s.get("ds"), encoded, sid, last, n),
            alias: mean,
        }
        _add_intervals(part, alias, s.get("intervals", []), n)
        parts.append(pd.DataFrame(part))
    columns = [cols.id_col, cols.time_col, alias] + _interval_columns(alias, levels)
    if not parts:
        return pd.DataFrame(columns=columns)
    out = pd.concat(parts, ignore_index=True)
    return out[[c for c in columns if c in out.columns] + [c for c in out.columns if c not in columns]]


def _interval_columns(alias: str, levels: List[float]) -> List[str]:
    names = []
    for lv in sorted(levels):
        names += [f"{alias}-lo-{_level_name(lv)}", f"{alias}-hi-{_level_name(lv)}"]
    return names


def _add_intervals(part: Dict[str, Any], alias: str, intervals: List[Dict[str, Any]], n: int) -> None:
    for iv in intervals:
        name = _level_name(float(iv["level"]))
        part[f"{alias}-lo-{name}"] = iv.get("lower", [np.nan] * n)
        part[f"{alias}-hi-{name}"] = iv.get("upper", [np.nan] * n)


def _backtest_frame(
    series: List[Dict[str, Any]],
    alias: str,
    levels: List[float],
    cols: _Columns,
    encoded: _Encoded,
) -> pd.DataFrame:
    parts = []
    for s in series:
        sid = _original_id(encoded, s["id"])
        times = encoded.times.get(sid)
        for w in s.get("windows", []):
            mean = w.get("mean", [])
            n = len(mean)
            cutoff = int(w["cutoff"])
            if w.get("ds") is not None:
                ds = _decode_times(w["ds"], encoded, sid, cutoff, n)
                cut = _decode_times([w["cutoff_ds"]], encoded, sid, cutoff - 1, 1)[0] if w.get("cutoff_ds") is not None else times[cutoff]
            else:
                ds = _decode_times(None, encoded, sid, cutoff, n)
                cut = _decode_times(None, encoded, sid, cutoff - 1, 1)[0]
            part: Dict[str, Any] = {
                cols.id_col: [sid] * n,
                cols.time_col: ds,
                "cutoff": [cut] * n,
                cols.target_col: [np.nan if v is None else v for v in w.get("actual", [])],
                alias: mean,
            }
            _add_intervals(part, alias, w.get("intervals", []), n)
            parts.append(pd.DataFrame(part))
    columns = [cols.id_col, cols.time_col, "cutoff", cols.target_col, alias] + _interval_columns(alias, levels)
    if not parts:
        return pd.DataFrame(columns=columns)
    out = pd.concat(parts, ignore_index=True)
    return out[[c for c in columns if c in out.columns] + [c for c in out.columns if c not in columns]]
