"""statsforecast's MSTL and AutoETS on a realworld.csv-format file, timed on this
machine: the reference that issue 8's speed target ("all of realworld.csv in at
most 1/10 of the CPU seconds of statsforecast's MSTL and AutoETS together") is
measured against, so that both sides run on the same cores.

    pip install statsforecast
    python3 scripts/statsforecast_reference.py ../shared/data/realworld.csv \
        --exclude-dataset modeldata.Chicago --forecasts-out sf
    python3 ../shared/data/score_realworld.py ../shared/data/realworld.csv sf_MSTL.csv

As in ../shared/data/README.md: MSTL gets all the seasons (`seasons` column) and
its trend is forecast by AutoETS; AutoETS gets the shortest season. CPU is
`time.process_time()` around each fit-and-forecast, after one untimed warm-up
fit of each model (numba compiles on first use; the README's reference forked
a child per fit after compiling). Prints per-group and total CPU seconds.
"""
import argparse
import collections
import csv
import time


def read(path, excluded):
    series = {}
    with open(path, newline="") as f:
        for r in csv.DictReader(f):
            if r["dataset"] in excluded:
                continue
            s = series.setdefault(r["series_id"], {"train": [], "h": int(r["horizon"]),
                                                  "group": r["group"],
                                                  "seasons": r.get("seasons") or r["period"]})
            if r["split"] == "train":
                s["train"].append(float(r["value"]))
    return series


def main():
    import numpy as np
    from statsforecast.models import MSTL, AutoETS

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("data")
    p.add_argument("--exclude-dataset", action="append", default=[], metavar="NAME")
    p.add_argument("--forecasts-out", metavar="PREFIX",
                   help="write PREFIX_MSTL.csv and PREFIX_AutoETS.csv (bench's forecast format)")
    a = p.parse_args()
    series = read(a.data, set(a.exclude_dataset))

    def models(seasons):
        return {
            "MSTL": MSTL(season_length=seasons, trend_forecaster=AutoETS(model="ZZN")),
            "AutoETS": AutoETS(season_length=seasons[0]),
        }

    warm = np.sin(np.arange(200) * 2 * np.pi / 12) + np.arange(200) * 0.01
    for model in models([12]).values():
        model.forecast(y=warm, h=12, level=[80, 95])

    cpu = collections.defaultdict(float)
    writers = {}
    files = []
    if a.forecasts_out:
        for name in ("MSTL", "AutoETS"):
            f = open(f"{a.forecasts_out}_{name}.csv", "w", newline="")
            files.append(f)
            writers[name] = csv.writer(f)
            writers[name].writerow(["series_id", "step", "forecast", "lo80", "hi80", "lo95",
                                    "hi95"])
    for sid, s in series.items():
        seasons = sorted(int(v) for v in s["seasons"].split(";"))
        y = np.array(s["train"])
        for name, model in models(seasons).items():
            t0 = time.process_time()
            r = model.forecast(y=y, h=s["h"], level=[80, 95])
            spent = time.process_time() - t0
            cpu[(name, s["group"])] += spent
            cpu[(name, "ALL")] += spent
            if name in writers:
                for i in range(s["h"]):
                    writers[name].writerow([sid, i + 1, r["mean"][i], r["lo-80"][i],
                                            r["hi-80"][i], r["lo-95"][i], r["hi-95"][i]])
    for f in files:
        f.close()
    groups = sorted({g for _, g in cpu if g != "ALL"}) + ["ALL"]
    print(f"{len(series)} series; CPU seconds (time.process_time)")
    print("group      " + "".join(f"{g:>10}" for g in groups))
    for name in ("MSTL", "AutoETS"):
        print(f"{name:<11}" + "".join(f"{cpu[(name, g)]:>10.1f}" for g in groups))
    both = [cpu[("MSTL", g)] + cpu[("AutoETS", g)] for g in groups]
    print(f"{'both':<11}" + "".join(f"{v:>10.1f}" for v in both))
    print(f"a tenth of both, ALL: {both[-1] / 10:.2f} s")


if __name__ == "__main__":
    main()
