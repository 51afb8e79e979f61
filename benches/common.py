"""What the benchmark scripts share: free loopback ports, waiting for a listener, and
signing RS256 JWTs with an openssl-generated key (no Python packages needed)."""
import base64, json, os, socket, subprocess, time

TICK = os.sysconf("SC_CLK_TCK")


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def wait_port(port, timeout=30):
    end = time.time() + timeout
    while time.time() < end:
        try:
            socket.create_connection(("127.0.0.1", port), 0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise SystemExit(f"nothing listens on {port}")


def b64(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class Key:
    """An RSA key made by openssl in `work`, its JWK, and RS256 signatures with it."""

    def __init__(self, work, kid="k1"):
        self.kid = kid
        self.path = os.path.join(work, f"{kid}.pem")
        subprocess.run(["openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048",
                        "-out", self.path], check=True, capture_output=True)
        mod = subprocess.run(["openssl", "rsa", "-in", self.path, "-noout", "-modulus"],
                             check=True, capture_output=True, text=True).stdout.strip().split("=", 1)[1]
        self.jwk = {"kty": "RSA", "kid": kid, "alg": "RS256", "use": "sig",
                    "n": b64(bytes.fromhex(mod)), "e": b64((65537).to_bytes(3, "big"))}

    def sign(self, claims, typ="at+jwt"):
        header = b64(json.dumps({"alg": "RS256", "typ": typ, "kid": self.kid}).encode())
        payload = b64(json.dumps(claims).encode())
        signing_input = f"{header}.{payload}".encode()
        sig = subprocess.run(["openssl", "dgst", "-sha256", "-sign", self.path], input=signing_input,
                             check=True, capture_output=True).stdout
        return f"{header}.{payload}.{b64(sig)}"


def cpu_ticks(pids):
    """utime + stime of `pids`, in clock ticks (a process gone counts nothing)."""
    total = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
        except FileNotFoundError:
            pass
    return total


def family(pid):
    """The process and its children (nginx and Apache workers)."""
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout.split()
    return [pid] + [int(p) for p in out]


class Processes:
    """Processes started in their own session, their stderr appended to `work`/stderr.log,
    all stopped (TERM, then KILL) by `stop`."""

    def __init__(self, work):
        self.work = work
        self.procs = []

    def start(self, cmd, stdout_path=None, **kw):
        out = open(stdout_path, "w") if stdout_path else subprocess.DEVNULL
        p = subprocess.Popen(cmd, stdout=out, stderr=open(os.path.join(self.work, "stderr.log"), "a"),
                             start_new_session=True, **kw)
        self.procs.append(p)
        return p

    def stop(self):
        import signal
        for p in self.procs:
            try:
                os.killpg(p.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
        time.sleep(0.5)
        for p in self.procs:
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
