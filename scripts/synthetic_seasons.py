"""Synthetic long series with several seasons, in the format of ../shared/data/realworld.csv,
for what the real sets do not have: 5-minute data with a weekly season longer than
the calibration's re-filter window, and hourly series longer than the 5,000 points
`auto`'s combination is fitted on (BENCHMARKS.md, "Validation over the longest season").

    python3 scripts/synthetic_seasons.py five-minute five.csv      # 2 series, 8,064 and 20,000 points
    python3 scripts/synthetic_seasons.py five-minute-short five2.csv  # 3 series, 5,000-7,000 points
    python3 scripts/synthetic_seasons.py hourly hourly.csv         # 24 series, 5,200-20,000 points
    target/release/examples/bench five.csv

Each series: a daily shape (a sine and its first harmonic), 20 lower on Saturdays and
Sundays (hourly: 6 lower on half of the series), AR(1) noise; one window, whose test
is the last day (5-minute, 288 steps) or two days (hourly, 48). Python 3 standard
library only; seeded, so the files are the same on every run.
"""
import argparse
import csv
import datetime as dt
import math
import random

from extra_realworld import COLUMNS, windows


def window(base, group, h, values, step, freq, seasons):
    """The one window of a series, its test the last `h` values."""
    stamps = [dt.datetime(2024, 1, 1) + i * step for i in range(len(values))]
    yield from windows("synthetic", base, group, seasons, h, 1, values, stamps, freq,
                       "%Y-%m-%dT%H:%M:%S")


def five_minute(lengths, seed):
    rng = random.Random(seed)
    for k, n in enumerate(lengths):
        ar, values = 0.0, []
        for t in range(n + 288):
            ar = 0.9 * ar + rng.gauss(0, 1)
            weekend = (t // 288) % 7 >= 5
            values.append(100 - (20 if weekend else 0) + 15 * math.sin(2 * math.pi * t / 288)
                          + 5 * math.sin(4 * math.pi * t / 288) + ar)
        yield from window(f"five_{k}", "5min", 288, values, dt.timedelta(minutes=5), "5min",
                          "288;2016")


def hourly(count, seed):
    rng = random.Random(seed)
    for k in range(count):
        n = rng.randint(5200, 20000)
        drop = 6 if k % 2 == 0 else 0
        phi = rng.choice([0.5, 0.8, 0.95])
        amp = rng.uniform(5, 20)
        ar, values = 0.0, []
        for t in range(n + 48):
            ar = phi * ar + rng.gauss(0, 1)
            weekend = (t // 24) % 7 >= 5
            values.append(100 - (drop if weekend else 0)
                          + amp * math.sin(2 * math.pi * t / 24 + 1)
                          + 0.3 * amp * math.sin(4 * math.pi * t / 24) + ar)
        yield from window(f"s{k}_w{drop}", "hourly", 48, values, dt.timedelta(hours=1), "h",
                          "24;168")


SETS = {
    "five-minute": lambda: five_minute([8064, 20000], 3),
    "five-minute-short": lambda: five_minute([5000, 6000, 7000], 5),
    "hourly": lambda: hourly(24, 21),
}


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("set", choices=sorted(SETS))
    p.add_argument("out", help="the long-format CSV to write")
    a = p.parse_args()
    with open(a.out, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(COLUMNS)
        w.writerows(SETS[a.set]())


if __name__ == "__main__":
    main()
