#!/usr/bin/env python3
"""Synthetic intermittent-demand benchmark for the engine's intermittent methods.

Writes a long-format CSV (the columns of m3.csv) of 400 series, 60 train and
12 test values each: demand occurs with probability p (0.08-0.6) and has an
exponential size (mean 1-12, rounded up to an integer). Every fourth series
dies out: its probability falls linearly to zero from t = 40 to t = 60
(group `obsolete`, the others `stationary`). Then, given forecasts written by
`bench --forecasts-out`, scores them by RMSSE (root mean squared error over
the horizon, scaled by the in-sample mean squared naive error), the usual
score for intermittent demand (MAE-based scores favour forecasting zero).

    python3 scripts/intermittent_synthetic.py write syn.csv
    target/release/examples/bench syn.csv --model tsb --forecasts-out tsb.csv
    python3 scripts/intermittent_synthetic.py score syn.csv tsb.csv
"""
import collections
import csv
import math
import random
import sys


def write(path):
    random.seed(5)
    rows = ["dataset,series_id,group,period,horizon,split,t,value"]
    for i in range(400):
        p = random.uniform(0.08, 0.6)
        mu = random.uniform(1, 12)
        kind = "obsolete" if i % 4 == 3 else "stationary"
        ys = []
        for t in range(72):
            pp = p if kind == "stationary" or t < 40 else p * max(0.0, 1 - (t - 40) / 20)
            ys.append(float(1 + int(random.expovariate(1 / mu))) if random.random() < pp else 0.0)
        if sum(ys[:60]) == 0:
            ys[10] = 1.0
        for t, v in enumerate(ys[:60]):
            rows.append(f"syn,S{i},{kind},1,12,train,{t},{v}")
        for t, v in enumerate(ys[60:]):
            rows.append(f"syn,S{i},{kind},1,12,test,{t},{v}")
    with open(path, "w") as f:
        f.write("\n".join(rows) + "\n")


def score(data, forecasts):
    train, test, group = collections.defaultdict(list), collections.defaultdict(list), {}
    for r in csv.DictReader(open(data)):
        (train if r["split"] == "train" else test)[r["series_id"]].append(float(r["value"]))
        group[r["series_id"]] = r["group"]
    fc = collections.defaultdict(list)
    for r in csv.DictReader(open(forecasts)):
        fc[r["series_id"]].append(float(r["forecast"]))
    res = collections.defaultdict(list)
    for s, y in test.items():
        x = train[s]
        scale = sum((x[i] - x[i - 1]) ** 2 for i in range(1, len(x))) / (len(x) - 1)
        mse = sum((a - b) ** 2 for a, b in zip(y, fc[s])) / len(y)
        for g in (group[s], "overall"):
            res[g].append(math.sqrt(mse / scale))
    for g, v in sorted(res.items()):
        print(f"{g:12} RMSSE {sum(v) / len(v):.4f} ({len(v)} series)")


if __name__ == "__main__":
    if sys.argv[1] == "write":
        write(sys.argv[2])
    else:
        score(sys.argv[2], sys.argv[3])
