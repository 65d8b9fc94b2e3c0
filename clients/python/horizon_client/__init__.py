"""Python client for Horizon, forecasting as a service.

>>> from horizon_client import HorizonClient
>>> client = HorizonClient("http://127.0.0.1:8080")
>>> fcst = client.forecast(df=df, h=12, level=[80, 95])

Input is the long format ``unique_id, ds, y``; forecasts come back as a
DataFrame ``unique_id, ds, <method>, <method>-lo-80, <method>-hi-80, ...``,
the column convention of statsforecast.
"""

from .client import HorizonClient
from .errors import (
    HorizonError,
    JobError,
    NotFoundError,
    RequestError,
    ServerError,
    TimeoutError,
    UnavailableError,
)
from .plotting import plot

__all__ = [
    "HorizonClient",
    "HorizonError",
    "JobError",
    "NotFoundError",
    "RequestError",
    "ServerError",
    "TimeoutError",
    "UnavailableError",
    "plot",
]
__version__ = "0.1.0"
