#!/usr/bin/env python3
"""Why this file exists: issue 16 listed attacks that one organisation (the insurer,
organisation 3) could make on the others with its own node, keys and operator command.
This replays each of them the way a new user would (the CLI, curl-like HTTP calls, the
node's own database file) against a fresh 4-process demo cluster on 127.0.0.1, and prints
the answer each one gets. The Rust tests (crates/cli/tests/faulty_organisation.rs,
crates/records/tests/rules.rs, crates/api/tests/*) assert the same refusals in CI; this
script is the by-hand record for the issue's closing note.

    python3 scripts/attacks/organisation-boundary.py target/release/medchain

Everything it starts is stopped at the end; every loop is bounded.
"""

import concurrent.futures
import json
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

HTTP, P2P = 5200, 7200
BIN = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else "target/release/medchain")
results = []


def say(attack, answer, refused):
    results.append((attack, answer, refused))
    print(f"[{'held' if refused else 'BROKEN'}] {attack}\n          -> {answer}", flush=True)


def call(node, method, path, token=None, body=None, headers_out=None):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(f"http://127.0.0.1:{HTTP + node}{path}", data=data, method=method)
    if body is not None:
        req.add_header("content-type", "application/json")
    if token:
        req.add_header("authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(req, timeout=20) as r:
            if headers_out is not None:
                headers_out.update(r.headers.items())
            raw = r.read()
            return r.status, json.loads(raw) if raw else None
    except urllib.error.HTTPError as e:
        if headers_out is not None:
            headers_out.update(e.headers.items())
        raw = e.read()
        try:
            return e.code, json.loads(raw)
        except ValueError:
            return e.code, raw.decode(errors="replace")


def err(v):
    return f"{v['error']['code']}: {v['error']['message']}" if isinstance(v, dict) and "error" in v else str(v)[:160]


def login(node, user, password):
    s, v = call(node, "POST", "/api/login", body={"username": user, "password": password})
    return s, v


def token(node, user, password):
    s, v = login(node, user, password)
    assert s == 200, (user, s, v)
    return v["token"]


def cli(*args, stdin=""):
    p = subprocess.run([BIN, *args], input=stdin, capture_output=True, text=True, timeout=60)
    return p.returncode, (p.stdout + p.stderr).strip().splitlines()[-1] if (p.stdout + p.stderr).strip() else ""


def main():
    work = tempfile.mkdtemp(prefix="medchain-attacks-")
    d = os.path.join(work, "cluster")
    subprocess.run([BIN, "init", "--replicas", "4", "--dir", d, "--demo", "--http-port", str(HTTP),
                    "--p2p-port", str(P2P)], check=True, capture_output=True, timeout=120)
    procs = []
    try:
        for i in range(4):
            log = open(os.path.join(work, f"node{i}.log"), "w")
            procs.append(subprocess.Popen([BIN, "node", "--config", os.path.join(d, f"node{i}.toml")],
                                          stdout=log, stderr=log, start_new_session=True))
        deadline = time.time() + 60
        while time.time() < deadline:
            try:
                if all(call(i, "GET", "/healthz")[0] == 200 for i in range(4)):
                    break
            except OSError:
                pass
            time.sleep(0.5)
        attacks(d)
    finally:
        for p in procs:
            try:
                os.killpg(p.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        for p in procs:
            try:
                p.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, signal.SIGKILL)
    allowed = [a for a, _, refused in results if not refused]
    print(f"\n{len(results)} checks, {len(results) - len(allowed)} held, {len(allowed)} broken")
    sys.exit(1 if allowed else 0)


def attacks(d):
    node3 = os.path.join(d, "node3.toml")
    # 1. The insurer's operator sets a password for St Mary's patient p001 on its node.
    rc, line = cli("user", "set-password", "--config", node3, "--user-id", "p001", stdin="insurer chosen pw\n")
    say("insurer: `medchain user set-password --config node3.toml --user-id p001`", f"exit {rc}: {line}", rc != 0)
    # 1b. ...so it writes p001's hash into its own node's sign-in database by hand.
    con = sqlite3.connect(os.path.join(d, "org3", "data", "sign-in.sqlite"))
    con.execute("ATTACH ? AS home", (os.path.join(d, "org0", "data", "sign-in.sqlite"),))
    con.execute("INSERT OR REPLACE INTO main.credentials SELECT * FROM home.credentials WHERE user_id='p001'")
    con.commit()
    con.close()
    s, v = login(3, "p001", "patient123")
    say("insurer: sign in as p001 at node 3 with a hash copied into node 3's database", f"{s} {err(v)}", s == 403)

    # 2. The insurer's own 'cardiology' department administrator.
    rc, line = cli("user", "add", "--config", node3, "--user-id", "dep-ins", "--role", "department",
                   "--department", "cardiology", "--display-name", "Insurer cardiology", stdin="insurer initial pw\n")
    s, v = login(3, "dep-ins", "insurer initial pw")
    tok = v.get("token") if isinstance(v, dict) else None
    if isinstance(v, dict) and v.get("password_change_required"):
        call(3, "POST", "/api/password", tok, {"current_password": "insurer initial pw", "new_password": "insurer second pw"})
        tok = token(3, "dep-ins", "insurer second pw")
    s, v = call(3, "GET", "/api/users?role=patient", tok)
    ids = [u["user_id"] for u in v] if s == 200 else v
    say("insurer's 'cardiology' administrator lists cardiology patients", f"{s} {ids}", s == 200 and "p001" not in ids and "p002" not in ids)
    s, v = call(3, "GET", "/api/department/activity", tok)
    n = len(v["records"]) if s == 200 else err(v)
    say("insurer's 'cardiology' administrator reads cardiology activity", f"{s} records: {n}", s == 200 and n == 0)
    s, v = call(3, "POST", "/api/users/d002/deactivate", tok)
    say("insurer's 'cardiology' administrator deactivates St Mary's doctor d002", f"{s} {err(v)}", s in (403, 404))
    s, v = call(0, "GET", "/api/me", token(0, "d002", "doctor456"))
    say("... d002 still active afterwards", f"{s} active={v.get('active') if isinstance(v, dict) else v}", s == 200)

    # 3. Break-glass on many unrelated patients in a row.
    dep = token(0, "dep001", "department123")
    for i in range(5):
        call(0, "POST", "/api/users", dep, {"user_id": f"p-bg{i}", "role": "patient",
                                           "display_name": f"Patient {i}", "password": "initial password"})
    d2 = token(0, "d002", "doctor456")
    s, v = call(0, "POST", "/api/break_glass", d2, {"patient_id": "p-bg0", "reason": "x"})
    say("break-glass with the reason 'x'", f"{s} {err(v)}", s == 422)
    answers = []
    for i in range(5):
        s, v = call(0, "POST", "/api/break_glass", d2, {"patient_id": f"p-bg{i}", "reason": "unconscious on arrival in the ER"})
        answers.append(s)
    say("d002 opens break-glass on 5 unrelated patients in a row", f"statuses {answers}; last: {err(v)}", answers[3:] != [200, 200])
    s, v = call(0, "GET", "/api/break_glass/alerts", dep)
    say("... the patients' department sees alerts", f"{s} {len(v) if s == 200 else err(v)} open alerts", s == 200 and len(v) >= 3)

    # 4. Passwords: self-service change ends the other sessions; refresh reuse ends the family.
    s, first = login(0, "p001", "patient123")
    s, second = login(0, "p001", "patient123")
    s, v = call(0, "POST", "/api/password", second["token"], {"current_password": "patient123", "new_password": "a new passphrase"})
    s2, v2 = call(0, "GET", "/api/me", first["token"])
    s3, v3 = call(0, "POST", "/api/token/refresh", body={"refresh_token": first["refresh_token"]})
    say("after p001 changes its password, the other session's token and refresh token", f"change {s}; old token {s2}; old refresh {s3} {err(v3)}", s == 200 and s2 == 401 and s3 == 401)
    s, a = login(0, "d001", "doctor123")
    s1, r1 = call(0, "POST", "/api/token/refresh", body={"refresh_token": a["refresh_token"]})
    s2, r2 = call(0, "POST", "/api/token/refresh", body={"refresh_token": a["refresh_token"]})
    s3, r3 = call(0, "POST", "/api/token/refresh", body={"refresh_token": r1["refresh_token"]}) if s1 == 200 else (0, None)
    say("a refresh token used twice (stolen copy)", f"first {s1}, replay {s2} {err(r2)}, the family's newer token then {s3}", s2 == 401 and s3 == 401)

    # 5. 40 concurrent guesses at d002's password.
    def guess(i):
        return login(0, "d002", f"wrong guess {i}")[0]
    with concurrent.futures.ThreadPoolExecutor(40) as pool:
        statuses = list(pool.map(guess, range(40)))
    checked = statuses.count(401)
    say("40 concurrent wrong guesses at d002's password", f"{checked} checked (401), {statuses.count(429)} throttled (429)", checked <= 6)

    # 6. A chain longer than one page.
    d1 = token(0, "d001", "doctor123")
    n = 230
    with concurrent.futures.ThreadPoolExecutor(16) as pool:
        list(pool.map(lambda i: call(0, "POST", "/api/add_record", d1, {"patient_id": "p002", "diagnosis": f"visit {i}", "prescription": "", "notes": ""}), range(n)))
    seen, cursor, pages = set(), None, 0
    while pages < 20:
        body = {"patient_id": "p002"} | ({"cursor": cursor} if cursor else {})
        s, v = call(0, "POST", "/api/get_chain", d1, body)
        pages += 1
        seen.update(r["record_id"] for r in v["records"])
        cursor = v["next_cursor"]
        if cursor is None:
            break
    say(f"read p002's chain of {n}+ records through get_chain", f"{len(seen)} distinct records in {pages} pages", len(seen) >= n)

    # 7. Unknown vs forbidden, caching, look-alike names.
    s1, v1 = call(0, "POST", "/api/get_chain", d2, {"patient_id": "p001"})
    s2, v2 = call(0, "POST", "/api/get_chain", d2, {"patient_id": "p999"})
    same = s1 == s2 and err(v1).replace("p001", "ID") == err(v2).replace("p999", "ID")
    say("d002 probes ids: p001 (no consent) vs p999 (unknown)", f"{s1} / {s2}, same words: {same}", same and s1 == 403)
    h = {}
    call(0, "POST", "/api/get_chain", d1, {"patient_id": "p001"}, headers_out=h)
    hl = {k.lower(): v for k, v in h.items()}
    say("a patient-data answer's caching headers", f"cache-control={hl.get('cache-control')} nosniff={hl.get('x-content-type-options')}", hl.get("cache-control") == "no-store" and hl.get("x-content-type-options") == "nosniff")
    s, v = call(0, "POST", "/api/users", dep, {"user_id": "d-fake", "role": "doctor", "display_name": "Dr. Amara Okafor\u200b", "password": "initial password"})
    say("register 'Dr. Amara Okafor\\u200b' (zero-width space)", f"{s} {err(v)}", s == 422)
    rc, line = cli("user", "add", "--config", os.path.join(d, "node0.toml"), "--user-id", "d-rlo", "--role", "doctor",
                   "--department", "cardiology", "--display-name", "Amara \u202erotcoD", stdin="initial password\n")
    say("operator registers 'Amara \\u202erotcoD' (right-to-left override)", f"exit {rc}: {line}", rc != 0)

    # 8. Secrets at rest.
    modes = {p: oct(os.stat(os.path.join(d, p)).st_mode & 0o777) for p in
             ["", "org0", "org0/keys", "org0/keys/operator.key", "org0/data", "org0/data/token-secret.key", "org0/data/sign-in.sqlite", "org0/data/medchain.sqlite"]}
    ok = all(m in ("0o700", "0o600") for m in modes.values())
    say("file modes of the cluster folder, keys, data dir, token secret and databases", str(modes), ok)


if __name__ == "__main__":
    main()
