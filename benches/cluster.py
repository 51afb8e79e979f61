#!/usr/bin/env python3
"""Revocation propagation across replicas: three release gateways share one Redis; a
Security Event Token revoking a JWT (by `jti`) is pushed to replica A, and replicas B and C
are asked with the token until they refuse it. Reports p50/p99/max of the time from the
push (sent) to the first 401 on B and on C.

Needs redis-server and openssl (apt) and a release build (done here unless --skip-build).

    python3 benches/cluster.py [--revocations 200]
"""
import argparse, base64, http.client, http.server, json, os, shutil, socket, statistics, subprocess, sys, tempfile, threading, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from common import Key, Processes, free_port, wait_port  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--revocations", type=int, default=200)
    ap.add_argument("--skip-build", action="store_true")
    args = ap.parse_args()
    if not args.skip_build:
        subprocess.run(["cargo", "build", "--release", "--bin", "scopegate", "--example", "load-upstream"],
                       cwd=ROOT, check=True)
    work = tempfile.mkdtemp(prefix="scopegate-cluster-")
    processes = Processes(work)
    start = processes.start

    try:
        issuer_key, tx_key = Key(work, "iss"), Key(work, "tx")
        docs = {"/jwks": {"keys": [issuer_key.jwk]}, "/tx-jwks": {"keys": [tx_key.jwk]}}

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                body = json.dumps(docs.get(self.path, {})).encode()
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *a):
                pass

        keys_port = free_port()
        server = http.server.ThreadingHTTPServer(("127.0.0.1", keys_port), Handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        iss = f"http://127.0.0.1:{keys_port}"

        redis_port = free_port()
        start(["redis-server", "--port", str(redis_port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
        wait_port(redis_port)
        up_port = free_port()
        start([os.path.join(ROOT, "target/release/examples/load-upstream"), f"127.0.0.1:{up_port}"])
        wait_port(up_port)

        replicas = []
        for name in "ABC":
            port, admin = free_port(), free_port()
            conf = os.path.join(work, f"{name}.yaml")
            open(conf, "w").write(f"""
server: {{ listen: "127.0.0.1:{port}" }}
admin: {{ listen: "127.0.0.1:{admin}" }}
log: {{ requests: off }}
issuers:
  - {{ id: corp, issuer: "{iss}", discovery: false, jwks_uri: "{iss}/jwks", audiences: [https://api.example.com], algorithms: [RS256] }}
tokens:
  revocation:
    push: {{ transmitter: "https://tx.example", jwks_uri: "{iss}/tx-jwks", audience: "https://gw.example" }}
    retention: 1h
cluster: {{ redis: "redis://127.0.0.1:{redis_port}", key_prefix: "bench:", hmac_key: "bench-cluster-key-0123456789abcdef0123" }}
upstreams: {{ api: {{ url: "http://127.0.0.1:{up_port}" }} }}
routes:
  - {{ name: r, match: {{ path: /r }}, upstream: api, require: {{ scopes: repo }} }}
""")
            start([os.path.join(ROOT, "target/release/scopegate"), "run", "--config", conf],
                  env={**os.environ, "SCOPEGATE_LOG": "error"})
            replicas.append((name, port, admin))
        for _, port, admin in replicas:
            wait_port(port)
            wait_port(admin)
        time.sleep(1)

        now = int(time.time())
        conns = {name: http.client.HTTPConnection("127.0.0.1", port) for name, port, _ in replicas}

        def status(name, token):
            c = conns[name]
            c.request("GET", "/r", headers={"Authorization": f"Bearer {token}"})
            r = c.getresponse()
            r.read()
            return r.status

        def push(admin, set_jwt):
            c = http.client.HTTPConnection("127.0.0.1", admin)
            c.request("POST", "/events", body=set_jwt, headers={"Content-Type": "application/secevent+jwt"})
            r = c.getresponse()
            r.read()
            return r.status

        delays = {"B": [], "C": []}
        a_admin = replicas[0][2]
        for i in range(args.revocations):
            jti = f"bench-{i}"
            token = issuer_key.sign({"iss": iss, "aud": "https://api.example.com", "sub": f"u{i}",
                                               "client_id": "bench", "scope": "repo", "jti": jti,
                                               "iat": now, "exp": now + 3600})
            for name in "ABC":
                assert status(name, token) == 200, name
            set_jwt = tx_key.sign(typ="secevent+jwt", claims={
                "iss": "https://tx.example", "aud": "https://gw.example", "iat": int(time.time()), "jti": f"set-{i}",
                "events": {"https://schemas.openid.net/secevent/oauth/event-type/token-revoked":
                           {"subject": {"format": "jwt_id", "iss": iss, "jti": jti}}}})
            sent = time.perf_counter()
            assert push(a_admin, set_jwt) == 202
            waiting = {"B", "C"}
            while waiting:
                for name in sorted(waiting):
                    if status(name, token) == 401:
                        delays[name].append((time.perf_counter() - sent) * 1000)
                        waiting.discard(name)
                if time.perf_counter() - sent > 5:
                    raise SystemExit(f"revocation {i} not propagated to {waiting} within 5 s")

        every = delays["B"] + delays["C"]
        q = statistics.quantiles(every, n=100)
        print(f"{args.revocations} revocations pushed to A, time until B and C refuse ({len(every)} observations):")
        print(f"  p50 {statistics.median(every):.2f} ms   p99 {q[98]:.2f} ms   max {max(every):.2f} ms")
        print(f"  (includes the push's own answer to A, and the polling request that saw the 401)")
    finally:
        processes.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
