#!/usr/bin/python3
"""Raw serial upload: AT+QFUPL of 16 MiB over the module's PTY with RTS/CTS (AT+IFC=2,2, no pacing)
against the raw throughput of a bare PTY pair moving the same bytes in the same run. Both sides
use the same host writer (64 KiB os.write calls); the peer's far side is `head -c`, a C reader
like the module.
usage: bench_serial.py MODTWIN"""
import os
import select
import subprocess
import sys
import tempfile
import termios
import time
import tty

import serial

SIZE = 16 << 20
DATA = os.urandom(SIZE)


def raw_pty():
    """The same writer into a bare PTY whose other side `cat` (C, like the module) drains: MB/s."""
    master, slave = os.openpty()
    tty.setraw(slave)
    reader = subprocess.Popen(["head", "-c", str(SIZE)], stdin=master,
                              stdout=subprocess.DEVNULL)
    t0 = time.perf_counter()
    view = memoryview(DATA)
    off = 0
    while off < SIZE:
        off += os.write(slave, view[off:off + (1 << 16)])
    reader.wait()
    dt = time.perf_counter() - t0
    os.close(master)
    os.close(slave)
    return SIZE / dt / 1e6


def read_until(s, marker, timeout=60):
    end = time.time() + timeout
    buf = b""
    while time.time() < end:
        buf += s.read(s.in_waiting or 1)
        if marker in buf:
            return buf
    raise TimeoutError("%r not seen: %r" % (marker, buf[-200:]))


def modtwin_upload(binary):
    d = tempfile.mkdtemp(prefix="bench-serial.")
    p = subprocess.Popen([binary, "run", "--model", "BENCH-96M", "--state-dir", d,
                          "--speed", "1", "--link", d + "/tty"], stdout=subprocess.PIPE,
                         stderr=subprocess.DEVNULL)
    try:
        while p.stdout.readline().strip() != b"ready":
            pass
        s = serial.Serial(d + "/tty", 115200, timeout=0.2)
        end = time.time() + 20
        while b"OK" not in s.read(64):
            s.write(b"AT\r")
            if time.time() > end:
                raise TimeoutError("module never answered")
        s.write(b"ATE0;+IFC=2,2\r")
        read_until(s, b"OK\r\n")
        s.reset_input_buffer()
        s.write(b'AT+QFUPL="big.bin",%d,60,0\r' % SIZE)
        read_until(s, b"CONNECT\r\n")
        t0 = time.perf_counter()
        # the same writer as the peer's: 64 KiB os.write calls on the port's descriptor
        view = memoryview(DATA)
        off = 0
        while off < SIZE:
            try:
                off += os.write(s.fileno(), view[off:off + (1 << 16)])
            except BlockingIOError:
                select.select([], [s.fileno()], [], 1)
        out = read_until(s, b"OK\r\n", timeout=300)
        dt = time.perf_counter() - t0
        if b"+QFUPL: %d," % SIZE not in out:
            raise RuntimeError("upload failed: %r" % out[-200:])
        s.close()
        return SIZE / dt / 1e6
    finally:
        p.terminate()
        p.wait(10)
        subprocess.run(["rm", "-rf", d])


def main():
    peer = sorted(raw_pty() for _ in range(3))[1]
    ours = sorted(modtwin_upload(sys.argv[1]) for _ in range(3))[1]
    print("%-44s %12s %10s %7s  %s" % ("what (median of 3)", "modtwin MB/s", "peer MB/s",
                                       "ratio", "goal"))
    ratio = ours / peer
    print("%-44s %12.1f %10.1f %6.0f%%  >= 50 %% %s" % (
        "AT+QFUPL 16 MiB, IFC=2,2 / raw PTY pair", ours, peer, ratio * 100,
        "met" if ratio >= 0.5 else "MISSED"))


if __name__ == "__main__":
    main()
