#!/usr/bin/python3
"""One whole EC200A DFOTA, the way a host runs it: AT+QFOTADL of a delta package for a 16 MiB image
over HTTP from a loopback nginx, at --speed max (virtual waits cost nothing), from the command to
the new firmware's last boot line, split into its phases by the URCs the host reads:
  download  AT+QFOTADL -> "HTTPEND",0       verify   "HTTPEND" -> "START"
  apply     "START" -> "END",0              reboot   "END",0 -> "+QIND: SMS DONE"
Peers in the same run: `curl -o /dev/null` of the same package from the same nginx (the download),
and `modtwin pack apply` of the same package on the host, which runs the firmware's own apply
engine on an in-memory flash (the apply without the file-backed flash, the module and its URCs).
Model BENCH-DFOTA: EC200A-CN's layout with 17 MiB slots (a benchmark model, docs/models.md).
Median of RUNS runs. Every run checks the URCs and the revision afterwards; exit 1 on a failure.
usage: /usr/bin/python3 bench/bench_dfota.py MODTWIN_BINARY
"""
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "test", "e2e"))
import servers  # noqa: E402
import serial  # noqa: E402

RUNS = 3
NEW_REV = "EC200ACNHAR01A03M16"


def run(*cmd):
    out = subprocess.run(list(cmd), capture_output=True, timeout=600)
    if out.returncode:
        raise SystemExit("failed: %s\n%s" % (" ".join(cmd), out.stderr.decode()))
    return out.stdout


def read_until(s, marker, deadline):
    buf = b""
    while marker not in buf:
        if time.perf_counter() > deadline:
            raise SystemExit("timed out waiting for %r, got %r" % (marker, buf[-300:]))
        buf += s.read(s.in_waiting or 1)
    return buf


def one_update(binary, work, port, url):
    state = os.path.join(work, "state")
    shutil.rmtree(state, ignore_errors=True)
    link = os.path.join(work, "tty")
    p = subprocess.Popen([binary, "run", "--model", "BENCH-DFOTA", "--speed", "max",
                          "--state-dir", state, "--link", link,
                          "--map", "www.example.com:80=127.0.0.1:%d" % port],
                         stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        while p.stdout.readline().strip() != b"ready":
            if p.poll() is not None:
                raise SystemExit("modtwin did not start: " + p.stderr.read().decode())
        s = serial.Serial(link, 115200, timeout=0.05)
        deadline = time.perf_counter() + 60
        s.write(b"ATE0\r")
        read_until(s, b"OK\r\n", deadline)
        t0 = time.perf_counter()
        s.write(('AT+QFOTADL="%s",1,0,0\r' % url).encode())
        read_until(s, b'"HTTPEND",0\r\n', deadline)
        t1 = time.perf_counter()
        read_until(s, b'"START"\r\n', deadline)
        t2 = time.perf_counter()
        read_until(s, b'"END",0\r\n', deadline)
        t3 = time.perf_counter()
        read_until(s, b"+QIND: SMS DONE\r\n", deadline)
        t4 = time.perf_counter()
        s.write(b"AT+CGMR\r")
        if NEW_REV.encode() not in read_until(s, b"OK\r\n", deadline):
            raise SystemExit("the module did not come up with the new revision")
        s.close()
        return t1 - t0, t2 - t1, t3 - t2, t4 - t3, t4 - t0
    finally:
        p.terminate()
        p.wait(10)


def main():
    binary = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else "build/modtwin")
    work = tempfile.mkdtemp(prefix="modtwin-dfota-")
    try:
        a, b, pkg = (os.path.join(work, n) for n in ("a.img", "b.img", "ab.pkg"))
        run(binary, "image", "--model", "BENCH-DFOTA", "-o", a)
        run(binary, "image", "--from", a, "--revision", NEW_REV, "--change", "5", "--seed", "7",
            "-o", b)
        t = time.perf_counter()
        run(binary, "pack", "-q", "-l", "9", a, b, "-o", pkg)
        print("package: %d bytes for a 16 MiB image pair, built in %.1f s (level 9)"
              % (os.path.getsize(pkg), time.perf_counter() - t))
        cert, key = servers.make_cert(os.path.join(work, "tls"))
        www = os.path.join(work, "www")
        os.makedirs(www)
        shutil.copy(pkg, os.path.join(www, "ab.pkg"))
        ng = servers.Nginx(os.path.join(work, "nginx"), www, cert, key)
        try:
            rows, curl, host = [], [], []
            for _ in range(RUNS):
                rows.append(one_update(binary, work, ng.http_port,
                                       "http://www.example.com/ab.pkg"))
                t = time.perf_counter()
                run("curl", "-s", "-o", "/dev/null", ng.url("/ab.pkg"))
                curl.append(time.perf_counter() - t)
                out = os.path.join(work, "host_b.img")
                t = time.perf_counter()
                run(binary, "pack", "apply", "--source", a, pkg, "-o", out)
                host.append(time.perf_counter() - t)
        finally:
            ng.stop()
        med = [statistics.median(r[i] for r in rows) for i in range(5)]
        print("%-34s %10s" % ("phase (median of %d)" % RUNS, "seconds"))
        for name, v in zip(("download (AT+QFOTADL -> HTTPEND,0)", "verify (HTTPEND -> START)",
                            "apply (START -> END,0)", "reboot (END,0 -> SMS DONE)",
                            "total"), med):
            print("%-34s %10.3f" % (name, v))
        print("%-34s %10.3f" % ("peer: curl -o /dev/null", statistics.median(curl)))
        print("%-34s %10.3f" % ("peer: modtwin pack apply (host)", statistics.median(host)))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
