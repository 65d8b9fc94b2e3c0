"""Nixtla's unmodified ``nixtla`` client (from PyPI) against Horizon's
TimeGPT-compatible endpoints (crates/gateway/src/compat/nixtla.rs)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from nixtla import NixtlaClient
from nixtla.nixtla_client import ApiError


def monthly(ids, n: int = 60) -> pd.DataFrame:
    rows = []
    for k, sid in enumerate(ids):
        t = np.arange(n)
        y = 200 + 20 * k + 1.5 * t + 15 * np.sin(2 * np.pi * t / 12) + 2 * np.cos(1.7 * t)
        rows.append(pd.DataFrame({"unique_id": sid, "ds": pd.date_range("2019-01-01", periods=n, freq="MS"), "y": y}))
    return pd.concat(rows, ignore_index=True)


@pytest.fixture()
def client(server_url: str) -> NixtlaClient:
    # Short retries: a retried error would otherwise wait 10 s per attempt.
    return NixtlaClient(base_url=server_url, api_key="not-checked", max_retries=1, retry_interval=0)


def test_forecast_returns_the_usual_frame(client: NixtlaClient) -> None:
    df = monthly(["a", "b"])
    fcst = client.forecast(df=df, h=12, level=[80, 95])
    assert list(fcst.columns) == [
        "unique_id", "ds", "TimeGPT",
        "TimeGPT-hi-80", "TimeGPT-hi-95", "TimeGPT-lo-80", "TimeGPT-lo-95",
    ]
    assert len(fcst) == 24
    a = fcst[fcst.unique_id == "a"]
    assert list(a.ds) == list(pd.date_range("2024-01-01", periods=12, freq="MS"))
    assert (fcst["TimeGPT-lo-95"] <= fcst["TimeGPT-lo-80"]).all()
    assert (fcst["TimeGPT-lo-80"] <= fcst["TimeGPT"]).all() and (fcst["TimeGPT"] <= fcst["TimeGPT-hi-80"]).all()
    # The seasonal pattern is carried on: the truth continues the formula.
    t = np.arange(60, 72)
    truth = 200 + 1.5 * t + 15 * np.sin(2 * np.pi * t / 12) + 2 * np.cos(1.7 * t)
    assert np.mean(np.abs(a.TimeGPT.to_numpy() - truth)) < 8


def test_quantiles_including_the_median(client: NixtlaClient) -> None:
    """The client sends quantiles as levels: 0.5 as level 0 (read from the
    mean), 0.1 and 0.9 both as 80."""
    fcst = client.forecast(df=monthly(["a"]), h=6, quantiles=[0.1, 0.5, 0.9])
    assert list(fcst.columns) == ["unique_id", "ds", "TimeGPT", "TimeGPT-q-10", "TimeGPT-q-50", "TimeGPT-q-90"]
    assert (fcst["TimeGPT-q-50"] == fcst["TimeGPT"]).all()
    assert (fcst["TimeGPT-q-10"] < fcst["TimeGPT-q-50"]).all() and (fcst["TimeGPT-q-50"] < fcst["TimeGPT-q-90"]).all()


def test_horizon_methods_are_models_and_unknown_ones_are_refused(client: NixtlaClient) -> None:
    df = monthly(["a"])
    naive = client.forecast(df=df, h=3, model="naive")
    # The client sends float32 values: the last one, repeated.
    np.testing.assert_allclose(naive.TimeGPT, [np.float32(df.y.iloc[-1])] * 3, rtol=1e-6)
    with pytest.raises(ApiError) as err:
        client.forecast(df=df, h=3, model="prophet-xl")
    assert err.value.status_code == 400 and "unknown model" in str(err.value.body)


def test_cross_validation_returns_the_usual_frame(client: NixtlaClient) -> None:
    df = monthly(["a", "b"])
    cv = client.cross_validation(df=df, h=6, n_windows=3, level=[90])
    assert list(cv.columns) == ["unique_id", "ds", "cutoff", "y", "TimeGPT", "TimeGPT-hi-90", "TimeGPT-lo-90"]
    assert len(cv) == 2 * 3 * 6
    a = cv[cv.unique_id == "a"]
    assert sorted(a.cutoff.unique()) == list(pd.date_range("2022-06-01", periods=3, freq="6MS"))
    merged = a.merge(df, on=["unique_id", "ds"], suffixes=("", "_true"))
    np.testing.assert_allclose(merged.y, merged.y_true)
    assert (merged.ds > merged.cutoff).all()
    assert np.mean(np.abs(cv.y - cv.TimeGPT)) < 10


def test_fine_tuning_and_exogenous_features_get_a_clear_error(client: NixtlaClient) -> None:
    df = monthly(["a"])
    with pytest.raises(ApiError) as err:
        client.forecast(df=df, h=3, finetune_steps=5)
    assert err.value.status_code == 400
    assert "fine-tuning" in str(err.value.body["data"]["finetune_steps"])
    with_exog = df.assign(price=np.arange(len(df), dtype=float))
    future = pd.DataFrame({"unique_id": "a", "ds": pd.date_range("2024-01-01", periods=3, freq="MS"), "price": [1.0, 2.0, 3.0]})
    with pytest.raises(ApiError) as exog:
        client.forecast(df=with_exog, X_df=future, h=3)
    assert "exogenous" in str(exog.value.body)


def test_large_payloads_travel_zstd_compressed(client: NixtlaClient) -> None:
    # 1,500 series x 96 values: the client compresses bodies above 1 MiB.
    import orjson

    df = monthly([f"s{i}" for i in range(1500)], n=96)
    assert len(orjson.dumps(df.y.to_numpy(np.float32), option=orjson.OPT_SERIALIZE_NUMPY)) > 2**20
    fcst = client.forecast(df=df, h=2, model="naive")
    assert len(fcst) == 3000
    last = df.groupby("unique_id").y.last()
    got = fcst.groupby("unique_id").TimeGPT.first()
    np.testing.assert_allclose(got.loc[last.index], last.astype(np.float32), rtol=1e-6)


# ---- the async variants: `client.jobs.*` and the internal job fan-out that
# `forecast`/`cross_validation` use for partitions and Spark/Dask/Ray frames ----


def test_forecast_job_returns_the_same_frame_as_forecast(client: NixtlaClient) -> None:
    from nixtla import JobStatus

    df = monthly(["a", "b"])
    direct = client.forecast(df=df, h=12, level=[80, 95])
    job = client.jobs.forecast(df=df, h=12, level=[80, 95])
    assert job.job_id
    fcst = job.wait(poll_interval=0.1, poll_timeout=120)
    assert job.status == JobStatus.SUCCEEDED
    assert list(fcst.columns) == list(direct.columns)
    pd.testing.assert_frame_equal(fcst, direct)


def test_cross_validation_job_returns_the_same_frame(client: NixtlaClient) -> None:
    df = monthly(["a", "b"])
    direct = client.cross_validation(df=df, h=6, n_windows=3, level=[90])
    job = client.jobs.cross_validation(df=df, h=6, n_windows=3, level=[90])
    cv = job.wait(poll_interval=0.1, poll_timeout=120)
    pd.testing.assert_frame_equal(cv, direct)


def test_partitioned_async_fan_out(client: NixtlaClient) -> None:
    # What Spark/Dask/Ray partitions call: each partition is a submitted job, polled.
    df = monthly([f"s{i}" for i in range(6)])
    direct = client.forecast(df=df, h=4, model="ses")
    fanned = client.forecast(df=df, h=4, model="ses", num_partitions=3, _is_async_job=True, _poll_interval=0.1)
    pd.testing.assert_frame_equal(fanned.sort_values(["unique_id", "ds"]).reset_index(drop=True),
                                  direct.sort_values(["unique_id", "ds"]).reset_index(drop=True))
    cv = client.cross_validation(df=df, h=3, n_windows=2, model="naive", _is_async_job=True, _poll_interval=0.1)
    assert len(cv) == 6 * 2 * 3


def test_a_job_can_be_cancelled_and_a_bad_one_is_refused_at_once(client: NixtlaClient) -> None:
    from nixtla import JobCancelledError, JobStatus

    # Enough work (auto on 400 series) that the cancel comes first.
    big = monthly([f"s{i}" for i in range(400)], n=96)
    job = client.jobs.forecast(df=big, h=12, level=[80])
    job.cancel()
    assert job.status == JobStatus.CANCELLED
    with pytest.raises(JobCancelledError):
        job.wait(poll_interval=0.1, poll_timeout=30)
    # The server says so too (a fresh handle asks it).
    from nixtla.jobs._transport import get_job_data

    with client._make_client(**client._client_kwargs) as http:
        assert get_job_data(client, http, "v2/forecast", job.job_id)["status"] == "cancelled"
    # A request Horizon cannot serve is refused when submitted, not as a failed job.
    with pytest.raises(ApiError) as err:
        client.jobs.forecast(df=monthly(["a"]), h=3, finetune_steps=5)
    assert err.value.status_code == 400
