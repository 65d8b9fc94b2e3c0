"""The HTTP client: DataFrames in, statsforecast-style DataFrames out.

Every request goes through :meth:`HorizonClient._request`, which retries 429
and 503 answers (and connection failures) with exponential backoff, honouring
``Retry-After``, and turns JSend ``fail``/``error`` answers into the typed
exceptions of :mod:`horizon_client.errors`. Fits carry an ``Idempotency-Key``,
so a retried fit never fits twice.
"""

from __future__ import annotations

import email.utils
import json
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
    NotFoundError,
    RequestError,
    ServerError,
    TimeoutError,
    UnavailableError,
)

SeasonLength = Union[int, Sequence[int], None]

#: Statuses worth retrying: rate limited, temporarily unavailable.
RETRY_STATUSES = frozenset({429, 503})


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
        value; NaN is a missing value). It travels in one request in the
        compact form (``sizes``/``y``/``ids``/``ds``), whatever its size.

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
        """
        cols = self._cols(id_col, time_col, target_col)
        encoded = _encode(df, cols)
        body = dict(encoded.body)
        body["method"] = method
        _add_options(body, season_length, freq, nonnegative)
        data = self._request(
            "PUT",
            f"/v1/models/{_path(model)}",
            json_body=body,
            headers={"Idempotency-Key": uuid.uuid4().hex},
        )
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
        level: Optional[Sequence[float]] = None,
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
            h: the number of steps.
            level: prediction interval levels in percent, e.g. ``[80, 95]``.
            df: data to fit first (one-shot forecast).
            series: forecast only these series ids.
            season_length, freq, method, nonnegative: fit options, used with ``df``.

        Returns:
            A DataFrame ``unique_id, ds, <method>, <method>-lo-80,
            <method>-hi-80, ...`` (statsforecast's columns).
        """
        cols = self._cols(id_col, time_col, target_col)
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
        levels = [float(v) for v in (level or [])]
        body: Dict[str, Any] = {"horizon": int(h), "level": levels}
        encoded = self._encodings.get(model)
        if series is not None:
            body["series"] = [str(s) for s in series]
        data = self._request("POST", f"/v1/models/{_path(model)}/forecast", json_body=body)
        alias = self._method_of(model)
        return _forecast_frame(data.get("series", []), alias, levels, int(h), cols, encoded)

    def cross_validation(
        self,
        df: pd.DataFrame,
        h: int,
        n_windows: int = 1,
        step_size: Optional[int] = None,
        level: Optional[Sequence[float]] = None,
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
        apart, default ``h``) are forecast from the data before them.

        Returns:
            A DataFrame ``unique_id, ds, cutoff, y, <method>, <method>-lo-80,
            ...`` like statsforecast's ``cross_validation``; the server's
            metrics (MAE, RMSE, sMAPE, MASE, coverage) overall and per series
            are in ``result.attrs["metrics"]`` and
            ``result.attrs["series_metrics"]``.
        """
        cols = self._cols(id_col, time_col, target_col)
        encoded = _encode(df, cols)
        levels = [float(v) for v in (level or [])]
        body = dict(encoded.body)
        body.update(
            {
                "method": method,
                "horizon": int(h),
                "n_windows": int(n_windows),
                "refit": bool(refit),
                "level": levels,
                "include_forecasts": True,
            }
        )
        if step_size is not None:
            body["step_size"] = int(step_size)
        _add_options(body, season_length, freq, nonnegative)
        data = self._request("POST", "/v1/backtest", json_body=body)
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
        params: Optional[Dict[str, str]] = None,
        headers: Optional[Dict[str, str]] = None,
    ) -> Any:
        """Sends one request (with retries) and returns the JSend ``data``."""
        content = None
        send_headers = dict(headers or {})
        if json_body is not None:
            # allow_nan=False: a NaN that slipped through is our bug, not the server's.
            content = json.dumps(json_body, allow_nan=False, separators=(",", ":")).encode()
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
            return _unwrap(response)

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


def _add_options(body: Dict[str, Any], season_length: SeasonLength, freq: Optional[str], nonnegative: Optional[bool]) -> None:
    if season_length is not None:
        if isinstance(season_length, (int, np.integer)):
            body["season_length"] = int(season_length)
        else:
            body["season_length"] = [int(s) for s in season_length]
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
    time = frame[cols.time_col]
    kind, tz = "int", None
    if pd.api.types.is_datetime64_any_dtype(time):
        kind = "datetime"
    elif not pd.api.types.is_numeric_dtype(time):
        time = pd.to_datetime(time)
        kind = "datetime"
    if kind == "datetime" and getattr(time.dt, "tz", None) is not None:
        kind, tz = "datetime_tz", time.dt.tz
    frame = pd.DataFrame({"id": frame[cols.id_col].to_numpy(), "t": time.to_numpy(), "y": frame[cols.target_col].to_numpy()})
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
    y_list: List[Optional[float]] = [None if not np.isfinite(v) else float(v) for v in y]
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
            body["ds"] = [s + "Z" for s in np.datetime_as_string(utc.astype("datetime64[s]"), unit="s")]
    elif np.all(np.isfinite(t_values)) and np.all(t_values == np.round(t_values)):
        # Whole numbers: the server places them on their step (gaps become
        # missing values) and labels the forecast steps.
        body["ds"] = [int(v) for v in t_values]
    times = {ids[i]: t_values[starts[i] : starts[i] + sizes[i]] for i in range(len(ids))}
    by_sent = {str(i): i for i in ids}
    return _Encoded(body=body, ids=ids, times=times, kind=kind, tz=tz, by_sent=by_sent)


def _iso(values: np.ndarray) -> List[str]:
    """Naive timestamps as ISO 8601: dates when every one is a midnight."""
    seconds = values.astype("datetime64[s]")
    days = values.astype("datetime64[D]")
    if np.all(seconds == days):
        return list(np.datetime_as_string(days, unit="D"))
    return list(np.datetime_as_string(seconds, unit="s"))


def _original_id(encoded: _Encoded, sent: Any) -> Any:
    """The caller's id (e.g. an int) for the string id the server echoes."""
    return encoded.by_sent.get(sent, sent)


def _path(model: str) -> str:
    """A model name as one path segment: a name with ``/``, ``?`` or ``#``
    reaches the server whole (and is refused there), never another model."""
    return urllib.parse.quote(str(model), safe="")


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
            return parsed.dt.tz_localize(encoded.tz, ambiguous="NaT", nonexistent="shift_forward").array
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
