#!/usr/bin/python3
"""Download benchmark: modtwin fetching into its simulated UFS through its own transfer stack,
each case against a peer in the same run, from the same server, the same file, on loopback:
  HTTP  64 MiB from nginx   vs  curl -s -o /dev/null URL        (goal: modtwin >= 80 % of curl)
  HTTPS 16 MiB from nginx   vs  curl -s --cacert CERT -o /dev/null URL
  CoAP   4 MiB block-wise (1024-byte blocks) from coap-server-notls  vs  coap-client-notls -b 1024
Median of RUNS runs each, modtwin and peer alternating. modtwin's time runs from sending the
`download` request to the arrival of its `download-end` event (the control API's event stream,
subscribed to `fota` events only: the end is seen when it happens, and no status polling loads the
module while it downloads); the peer's is the wall time of its process (start-up included). Every
modtwin download is checked: the event, state and size through `status` and `files`, content of
ranges through `pull` (the whole file once per case).
Exit 1 only on a functional failure (a download failed, a size or content mismatch), never on a
missed goal; a missing server or client skips its case.
usage: /usr/bin/python3 bench/bench_xfer.py [--runs N] [--only http,https,coap] [-v] MODTWIN_BINARY
  --runs N   runs per case (default 3); -v prints every run's seconds, modtwin and peer
"""
import argparse
import base64
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "test", "e2e"))
import servers  # noqa: E402  (nginx, make_cert, payload, free_port; imports pytest for skips)

MIB = 1 << 20
RUNS = 3
TIMEOUT = 120.0       # per download
PULL_CHUNK = 512 << 10
Skipped = servers.pytest.skip.Exception


class Failure(Exception):
    """A functional failure: the benchmark exits 1."""


class Ctl:
    """A control-API connection (docs/control-api.md): one JSON request and reply per line, and,
    once subscribed, event lines in between (kept in self.events until wait_event takes them)."""

    def __init__(self, path):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(30)
        self.sock.connect(path)
        self.buf = b""
        self.next_id = 1
        self.events = []

    def _line(self, deadline=None):
        """The next line from the server, as JSON; Failure on a closed socket or past deadline."""
        while b"\n" not in self.buf:
            if deadline is not None:
                left = deadline - time.perf_counter()
                if left <= 0:
                    raise Failure("no line from the control socket in time")
                self.sock.settimeout(left)
            try:
                chunk = self.sock.recv(1 << 20)
            except socket.timeout:
                raise Failure("no line from the control socket in time") from None
            finally:
                self.sock.settimeout(30)
            if not chunk:
                raise Failure("control socket closed")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return json.loads(line)

    def __call__(self, cmd, **args):
        rid = self.next_id
        self.next_id += 1
        self.sock.sendall(json.dumps({"id": rid, "cmd": cmd, "args": args}).encode() + b"\n")
        while True:
            rep = self._line()
            if "event" in rep:   # may come before the reply of the command that caused it
                self.events.append(rep)
                continue
            if rep.get("id") != rid:
                raise Failure("reply out of order: %r" % rep)
            return rep

    def ok(self, cmd, **args):
        rep = self(cmd, **args)
        if not rep.get("ok"):
            raise Failure("%s refused: %r" % (cmd, rep.get("error")))
        return rep["result"]

    def wait_event(self, match, deadline):
        """Takes and returns the first event (queued or arriving before deadline) match accepts;
        the events before it are dropped."""
        while True:
            while self.events:
                ev = self.events.pop(0)
                if match(ev):
                    return ev
            self.events.append(self._line(deadline))

    def close(self):
        self.sock.close()


class Module:
    """`modtwin run --model BENCH-96M --speed max` in its own state dir, booted and registered."""

    def __init__(self, binary, directory, *args):
        self.dir = directory
        os.makedirs(directory, exist_ok=True)
        self.out = os.path.join(directory, "stdout")
        self.err = os.path.join(directory, "stderr")
        with open(self.out, "wb") as out, open(self.err, "wb") as err:
            self.proc = subprocess.Popen(
                [binary, "run", "--model", "BENCH-96M", "--speed", "max", "--state-dir",
                 os.path.join(directory, "state"), *args],
                stdin=subprocess.DEVNULL, stdout=out, stderr=err)
        self.ctl = None
        deadline = time.monotonic() + 30
        while b"ready" not in open(self.out, "rb").read():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise Failure("modtwin did not start: " + servers._tail(self.err))
            time.sleep(0.02)
        self.ctl = Ctl(os.path.join(directory, "state", "control.sock"))
        self.ctl.ok("events", kinds=["fota"])   # fetch waits for "download-end"
        while True:
            st = self.ctl.ok("status")
            if st["power"] == "on" and st["reg"] in (1, 5):
                break
            if time.monotonic() > deadline:
                raise Failure("module not on and registered: power %s reg %s"
                              % (st["power"], st["reg"]))
            time.sleep(0.02)

    def fetch(self, url, name, size):
        """Downloads url into UFS file name; returns seconds from the request to "download-end"
        (the request's round trip counts, as the peer's process start does: a reply read late
        can then never hide part of the download)."""
        self.ctl.events.clear()
        t0 = time.perf_counter()
        self.ctl.ok("download", url=url, file=name, resume=False)
        ev = self.ctl.wait_event(lambda e: e.get("event") == "fota"
                                 and e.get("text", "").startswith("download-end "),
                                 t0 + TIMEOUT)
        t = time.perf_counter() - t0
        d = self.ctl.ok("status")["download"]
        if not ev["text"].startswith("download-end 0 ") or d["state"] != "done" \
                or d["got"] != size:
            raise Failure("%s: %s, %r (want %d bytes)" % (url, ev["text"], d, size))
        have = {f["name"]: f["size"] for f in self.ctl.ok("files")["files"]}.get(name)
        if have != size:
            raise Failure("%s: UFS file %s is %r bytes, want %d" % (url, name, have, size))
        return t

    def check(self, name, data, whole):
        """Compares the UFS file with data: a few ranges, or all of it."""
        n = len(data)
        if whole:
            ranges = [(o, min(PULL_CHUNK, n - o)) for o in range(0, n, PULL_CHUNK)]
        else:
            ln = min(256 << 10, n)
            ranges = [(0, ln), (n // 3 + 4097, ln // 2), (n // 2 - 1, ln), (n - ln, ln)]
            ranges = [(max(0, min(o, n - ln)), ln_) for o, ln_ in ranges]
        for off, ln in ranges:
            r = self.ctl.ok("pull", name=name, offset=off, length=ln)
            if base64.b64decode(r["data"]) != data[off:off + ln]:
                raise Failure("%s: content differs in [%d, %d)" % (name, off, off + ln))

    def stop(self):
        if self.ctl:
            self.ctl.close()
        servers._stop(self.proc)


def timed(argv):
    """Wall time of a peer process; Failure if it exits non-zero."""
    t0 = time.perf_counter()
    p = subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, timeout=TIMEOUT)
    t = time.perf_counter() - t0
    if p.returncode != 0:
        raise Failure("%s exited %d: %s" % (argv[0], p.returncode, p.stderr.decode()[-500:]))
    return t, p.stdout


def compare(mod, name, url, data, peer, runs, verbose):
    """runs alternating runs of modtwin and peer(); returns (modtwin s, peer s) medians."""
    mt, pt = [], []
    for i in range(runs):
        order = ("m", "p") if i % 2 == 0 else ("p", "m")
        for who in order:
            if who == "m":
                mt.append(mod.fetch(url, name, len(data)))
                mod.check(name, data, whole=(i == 0))
            else:
                pt.append(peer())
    if verbose:
        print("  %s: modtwin %s s, peer %s s" % (name, " ".join("%.4f" % t for t in mt),
                                                " ".join("%.4f" % t for t in pt)))
    return statistics.median(mt), statistics.median(pt)


def curl_peer(url, size, cacert=None):
    argv = ["curl", "-s", "-o", "/dev/null", "-w", "%{size_download}"]
    argv += ["--cacert", cacert] if cacert else []

    def run():
        t, out = timed(argv + [url])
        if int(float(out or b"0")) != size:
            raise Failure("curl got %s bytes of %d" % (out.decode(), size))
        return t
    return run


def coap_peer(cli, url, data, tmp):
    out = os.path.join(tmp, "coap-client.out")

    def run():
        if os.path.exists(out):
            os.unlink(out)
        t, _ = timed([cli, "-b", "1024", "-o", out, url])
        # coap-client exits 0 even when nothing came: check what it wrote
        got = open(out, "rb").read() if os.path.exists(out) else b""
        if got != data:
            raise Failure("coap-client got %d bytes of %d (or different ones)"
                          % (len(got), len(data)))
        return t
    return run


def start_coap(tmp, data):
    """coap-server-notls on a free UDP port with data PUT at /fw; returns (proc, url, client)."""
    srv, cli = shutil.which("coap-server-notls"), shutil.which("coap-client-notls")
    if not srv or not cli:
        raise Skipped("libcoap3-bin not installed")
    port = servers.free_port()
    proc = subprocess.Popen([srv, "-A", "127.0.0.1", "-p", str(port), "-d", "4"],
                            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    url = "coap://127.0.0.1:%d/fw" % port
    src = os.path.join(tmp, "coap-src.bin")
    with open(src, "wb") as f:
        f.write(data)
    time.sleep(0.3)
    try:
        p = subprocess.run([cli, "-m", "put", "-b", "1024", "-f", src, url], timeout=60,
                           stdin=subprocess.DEVNULL, capture_output=True)
        if p.returncode != 0 or proc.poll() is not None:
            raise Failure("PUT into coap-server failed: %s" % p.stderr.decode()[-500:])
    except BaseException:
        servers._stop(proc)
        raise
    return proc, url, cli


def main():
    ap = argparse.ArgumentParser(description="downloads into modtwin's UFS against curl and "
                                 "coap-client (see the module's docstring)")
    ap.add_argument("binary", metavar="MODTWIN_BINARY")
    ap.add_argument("--runs", type=int, default=RUNS, help="runs per case (median taken)")
    ap.add_argument("--only", default="http,https,coap",
                    help="comma-separated cases to run: http, https, coap")
    ap.add_argument("-v", "--verbose", action="store_true", help="print every run's seconds")
    opt = ap.parse_args()
    only = set(opt.only.split(","))
    if opt.runs < 1 or not only or only - {"http", "https", "coap"}:
        ap.error("--runs must be >= 1, --only a list of http, https, coap")
    binary = os.path.abspath(opt.binary)
    tmp = tempfile.mkdtemp(prefix="bench-xfer-")
    rows, failed = [], False
    procs = []   # everything started, stopped in reverse order
    mod = None
    try:
        cert, key = servers.make_cert(os.path.join(tmp, "tls"))
        root = servers._Root(os.path.join(tmp, "www"))
        big = servers.payload(64 * MIB, 7)
        root.put("f64m.bin", big)
        root.put("f16m.bin", big[:16 * MIB])
        small = big[:4 * MIB]
        ng = servers.Nginx(os.path.join(tmp, "nginx"), root.path, cert, key)
        procs.append(ng)
        mod = Module(binary, os.path.join(tmp, "mod"), "--ca", cert)
        procs.append(mod)

        cases = [
            ("http", "HTTP 64 MiB, nginx / curl", ng.url("/f64m.bin"), big, 0.80,
             lambda: curl_peer(ng.url("/f64m.bin"), len(big))),
            ("https", "HTTPS 16 MiB, nginx / curl", ng.url("/f16m.bin", tls=True),
             big[:16 * MIB], None,
             lambda: curl_peer(ng.url("/f16m.bin", tls=True), 16 * MIB, cert)),
            ("coap", "CoAP 4 MiB, 1 KiB blocks / coap-client", None, small, None, None),
        ]
        for key, what, url, data, goal, peer in cases:
            if key not in only:
                continue
            try:
                if peer is None:   # CoAP: its server is started here
                    cproc, url, cli = start_coap(tmp, data)
                    procs.append(type("P", (), {"stop": lambda s, p=cproc: servers._stop(p)})())
                    peer = (lambda u=url, c=cli: coap_peer(c, u, data, tmp))
                mt, pt = compare(mod, "f.bin", url, data, peer(), opt.runs, opt.verbose)
                rows.append((what, len(data) / mt / 1e6, len(data) / pt / 1e6, pt / mt, goal))
            except Skipped as e:
                rows.append((what, None, None, None, "skipped: %s" % e))
            except Failure as e:
                failed = True
                rows.append((what, None, None, None, "FAILED"))
                sys.stderr.write("bench_xfer: %s: %s\n" % (what, e))
    except Skipped as e:
        print("bench_xfer: skipped: %s" % e)
        return 0
    except Failure as e:
        sys.stderr.write("bench_xfer: %s\n" % e)
        return 1
    finally:
        for p in reversed(procs):
            p.stop()
        shutil.rmtree(tmp, ignore_errors=True)

    print("%-40s %12s %10s %7s  %s" % ("what (median of %d)" % opt.runs, "modtwin MB/s",
                                        "peer MB/s", "ratio", "goal"))
    for what, m, p, ratio, goal in rows:
        if m is None:
            print("%-40s %12s %10s %7s  %s" % (what, "-", "-", "-", goal))
            continue
        g = ""
        if isinstance(goal, float):
            g = ">= %.0f %% %s" % (goal * 100, "met" if ratio >= goal else "MISSED")
        print("%-40s %12.1f %10.1f %6.0f%%  %s" % (what, m, p, ratio * 100, g))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
