#!/usr/bin/env python3
"""Measures /healthz latency while clients forecast a long-season model.

Issue 13, defect 5a: forecasts used to run on the async threads when a cost
model (which ignored the season length) called them cheap, so heavy
forecasts delayed every other request. This fits one model with a season of
10,000 (30,000 points), then runs `--clients` threads that forecast
`--horizon` steps of it in a loop, and probes `GET /healthz` every 10 ms.

    target/release/horizon serve --listen 127.0.0.1:8090 --data-dir "$(mktemp -d)" &
    python3 scripts/healthz_under_forecasts.py --url http://127.0.0.1:8090

Python standard library only.
"""
import argparse
import http.client
import json
import math
import statistics
import threading
import time
import urllib.parse


def request(conn, method, path, body=None):
    headers = {"Content-Type": "application/json"} if body is not None else {}
    conn.request(method, path, body=json.dumps(body) if body is not None else None, headers=headers)
    r = conn.getresponse()
    data = r.read()
    return r.status, data


def percentile(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, round((len(xs) - 1) * p))] if xs else float("nan")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", default="http://127.0.0.1:8090")
    ap.add_argument("--clients", type=int, default=8)
    ap.add_argument("--horizon", type=int, default=512)
    ap.add_argument("--season", type=int, default=10_000)
    ap.add_argument("--seconds", type=float, default=20)
    args = ap.parse_args()
    u = urllib.parse.urlparse(args.url)
    conn = lambda: http.client.HTTPConnection(u.hostname, u.port, timeout=120)

    n = 3 * args.season
    values = [100 + 10 * math.sin(2 * math.pi * t / args.season) + (t * 7919 % 13) / 13 for t in range(n)]
    status, data = request(conn(), "PUT", "/v1/models/longseason",
                           {"series": [{"id": "a", "values": values}], "season_length": args.season})
    if status != 200:
        raise SystemExit(f"fit failed: {status} {data[:300]!r}")
    print("fitted:", json.loads(data)["data"]["series"][0]["chosen"])

    stop = time.monotonic() + args.seconds
    forecasts = []

    def client():
        c = conn()
        while time.monotonic() < stop:
            t0 = time.monotonic()
            s, _ = request(c, "POST", "/v1/models/longseason/forecast",
                           {"horizon": args.horizon, "level": [80, 95]})
            if s != 200:
                raise SystemExit(f"forecast answered {s}")
            forecasts.append(time.monotonic() - t0)

    threads = [threading.Thread(target=client) for _ in range(args.clients)]
    for t in threads:
        t.start()
    time.sleep(0.5)
    probe, lat = conn(), []
    while time.monotonic() < stop:
        t0 = time.monotonic()
        s, _ = request(probe, "GET", "/healthz")
        lat.append((time.monotonic() - t0) * 1000)
        time.sleep(0.01)
    for t in threads:
        t.join()
    print(f"clients {args.clients}, horizon {args.horizon}, season {args.season}, {args.seconds:.0f} s")
    print(f"forecasts answered: {len(forecasts)} ({len(forecasts) / args.seconds:.1f}/s)")
    print(f"/healthz probes: {len(lat)}, p50 {statistics.median(lat):.2f} ms, "
          f"p99 {percentile(lat, 0.99):.2f} ms, max {max(lat):.2f} ms")


if __name__ == "__main__":
    main()
