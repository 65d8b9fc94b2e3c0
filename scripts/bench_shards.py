"""Sharded fits: series/s of one large fit with 1..N worker processes (each
pinned to one core: taskset, RAYON_NUM_THREADS=1, one fit at a time), peak
memory (VmHWM) of the gateway and each worker, PostgreSQL bytes per series,
and the latency of forecasts of 10 series of the fitted model (cached shards).

usage: python3 scripts/bench_shards.py BIN [--series N] [--points P]
       [--method ets] [--workers 1,2] [--shard-series 5000] [--forecasts 300]
       [--bulk json|csv] [--ds int|date] [--csv-file PATH] [--cache-mib N]
       [--seed SEED_BIN [--embedded]] [--warm-shards]

With `--bulk csv` the body is a long-format CSV file (`unique_id,ds,y`)
written to disk first (never held whole in this script's memory) and
streamed up with `Prefer: respond-async`; after the fit the whole forecast
(horizon 12) is downloaded with `Accept: text/csv` and streamed to a file;
the times of upload (to the 202), fit (202 to `succeeded`) and download
are reported, and VmHWM of every process after the download.
Needs RabbitMQ and PostgreSQL on loopback (HORIZON_BROKER, HORIZON_STORE);
every run uses a namespace of its own and removes it (queues, schema).

--seed SEED_BIN (target/release/examples/seed_sharded): the model is not
fitted over HTTP (one request takes at most 100,000 series) but stored by
that program, shard by shard through the worker's own fit, before the
service starts; then only the forecasts are measured (daily series, so the
answers carry `ds`). With --embedded the service is `horizon serve` on a
SQLite data directory (its in-process workers), without RabbitMQ or
PostgreSQL. --warm-shards first asks four times for one series of every
shard (so that each of a few workers takes some of these), so the measured
forecasts find every shard cached (the first 50 are unmeasured either way)."""
import argparse, http.client, json, os, random, shutil, subprocess, sys, tempfile, time

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
p.add_argument("--seed", help="store the model with this program instead of fitting it over HTTP")
p.add_argument("--embedded", action="store_true", help="with --seed: horizon serve on SQLite")
p.add_argument("--cache-mib", type=int, help="workers' model cache in MiB (default: the workers' own default)")
p.add_argument("--warm-shards", action="store_true", help="forecast one series of every shard first")
a = p.parse_args()
assert not a.embedded or a.seed, "--embedded needs --seed"
# HORIZON_CACHE_MIB for every process that runs a worker, if asked.
CACHE = {"HORIZON_CACHE_MIB": str(a.cache_mib)} if a.cache_mib is not None else {}
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


def fnv_shard(id_, count):
    """protocol::shard::shard_of: FNV-1a (64 bits) of the id, modulo count."""
    if count <= 1:
        return 0
    h = 0xcbf29ce484222325
    for b in id_.encode():
        h = ((h ^ b) * 0x100000001b3) & 0xFFFFFFFFFFFFFFFF
    return h % count


def forecasts(n_shards):
    """Forecasts of 10 random series, one after another: 50 to warm the
    caches, then `--forecasts` measured; latencies in ms, sorted."""
    ids = [f"s{i}" for i in range(a.series)]
    if a.warm_shards and n_shards:
        one = {}
        for i in ids:
            one.setdefault(fnv_shard(i, n_shards), i)
            if len(one) == n_shards:
                break
        picks = list(one.values())
        # Four times: each worker of a few takes some of these forecasts.
        for _ in range(4):
            for k in range(0, len(picks), 100):
                s, b = req("POST", "/v1/models/big/forecast", {"horizon": 12, "series": picks[k:k + 100]})
                assert s == 200, (s, b)
    lat = []
    start = time.perf_counter()
    for k in range(a.forecasts + 50):
        pick = random.sample(ids, 10)
        t = time.perf_counter()
        s, b = req("POST", "/v1/models/big/forecast", {"horizon": 12, "series": pick})
        assert s == 200, (s, b)
        if k >= 50:
            ms = (time.perf_counter() - t) * 1000
            lat.append(ms)
            if ms > 10:
                # When the slow ones came (s since the first forecast): a
                # period says a timer's work (e.g. a cache refreshed).
                print(f"slow: {ms:.1f} ms at {t - start:.2f} s", file=sys.stderr)
    lat.sort()
    return lat


def wait_ready(n_workers):
    deadline = time.time() + 120
    while True:
        try:
            s, b = req("GET", "/readyz", timeout=5)
            if s == 200 and (n_workers is None or b["data"].get("consumers", {}).get("fit") == n_workers):
                return
        except OSError:
            pass
        assert time.time() < deadline, "the service did not become ready"
        time.sleep(0.2)


def seed(args):
    t = time.perf_counter()
    out = subprocess.run([a.seed, *args, "--model", "big", "--series", str(a.series), "--points", str(a.points),
                          "--method", a.method, "--shard-series", str(a.shard_series)],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    print(f"seeded: {out.stdout.strip()} in {time.perf_counter() - t:.1f} s", file=sys.stderr)
    return json.loads(out.stdout)


def stop(procs):
    for pr in procs:
        pr.terminate()
    for pr in procs:
        try:
            pr.wait(timeout=20)
        except subprocess.TimeoutExpired:
            pr.kill()


def latency(row, lat):
    row["forecasts"] = len(lat)
    row["forecast10_p50_ms"] = round(lat[len(lat) // 2], 1)
    row["forecast10_p99_ms"] = round(lat[int(len(lat) * 0.99) - 1], 1)
    row["forecast10_max_ms"] = round(lat[-1], 1)


rows = []
if a.embedded:
    # horizon serve on a SQLite data directory seeded beforehand.
    data = tempfile.mkdtemp(prefix="bench_shards_")
    log = open(f"{data}.log", "w")
    try:
        seeded = seed(["--data-dir", data])
        env = {k: v for k, v in os.environ.items() if k not in ("HORIZON_BROKER", "HORIZON_STORE")}
        env.update({"RUST_LOG": "warn", **CACHE})
        gw = subprocess.Popen([a.bin, "serve", "--listen", f"127.0.0.1:{PORT}", "--data-dir", data],
                              env=env, stdout=log, stderr=log)
        try:
            wait_ready(None)
            lat = forecasts(seeded["shards"])
            row = {"mode": "embedded", "series": a.series, "shards": seeded["shards"],
                   "serve_hwm_mib": round(hwm_mib(gw.pid))}
            latency(row, lat)
            rows.append(row)
            print(json.dumps(row), flush=True)
        finally:
            stop([gw])
    finally:
        log.close()
        shutil.rmtree(data, ignore_errors=True)
    sys.exit(0)

if not a.seed:
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


for n_workers in [int(w) for w in a.workers.split(",")]:
    ns = f"bench_shards_{os.getpid()}_{n_workers}"
    env = {**os.environ, "HORIZON_NAMESPACE": ns, "HORIZON_BROKER": BROKER, "HORIZON_STORE": STORE,
           "RUST_LOG": "warn", "HORIZON_FIT_TIMEOUT": "3600s", "HORIZON_WAIT_TIMEOUT": "3600s",
           "HORIZON_SHARD_SERIES": str(a.shard_series), "HORIZON_MAX_BODY_BYTES": str(2**30), "HORIZON_BODY_BUDGET_BYTES": str(2**31),
           **CACHE,
           "HORIZON_MAX_FORECAST_VALUES": str(max(2_000_000, 12 * a.series)), "HORIZON_FORECAST_TIMEOUT": "3600s"}
    procs = []
    log = open(f"/tmp/bench_shards_{ns}.log", "w")
    try:
        seeded = seed(["--store", STORE, "--namespace", ns]) if a.seed else None
        gw = subprocess.Popen([a.bin, "serve", "--listen", f"127.0.0.1:{PORT}"], env=env, stdout=log, stderr=log)
        procs.append(gw)
        workers = []
        for k in range(n_workers):
            wenv = {**env, "RAYON_NUM_THREADS": "1", "HORIZON_FIT_PREFETCH": "1"}
            w = subprocess.Popen(["taskset", "-c", str(k % CORES), a.bin, "worker"], env=wenv, stdout=log, stderr=log)
            procs.append(w)
            workers.append(w)
        wait_ready(n_workers)
        row = {"workers": n_workers, "series": a.series}
        if seeded is None:
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
            row.update({"bulk": a.bulk, "upload_s": round(upload_s, 1), "fit_s": round(fit_s, 1),
                        "series_per_s": round(a.series / fit_s),
                        "hwm_after_fit_mib": {"gateway": round(hwm_mib(gw.pid)),
                                              "workers": [round(hwm_mib(w.pid)) for w in workers]}})
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
                row.update({"download_s": round(time.perf_counter() - t, 1), "download_mib": round(n_bytes / 2**20, 1)})
        shards = int(psql(f"SELECT count(*) FROM \"{ns}\".shards") or 0)
        pg_bytes = int(psql(f"SELECT pg_total_relation_size('\"{ns}\".shards') + pg_total_relation_size('\"{ns}\".versions')") or 0)
        lat = forecasts(shards) if a.forecasts else []
        row.update({
            "shards": shards, "gateway_hwm_mib": round(hwm_mib(gw.pid)),
            "worker_hwm_mib": [round(hwm_mib(w.pid)) for w in workers],
            "pg_bytes_per_series": round(pg_bytes / a.series),
        })
        if lat:
            latency(row, lat)
        rows.append(row)
        print(json.dumps(row), flush=True)
    finally:
        stop(procs)
        psql(f"DROP SCHEMA IF EXISTS \"{ns}\" CASCADE")
        for q in ("fit", "forecast", "forecast.retry", "dead", "parked"):
            subprocess.run(["rabbitmqctl", "-q", "delete_queue", f"{ns}.{q}"], capture_output=True)
        log.close()
if len(rows) >= 2 and "series_per_s" in rows[0]:
    print(f"speed-up {rows[-1]['workers']} vs {rows[0]['workers']} workers: "
          f"{rows[-1]['series_per_s'] / rows[0]['series_per_s']:.2f}x")
