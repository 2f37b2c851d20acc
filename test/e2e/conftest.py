"""Fixtures for the end-to-end tests: the real modtwin binary on real PTYs.

A test asks for `module` (one EC200A-CN, booted, at max speed) or builds its own with
`Modtwin(...)`. Hosts talk to the PTY with pyserial exactly as an MCU would, and drive power,
network and SIM through the control socket (JSON lines)."""
import json
import os
import signal
import socket
import subprocess
import time

import pytest
import serial

BIN = os.environ.get("MODTWIN_BIN", os.path.join(os.path.dirname(__file__), "../../build/modtwin"))


class Control:
    """A control-API connection: one JSON request per line, one reply per line."""

    def __init__(self, path):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(10)
        self.sock.connect(path)
        self.buf = b""
        self.next_id = 1

    def line(self):
        while b"\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError("control socket closed")
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return json.loads(line)

    def raw(self, req):
        self.sock.sendall(json.dumps(req).encode() + b"\n")
        while True:
            msg = self.line()
            if "event" not in msg:
                return msg

    def __call__(self, cmd, module=0, **args):
        req = {"id": self.next_id, "cmd": cmd, "args": args, "module": module}
        self.next_id += 1
        rep = self.raw(req)
        assert rep.get("id") == req["id"], rep
        return rep

    def ok(self, cmd, module=0, **args):
        rep = self(cmd, module, **args)
        assert rep["ok"], rep
        return rep["result"]

    def close(self):
        self.sock.close()


class Modtwin:
    """One modtwin process. Ports come from its stdout ('<module> <kind> <pty> [<link>]')."""

    def __init__(self, tmp_path, *args, model="EC200A-CN", speed="max", off=False, state=None,
                 count=1):
        self.tmp = tmp_path
        self.state = str(state or tmp_path / "state")
        self.link = str(tmp_path / "ttyLTE")
        self.control_path = os.path.join(self.state, "control.sock") if count == 1 else \
            os.path.join(self.state, "control.sock")
        cmd = [BIN, "run", "--model", model, "--state-dir", self.state, "--link", self.link,
               "--speed", speed, "--count", str(count)]
        if off:
            cmd.append("--off")
        cmd += list(args)
        self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.ports = {}
        while True:
            line = self.proc.stdout.readline().decode()
            if not line:
                raise RuntimeError("modtwin exited: " + self.proc.stderr.read().decode())
            if line.strip() == "ready":
                break
            parts = line.split()
            if parts[0].isdigit():
                self.ports[(int(parts[0]), parts[1])] = parts[3] if len(parts) > 3 else parts[2]
        self.ctl = Control(self.control_path)
        self.serials = []

    @property
    def uart(self):
        return self.ports[(0, "uart")]

    def open(self, path=None, timeout=5):
        s = serial.Serial(path or self.uart, 115200, timeout=timeout)
        self.serials.append(s)
        return s

    def wait_state(self, want, module=0, timeout=10):
        end = time.time() + timeout
        while time.time() < end:
            st = self.ctl.ok("status", module)
            if st["power"] == want:
                return st
            time.sleep(0.01)
        raise TimeoutError(f"module never reached {want}")

    def stop(self, sig=signal.SIGTERM):
        for s in self.serials:
            try:
                s.close()
            except Exception:
                pass
        try:
            self.ctl.close()
        except Exception:
            pass
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


def run_ok(*args, timeout=120):
    """Runs `modtwin ARGS...` (image, pack, ...) and returns its stdout; it must succeed."""
    out = subprocess.run([BIN, *args], capture_output=True, text=True, timeout=timeout)
    assert out.returncode == 0, out.stdout + out.stderr
    return out.stdout


FINALS = (b"\r\nOK\r\n", b"\r\nERROR\r\n")


def read_until_final(ser, timeout=5):
    """Reads until a final result code (OK, ERROR, +CME ERROR: ...) ends the response."""
    end = time.time() + timeout
    buf = b""
    while time.time() < end:
        buf += ser.read(ser.in_waiting or 1)
        if buf.endswith(FINALS):
            return buf
        tail = buf.rsplit(b"\r\n", 2)
        if len(tail) == 3 and tail[2] == b"" and tail[1].startswith(b"+CME ERROR:"):
            return buf
    raise TimeoutError(f"no final result, got {buf!r}")


def at(ser, cmd, timeout=5):
    """Sends one command line and returns everything up to its final result (echo included)."""
    ser.write(cmd.encode() + b"\r")
    return read_until_final(ser, timeout)


def read_for(ser, seconds):
    """Everything the port prints within `seconds` (never blocks past them)."""
    end = time.time() + seconds
    buf = b""
    saved = ser.timeout
    try:
        while True:
            left = end - time.time()
            if left <= 0:
                return buf
            ser.timeout = min(left, 0.05)
            buf += ser.read(ser.in_waiting or 1)
    finally:
        ser.timeout = saved


def read_until(ser, marker, timeout=5):
    end = time.time() + timeout
    buf = b""
    while time.time() < end:
        buf += ser.read(ser.in_waiting or 1)
        if marker in buf:
            return buf
    raise TimeoutError(f"{marker!r} not seen, got {buf!r}")


@pytest.fixture
def modtwin(tmp_path):
    """A factory: modtwin(...) starts an instance; all are stopped after the test."""
    made = []

    def start(*args, **kw):
        m = Modtwin(tmp_path, *args, **kw)
        made.append(m)
        return m

    yield start
    for m in made:
        m.stop()


@pytest.fixture
def module(modtwin):
    """One booted EC200A-CN at max speed, its UART open with echo on."""
    m = modtwin()
    m.wait_state("on")
    m.ser = m.open()
    return m
