#!/usr/bin/env python3
"""Instructions per request, counted by callgrind: a repeatable A/B for changes too small for
the load script's noise (CPU time on this shared machine moves by 10 % between runs; an
instruction count moves by less than 0.1 %).

    python3 benches/load/instructions.py [--requests 5000] [--compare OLD_BINARY] [--keep DIR] [BINARY]

Each binary runs `scopegate dev` under `valgrind --tool=callgrind` with a route to an
upstream outside the process (the one-thread load upstream), and answers, on one kept-alive
connection, three kinds of request in turn:

- a 401 (no token);
- a proxied request with a cached JWT (the dev issuer's, `typ` before `alg` in its header);
- an nginx `auth_request`-shaped call to the decision endpoint with the same token.

The counts are zeroed after a warm-up and dumped after the kind's requests, so one row is
the gateway's instructions (every thread) per request of that kind. Instructions are not
time: kernel work (half of a request here) is not counted, and a cache miss costs as much
as an add. Needs valgrind (apt) and a release build with `--examples`.
"""
import argparse, http.client, json, os, shutil, subprocess, sys, tempfile, time, urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from common import Processes, free_port, wait_port  # noqa: E402

KINDS = ["401 (no token)", "proxied, cached JWT", "decision endpoint (nginx), cached JWT"]


def send(port, path, headers, n, status):
    c = http.client.HTTPConnection("127.0.0.1", port)
    for _ in range(n):
        c.request("GET", path, headers=headers)
        r = c.getresponse()
        r.read()
        if r.status != status:
            raise SystemExit(f"{path}: {r.status}, expected {status}")
    c.close()


def totals(path):
    """The `summary:` (or `totals:`) line of a callgrind dump: instructions executed."""
    with open(path) as f:
        for line in f:
            if line.startswith(("summary:", "totals:")):
                return int(line.split()[1])
    raise SystemExit(f"no totals in {path}")


def dumps_in_order(work):
    return sorted((p for p in os.listdir(work) if p.startswith("callgrind.out.")),
                  key=lambda p: os.path.getmtime(os.path.join(work, p)))


def count(binary, work, upstream_port, n, processes, keep):
    ports = {k: free_port() for k in ["gw", "admin", "decision"]}
    conf = os.path.join(work, "instructions.yaml")
    open(conf, "w").write(f"""
server: {{ listen: "127.0.0.1:{ports['gw']}" }}
admin: {{ listen: "127.0.0.1:{ports['admin']}" }}
decision: {{ listen: "127.0.0.1:{ports['decision']}" }}
log: {{ requests: json }}
upstreams: {{ api: {{ url: "http://127.0.0.1:{upstream_port}" }} }}
routes:
  - name: repos
    match: {{ methods: [GET], path: "/orgs/{{org}}/repos" }}
    upstream: api
    require: {{ scopes: {{ any: [repo] }} }}
""")
    out = os.path.join(work, "callgrind.out")
    vg = processes.start(["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", binary, "dev",
                          "--config", conf], stdout_path=os.path.join(work, "dev.out"))
    wait_port(ports["gw"], timeout=120)
    wait_port(ports["admin"], timeout=120)
    mint = urllib.request.Request(f"http://127.0.0.1:{ports['admin']}/dev/token", method="POST",
                                  data=json.dumps({"sub": "alice", "scope": "repo"}).encode(),
                                  headers={"content-type": "application/json"})
    token = json.load(urllib.request.urlopen(mint))["access_token"]
    bearer = {"Authorization": f"Bearer {token}"}
    calls = [
        (ports["gw"], "/orgs/acme/repos", {}, 401),
        (ports["gw"], "/orgs/acme/repos", bearer, 200),
        (ports["decision"], "/nginx", {**bearer, "X-Original-URI": "/orgs/acme/repos", "X-Original-Method": "GET"}, 200),
    ]
    result = []
    for i, (port, path, headers, status) in enumerate(calls):
        send(port, path, headers, 300, status)
        subprocess.run(["callgrind_control", "-z", str(vg.pid)], check=True, capture_output=True)
        send(port, path, headers, n, status)
        subprocess.run(["callgrind_control", "-d", f"kind{i}", str(vg.pid)], check=True, capture_output=True)
        time.sleep(0.5)
        result.append(totals(os.path.join(work, dumps_in_order(work)[-1])) / n)
    vg.terminate()
    vg.wait(timeout=30)
    if keep:
        # One dump per kind, for callgrind_annotate.
        os.makedirs(keep, exist_ok=True)
        for i, p in enumerate(dumps_in_order(work)[:len(KINDS)]):
            shutil.move(os.path.join(work, p), os.path.join(keep, f"{os.path.basename(binary)}.kind{i}.out"))
    for p in os.listdir(work):
        if p.startswith("callgrind.out"):
            os.remove(os.path.join(work, p))
    return result


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("binary", nargs="?", default=os.path.join(ROOT, "target/release/scopegate"))
    ap.add_argument("--compare", metavar="OLD_BINARY")
    ap.add_argument("--requests", type=int, default=5000)
    ap.add_argument("--keep", metavar="DIR", help="keep each kind's callgrind dump in DIR (for callgrind_annotate)")
    args = ap.parse_args()
    for tool in ["valgrind", "callgrind_control"]:
        if not shutil.which(tool):
            raise SystemExit(f"{tool} is missing: apt-get install valgrind")
    upstream = os.path.join(ROOT, "target/release/examples/load-upstream")
    if not os.path.exists(upstream):
        raise SystemExit("build the load upstream first: cargo build --release --examples")
    work = tempfile.mkdtemp(prefix="scopegate-instructions-")
    processes = Processes(work)
    try:
        up = free_port()
        processes.start([upstream, f"127.0.0.1:{up}"])
        wait_port(up)
        rows = {"this": count(os.path.abspath(args.binary), work, up, args.requests, processes, args.keep)}
        if args.compare:
            rows["old"] = count(os.path.abspath(args.compare), work, up, args.requests, processes, args.keep)
        print(f"\nInstructions per request (callgrind, {args.requests} requests per kind, one connection)\n")
        head = "| kind | " + " | ".join(rows) + (" | change |" if args.compare else " |")
        print(head)
        print("| --- |" + " ---: |" * (len(rows) + (1 if args.compare else 0)))
        for i, kind in enumerate(KINDS):
            cells = [f"{rows[r][i]:,.0f}" for r in rows]
            if args.compare:
                cells.append(f"{rows['this'][i] / rows['old'][i] - 1:+.1%}")
            print(f"| {kind} | " + " | ".join(cells) + " |")
    finally:
        processes.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
