"""Peak memory of `horizon serve` while it parses one large fit body.

Starts `horizon serve` (embedded mode, fresh data directory, random port),
reads its resident memory once it listens, sends ONE fit body of about --mb
MiB built in memory (nothing is written to disk), then reads the process's
peak resident memory (VmHWM in /proc/PID/status) and stops the server.
A fresh server per shape: VmHWM only grows.

Shapes (330-odd series of 100,000 points of `1`, 2 bytes a point):
  compact   {"sizes": [...], "y": [...], "method": "naive"}
  y-first   the same with "y" before "sizes" (y is read whole, then cut)
  chunked   compact sent with Transfer-Encoding: chunked (no Content-Length)
  decimals  the same with values such as 12.5 (5 bytes a point)
  series    {"series": [{"id", "values"}, ...], "method": "naive"}
  long      {"unique_id": [...], "y": [...], "method": "naive"} (ids "0".."329")
  too-long  {"sizes": [30000000], "y": [30 million points]}: must be refused
  too-many  {"series": [{"id": "a", "values": [30 million points]}]}: refused

usage: python3 scripts/body_memory.py [--binary target/debug/horizon] [--mb 64] SHAPE...
Prints one markdown row per shape.
"""
import argparse, http.client, os, re, subprocess, sys, tempfile, threading, time

POINTS = 100_000


def vm(pid, key):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"{key} not in /proc/{pid}/status")


def body(shape, mb):
    target = mb * 1024 * 1024
    if shape in ("too-long", "too-many"):
        n = 30_000_000
        values = b"1," * (n - 1) + b"1"
        if shape == "too-long":
            return b'{"sizes":[%d],"y":[' % n + values + b'],"method":"naive"}'
        return b'{"series":[{"id":"a","values":[' + values + b']}],"method":"naive"}'
    per_series = 2 * POINTS + 32  # "1," a point, plus the series' own text
    n_series = max(1, target // per_series)
    ones = b"1," * (POINTS - 1) + b"1"
    if shape == "decimals":
        ones = b",".join(b"%d.5" % (10 + t % 90) for t in range(POINTS))
        n_series = max(1, target // (len(ones) + 8))
        sizes = b",".join([b"%d" % POINTS] * n_series)
        y = b",".join([ones] * n_series)
        return b'{"sizes":[' + sizes + b'],"y":[' + y + b'],"method":"naive"}'
    if shape in ("compact", "chunked"):
        sizes = b",".join([b"%d" % POINTS] * n_series)
        y = b",".join([ones] * n_series)
        return b'{"sizes":[' + sizes + b'],"y":[' + y + b'],"method":"naive"}'
    if shape == "y-first":
        sizes = b",".join([b"%d" % POINTS] * n_series)
        y = b",".join([ones] * n_series)
        return b'{"y":[' + y + b'],"sizes":[' + sizes + b'],"method":"naive"}'
    if shape == "series":
        items = b",".join(b'{"id":"s%d","values":[' % i + ones + b"]}" for i in range(n_series))
        return b'{"series":[' + items + b'],"method":"naive"}'
    if shape == "long":
        # Rows series after series; ids are 1-3 digit strings ("0,"... 4-6 bytes a row).
        n_series = max(1, target // (POINTS * 8))
        ids = b",".join(b",".join([b'"%d"' % i] * POINTS) for i in range(n_series))
        y = b",".join([ones] * n_series)
        return b'{"unique_id":[' + ids + b'],"y":[' + y + b'],"method":"naive"}'
    raise SystemExit(f"unknown shape {shape}")


def send(conn, shape, payload):
    if shape == "chunked":
        pieces = (payload[i:i + 65536] for i in range(0, len(payload), 65536))
        conn.request("PUT", "/v1/models/big", body=pieces, encode_chunked=True,
                     headers={"Content-Type": "application/json",
                              "Transfer-Encoding": "chunked"})
    else:
        conn.request("PUT", "/v1/models/big", body=payload,
                     headers={"Content-Type": "application/json"})


def measure(binary, shape, mb):
    data_dir = tempfile.mkdtemp(prefix="horizon-body-memory-")
    env = dict(os.environ, RUST_LOG="info")
    for k in ("HORIZON_BROKER", "HORIZON_STORE"):
        env.pop(k, None)
    proc = subprocess.Popen(
        [binary, "serve", "--listen", "127.0.0.1:0", "--data-dir", data_dir],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    try:
        port = None
        for line in proc.stderr:
            m = re.search(rb"listening on http://[0-9.]+:(\d+)", line)
            if m:
                port = int(m.group(1))
                break
        if port is None:
            raise SystemExit("horizon serve did not start")
        # Keep draining the log so the server never blocks on a full pipe.
        threading.Thread(target=lambda: [None for _ in proc.stderr], daemon=True).start()
        payload = body(shape, mb)
        time.sleep(0.5)
        idle = vm(proc.pid, "VmRSS")
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
        t = time.perf_counter()
        try:
            send(conn, shape, payload)
        except (BrokenPipeError, ConnectionResetError):
            pass  # refused before the whole body was sent: the answer is there
        r = conn.getresponse()
        answer = r.read()
        secs = time.perf_counter() - t
        peak = vm(proc.pid, "VmHWM")
        size = len(payload)
        # A large fit is answered 202 and runs on: wait for its job to settle
        # (at most 10 min) and read the peak again, the fit's work included.
        settled = ""
        m = re.search(rb'"id":"([0-9a-f]+)","kind":"fit"', answer)
        if r.status == 202 and m:
            deadline = time.time() + 600
            while time.time() < deadline:
                c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
                c.request("GET", "/v1/jobs/" + m.group(1).decode())
                job = c.getresponse().read()
                state = re.search(rb'"status":"(queued|running|succeeded|failed|cancelled)"', job)
                if state and state.group(1) in (b"succeeded", b"failed", b"cancelled"):
                    settled = state.group(1).decode()
                    break
                time.sleep(0.5)
        after = vm(proc.pid, "VmHWM")
        del payload
        text = answer[:160].decode("utf-8", "replace").replace("|", "/")
        print(f"| {shape} | {size / 2**20:.1f} MiB | {r.status} | {idle / 2**20:.0f} MiB "
              f"| {peak / 2**20:.0f} MiB | {peak / size:.1f}x | {(peak - idle) / size:.1f}x "
              f"| {secs:.1f} s | {after / 2**20:.0f} MiB ({settled or 'no job'}) | {text} |", flush=True)
    finally:
        proc.kill()
        proc.wait()
        subprocess.run(["rm", "-rf", data_dir])


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--binary", default="target/debug/horizon")
    p.add_argument("--mb", type=int, default=64)
    p.add_argument("shapes", nargs="+")
    a = p.parse_args()
    print("| shape | body | status | RSS idle | peak RSS (VmHWM) | peak / body | (peak - idle) / body | time to answer | peak once the fit settled | answer |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    for shape in a.shapes:
        measure(a.binary, shape, a.mb)


if __name__ == "__main__":
    sys.exit(main())
