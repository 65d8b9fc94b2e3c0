"""Sharded fits: series/s of one large fit with 1..N worker processes (each
pinned to one core: taskset, RAYON_NUM_THREADS=1, one fit at a time), peak
memory (VmHWM) of the gateway and each worker, PostgreSQL bytes per series,
and the latency of forecasts of 10 series of the fitted model (cached shards).

usage: python3 scripts/bench_shards.py BIN [--series N] [--points P]
       [--method ets] [--workers 1,2] [--shard-series 5000] [--forecasts 300]
       [--bulk json|csv] [--ds int|date] [--csv-file PATH] [--cache-series N]

With `--bulk csv` the body is a long-format CSV file (`unique_id,ds,y`)
written to disk first (never held whole in this script's memory) and
streamed up with `Prefer: respond-async`; after the fit the whole forecast
(horizon 12) is downloaded with `Accept: text/csv` and streamed to a file;
the times of upload (to the 202), fit (202 to `succeeded`) and download
are reported, and VmHWM of every process after the download.
Needs RabbitMQ and PostgreSQL on loopback (HORIZON_BROKER, HORIZON_STORE);
every run uses a namespace of its own and removes it (queues, schema)."""
import argparse, http.client, json, os, random, subprocess, sys, time

p = argparse.ArgumentParser()
p.add_argument("bin")
p.add_argument("--series", type=int, default=100_000)
p.add_argument("--points", type=int, default=60)
p.add_argument("--method", default="ets")
p.add_argument("--workers", default="1,2")
p.add_argument("--shard-series", type=int, default=5000)
p.add_argument("--forecasts", type=int, default=300)
p.add_argument("--bulk", choices=["json", "csv"], default="json")
p.add_argument("--ds", choices=["int", "date"], default="int")
p.add_argument("--csv-file", default=None, help="where the CSV body is written (default: /tmp)")
p.add_argument("--cache-series", type=int, default=None, help="each worker's --cache-series (default: the worker's)")
a = p.parse_args()
BROKER = os.environ.get("HORIZON_BROKER", "amqp://guest:guest@127.0.0.1:5672/%2f")
STORE = os.environ.get("HORIZON_STORE", "postgres://postgres@127.0.0.1:5432/test")
CORES = os.cpu_count() or 1
PORT = 18000 + os.getpid() % 1000


def req(method, path, body=None, headers=None, timeout=3600):
    c = http.client.HTTPConnection("127.0.0.1", PORT, timeout=timeout)
    h = {"Content-Type": "application/json", **(headers or {})}
    c.request(method, path, body=body if isinstance(body, (bytes, type(None))) else json.dumps(body), headers=h)
    r = c.getresponse()
    data = r.read()
    c.close()
    return r.status, json.loads(data) if data else None


def hwm_mib(pid):
    try:
        for line in open(f"/proc/{pid}/status"):
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def psql(sql):
    out = subprocess.run(["psql", STORE, "-Atc", sql], capture_output=True, text=True)
    return out.stdout.strip()


# The body: series i is a noisy seasonal series of `points` values.
rng = random.Random(7)


def values(i):
    level, amp = 50 + i % 100, 5 + i % 7
    return [round(level + amp * ((t % 12) - 6) / 6 + rng.gauss(0, 1), 2) for t in range(a.points)]


if a.bulk == "json":
    series = [{"id": f"s{i}", "values": values(i)} for i in range(a.series)]
    body = json.dumps({"series": series, "method": a.method, "season_length": 12}).encode()
    del series
    print(f"body: {len(body) / 2**20:.1f} MiB, {a.series} series x {a.points} points, method {a.method}", file=sys.stderr)
else:
    # Monthly dates from 2000-01 (`--ds date`) or the integers 1..points.
    if a.ds == "date":
        stamps = [f"{2000 + t // 12:04d}-{t % 12 + 1:02d}-01" for t in range(a.points)]
    else:
        stamps = [str(t + 1) for t in range(a.points)]
    csv_path = a.csv_file or f"/tmp/bench_shards_{a.series}x{a.points}_{a.ds}.csv"
    if not os.path.exists(csv_path):
        with open(csv_path + ".part", "w", buffering=1 << 20) as f:
            f.write("unique_id,ds,y\n")
            for i in range(a.series):
                sid = f"s{i}"
                f.write("".join(f"{sid},{d},{v}\n" for d, v in zip(stamps, values(i))))
        os.rename(csv_path + ".part", csv_path)
    csv_bytes = os.path.getsize(csv_path)
    print(f"body: {csv_path}, {csv_bytes / 2**20:.1f} MiB CSV, {a.series} series x {a.points} points, "
          f"ds {a.ds}, method {a.method}", file=sys.stderr)

rows = []
for n_workers in [int(w) for w in a.workers.split(",")]:
    ns = f"bench_shards_{os.getpid()}_{n_workers}"
    env = {**os.environ, "HORIZON_NAMESPACE": ns, "HORIZON_BROKER": BROKER, "HORIZON_STORE": STORE,
           "RUST_LOG": "warn", "HORIZON_FIT_TIMEOUT": "3600s", "HORIZON_WAIT_TIMEOUT": "3600s",
           "HORIZON_SHARD_SERIES": str(a.shard_series), "HORIZON_MAX_BODY_BYTES": str(2**30), "HORIZON_BODY_BUDGET_BYTES": str(2**31),
           "HORIZON_MAX_FORECAST_VALUES": str(max(2_000_000, 12 * a.series)), "HORIZON_FORECAST_TIMEOUT": "3600s"}
    procs = []
    log = open(f"/tmp/bench_shards_{ns}.log", "w")
    gw = subprocess.Popen([a.bin, "serve", "--listen", f"127.0.0.1:{PORT}"], env=env, stdout=log, stderr=log)
    procs.append(gw)
    workers = []
    for k in range(n_workers):
        wenv = {**env, "RAYON_NUM_THREADS": "1", "HORIZON_FIT_PREFETCH": "1"}
        if a.cache_series is not None:
            wenv["HORIZON_CACHE_SERIES"] = str(a.cache_series)
        w = subprocess.Popen(["taskset", "-c", str(k % CORES), a.bin, "worker"], env=wenv, stdout=log, stderr=log)
        procs.append(w)
        workers.append(w)
    try:
        deadline = time.time() + 60
        while True:
            try:
                s, b = req("GET", "/readyz", timeout=5)
                if s == 200 and b["data"].get("consumers", {}).get("fit") == n_workers:
                    break
            except OSError:
                pass
            assert time.time() < deadline, "the cluster did not become ready"
            time.sleep(0.2)
        t0 = time.perf_counter()
        if a.bulk == "json":
            s, b = req("PUT", "/v1/models/big", body, headers={"Prefer": "respond-async"})
        else:
            # Streamed from the file in 1 MiB blocks.
            c = http.client.HTTPConnection("127.0.0.1", PORT, timeout=3600, blocksize=1 << 20)
            with open(csv_path, "rb") as f:
                c.request("PUT", f"/v1/models/big?method={a.method}&season_length=12", body=f,
                          headers={"Content-Type": "text/csv", "Content-Length": str(csv_bytes),
                                   "Prefer": "respond-async"})
                r = c.getresponse()
                s, b = r.status, json.loads(r.read() or b"null")
            c.close()
        upload_s = time.perf_counter() - t0
        assert s == 202, (s, b)
        job = b["data"]["id"]
        while True:
            s, b = req("GET", f"/v1/jobs/{job}")
            st = b["data"]["status"]
            if st == "succeeded":
                break
            assert st in ("queued", "running"), b
            time.sleep(0.5)
        fit_s = time.perf_counter() - t0
        hwm_fit = {"gateway": round(hwm_mib(gw.pid)), "workers": [round(hwm_mib(w.pid)) for w in workers]}
        download = {}
        if a.bulk == "csv":
            # The whole forecast as CSV, streamed to a file.
            t = time.perf_counter()
            c = http.client.HTTPConnection("127.0.0.1", PORT, timeout=3600)
            c.request("POST", "/v1/models/big/forecast", json.dumps({"horizon": 12}),
                      headers={"Content-Type": "application/json", "Accept": "text/csv"})
            r = c.getresponse()
            out_path = f"/tmp/bench_shards_{ns}_forecast.csv"
            n_bytes = n_lines = 0
            with open(out_path, "wb") as out:
                while True:
                    chunk = r.read(1 << 20)
                    if not chunk:
                        break
                    n_bytes += len(chunk)
                    n_lines += chunk.count(b"\n")
                    out.write(chunk)
            c.close()
            assert r.status == 200, (r.status, open(out_path, "rb").read(2000))
            assert n_lines == 1 + 12 * a.series, (n_lines, 1 + 12 * a.series)
            os.remove(out_path)
            download = {"download_s": round(time.perf_counter() - t, 1), "download_mib": round(n_bytes / 2**20, 1)}
        shards = psql(f"SELECT count(*) FROM \"{ns}\".shards")
        pg_bytes = int(psql(f"SELECT pg_total_relation_size('\"{ns}\".shards') + pg_total_relation_size('\"{ns}\".versions')") or 0)
        # Forecasts of 10 random series, sequential: warm the cache, then measure.
        ids = [f"s{i}" for i in range(a.series)]
        lat = []
        for k in range(a.forecasts + 50 if a.forecasts else 0):
            pick = random.sample(ids, 10)
            t = time.perf_counter()
            s, b = req("POST", "/v1/models/big/forecast", {"horizon": 12, "series": pick})
            assert s == 200, (s, b)
            if k >= 50:
                lat.append((time.perf_counter() - t) * 1000)
        lat.sort() if lat else lat.extend([float("nan")] * 2)
        row = {
            "workers": n_workers, "series": a.series, "shards": shards, "bulk": a.bulk,
            "upload_s": round(upload_s, 1), "fit_s": round(fit_s, 1), **download,
            "hwm_after_fit_mib": hwm_fit,
            "series_per_s": round(a.series / fit_s), "gateway_hwm_mib": round(hwm_mib(gw.pid)),
            "worker_hwm_mib": [round(hwm_mib(w.pid)) for w in workers],
            "pg_bytes_per_series": round(pg_bytes / a.series),
            "forecast10_p50_ms": round(lat[len(lat) // 2], 1), "forecast10_p99_ms": round(lat[max(0, int(len(lat) * 0.99) - 1)], 1),
        }
        rows.append(row)
        print(json.dumps(row), flush=True)
    finally:
        for pr in procs:
            pr.terminate()
        for pr in procs:
            try:
                pr.wait(timeout=20)
            except subprocess.TimeoutExpired:
                pr.kill()
        psql(f"DROP SCHEMA IF EXISTS \"{ns}\" CASCADE")
        for q in ("fit", "forecast", "forecast.retry", "dead", "parked"):
            subprocess.run(["rabbitmqctl", "-q", "delete_queue", f"{ns}.{q}"], capture_output=True)
        log.close()
if len(rows) >= 2:
    print(f"speed-up {rows[-1]['workers']} vs {rows[0]['workers']} workers: "
          f"{rows[-1]['series_per_s'] / rows[0]['series_per_s']:.2f}x")
