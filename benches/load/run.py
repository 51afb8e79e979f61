#!/usr/bin/env python3
"""Side-by-side load benchmark: direct to upstream, nginx (plain reverse proxy), Apache with
mod_oauth2 (a gateway doing the same job), scopegate, and nginx asking scopegate's decision
endpoint by auth_request, in one run, alternating targets
round by round so that machine noise hits all of them alike.

Needs wrk, nginx, apache2 + libapache2-mod-oauth2 and openssl (apt), and a release build
(done here unless --skip-build). Everything listens on 127.0.0.1 and stops by itself.

    python3 benches/load/run.py [--duration 10] [--rounds 3] [--connections 32]
        [--compare OLD_BINARY] [--workers 2] [--tls] [--credentials] [--rate 5000]
        [--upstream nginx] [--only NAME] [--log-cost] [--perf NAME]
        [--pingora benches/engines/pingora-gate/target/release/pingora-gate]
        [--crosscheck] [--wrk-threads 2]

CPU per request is the proxy process's utime+stime (all threads and, for nginx and Apache,
all processes) over the run, divided by the requests wrk counted: the robust number on a
shared 2-core machine, where wrk, upstream and proxy compete for the cores. `--crosscheck`
measures the same windows a second, independent way (`perf stat -e task-clock` on the same
processes: the scheduler's own nanosecond count, read by perf, not from /proc).
"""
import argparse, base64, hashlib, json, os, re, shutil, signal, socket, statistics, subprocess, sys, tempfile, time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from common import TICK, Key, Processes, cpu_ticks, family, free_port, wait_port  # noqa: E402


def rss_mib(pid):
    with open(f"/proc/{pid}/status") as f:
        kib = next(int(l.split()[1]) for l in f if l.startswith("VmRSS:"))
    return kib / 1024


WRK_SCRIPT = """
local tokens = {}
local file = os.getenv("TOKENS")
if file and file ~= "" then for line in io.lines(file) do tokens[#tokens + 1] = line end end
local path = os.getenv("TARGET_PATH")
local close = os.getenv("NEW_CONNECTION") == "1"
local name = os.getenv("HEADER") or "Authorization"
local prefix = os.getenv("PREFIX") or "Bearer "
local i = 0
request = function()
  local headers = {}
  if close then headers["Connection"] = "close" end
  if #tokens > 0 then
    i = i % #tokens + 1
    headers[name] = prefix .. tokens[i]
  end
  return wrk.format("GET", path, headers)
end
"""


def fixed_rate(args, targets, files, results):
    """Latency at a fixed rate below saturation (oha `-q`, corrected for coordinated
    omission), rounds alternating like the throughput runs: what each proxy adds to the
    direct path's percentiles."""
    oha = shutil.which("oha") or os.path.expanduser("~/.cargo/bin/oha")
    if not os.path.exists(oha):
        raise SystemExit("oha is missing: cargo install oha --locked")
    token = open(files["t100"]).readline().strip()
    chosen = [t for t in targets if not isinstance(t[1], str)
              and (t[0] in ("direct", "nginx") or t[0].endswith("(100 JWTs)") and "auth_request" not in t[0])]
    lat = {name: [] for name, *_ in chosen}
    for _ in range(args.rounds):
        for name, port, path, _, _ in chosen:
            out = subprocess.run([oha, "-q", str(args.rate), "-z", f"{args.duration}s", "-c", str(args.connections),
                                  "--latency-correction", "--no-tui", "--output-format", "json",
                                  "-H", f"Authorization: Bearer {token}", f"http://127.0.0.1:{port}{path}"],
                                 capture_output=True, text=True, check=True).stdout
            p = json.loads(out)["latencyPercentiles"]
            lat[name].append((p["p50"] * 1e6, p["p99"] * 1e6, p["p99.9"] * 1e6))
    med = {n: [statistics.median(x[i] for x in v) for i in range(3)] for n, v in lat.items()}
    d = med["direct"]
    print(f"\nFixed rate: oha -q {args.rate} -c{args.connections} -z {args.duration}s --latency-correction, "
          f"{args.rounds} rounds alternating, medians (one cached token)\n")
    print("| target | p50 µs | p99 µs | p99.9 µs | p50 added µs | p99 added µs |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for name, (p50, p99, p999) in med.items():
        print(f"| {name} | {p50:.0f} | {p99:.0f} | {p999:.0f} | {p50 - d[0]:.0f} | {p99 - d[1]:.0f} |")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--duration", type=int, default=10)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--connections", type=int, default=32)
    ap.add_argument("--skip-build", action="store_true")
    ap.add_argument("--no-apache", action="store_true")
    ap.add_argument("--only", help="measure only targets whose name contains this (plus direct and nginx)")
    ap.add_argument("--compare", metavar="BINARY", help="also measure this scopegate binary (A/B a change in one run)")
    ap.add_argument("--decision-unix", action="store_true",
                    help="nginx asks the decision endpoint over a unix socket instead of loopback TCP")
    ap.add_argument("--perf", metavar="NAME", help="record `perf record -g` of the target NAME into perf.data")
    ap.add_argument("--workers", type=int, default=1,
                    help="worker threads of scopegate and worker processes of nginx (scaling: run with 1, then 2)")
    ap.add_argument("--tls", action="store_true",
                    help="also measure TLS termination: nginx and scopegate over HTTPS, kept-alive, a new connection per request, and HTTP/2 (h2load: apt-get install nghttp2-client)")
    ap.add_argument("--credentials", action="store_true",
                    help="also measure opaque tokens (introspected once, then cached) and a legacy API key")
    ap.add_argument("--upstream", choices=["hyper", "nginx"], default="hyper",
                    help="the upstream: the one-thread hyper server (default) or a separate nginx answering `return 200`")
    ap.add_argument("--rate", type=int, metavar="RPS",
                    help="also measure latency at this fixed request rate with oha (cargo install oha), for direct, nginx and scopegate")
    ap.add_argument("--pingora", metavar="BINARY",
                    help="also measure a bare pingora gateway (benches/engines/pingora-gate: bearer header present, nothing verified) on --workers threads")
    ap.add_argument("--crosscheck", action="store_true",
                    help="also count each window's CPU with `perf stat -e task-clock` (an independent clock) and print both")
    ap.add_argument("--wrk-threads", type=int, default=1, help="wrk's threads (its connections spread over them)")
    ap.add_argument("--log-cost", action="store_true", help="also measure scopegate with its request log off (the default writes one JSON line per request)")
    args = ap.parse_args()
    for tool in ["wrk", "nginx", "openssl"] + ([] if args.no_apache else ["apache2"]):
        if not shutil.which(tool) and not os.path.exists(f"/usr/sbin/{tool}"):
            raise SystemExit(f"{tool} is missing: apt-get install wrk nginx-light apache2 libapache2-mod-oauth2")
    # What the optional rows need, said before anything starts.
    for wanted, tool, package in [(args.tls, "h2load", "nghttp2-client"), (args.crosscheck or args.perf, "perf", "linux-perf")]:
        if wanted and not shutil.which(tool):
            raise SystemExit(f"{tool} is missing: apt-get install {package}")
    if args.rate and not (shutil.which("oha") or os.path.exists(os.path.expanduser("~/.cargo/bin/oha"))):
        raise SystemExit("oha is missing: cargo install oha --locked")
    if args.pingora and not os.path.exists(args.pingora):
        raise SystemExit(f"{args.pingora} is missing: cargo build --release --manifest-path "
                         "benches/engines/pingora-gate/Cargo.toml (needs cmake: apt-get install cmake)")
    if not args.skip_build:
        subprocess.run(["cargo", "build", "--release", "--bin", "scopegate", "--example", "load-upstream"],
                       cwd=ROOT, check=True)
    work = tempfile.mkdtemp(prefix="scopegate-load-")
    os.chmod(work, 0o755)  # nginx and Apache workers run as other users
    processes = Processes(work)
    start = processes.start

    try:
        ports = {k: free_port() for k in ["up", "nginx", "nginx_auth", "decision", "iss", "apache"]}
        key = Key(work)
        iss = f"http://127.0.0.1:{ports['iss']}"
        www = os.path.join(work, "www")
        os.makedirs(os.path.join(www, ".well-known"))
        json.dump({"keys": [key.jwk]}, open(os.path.join(www, "jwks.json"), "w"))
        json.dump({"issuer": iss, "jwks_uri": f"{iss}/jwks.json", "introspection_endpoint": f"{iss}/introspect"},
                  open(os.path.join(www, ".well-known", "openid-configuration"), "w"))

        now = int(time.time())
        def token(sub, scope):
            return key.sign({"iss": iss, "aud": "https://api.example.com", "sub": sub, "client_id": "load",
                             "scope": scope, "iat": now, "exp": now + 3 * 3600})
        files = {}
        for name, n, scope in [("t100", 100, "repo"), ("t1000", 1000, "repo"), ("t403", 100, "read:org")]:
            files[name] = os.path.join(work, f"{name}.txt")
            with open(files[name], "w") as f:
                for i in range(n):
                    f.write(token(f"user{i}", scope) + "\n")
        # Opaque tokens (one introspection each, then cached) and a legacy API key.
        files["opaque"] = os.path.join(work, "opaque.txt")
        with open(files["opaque"], "w") as f:
            for i in range(100):
                f.write(os.urandom(20).hex() + "\n")
        api_key = "load-api-key-" + os.urandom(8).hex()
        files["legacy"] = os.path.join(work, "legacy.txt")
        open(files["legacy"], "w").write(api_key + "\n")
        introspected = json.dumps({"active": True, "scope": "repo", "client_id": "load", "sub": "opaque-user",
                                   "iss": iss, "exp": now + 3 * 3600, "token_type": "Bearer"})
        script = os.path.join(work, "tokens.lua")
        open(script, "w").write(WRK_SCRIPT)

        # On every loopback address: the three-address row reaches it as 127.0.0.1-3.
        if args.upstream == "hyper":
            start([os.path.join(ROOT, "target/release/examples/load-upstream"), f"0.0.0.0:{ports['up']}"])
        else:
            # Its own process, so that its CPU is not counted as the nginx proxy's.
            up_conf = os.path.join(work, "upstream-nginx.conf")
            open(up_conf, "w").write(f"""
worker_processes 1; daemon off; pid {work}/upstream-nginx.pid; error_log {work}/upstream-nginx.err;
events {{ worker_connections 1024; }}
http {{ access_log off; keepalive_requests 100000000;
  server {{ listen {ports['up']}; location / {{ return 200 "ok"; }} }} }}
""")
            start(["nginx", "-c", up_conf, "-p", work])
        wait_port(ports["up"])

        cert, key_pem = os.path.join(work, "cert.pem"), os.path.join(work, "key.pem")
        tls_site = ""
        if args.tls:
            subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                            "-nodes", "-keyout", key_pem, "-out", cert, "-days", "1", "-subj", "/CN=localhost",
                            "-addext", "subjectAltName=IP:127.0.0.1"], check=True, capture_output=True)
            os.chmod(key_pem, 0o644)
            ports["nginx_tls"] = free_port()
            tls_site = f"""
  server {{ listen 127.0.0.1:{ports['nginx_tls']} ssl http2; ssl_certificate {cert}; ssl_certificate_key {key_pem};
    ssl_protocols TLSv1.3; ssl_session_tickets on; ssl_session_cache shared:tls:1m;
    location / {{ proxy_pass http://up; proxy_http_version 1.1; proxy_set_header Connection ""; }} }}"""
        decision_socket = os.path.join(work, "decision.sock")
        decision_address = f"unix:{decision_socket}" if args.decision_unix else f"127.0.0.1:{ports['decision']}"
        nginx_conf = os.path.join(work, "nginx.conf")
        open(nginx_conf, "w").write(f"""
worker_processes {args.workers}; daemon off; pid {work}/nginx.pid; error_log {work}/nginx.err;
events {{ worker_connections 1024; }}
http {{
  # Client connections are never closed for their number of requests (nginx closes them
  # after 1 000 by default: wrk reconnects, h2load's clients stop).
  access_log off; keepalive_requests 100000000;
  upstream up {{ server 127.0.0.1:{ports['up']}; keepalive 64; keepalive_requests 1000000; }}
  server {{ listen 127.0.0.1:{ports['nginx']};
    location / {{ proxy_pass http://up; proxy_http_version 1.1; proxy_set_header Connection ""; }} }}
  server {{ listen 127.0.0.1:{ports['iss']}; root {www}; default_type application/json;
    location = /introspect {{ return 200 '{introspected}'; }} }}{tls_site}
  # nginx in front, asking scopegate's decision endpoint (the README's configuration).
  upstream decide {{ server {decision_address}; keepalive 64; keepalive_requests 1000000; }}
  server {{ listen 127.0.0.1:{ports['nginx_auth']};
    location / {{
      auth_request /_scopegate;
      auth_request_set $auth_subject $upstream_http_x_auth_subject;
      auth_request_set $auth_scopes $upstream_http_x_auth_scopes;
      proxy_set_header X-Auth-Subject $auth_subject;
      proxy_set_header X-Auth-Scopes $auth_scopes;
      proxy_pass http://up; proxy_http_version 1.1; proxy_set_header Connection ""; }}
    location = /_scopegate {{ internal;
      proxy_pass http://decide/nginx; proxy_http_version 1.1; proxy_set_header Connection "";
      proxy_pass_request_body off; proxy_set_header Content-Length "";
      proxy_set_header X-Original-URI $request_uri; proxy_set_header X-Original-Method $request_method; }} }}
}}
""")
        nginx = start(["nginx", "-c", nginx_conf, "-p", work])
        wait_port(ports["nginx"]); wait_port(ports["iss"])

        targets = []  # (name, port, path, tokens file, pids function)
        # The CPU of these processes is also reported alone for a target (the decision part).
        also = {}
        targets.append(("direct", ports["up"], "/orgs/acme/repos", files["t100"], lambda: []))
        targets.append(("nginx", ports["nginx"], "/orgs/acme/repos", files["t100"], lambda: family(nginx.pid)))
        if args.tls:
            tls_base = f"https://127.0.0.1:{ports['nginx_tls']}"
            targets.append(("nginx TLS", tls_base, "/orgs/acme/repos", files["t100"], lambda: family(nginx.pid)))
            targets.append(("nginx TLS, new connection per request", tls_base + "#new", "/orgs/acme/repos",
                            files["t100"], lambda: family(nginx.pid)))
            targets.append(("nginx TLS, HTTP/2 (h2load)", tls_base + "#h2", "/orgs/acme/repos",
                            files["t100"], lambda: family(nginx.pid)))

        if not args.no_apache:
            apache_conf = os.path.join(work, "apache.conf")
            open(apache_conf, "w").write(f"""
ServerRoot /etc/apache2
DefaultRuntimeDir {work}
PidFile {work}/apache.pid
Mutex file:{work}
ErrorLog {work}/apache.err
LogLevel error
ServerName localhost
User www-data
Group www-data
Listen 127.0.0.1:{ports['apache']}
LoadModule mpm_event_module /usr/lib/apache2/modules/mod_mpm_event.so
LoadModule authz_core_module /usr/lib/apache2/modules/mod_authz_core.so
LoadModule authn_core_module /usr/lib/apache2/modules/mod_authn_core.so
LoadModule proxy_module /usr/lib/apache2/modules/mod_proxy.so
LoadModule proxy_http_module /usr/lib/apache2/modules/mod_proxy_http.so
LoadModule oauth2_module /usr/lib/apache2/modules/mod_oauth2.so
ServerLimit 2
StartServers 2
ThreadsPerChild 32
MaxRequestWorkers 64
MinSpareThreads 1
MaxSpareThreads 64
KeepAliveTimeout 60
MaxKeepAliveRequests 0
<Location /orgs>
  AuthType oauth2
  OAuth2TokenVerify jwks_uri {iss}/jwks.json
  Require oauth2_claim scope:repo
  ProxyPass http://127.0.0.1:{ports['up']}/orgs keepalive=On
</Location>
""")
            apache = start(["apache2", "-f", apache_conf, "-DFOREGROUND"])
            wait_port(ports["apache"])
            targets.append(("apache mod_oauth2", ports["apache"], "/orgs/acme/repos", files["t100"], lambda: family(apache.pid)))

        if args.pingora:
            # Bare pingora, the engine scopegate measured itself against (docs/engine-decision.md).
            ports["pingora"] = free_port()
            cmd = [os.path.abspath(args.pingora), f"127.0.0.1:{ports['up']}", str(args.workers), f"127.0.0.1:{ports['pingora']}"]
            if args.tls:
                ports["pingora_tls"] = free_port()
                cmd += [f"127.0.0.1:{ports['pingora_tls']}", cert, key_pem]
            pingora = start(cmd)
            wait_port(ports["pingora"])
            name = "pingora bare gate (bearer present, nothing verified)"
            targets.append((name, ports["pingora"], "/orgs/acme/repos", files["t100"], lambda: [pingora.pid]))
            targets.append(("pingora bare gate 401", ports["pingora"], "/orgs/acme/repos", "", lambda: [pingora.pid]))
            if args.tls:
                wait_port(ports["pingora_tls"])
                base = f"https://127.0.0.1:{ports['pingora_tls']}"
                targets.append(("pingora bare gate TLS", base, "/orgs/acme/repos", files["t100"], lambda: [pingora.pid]))
                targets.append(("pingora bare gate TLS, new connection per request", base + "#new", "/orgs/acme/repos",
                                files["t100"], lambda: [pingora.pid]))
                targets.append(("pingora bare gate TLS, HTTP/2 (h2load)", base + "#h2", "/orgs/acme/repos",
                                files["t100"], lambda: [pingora.pid]))

        gateways = {}
        instances = [("scopegate", os.path.join(ROOT, "target/release/scopegate"))]
        if args.log_cost:
            instances.append(("scopegate, log off", os.path.join(ROOT, "target/release/scopegate")))
        # The same upstream reached as three addresses: the cost of balancing (round robin,
        # a pool per address).
        instances.append(("scopegate, 3 addresses", os.path.join(ROOT, "target/release/scopegate")))
        if args.compare:
            instances.append(("compare", os.path.abspath(args.compare)))
        if args.tls:
            instances.append(("scopegate TLS", os.path.join(ROOT, "target/release/scopegate")))
        if args.credentials:
            instances.append(("scopegate credentials", os.path.join(ROOT, "target/release/scopegate")))
        for label, binary in instances:
            ports[label], ports[label + "_admin"] = free_port(), free_port()
            conf = os.path.join(work, f"{label}.yaml")
            # nginx's workers run as another user: the socket is opened to them.
            mode = ', socket_mode: "0666"' if args.decision_unix else ""
            decision = f'decision: {{ listen: "{decision_address}"{mode} }}' if label == "scopegate" else ""
            log = "log: { requests: off }" if "log off" in label else ""
            up_conf = f'{{ url: "http://127.0.0.1:{ports["up"]}" }}'
            if "3 addresses" in label:
                up_conf = (f'{{ url: "http://127.0.0.1:{ports["up"]}", addresses: ['
                           + ", ".join(f'"127.0.0.{i}:{ports["up"]}"' for i in (1, 2, 3)) + "] }")
            tls = f', tls: {{ cert: "{cert}", key: "{key_pem}" }}' if "TLS" in label else ""
            others = ""
            if "credentials" in label:
                digest = hashlib.sha256(api_key.encode()).hexdigest()
                others = (f"\n    introspection: {{ client_id: load, client_secret: s }}"
                          f"\ncredentials:\n  - {{ id: load-key, header: X-API-Key, sha256: {digest}, "
                          f"subject: legacy, client_id: legacy, scopes: [repo] }}"
                          # The 100 tokens are all introspected in the warm-up (the default
                          # lets one client introduce 20 new tokens a second).
                          f"\ntokens: {{ introspection_limits: {{ per_client_per_second: 1000 }} }}")
            open(conf, "w").write(f"""
{decision}
{log}
server: {{ listen: "127.0.0.1:{ports[label]}", threads: {args.workers}{tls} }}
admin: {{ listen: "127.0.0.1:{ports[label + '_admin']}" }}
issuers:
  - id: load
    issuer: "{iss}"
    audiences: [https://api.example.com]
    algorithms: [RS256]{others}
upstreams: {{ api: {up_conf} }}
routes:
  - name: repos
    match: {{ methods: [GET], path: "/orgs/{{org}}/repos" }}
    upstream: api
    require: {{ scopes: {{ any: [repo, public_repo] }} }}
""")
            # The request log (stdout) goes to a file, as a log collector would take it.
            gateways[label] = start([binary, "run", "--config", conf],
                                     env={**os.environ, "SCOPEGATE_LOG": "error"},
                                     stdout_path=os.path.join(work, f"{label}.requests.log"))
            wait_port(ports[label])
            time.sleep(0.5)
            g = gateways[label]
            if "credentials" in label:
                targets.append((f"{label}: opaque token, cached (100 tokens)", ports[label], "/orgs/acme/repos",
                                files["opaque"], lambda g=g: [g.pid]))
                targets.append((f"{label}: legacy API key", ports[label], "/orgs/acme/repos",
                                files["legacy"] + "#X-API-Key", lambda g=g: [g.pid]))
                continue
            if "TLS" in label:
                base = f"https://127.0.0.1:{ports[label]}"
                targets.append((f"{label} (100 JWTs)", base, "/orgs/acme/repos", files["t100"], lambda g=g: [g.pid]))
                targets.append((f"{label}, new connection per request (100 JWTs)", base + "#new", "/orgs/acme/repos",
                                files["t100"], lambda g=g: [g.pid]))
                targets.append((f"{label}, HTTP/2 (h2load, one cached JWT)", base + "#h2", "/orgs/acme/repos",
                                files["t100"], lambda g=g: [g.pid]))
                continue
            targets.append((f"{label} (100 JWTs)", ports[label], "/orgs/acme/repos", files["t100"], lambda g=g: [g.pid]))
            if "3 addresses" in label:
                continue
            targets.append((f"{label} (1000 JWTs)", ports[label], "/orgs/acme/repos", files["t1000"], lambda g=g: [g.pid]))
            targets.append((f"{label} 401", ports[label], "/orgs/acme/repos", "", lambda g=g: [g.pid]))
            targets.append((f"{label} 403", ports[label], "/orgs/acme/repos", files["t403"], lambda g=g: [g.pid]))
            if label == "scopegate":
                name = "nginx + auth_request → scopegate decision (100 JWTs)"
                if args.decision_unix:
                    name = name.replace("decision", "decision on a unix socket")
                targets.append((name, ports["nginx_auth"], "/orgs/acme/repos", files["t100"],
                                lambda g=g: family(nginx.pid) + [g.pid]))
                also[name] = lambda g=g: [g.pid]

        def h2load(base, path, tokens, duration):
            # HTTP/2 over TLS, one stream at a time per connection (as wrk's HTTP/1.1), one token;
            # latencies from its per-request log (start, status, duration in µs).
            token = open(tokens).readline().strip()
            log = os.path.join(work, "h2load.log")
            out = subprocess.run(["h2load", "-c", str(args.connections), "-m", "1", "-D", str(duration),
                                  "--log-file", log, "-H", f"authorization: Bearer {token}", base + path],
                                 capture_output=True, text=True).stdout
            reqs = int(re.search(r"requests: \d+ total, \d+ started, (\d+) done", out).group(1))
            rps = float(re.search(r"finished in [\d.]+s, ([\d.]+) req/s", out).group(1))
            rows = [line.split() for line in open(log) if line.strip()]
            durations = sorted(int(r[2]) for r in rows)
            non2xx = sum(1 for r in rows if not r[1].startswith("2"))
            def lat(pct):
                return float(durations[min(len(durations) - 1, int(len(durations) * pct / 100))])
            return reqs, rps, lat(50), lat(99), non2xx

        def wrk(port, path, tokens, duration):
            # A port, or a base URL (`#new`: a new connection for every request; `#h2`: HTTP/2
            # with h2load).
            base = port if isinstance(port, str) else f"http://127.0.0.1:{port}"
            if base.endswith("#h2"):
                return h2load(base.removesuffix("#h2"), path, tokens, duration)
            new = base.endswith("#new")
            # A tokens file `#Header`: its lines are that header's whole value.
            tokens, _, header = tokens.partition("#")
            env = {**os.environ, "TOKENS": tokens, "TARGET_PATH": path, "NEW_CONNECTION": "1" if new else "0",
                   "HEADER": header or "Authorization", "PREFIX": "" if header else "Bearer "}
            out = subprocess.run(["wrk", f"-t{args.wrk_threads}", f"-c{args.connections}", f"-d{duration}s", "--latency", "-s", script,
                                  base.removesuffix("#new")], env=env, capture_output=True, text=True).stdout
            reqs = int(re.search(r"(\d+) requests in", out).group(1))
            def lat(pct):
                m = re.search(rf"\s{pct}%\s+([\d.]+)(us|ms|s)\b", out)
                v = float(m.group(1))
                return v * {"us": 1, "ms": 1000, "s": 1e6}[m.group(2)]
            non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
            return reqs, float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1)), lat(50), lat(99), int(non2xx.group(1)) if non2xx else 0

        if args.only:
            targets = [t for t in targets if t[0] in ("direct", "nginx") or args.only in t[0]]

        idle = {label: rss_mib(g.pid) for label, g in gateways.items()}

        # Warm every cache (JWKS, verified tokens) before measuring.
        for name, port, path, tokens, _ in targets:
            wrk(port, path, tokens, 2)

        results = {name: [] for name, *_ in targets}
        alone = {}
        crosscheck = {}
        for r in range(args.rounds):
            for name, port, path, tokens, pids in targets:
                ps = pids()
                perf = None
                if args.perf == name and ps:
                    perf = subprocess.Popen(["perf", "record", "-g", "-o", "perf.data", "-p", str(ps[0])],
                                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
                stat = None
                if args.crosscheck and ps:
                    stat = subprocess.Popen(["perf", "stat", "-e", "task-clock", "-x", ",", "-p", ",".join(map(str, ps))],
                                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
                    time.sleep(0.1)  # attached before the window opens
                before = cpu_ticks(ps)
                part = also[name]() if name in also else []
                part_before = cpu_ticks(part)
                reqs, rps, p50, p99, non2xx = wrk(port, path, tokens, args.duration)
                if stat:
                    stat.send_signal(signal.SIGINT)
                    # CSV: the task-clock in milliseconds first (it also counts the 0.1 s of
                    # attaching, when the process is idle).
                    line = next(l for l in stat.communicate()[1].splitlines() if "task-clock" in l)
                    crosscheck.setdefault(name, []).append(float(line.split(",")[0]) * 1e3 / reqs)
                if part:
                    decided_us = (cpu_ticks(part) - part_before) / TICK * 1e6 / reqs
                    alone.setdefault(name, []).append(decided_us)
                if perf:
                    perf.send_signal(signal.SIGINT)
                    perf.wait()
                cpu = cpu_ticks(ps) - before
                us = cpu / TICK * 1e6 / reqs if ps else float("nan")
                results[name].append((rps, p50, p99, us, non2xx / max(reqs, 1)))
                print(f"round {r + 1}: {name:32s} {rps:10.0f} req/s  p50 {p50:7.0f} µs  p99 {p99:7.0f} µs  cpu {us:6.1f} µs/req  non-2xx {non2xx}", file=sys.stderr)

        for label, g in gateways.items():
            print(f"RSS of {label}: {idle[label]:.1f} MiB at idle (keys fetched), {rss_mib(g.pid):.1f} MiB after the run")
        med = {n: [statistics.median(x[i] for x in v) for i in range(5)] for n, v in results.items()}
        ng = med["nginx"]
        direct = med["direct"]
        print(f"\nwrk -t{args.wrk_threads} -c{args.connections} -d{args.duration}s, {args.rounds} rounds alternating, medians; "
              f"proxies on {args.workers} worker thread(s)/process(es) (Apache: event MPM 2x32 threads)\n")
        print("| target | req/s | p50 µs | p99 µs | proxy CPU µs/req | CPU / nginx | req/s / nginx | p99 added over direct µs | non-2xx |")
        print("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
        for name, (rps, p50, p99, us, bad) in med.items():
            ratio = "" if name == "direct" else f"{us / ng[3]:.2f}"
            print(f"| {name} | {rps:.0f} | {p50:.0f} | {p99:.0f} | {'' if name == 'direct' else f'{us:.1f}'} | {ratio} | {rps / ng[0]:.2f} | {p99 - direct[2]:.0f} | {bad:.0%} |")
        if crosscheck:
            ngc = statistics.median(crosscheck["nginx"])
            print("\nThe same windows counted by `perf stat -e task-clock` (medians):\n")
            print("| target | /proc utime+stime µs/req | perf task-clock µs/req | CPU / nginx (/proc) | CPU / nginx (perf) |")
            print("| --- | ---: | ---: | ---: | ---: |")
            for name, values in crosscheck.items():
                us, pc = med[name][3], statistics.median(values)
                print(f"| {name} | {us:.1f} | {pc:.1f} | {us / ng[3]:.2f} | {pc / ngc:.2f} |")
        if args.rate:
            fixed_rate(args, targets, files, results)
        for name, values in alone.items():
            proxied = med.get("scopegate (100 JWTs)")
            print(f"\n{name}: CPU of nginx and scopegate together above; scopegate alone "
                  f"{statistics.median(values):.1f} µs per decision"
                  + (f" vs {proxied[3]:.1f} µs per request it proxies itself (scopegate (100 JWTs))" if proxied else ""))
    finally:
        processes.stop()
        if os.environ.get("KEEP"):
            print(f"kept {work}", file=sys.stderr)
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
