"""Power loss during an EC200A-CN update started with AT+QFOTADL, at the phases a host can name:
the control API's cut_on arms a cut for the moment a given URC is about to go out (the host never
sees it), so each test cuts at one documented phase and checks what the next boot shows."""
import base64

import pytest

from conftest import at, read_until
from servers import nginx, tls_cert, www  # noqa: F401 (fixtures)
from test_quectel_fota import NEW_REV, OLD_REV, pkgs, qind, revision  # noqa: F401

URL = "http://www.example.com:100/%s.pkg"


def boot(modtwin, nginx, *args):
    m = modtwin("--map", "www.example.com:100=127.0.0.1:%d" % nginx.http_port, *args)
    m.wait_state("on")
    m.ser = m.open()
    at(m.ser, "ATE0")
    return m


def image_is(m, path):
    img = m.ctl.ok("image", offset=0, length=1 << 30)
    return base64.b64decode(img["data"]) == path.read_bytes()


def updating_after_restore(s):
    """The URCs of a resumed update up to END,0: START, then UPDATING k..100 without a gap."""
    got = read_until(s, b'"END",0\r\n', timeout=60)
    lines = [ln for ln in got.split(b"\r\n") if ln.startswith(b'+QIND: "FOTA"')]
    start = len(lines) - 1 - lines[::-1].index(b'+QIND: "FOTA","START"')
    assert lines.count(b'+QIND: "FOTA","START"') == 2, got   # before the cut and after it
    lines = lines[start:]
    nums = [int(ln.rsplit(b",", 1)[1]) for ln in lines[1:-1]]
    assert lines[-1] == b'+QIND: "FOTA","END",0'
    assert nums == list(range(nums[0], 101)), nums
    return nums[0]


def test_cut_while_downloading(modtwin, nginx, pkgs):
    m = boot(modtwin, nginx)
    m.ctl.ok("cut_on", urc='+QIND: "FOTA","DOWNLOADING",25', restore=1)
    m.ser.write(b'AT+QFOTADL="' + (URL % "ab").encode() + b'",1,50\r')
    read_until(m.ser, b'"DOWNLOADING",24\r\n', timeout=30)
    # the job is gone with the power: the old firmware boots, no update URC follows
    got = read_until(m.ser, b"+QIND: SMS DONE\r\n", timeout=30)
    assert b'"FOTA"' not in got
    m.wait_state("on")
    assert m.ctl.ok("status")["revision"] == OLD_REV
    # the host starts again and the update completes
    at(m.ser, "ATE0")
    m.ser.write(b'AT+QFOTADL="' + (URL % "ab").encode() + b'",1,0,0\r')
    assert read_until(m.ser, b'"END",0\r\n', timeout=60).endswith(qind('"START"', '"END",0'))
    m.wait_state("on")
    assert m.ctl.ok("status")["revision"] == NEW_REV


@pytest.mark.parametrize("phase", ['"START"', '"UPDATING",1', '"UPDATING",50', '"UPDATING",100'])
def test_cut_while_updating_resumes(modtwin, nginx, pkgs, phase):
    """Seed 002 2.3.1.1: once the upgrade began the module must finish it: the next boot goes
    on from the saved progress (policy resume, the EC200A default)."""
    m = boot(modtwin, nginx)
    m.ctl.ok("cut_on", urc='+QIND: "FOTA",' + phase, restore=1)
    m.ser.write(b'AT+QFOTADL="' + (URL % "ab").encode() + b'",1,0\r')
    if phase == '"START"':
        read_until(m.ser, b'"HTTPEND",0\r\n', timeout=30)
        got = read_until(m.ser, b'"END",0\r\n', timeout=60)
        assert got.startswith(qind('"START"', '"UPDATING",1')), got   # the START after the boot
        first = 1
    else:
        first = updating_after_restore(m.ser)
    if phase.startswith('"UPDATING"'):
        assert first <= int(phase.split(",")[1])
    read_until(m.ser, b"+QIND: SMS DONE\r\n", timeout=30)
    m.wait_state("on")
    assert m.ctl.ok("status")["revision"] == NEW_REV
    assert image_is(m, pkgs["ab"].parent / "b.img")


def test_cut_before_end(modtwin, nginx, pkgs):
    """Applied, END about to be printed: the new firmware boots; END is not repeated. (Armed
    through `modtwin ctl cut-on`, the CLI of the control API.)"""
    import json
    import subprocess
    from conftest import BIN
    m = boot(modtwin, nginx)
    out = subprocess.run([BIN, "ctl", "-s", m.control_path, "cut-on",
                          '+QIND: "FOTA","END"', "--restore", "1"],
                         capture_output=True, text=True, timeout=10)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["urc"] == '+QIND: "FOTA","END"'
    m.ser.write(b'AT+QFOTADL="' + (URL % "ab").encode() + b'",1,0,0\r')
    read_until(m.ser, b'"START"\r\n', timeout=30)
    got = read_until(m.ser, b"+QIND: SMS DONE\r\n", timeout=30)
    assert b'"END"' not in got
    m.wait_state("on")
    assert m.ctl.ok("status")["revision"] == NEW_REV


def test_rollback_policy(modtwin, nginx, pkgs):
    """--powerloss-policy rollback: a cut while the new image is still being built (staging)
    leaves the old firmware, and the next boot reports END,504."""
    m = boot(modtwin, nginx, "--powerloss-policy", "rollback")
    m.ctl.ok("cut_on", urc='+QIND: "FOTA","UPDATING",20', restore=1)
    m.ser.write(b'AT+QFOTADL="' + (URL % "ab").encode() + b'",1,0\r')
    got = read_until(m.ser, b'"END",504\r\n', timeout=60)
    assert got.endswith(b"+QIND: SMS DONE\r\n" + qind('"END",504'))
    m.wait_state("on")
    assert m.ctl.ok("status")["revision"] == OLD_REV
    assert image_is(m, pkgs["ab"].parent / "a.img")


def test_brick_policy(modtwin, nginx, pkgs):
    m = boot(modtwin, nginx, "--powerloss-policy", "brick")
    m.ctl.ok("cut_on", urc='+QIND: "FOTA","UPDATING",20', restore=1)
    m.ser.write(b'AT+QFOTADL="' + (URL % "ab").encode() + b'",1,0\r')
    read_until(m.ser, b'"UPDATING",19\r\n', timeout=60)
    m.wait_state("bricked")
    from conftest import read_for
    m.ser.write(b"AT\r")
    assert read_for(m.ser, 0.5) == b""


def test_a_b_a_with_a_cut_between(modtwin, nginx, pkgs):
    """A -> B, then B -> A cut while updating (and in the upgrade-mode boot of upgrade_mode 0):
    the module ends on A, byte for byte."""
    m = boot(modtwin, nginx)
    m.ser.write(b'AT+QFOTADL="' + (URL % "ab").encode() + b'",1,0,0\r')
    read_until(m.ser, b'"END",0\r\n', timeout=60)
    read_until(m.ser, b"+QIND: SMS DONE\r\n", timeout=30)
    m.wait_state("on")
    assert m.ctl.ok("status")["revision"] == NEW_REV
    at(m.ser, "ATE0")
    m.ctl.ok("cut_on", urc='+QIND: "FOTA","UPDATING",40', restore=1)
    m.ser.write(b'AT+QFOTADL="' + (URL % "ba").encode() + b'",0,0\r')
    updating_after_restore(m.ser)
    read_until(m.ser, b"+QIND: SMS DONE\r\n", timeout=30)
    m.wait_state("on")
    assert m.ctl.ok("status")["revision"] == OLD_REV
    assert image_is(m, pkgs["ab"].parent / "a.img")
