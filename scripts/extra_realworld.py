"""A second, small set of real series in the format of ../shared/data/realworld.csv,
built from data that ships inside PyPI packages (nothing is downloaded but the
packages): a check that engine choices made on realworld.csv carry over.

    pip install pmdarima vega_datasets statsforecast   # statsforecast only for --statsforecast
    python3 scripts/extra_realworld.py extra.csv
    python3 scripts/extra_realworld.py extra.csv --statsforecast sf_mstl.csv
    target/release/examples/bench extra.csv --forecasts-out hz.csv
    python3 ../shared/data/score_realworld.py extra.csv hz.csv        # and sf_mstl.csv

Windows: the last h points of a series are window o1's test, the h before them
o2's, and so on; each window trains on everything before its test.
- pmdarima.taylor: half-hourly electricity demand of England and Wales, 5 June to
  27 August 2000 (Taylor 2003), seasons 48;336, h = 96, 8 windows.
- vega.seattle-temps, vega.sf-temps: hourly temperatures of 2010, season 24 (one
  year cannot carry the yearly one), h = 48, 6 windows each; the one missing hour
  of each is interpolated.
- pmdarima.airpassengers: monthly airline passengers 1949-1960, season 12, h = 18,
  3 windows.
- with --pvlib (pip install pvlib): pvlib's two typical-meteorological-year files,
  hourly global irradiance (zero at night) and air temperature, season 24, h = 48,
  4 windows each (dated on a plain 2001 grid: a TMY's months come from different years).
With --statsforecast, also writes statsforecast's MSTL (all the seasons, trend by
AutoETS, as in ../shared/data/README.md) as a forecasts file.
"""
import argparse
import csv
import datetime as dt

COLUMNS = "dataset,series_id,group,period,horizon,split,t,value,freq,ds,seasons".split(",")


def windows(dataset, base, group, seasons, h, count, values, stamps, freq, fmt):
    n = len(values)
    for k in range(1, count + 1):
        end = n - h * (k - 1)
        cut = end - h
        for split, lo, hi in (("train", 0, cut), ("test", cut, end)):
            for i in range(lo, hi):
                yield [dataset, f"{base}_o{k}", group, seasons.split(";")[0], h, split,
                       i - lo, repr(float(values[i])), freq, stamps[i].strftime(fmt), seasons]


def pvlib_rows():
    import os
    import pvlib

    folder = os.path.join(os.path.dirname(pvlib.__file__), "data")
    for name in ("723170TYA.CSV", "703165TY.csv"):
        frame, _ = pvlib.iotools.read_tmy3(os.path.join(folder, name), map_variables=True)
        stamps = [dt.datetime(2001, 1, 1) + dt.timedelta(hours=i) for i in range(len(frame))]
        for column in ("ghi", "temp_air"):
            yield from windows("pvlib." + name.split(".")[0], f"{name[:6]}_{column}", "hourly",
                               "24", 48, 4, frame[column].values, stamps, "h",
                               "%Y-%m-%dT%H:%M:%S")


def rows():
    import pmdarima.datasets as pm
    from vega_datasets import local_data

    minutes = "%Y-%m-%dT%H:%M:%S"
    taylor = pm.load_taylor()
    start = dt.datetime(2000, 6, 5)
    stamps = [start + dt.timedelta(minutes=30 * i) for i in range(len(taylor))]
    yield from windows("pmdarima.taylor", "taylor", "30min", "48;336", 96, 8, taylor, stamps,
                       "30min", minutes)
    for name in ("seattle-temps", "sf-temps"):
        frame = local_data(name).set_index("date").asfreq("h").interpolate()
        stamps = [t.to_pydatetime() for t in frame.index]
        yield from windows("vega." + name, name.replace("-", "_"), "hourly", "24", 48, 6,
                           frame["temp"].values, stamps, "h", minutes)
    air = pm.load_airpassengers()
    stamps = [dt.datetime(1949 + i // 12, 1 + i % 12, 1) for i in range(len(air))]
    yield from windows("pmdarima.airpassengers", "air", "monthly", "12", 18, 3, air, stamps,
                       "MS", "%Y-%m-%d")


def statsforecast_mstl(data_path, out_path):
    import numpy as np
    from statsforecast.models import MSTL, AutoETS

    series = {}
    with open(data_path, newline="") as f:
        for r in csv.DictReader(f):
            s = series.setdefault(r["series_id"], {"train": [], "h": int(r["horizon"]),
                                                  "seasons": r["seasons"]})
            if r["split"] == "train":
                s["train"].append(float(r["value"]))
    with open(out_path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["series_id", "step", "forecast", "lo80", "hi80", "lo95", "hi95"])
        for sid, s in series.items():
            seasons = [int(p) for p in s["seasons"].split(";")]
            model = MSTL(season_length=seasons, trend_forecaster=AutoETS(model="ZZN"))
            r = model.forecast(y=np.array(s["train"]), h=s["h"], level=[80, 95])
            for i in range(s["h"]):
                w.writerow([sid, i + 1, r["mean"][i], r["lo-80"][i], r["hi-80"][i],
                            r["lo-95"][i], r["hi-95"][i]])


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("out", help="the long-format CSV to write")
    p.add_argument("--pvlib", action="store_true", help="add pvlib's hourly TMY series")
    p.add_argument("--statsforecast", metavar="FORECASTS",
                   help="also write statsforecast MSTL's forecasts of it here")
    a = p.parse_args()
    with open(a.out, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(COLUMNS)
        w.writerows(rows())
        if a.pvlib:
            w.writerows(pvlib_rows())
    if a.statsforecast:
        statsforecast_mstl(a.out, a.statsforecast)


if __name__ == "__main__":
    main()
