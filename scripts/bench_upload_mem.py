"""Gateway memory on a bulk CSV upload alone: starts `BIN serve` and one
worker (only so that the fit is accepted: the gateway refuses fits no worker
listens for; killed after the 202), streams CSV_FILE up as a table fit
(`Prefer: respond-async`, the env of bench_shards.py) and prints the
gateway's VmHWM 2 s after the 202 (the body parsed and validated by then).
Removes its namespace (schema, queues).

usage: python3 scripts/bench_upload_mem.py BIN CSV_FILE
(CSV_FILE as written by bench_shards.py --bulk csv)."""

import http.client, json, os, subprocess, sys, time
binary, csv_path = sys.argv[1], sys.argv[2]
PORT = 19000 + os.getpid() % 1000
ns = f"gwmem_{os.getpid()}"
STORE = "postgres://postgres@127.0.0.1:5432/test"
env = {**os.environ, "HORIZON_NAMESPACE": ns, "HORIZON_BROKER": "amqp://guest:guest@127.0.0.1:5672/%2f",
       "HORIZON_STORE": STORE, "RUST_LOG": "warn", "HORIZON_FIT_TIMEOUT": "3600s", "HORIZON_WAIT_TIMEOUT": "3600s",
       "HORIZON_SHARD_SERIES": "5000", "HORIZON_MAX_BODY_BYTES": str(2**30), "HORIZON_BODY_BUDGET_BYTES": str(2**31)}
def hwm(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
log = open(f"/tmp/{ns}.log", "w")
gw = subprocess.Popen([binary, "serve", "--listen", f"127.0.0.1:{PORT}"], env=env, stdout=log, stderr=log)
# One worker so that the fit is accepted (the gateway refuses fits nobody listens for); killed after the 202.
wk = subprocess.Popen(["nice", "-n", "19", binary, "worker"], env={**env, "RAYON_NUM_THREADS": "1", "HORIZON_FIT_PREFETCH": "1"}, stdout=log, stderr=log)
try:
    deadline = time.time() + 60
    while True:
        try:
            c = http.client.HTTPConnection("127.0.0.1", PORT, timeout=5); c.request("GET", "/readyz")
            r0 = c.getresponse(); b0 = r0.read()
            if r0.status == 200: break
        except OSError: pass
        assert time.time() < deadline; time.sleep(0.2)
    idle = hwm(gw.pid)
    size = os.path.getsize(csv_path)
    t0 = time.perf_counter()
    c = http.client.HTTPConnection("127.0.0.1", PORT, timeout=3600, blocksize=1 << 20)
    with open(csv_path, "rb") as f:
        c.request("PUT", "/v1/models/big?method=ets&season_length=12", body=f,
                  headers={"Content-Type": "text/csv", "Content-Length": str(size), "Prefer": "respond-async"})
        r = c.getresponse(); body = r.read()
    up = time.perf_counter() - t0
    time.sleep(2)
    print(json.dumps({"binary": binary, "csv_mib": round(size / 2**20, 1), "status": r.status,
                      "upload_s": round(up, 1), "gateway_hwm_idle_mib": round(idle), "gateway_hwm_mib": round(hwm(gw.pid))}))
    if r.status != 202: print(body[:500])
finally:
    wk.kill(); wk.wait()
    gw.terminate(); gw.wait(timeout=20)
    subprocess.run(["psql", STORE, "-Atc", f'DROP SCHEMA IF EXISTS "{ns}" CASCADE'], capture_output=True)
    for q in ("fit", "forecast", "forecast.retry", "dead", "parked"):
        subprocess.run(["rabbitmqctl", "-q", "delete_queue", f"{ns}.{q}"], capture_output=True)
