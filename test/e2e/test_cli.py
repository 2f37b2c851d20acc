"""The command line: models listing, usage errors, the trace file."""
import subprocess

from conftest import BIN, at


def run(*args):
    return subprocess.run([BIN, *args], capture_output=True, text=True, timeout=30)


def test_models_lists_commands():
    out = run("models")
    assert out.returncode == 0
    assert "EC200A-CN" in out.stdout and "BC260Y-CN" in out.stdout
    assert "EC200ACNHAR01A02M16" in out.stdout
    assert "AT+CGMR" in out.stdout and "AT+CMEE" in out.stdout


def test_usage_errors_exit_2():
    assert run("run", "--model", "NOPE").returncode == 2
    assert "unknown model" in run("run", "--model", "NOPE").stderr
    assert run("run", "--count", "0").returncode == 2
    assert run("run", "--speed", "fast").returncode == 2
    assert run("frobnicate").returncode == 2
    assert run("--version").stdout.startswith("modtwin ")
    assert run("run", "--help").returncode == 0


def test_trace_records_traffic(modtwin, tmp_path):
    trace = tmp_path / "trace.log"
    m = modtwin("--trace", str(trace))
    m.wait_state("on")
    s = m.open()
    assert at(s, "AT+CGMM") == b"AT+CGMM\r\r\nEC200A\r\n\r\nOK\r\n"
    m.stop()
    lines = trace.read_text().splitlines()
    assert any(" m0 uart rx AT+CGMM\\r" in l for l in lines)
    assert any(" m0 uart tx AT+CGMM\\r\\r\\nEC200A\\r\\n\\r\\nOK\\r\\n" in l for l in lines)
    assert any(" m0 - state on" in l for l in lines)
    assert any(" m0 - urc RDY" in l for l in lines)
    # the trace never reaches the PTY: the host saw exactly the response above
