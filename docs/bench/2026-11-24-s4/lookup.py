# Median latency of POST /api/get_chain for p002 (a patient with few records), which
# reads the records and commits an audit transaction before answering; 50 calls.
import json, sys, time, urllib.request
base = f"http://127.0.0.1:{sys.argv[1]}"
def post(path, body, token=None):
    req = urllib.request.Request(base + path, data=json.dumps(body).encode(), method="POST",
                                 headers={"content-type": "application/json", **({"authorization": f"Bearer {token}"} if token else {})})
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.loads(r.read())
tok = post("/api/login", {"username": "d002", "password": "doctor456"})["token"]
ts = []
for _ in range(50):
    t = time.perf_counter(); post("/api/get_chain", {"patient_id": "p002"}, tok); ts.append((time.perf_counter() - t) * 1000)
ts.sort()
print(f"get_chain p002: p50 {ts[25]:.2f} ms, p90 {ts[45]:.2f} ms over 50 calls")
