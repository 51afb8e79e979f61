#!/usr/bin/env python3
"""Protocol load rows, in one run, alternating targets round by round: a WebSocket echo
(64-byte text messages, one in flight per tunnel) and a gRPC unary echo (HTTP/2 without
TLS), each reached directly, through nginx (WebSocket proxying; `grpc_pass`), and through
scopegate deciding a cached JWT for the handshake or for every call.

    python3 benches/load/protocols.py [--duration 8] [--rounds 3] [--conns 16] [--skip-build]

CPU per message is the proxy process's utime+stime over the run divided by the messages
the client counted (WebSocket: echoes; gRPC: calls answered). Needs nginx and openssl (apt)
and a release build (done here unless --skip-build).
"""
import argparse, json, os, re, shutil, statistics, subprocess, sys, tempfile, time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from common import TICK, Key, Processes, cpu_ticks, family, free_port, wait_port  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--duration", type=int, default=8)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--conns", type=int, default=16)
    ap.add_argument("--skip-build", action="store_true")
    ap.add_argument("--compare", metavar="BINARY", help="also measure this scopegate binary")
    args = ap.parse_args()
    if not args.skip_build:
        subprocess.run(["cargo", "build", "--release", "--bin", "scopegate", "--example", "load-protocols"],
                       cwd=ROOT, check=True)
    tool = os.path.join(ROOT, "target/release/examples/load-protocols")
    work = tempfile.mkdtemp(prefix="scopegate-protocols-")
    os.chmod(work, 0o755)
    processes = Processes(work)
    start = processes.start

    try:
        ports = {k: free_port() for k in ["ws", "grpc", "nginx_ws", "nginx_grpc", "iss"]}
        key = Key(work)
        iss = f"http://127.0.0.1:{ports['iss']}"
        www = os.path.join(work, "www")
        os.makedirs(os.path.join(www, ".well-known"))
        json.dump({"keys": [key.jwk]}, open(os.path.join(www, "jwks.json"), "w"))
        json.dump({"issuer": iss, "jwks_uri": f"{iss}/jwks.json"},
                  open(os.path.join(www, ".well-known", "openid-configuration"), "w"))
        now = int(time.time())
        token = key.sign({"iss": iss, "aud": "https://api.example.com", "sub": "load", "client_id": "load",
                          "scope": "chat", "iat": now, "exp": now + 3 * 3600})

        start([tool, "ws-server", f"127.0.0.1:{ports['ws']}"])
        start([tool, "grpc-server", f"127.0.0.1:{ports['grpc']}"])
        wait_port(ports["ws"]); wait_port(ports["grpc"])

        nginx_conf = os.path.join(work, "nginx.conf")
        open(nginx_conf, "w").write(f"""
worker_processes 1; daemon off; pid {work}/nginx.pid; error_log {work}/nginx.err;
events {{ worker_connections 1024; }}
http {{
  access_log off;
  # Not a GOAWAY after 1000 requests on one HTTP/2 connection (nginx's default).
  keepalive_requests 100000000;
  server {{ listen 127.0.0.1:{ports['iss']}; root {www}; default_type application/json; }}
  server {{ listen 127.0.0.1:{ports['nginx_ws']};
    location / {{ proxy_pass http://127.0.0.1:{ports['ws']}; proxy_http_version 1.1;
      proxy_set_header Upgrade $http_upgrade; proxy_set_header Connection "upgrade";
      proxy_read_timeout 1h; }} }}
  upstream grpc_up {{ server 127.0.0.1:{ports['grpc']}; keepalive 64; }}
  server {{ listen 127.0.0.1:{ports['nginx_grpc']} http2;
    location / {{ grpc_pass grpc://grpc_up; }} }}
}}
""")
        nginx = start(["nginx", "-c", nginx_conf, "-p", work])
        wait_port(ports["nginx_ws"]); wait_port(ports["iss"])

        # (name, client mode, url, pids)
        targets = [
            ("WebSocket direct", "ws-client", f"ws://127.0.0.1:{ports['ws']}/ws", lambda: []),
            ("WebSocket nginx", "ws-client", f"ws://127.0.0.1:{ports['nginx_ws']}/ws", lambda: family(nginx.pid)),
            ("gRPC unary direct", "grpc-client", f"http://127.0.0.1:{ports['grpc']}", lambda: []),
            ("gRPC unary nginx grpc_pass", "grpc-client", f"http://127.0.0.1:{ports['nginx_grpc']}", lambda: family(nginx.pid)),
        ]
        instances = [("scopegate", os.path.join(ROOT, "target/release/scopegate"))]
        if args.compare:
            instances.append(("compare", os.path.abspath(args.compare)))
        for label, binary in instances:
            port, admin = free_port(), free_port()
            conf = os.path.join(work, f"{label}.yaml")
            open(conf, "w").write(f"""
server: {{ listen: "127.0.0.1:{port}", threads: 1 }}
admin: {{ listen: "127.0.0.1:{admin}" }}
issuers:
  - {{ id: load, issuer: "{iss}", audiences: [https://api.example.com], algorithms: [RS256] }}
upstreams:
  ws: {{ url: "http://127.0.0.1:{ports['ws']}" }}
  grpc: {{ url: "http://127.0.0.1:{ports['grpc']}", protocol: h2c }}
routes:
  - {{ name: ws, match: {{ methods: [GET], path: /ws }}, upstream: ws, require: {{ scopes: chat }}, websocket: {{}} }}
  - {{ name: echo, match: {{ methods: [POST], path: /bench.Echo/Unary }}, upstream: grpc, require: {{ scopes: chat }} }}
""")
            g = start([binary, "run", "--config", conf], env={**os.environ, "SCOPEGATE_LOG": "error"})
            wait_port(port)
            time.sleep(0.5)
            targets.append((f"WebSocket {label}", "ws-client", f"ws://127.0.0.1:{port}/ws", lambda g=g: [g.pid]))
            targets.append((f"gRPC unary {label}", "grpc-client", f"http://127.0.0.1:{port}", lambda g=g: [g.pid]))

        def run(mode, url, secs):
            done = subprocess.run([tool, mode, url, token, str(args.conns), str(secs)],
                                  capture_output=True, text=True)
            if done.returncode != 0:
                raise SystemExit(f"{mode} {url}: {done.stderr}")
            out = done.stdout
            get = lambda k: int(re.search(rf"^{k} (\d+)$", out, re.M).group(1))
            return get("messages"), get("p50"), get("p99")

        for name, mode, url, _ in targets:
            run(mode, url, 1)  # warm: keys fetched, connections made
        results = {name: [] for name, *_ in targets}
        for r in range(args.rounds):
            for name, mode, url, pids in targets:
                ps = pids()
                before = cpu_ticks(ps)
                n, p50, p99 = run(mode, url, args.duration)
                us = (cpu_ticks(ps) - before) / TICK * 1e6 / n if ps else float("nan")
                results[name].append((n / args.duration, p50, p99, us))
                print(f"round {r + 1}: {name:32s} {n / args.duration:9.0f} msg/s  p50 {p50:6d} µs  p99 {p99:6d} µs  cpu {us:6.1f} µs/msg",
                      file=sys.stderr)
        med = {n: [statistics.median(x[i] for x in v) for i in range(4)] for n, v in results.items()}
        print(f"\n{args.conns} tunnels / calls in flight, {args.duration}s x {args.rounds} rounds alternating, medians; "
              f"proxies on 1 worker thread/process\n")
        print("| target | messages/s | p50 µs | p99 µs | proxy CPU µs/message | CPU / nginx |")
        print("| --- | ---: | ---: | ---: | ---: | ---: |")
        for name, (rate, p50, p99, us) in med.items():
            kind = name.split(" ")[0]
            ref = med["WebSocket nginx" if kind == "WebSocket" else "gRPC unary nginx grpc_pass"][3]
            cpu = "" if "direct" in name else f"{us:.1f}"
            ratio = "" if "direct" in name else f"{us / ref:.2f}"
            print(f"| {name} | {rate:.0f} | {p50:.0f} | {p99:.0f} | {cpu} | {ratio} |")
    finally:
        processes.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
