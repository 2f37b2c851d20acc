"""MiniFOTA on EC200N-CN (seed 002 2.3.1.2, 4 and 5) against real servers: AT+QFOTADL of a
"<base>.mini_1" pair made by `modtwin pack --mini`, the four restarts the host sees (control API
"boots" and state events), figure 3's URC shape byte for byte, the suffix check, what the Mini
system answers, the four cases of 5.1, a corrected URL in the Mini system (5.2), and power cuts at
named phases. The flash file of the state directory is read back: after the flow the "mini"
partition holds the new Mini system and "system" the new big system, byte for byte."""
import json
import os
import socket
import time

import pytest

from conftest import at, read_for, read_until, run_ok as run
from servers import Ftpd, free_port, nginx, tls_cert, www  # noqa: F401 (fixtures)

OLD_REV = "EC200NCNLAR03A01M08"
NEW_REV = "EC200NCNLAR03A02M08"
OLD_MINI = OLD_REV + "-MINI"
NEW_MINI = NEW_REV + "-MINI"
SYSTEM_OFF, MINI_OFF = 0x60000, 0x360000        # docs/models.md, EC200N-CN
HOST = "www.example.com:100"
URL = "http://%s/system_patch.mini_1" % HOST

MINI_BOOT = b"\r\nRDY\r\n\r\n+CFUN: 1\r\n\r\n+CPIN: READY\r\n"
MAIN_BOOT = MINI_BOOT + b"\r\n+QUSIM: 1\r\n\r\n+QIND: SMS DONE\r\n"
PART1 = [2 * k for k in range(1, 24)] + [49]       # figure 3: 2, 4, ..., 49
PART2 = [60 + 4 * j for j in range(10)]            # figure 3: 60, 64, ..., 96


def qind(*lines):
    return b"".join(b'\r\n+QIND: "FOTA",' + ln.encode() + b"\r\n" for ln in lines)


def updating(values):
    return qind(*['"UPDATING",%d' % v for v in values])


def fota_urcs(data):
    """The +QIND: "FOTA" lines of a transcript, as (word, value) pairs."""
    out = []
    for line in data.split(b"\r\n"):
        if line.startswith(b'+QIND: "FOTA",'):
            word, _, val = line[len(b'+QIND: "FOTA",'):].decode().partition(",")
            out.append((word.strip('"'), int(val) if val else None))
    return out


def figure3(*parts):
    return [("UPDATING", v) for part in parts for v in part]


def put(root, name, data):
    """Replaces a served file atomically (a server never sends half of it)."""
    tmp = root.put(name + ".tmp", data)
    os.replace(tmp, os.path.join(root.path, name))


@pytest.fixture(scope="module")
def imgs(tmp_path_factory, www):
    """Images of both systems, the pair for them, and refused variants, served from the root."""
    d = tmp_path_factory.mktemp("mini")
    p = {n: d / (n + ".img") for n in ("old", "new", "oldmini", "newmini", "newermini",
                                       "pa", "pb", "ba", "bb")}
    run("image", "--model", "EC200N-CN", "-o", str(p["old"]))
    run("image", "--model", "EC200N-CN", "--mini", "-o", str(p["oldmini"]))
    run("image", "--from", str(p["old"]), "--revision", NEW_REV, "--change", "3", "-o",
        str(p["new"]))
    run("image", "--from", str(p["oldmini"]), "--revision", NEW_MINI, "--change", "2", "-o",
        str(p["newmini"]))
    run("image", "--from", str(p["newmini"]), "--revision", NEW_REV + "B-MINI", "--change", "1",
        "-o", str(p["newermini"]))
    # Mini systems of another project and of another baseline
    run("image", "--revision", "EC600NCNLAR03A01M08-MINI", "--size", "512K", "--project",
        "EC600N", "--baseline", "EC200NCNLAR03", "-o", str(p["pa"]))
    run("image", "--from", str(p["pa"]), "--revision", "EC600NCNLAR03A02M08-MINI", "--change",
        "1", "-o", str(p["pb"]))
    run("image", "--revision", "EC200NCNLAR04A01M08-MINI", "--size", "512K", "--project",
        "EC200N", "--baseline", "EC200NCNLAR04", "-o", str(p["ba"]))
    run("image", "--from", str(p["ba"]), "--revision", "EC200NCNLAR04A02M08-MINI", "--change",
        "1", "-o", str(p["bb"]))

    def pair(name, mini_old, mini_new):
        run("pack", "-q", "-l", "3", "--mini", "--mini-old", str(p[mini_old]), "--mini-new",
            str(p[mini_new]), str(p["old"]), str(p["new"]), "-o", str(d / name))
        return (d / (name + ".mini_1")).read_bytes(), (d / (name + ".mini_2")).read_bytes()

    out = {"img": {k: v.read_bytes() for k, v in p.items()}}
    out["pair"] = pair("system_patch", "oldmini", "newmini")
    for name, (a, b) in {"project": ("pa", "pb"), "baseline": ("ba", "bb"),
                         "ahead": ("newmini", "newermini")}.items():
        out[name] = pair(name, a, b)
    for name in ("system_patch", "project", "baseline", "ahead"):
        www.put(name + ".mini_1", out[name if name != "system_patch" else "pair"][0])
        www.put(name + ".mini_2", out[name if name != "system_patch" else "pair"][1])
    # the same pair under a plain name (the suffix check refuses it)
    www.put("system_patch.bin", out["pair"][0])
    return out


class Events:
    """A second control connection subscribed to events; keeps all it has read."""

    def __init__(self, path, kinds=("urc", "state", "fota")):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(0.2)
        self.sock.connect(path)
        self.buf = b""
        self.seen = []
        self.sock.sendall(json.dumps({"id": 1, "cmd": "events",
                                      "args": {"kinds": list(kinds)}}).encode() + b"\n")
        self.wait(lambda e: e.get("id") == 1)

    def _pump(self):
        try:
            chunk = self.sock.recv(65536)
        except socket.timeout:
            return
        if not chunk:
            raise EOFError("control socket closed")
        self.buf += chunk
        while b"\n" in self.buf:
            line, self.buf = self.buf.split(b"\n", 1)
            self.seen.append(json.loads(line))

    def wait(self, pred, timeout=60, since=0):
        """The first event from index `since` of the stream that pred accepts; self.next is the
        index after it."""
        end = time.time() + timeout
        i = since
        while True:
            while i < len(self.seen):
                if pred(self.seen[i]):
                    self.next = i + 1
                    return self.seen[i]
                i += 1
            if time.time() > end:
                raise TimeoutError("event not seen; last: %r" % self.seen[-5:])
            self._pump()

    def drain(self, seconds):
        """Reads whatever comes within `seconds`."""
        end = time.time() + seconds
        while time.time() < end:
            self._pump()

    def count(self, pred):
        return len([e for e in self.seen if pred(e)])

    def states(self):
        return [e["state"] for e in self.seen if e.get("event") == "state"]

    def close(self):
        self.sock.close()


def is_note(prefix):
    return lambda e: e.get("event") == "fota" and e.get("text", "").startswith(prefix)


def is_urc(text):
    return lambda e: e.get("event") == "urc" and e.get("text") == text


def flash_part(m, off, size):
    with open(os.path.join(m.state, "flash.bin"), "rb") as f:
        f.seek(off)
        return f.read(size)


def assert_updated(m, s, imgs):
    """The module runs the new big system; both partitions hold the new images."""
    st = m.ctl.ok("status")
    assert st["revision"] == NEW_REV
    assert at(s, "ATI").endswith(b"Revision: " + NEW_REV.encode() + b"\r\n\r\nOK\r\n")
    assert at(s, "AT+CGMR").endswith(b"\r\n" + NEW_REV.encode() + b"\r\n\r\nOK\r\n")
    new, newmini = imgs["img"]["new"], imgs["img"]["newmini"]
    assert flash_part(m, SYSTEM_OFF, len(new)) == new
    assert flash_part(m, MINI_OFF, len(newmini)) == newmini
    files = [f["name"] for f in m.ctl.ok("files")["files"]]
    assert "fota.mini_1" not in files


def start(modtwin, nginx, *args, speed="max"):
    m = modtwin(*nginx.map_args("www.example.com"), "--map",
                "%s=127.0.0.1:%d" % (HOST, nginx.http_port), *args, model="EC200N-CN",
                speed=speed)
    m.wait_state("on")
    m.ser = m.open()
    assert at(m.ser, "ATE0") == b"ATE0\r\r\nOK\r\n"
    return m


# ---- the command ---------------------------------------------------------------------------------

def test_test_form_and_suffix_check(modtwin, nginx, imgs):
    m = start(modtwin, nginx)
    s = m.ser
    assert at(s, "AT+QFOTADL=?") == b"\r\n+QFOTADL: <url>,(0,1)\r\n\r\nOK\r\n"
    for line in ['AT+QFOTADL="http://%s/system_patch.bin"' % HOST,        # suffix (4.1 note 2)
                 'AT+QFOTADL="http://%s/system_patch.mini_2"' % HOST,     # never named itself
                 'AT+QFOTADL="http://%s/system_patch.MINI_1"' % HOST,
                 'AT+QFOTADL="http://%s/.mini_1"' % HOST,                 # no base name
                 'AT+QFOTADL="https://%s/system_patch.mini_1"' % HOST,    # no HTTPS (3.3.1.2)
                 'AT+QFOTADL="FILE:1000"',                                # no FILE mode (4.3)
                 'AT+QFOTADL="http://h/%s.mini_1"' % ("x" * 113),        # 129 > 128 (3.3.1)
                 'AT+QFOTADL="%s",1,50' % URL,                           # no URC counts (4.2)
                 'AT+QFOTADL="%s",1,0,0' % URL]:
        assert at(s, line) == b"\r\nERROR\r\n", line
    assert read_for(s, 0.3) == b""
    st = m.ctl.ok("status")
    assert st["boots"] == 1 and st["revision"] == OLD_REV


# ---- the whole flow --------------------------------------------------------------------------------

def test_http_flow_four_restarts(modtwin, nginx, imgs):
    """Figure 3 as the host sees it, with the boot lines of each restart between."""
    m = start(modtwin, nginx)
    ev = Events(m.control_path)
    s = m.ser
    s.write(('AT+QFOTADL="%s"\r' % URL).encode())
    got = read_until(s, b'"END",0\r\n', timeout=120)
    assert got == (b"\r\nOK\r\n" + MINI_BOOT + updating(PART1) + MINI_BOOT + updating(PART2) +
                   MAIN_BOOT + qind('"END",0'))
    assert read_for(s, 0.3) == b""
    ev.wait(is_note("minifota end 0"))
    # four restarts: old Mini system, upgrade mode, new Mini system, big system
    assert ev.states() == ["reboot", "off", "booting", "on", "reboot", "off", "upgrade",
                           "reboot", "off", "booting", "on", "reboot", "off", "booting", "on"]
    assert m.ctl.ok("status")["boots"] == 5
    assert_updated(m, s, imgs)
    ev.close()


def test_ftp_flow(modtwin, tmp_path, www, tls_cert, imgs):
    """The seed's FTP URL form (test:test at 192.0.2.2:21): no FTPSTART / FTPEND on 8 MB builds."""
    ftp = Ftpd(tmp_path / "ftpd", www.path, *tls_cert, user="test", password="test")
    try:
        m = modtwin("--map", "192.0.2.2:21=127.0.0.1:%d" % ftp.port, model="EC200N-CN")
        m.wait_state("on")
        s = m.open()
        at(s, "ATE0")
        s.write(b'AT+QFOTADL="FTP://test:test@192.0.2.2:21/system_patch.mini_1"\r')
        got = read_until(s, b'"END",0\r\n', timeout=120)
        assert fota_urcs(got) == figure3(PART1, PART2) + [("END", 0)]
        assert got.startswith(b"\r\nOK\r\n" + MINI_BOOT)
        assert m.ctl.ok("status")["boots"] == 5
        assert_updated(m, s, imgs)
    finally:
        ftp.stop()


# ---- the Mini system ------------------------------------------------------------------------------

def test_mini_system_commands_and_corrected_url(modtwin, nginx, imgs):
    """In the Mini system only registration and AT+QFOTADL work; a corrected URL there goes on
    with the update (5.2) without leaving it."""
    m = start(modtwin, nginx, speed="20")
    ev = Events(m.control_path)
    s = m.ser
    assert at(s, 'AT+QFOTADL="http://%s/typo/system_patch.mini_1"' % HOST) == b"\r\nOK\r\n"
    read_until(s, MINI_BOOT, timeout=30)
    ev.wait(is_note("minifota mini_1 download failed"))
    assert m.ctl.ok("status")["revision"] == OLD_MINI
    assert at(s, "AT") == b"AT\r\r\nOK\r\n"
    assert at(s, "ATE0") == b"ATE0\r\r\nOK\r\n"
    assert at(s, "ATI") == b"\r\nQuectel\r\nEC200N\r\nRevision: %s\r\n\r\nOK\r\n" % OLD_MINI.encode()
    assert at(s, "AT+CGMR") == b"\r\n%s\r\n\r\nOK\r\n" % OLD_MINI.encode()
    assert at(s, "AT+CPIN?") == b"\r\n+CPIN: READY\r\n\r\nOK\r\n"
    assert at(s, "AT+CEREG?") == b"\r\n+CEREG: 0,1\r\n\r\nOK\r\n"
    assert at(s, "AT+CREG?") == b"\r\n+CREG: 0,1\r\n\r\nOK\r\n"
    assert at(s, "AT+CGATT?") == b"\r\n+CGATT: 1\r\n\r\nOK\r\n"
    for line in ("AT+CSQ", "AT+COPS?", "AT+CGSN", "AT+QFOTADL=?"):
        assert at(s, line).endswith(b"\r\nOK\r\n"), line
    for line in ('AT+QFLST="*"', "AT+QIACT?", 'AT+QICSGP=2,1,"cmnet","",1', "AT+CFUN?",
                 "AT+CGDCONT?", 'AT+QCFG="usbifc"', "AT&W", "ATZ", "AT+CMEE=2", "AT+IPR?"):
        assert at(s, line) == b"\r\nERROR\r\n", line
    # 5.2: the right URL, typed again in the Mini system
    assert at(s, 'AT+QFOTADL="%s"' % URL) == b"\r\nOK\r\n"
    got = read_until(s, b'"END",0\r\n', timeout=120)
    assert fota_urcs(got) == figure3(PART1, PART2) + [("END", 0)]
    assert m.ctl.ok("status")["boots"] == 5
    assert_updated(m, s, imgs)
    ev.close()


# ---- 5.1: the four cases ------------------------------------------------------------------------

@pytest.mark.parametrize("url", [
    "http://%s/missing.mini_1" % HOST,            # 404: nothing there
    "http://127.0.0.1:%d/system_patch.mini_1",    # no server
    "http://unknown.invalid/system_patch.mini_1", # the name does not resolve
])
def test_case1_no_data_times_out(modtwin, nginx, imgs, url):
    """Nothing ever arrives: after 300 virtual seconds back to the big system, END,504."""
    if "%d" in url:
        url = url % free_port()
    m = start(modtwin, nginx)
    ev = Events(m.control_path)
    s = m.ser
    s.write(('AT+QFOTADL="%s"\r' % url).encode())
    got = read_until(s, b'"END",504\r\n', timeout=120)
    assert got == b"\r\nOK\r\n" + MINI_BOOT + MAIN_BOOT + qind('"END",504')
    st = m.ctl.ok("status")
    assert st["boots"] == 3 and st["revision"] == OLD_REV
    # it tried again and again for the time-out's length, then gave up
    ev.wait(is_note("minifota end 504"))
    fails = [e for e in ev.seen if is_note("minifota mini_1 download failed")(e)]
    assert len(fails) >= 10
    assert fails[-1]["t"] - fails[0]["t"] >= 270
    assert flash_part(m, SYSTEM_OFF, len(imgs["img"]["old"])) == imgs["img"]["old"]
    ev.close()


@pytest.mark.parametrize("name,err", [("project", 552), ("baseline", 553), ("ahead", 507)])
def test_case2_mismatch_goes_back(modtwin, nginx, imgs, name, err):
    """The first 2 KiB do not match the module: the download stops, the big system reports."""
    m = start(modtwin, nginx)
    s = m.ser
    s.write(('AT+QFOTADL="http://%s/%s.mini_1"\r' % (HOST, name)).encode())
    got = read_until(s, b'"END",%d\r\n' % err, timeout=60)
    assert got == b"\r\nOK\r\n" + MINI_BOOT + MAIN_BOOT + qind('"END",%d' % err)
    st = m.ctl.ok("status")
    assert st["boots"] == 3 and st["revision"] == OLD_REV
    assert flash_part(m, SYSTEM_OFF, len(imgs["img"]["old"])) == imgs["img"]["old"]
    assert flash_part(m, MINI_OFF, len(imgs["img"]["oldmini"])) == imgs["img"]["oldmini"]
    at(s, "ATE0")  # the restart turned echo back on
    assert at(s, "AT+QFLST") == b"\r\nOK\r\n"  # nothing left in UFS


def test_case3_network_lost_after_check(modtwin, nginx, imgs):
    """The head passed, then the network goes: no way back; the Mini system retries for longer
    than case 1's time-out and finishes when the network returns."""
    m = start(modtwin, nginx, speed="100")
    ev = Events(m.control_path)
    s = m.ser
    m.ctl.ok("network", rate=4000)
    s.write(('AT+QFOTADL="%s"\r' % URL).encode())
    ev.wait(is_note("minifota mini_1 check 0 ok"), timeout=30)
    m.ctl.ok("network", reg=0)
    t0 = m.ctl.ok("status")["t"]
    while m.ctl.ok("status")["t"] < t0 + 400:
        ev.drain(0.2)
    st = m.ctl.ok("status")
    assert st["boots"] == 2 and st["revision"] == OLD_MINI
    assert ev.count(is_note("minifota mini_1 download failed")) >= 10
    m.ctl.ok("network", reg=1, rate=0)
    got = read_until(s, b'"END",0\r\n', timeout=120)
    assert fota_urcs(got) == figure3(PART1, PART2) + [("END", 0)]
    assert m.ctl.ok("status")["boots"] == 5
    assert_updated(m, s, imgs)
    ev.close()


def test_step4_damaged_package_is_fetched_again(modtwin, nginx, www, imgs):
    """.mini_1 complete but damaged: restart, download again (step 4), until a good one is there."""
    good = imgs["pair"][0]
    bad = bytearray(good)
    for i in range(40, 56):
        bad[-i] ^= 0xA5
    put(www, "damaged.mini_1", bytes(bad))
    put(www, "damaged.mini_2", imgs["pair"][1])
    m = start(modtwin, nginx, speed="20")
    ev = Events(m.control_path)
    s = m.ser
    s.write(('AT+QFOTADL="http://%s/damaged.mini_1"\r' % HOST).encode())
    ev.wait(is_note("minifota mini_1 integrity 16"), timeout=30)
    ev.wait(is_note("minifota mini_1 integrity 16"), timeout=30, since=ev.next)
    st = m.ctl.ok("status")
    assert st["boots"] >= 3 and st["revision"] == OLD_MINI
    put(www, "damaged.mini_1", good)
    got = read_until(s, b'"END",0\r\n', timeout=120)
    urcs = fota_urcs(got)
    assert urcs == figure3(PART1, PART2) + [("END", 0)]
    assert_updated(m, s, imgs)
    ev.close()


def test_case4_mini2_failure_stays_in_mini_system(modtwin, nginx, www, imgs):
    """After the Mini update the big system is gone: a missing .mini_2 (and a power cut) keep
    the module in the new Mini system, retrying, until the package is there."""
    put(www, "late.mini_1", imgs["pair"][0])
    if os.path.exists(os.path.join(www.path, "late.mini_2")):
        os.remove(os.path.join(www.path, "late.mini_2"))
    m = start(modtwin, nginx, speed="100")
    ev = Events(m.control_path)
    s = m.ser
    s.write(('AT+QFOTADL="http://%s/late.mini_1"\r' % HOST).encode())
    got = read_until(s, updating([60]), timeout=60)
    ev.wait(is_note("minifota mini_2 failed"))
    st = m.ctl.ok("status")
    assert st["boots"] == 4 and st["revision"] == NEW_MINI
    # the big system's area held the staged Mini update: no big system to go back to
    assert flash_part(m, SYSTEM_OFF, 256) != imgs["img"]["old"][:256]
    # a power cut here: the new Mini system again, step 5 again
    m.ctl.ok("power", action="cut", restore=0.5)
    got += read_until(s, MINI_BOOT + updating([60]), timeout=60)
    assert m.ctl.ok("status")["revision"] == NEW_MINI
    put(www, "late.mini_2", imgs["pair"][1])
    got += read_until(s, b'"END",0\r\n', timeout=120)
    assert fota_urcs(got) == figure3(PART1, [60], PART2) + [("END", 0)]
    assert m.ctl.ok("status")["boots"] == 6
    assert_updated(m, s, imgs)
    ev.close()


# ---- power cuts at named phases -----------------------------------------------------------------

def cut_dl1_before_check(m, ev):
    # a stalled network: the download starts but no byte arrives, so the head is never checked
    m.ctl.ok("network", stall=True)
    ev.wait(is_note("minifota mini_1 download from 0"))
    time.sleep(0.2)
    assert not [e for e in ev.seen if is_note("minifota mini_1 check")(e)]
    m.ctl.ok("power", action="cut", restore=0.5)
    m.ctl.ok("network", stall=False)


def cut_dl1_after_check(m, ev):
    m.ctl.ok("network", rate=4000)
    ev.wait(is_note("minifota mini_1 check 0 ok"))
    m.ctl.ok("power", action="cut", restore=0.5)
    m.ctl.ok("network", rate=0)


def is_state(*names):
    return lambda e: e.get("event") == "state" and e.get("state") in names


def cut_apply1(m, ev):
    # armed while the upgrade boot starts; the apply writes ~270 flash ops per step
    ev.wait(is_state("upgrade"))
    m.ctl.ok("cut_at", op=3000, fault="torn-prog", seed=3, restore=0.5)


def cut_restart3(m, ev):
    # restart #3: the new Mini system is booting (3 virtual s), before its first line
    ev.wait(is_urc('+QIND: "FOTA","UPDATING",49'))
    ev.wait(is_state("booting"), since=ev.next)
    m.ctl.ok("power", action="cut", restore=0.5)


def cut_dl2(m, ev):
    # armed while the new Mini system boots: ~15 of the big system's 33 segments in
    ev.wait(is_urc('+QIND: "FOTA","UPDATING",49'))
    ev.wait(is_state("booting"), since=ev.next)
    m.ctl.ok("cut_at", op=4000, fault="torn-erase", seed=5, restore=0.5)


@pytest.mark.parametrize("phase,cut,after_cut,step5", [
    ("dl1-before-check", cut_dl1_before_check, "booting", 1),
    ("dl1-after-check", cut_dl1_after_check, "booting", 1),
    ("apply1", cut_apply1, "upgrade", 1),
    ("restart3", cut_restart3, "booting", 1),
    ("dl2", cut_dl2, "booting", 2),
])
def test_power_cut(modtwin, nginx, imgs, phase, cut, after_cut, step5):
    """A cut anywhere: the next boot continues the right step. The host sees figure 3 with
    nothing repeated or skipped, except that step 5, when cut, starts again at 60."""
    m = start(modtwin, nginx, speed="10")
    ev = Events(m.control_path)
    s = m.ser
    s.write(('AT+QFOTADL="%s"\r' % URL).encode())
    cut(m, ev)
    ev.wait(is_state("cut"))
    if after_cut:
        assert ev.wait(is_state("booting", "upgrade"), since=ev.next)["state"] == after_cut
    got = read_until(s, b'"END",0\r\n', timeout=120)
    urcs = fota_urcs(got)
    assert urcs[:len(PART1)] == figure3(PART1)
    rest = urcs[len(PART1):]
    starts = [i for i, u in enumerate(rest) if u == ("UPDATING", 60)]
    assert len(starts) == step5
    assert rest[:starts[-1]] == figure3(PART2)[:starts[-1]]
    assert rest[starts[-1]:] == figure3(PART2) + [("END", 0)]
    assert m.ctl.ok("status")["boots"] == 6
    assert_updated(m, s, imgs)
    ev.close()
