"""BC260Y-CN DFOTA (seed 004): the CoAP and HTTP examples of section 7 byte for byte against real
servers (libcoap's coap-server, nginx) serving a real package for the factory image, every
<dl_err> and <upgrade_err> by a real cause, NOTSUPPORT, a power cut while UPDATING and during the
download, and the auto-baud rule of the notes in 2.2 / 3.2.

The examples run after `AT+IPR=115200` (and `ATE0`), lines the document does not print: a module
in auto-baud mode withholds the update's result URC until the host speaks, and the examples show
it among the boot lines. The document's `.....` elisions are the only variable part: the exact
bytes around them are asserted, and the elided UPDATING values must rise to 100%."""
import base64
import re
import shutil
import subprocess
import time

import pytest

from conftest import at, read_for, read_until, run_ok as run
from servers import free_port, nginx, payload, tls_cert, www  # noqa: F401 (fixtures)

MODEL = "BC260Y-CN"
OLD_REV = "BC260YCNAAR02A04"
NEW_REV = "BC260YCNAAR02A05"
HOST = "www.quectel.com:100"
NEW_IP = "100.75.72.128"     # the address the examples' +IP shows after the restart
UFS_TOTAL = 832 << 10        # BC260Y-CN's UFS area


@pytest.fixture(scope="module")
def pkgs(tmp_path_factory):
    """The factory image, its successor, and the packages the tests serve (bytes by name)."""
    d = tmp_path_factory.mktemp("nbpkgs")
    a, b = d / "a.img", d / "b.img"
    run("image", "--model", MODEL, "-o", str(a))
    run("image", "--from", str(a), "--revision", NEW_REV, "--change", "3", "--seed", "5",
        "-o", str(b))
    run("pack", "-q", "-l", "3", str(a), str(b), "-o", str(d / "ab.pkg"))
    # another project (an EC200A image), and the other firmware line (R01 into R02 is refused)
    other = d / "other.img"
    run("image", "--revision", "EC200ACNHAR01A02M16", "--size", "256K", "-o", str(other))
    run("pack", "-q", "-l", "3", str(other), "-o", str(d / "project.pkg"))
    r01 = d / "r01.img"
    run("image", "--from", str(a), "--revision", "BC260YCNAAR01A07", "--baseline",
        "BC260YCNAAR01", "--change", "1", "-o", str(r01))
    run("pack", "-q", "-l", "3", str(r01), "-o", str(d / "r01.pkg"))
    good = (d / "ab.pkg").read_bytes()
    out = {
        "update.zip": good,
        "project.zip": (d / "project.pkg").read_bytes(),
        "r01.zip": (d / "r01.pkg").read_bytes(),
        # a flipped byte in the segment table: refused before anything is written
        "table.zip": good[:600] + bytes([good[600] ^ 0xFF]) + good[601:],
        # a flipped byte in the last segment's payload: found while the apply runs
        "payload.zip": good[:-100] + bytes([good[-100] ^ 0xFF]) + good[-99:],
        "big.zip": payload(UFS_TOTAL + (64 << 10), 7),
    }
    out["a.img"] = a.read_bytes()
    out["b.img"] = b.read_bytes()
    return out


@pytest.fixture(scope="module")
def coap(tmp_path_factory, pkgs):
    """coap-server-notls on loopback holding the packages under their names."""
    srv = shutil.which("coap-server-notls")
    cli = shutil.which("coap-client-notls")
    if not srv or not cli:
        pytest.skip("libcoap3-bin not installed")
    port = free_port()
    proc = subprocess.Popen([srv, "-A", "127.0.0.1", "-p", str(port), "-d", "16"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    d = tmp_path_factory.mktemp("coap")
    time.sleep(0.3)
    try:
        for name in ("update.zip", "project.zip", "table.zip", "big.zip"):
            f = d / name
            f.write_bytes(pkgs[name])
            subprocess.run([cli, "-m", "put", "-b", "1024", "-f", str(f),
                            "coap://127.0.0.1:%d/%s" % (port, name)], check=True, timeout=120,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        yield port
    finally:
        proc.terminate()
        proc.wait(10)


@pytest.fixture(scope="module")
def web(nginx, pkgs):
    for name in ("update.zip", "project.zip", "r01.zip", "table.zip", "payload.zip", "big.zip"):
        nginx.put(name, pkgs[name])
    return nginx


def qind(*lines):
    return b"".join(b'\r\n+QIND: "FOTA",' + ln.encode() + b"\r\n" for ln in lines)


def boot_lines(ip, end=None):
    """RDY, +CFUN: 1, [the update's result], +CPIN: READY, +IP: <ip> (seed 004 7.1)."""
    out = b"\r\nRDY\r\n\r\n+CFUN: 1\r\n"
    if end is not None:
        out += qind('"END",%d' % end)
    return out + b"\r\n+CPIN: READY\r\n\r\n+IP: " + ip.encode() + b"\r\n"


UPDATING = re.compile(rb'\r\n\+QIND: "FOTA","UPDATING",(\d+)%,1,1\r\n')


def updating_run(buf, head, tail):
    """buf is head, one or more UPDATING lines, tail: returns their percentages, which must rise
    and end at 100 (the only part the document elides)."""
    assert buf.startswith(head), buf
    assert buf.endswith(tail), buf
    mid = buf[len(head):len(buf) - len(tail)]
    pcts = [int(p) for p in UPDATING.findall(mid)]
    assert b"".join(b'\r\n+QIND: "FOTA","UPDATING",%d%%,1,1\r\n' % p for p in pcts) == mid, mid
    assert pcts and pcts[-1] == 100, pcts
    assert all(x < y for x, y in zip(pcts, pcts[1:])), pcts
    return pcts


def wait_got(m, timeout=30):
    """Waits until the running download has received bytes (it must still be running)."""
    end = time.time() + timeout
    while time.time() < end:
        d = m.ctl.ok("status")["download"]
        assert d["state"] == "running", d
        if d["got"] > 0:
            return d
        time.sleep(0.02)
    raise TimeoutError("no byte arrived")


def word(scheme):
    return scheme.upper()


def dl_pcts(buf):
    """The DOWNLOADING URCs of buf as qind() arguments; they must count 1%, 2%, ... on."""
    pcts = [int(p) for p in re.findall(rb'"DOWNLOADING",(\d+)%', buf)]
    assert pcts == list(range(1, len(pcts) + 1)), pcts
    return ['"DOWNLOADING",%d%%' % p for p in pcts]


def revision(ser):
    """ATI's revision line; AT+CGMR must agree with it."""
    ati = at(ser, "ATI")
    m = re.search(rb"\r\nRevision: (\S+)\r\n\r\nOK\r\n$", ati)
    assert m, ati
    assert at(ser, "AT+CGMR").endswith(b"\r\n" + m.group(1) + b"\r\n\r\nOK\r\n")
    return m.group(1).decode()


def start(modtwin, port, *args, fixed_rate=True, speed="max"):
    m = modtwin("--map", "%s=127.0.0.1:%d" % (HOST, port), *args, model=MODEL, speed=speed)
    m.wait_state("on")
    m.ser = m.open()
    at(m.ser, "ATE0")
    if fixed_rate:
        assert at(m.ser, "AT+IPR=115200") == b"\r\nOK\r\n"
    return m


def network_checks(s):
    """The checks of seed 004 7.1 / 7.2 before the update, as printed."""
    assert at(s, "AT+CESQ") == b"\r\n+CESQ: 99,99,255,255,23,49\r\n\r\nOK\r\n"
    assert at(s, "AT+CEREG?") == b"\r\n+CEREG: 0,1\r\n\r\nOK\r\n"
    assert at(s, "AT+CPIN?") == b"\r\n+CPIN: READY\r\n\r\nOK\r\n"
    assert at(s, "AT+CGPADDR?") == b'\r\n+CGPADDR: 0,"100.125.10.122"\r\n\r\nOK\r\n'


def image_bytes(m, size):
    """The running image through the control API, in pieces."""
    out = b""
    while len(out) < size:
        r = m.ctl.ok("image", offset=len(out), length=min(256 << 10, size - len(out)))
        out += base64.b64decode(r["data"])
    return out


# ---- command forms ---------------------------------------------------------------------------


def test_test_form(modtwin):
    m = start(modtwin, free_port(), fixed_rate=False)
    assert at(m.ser, "AT+QFOTADL=?") == b"\r\n+QFOTADL=<URL>\r\n\r\nOK\r\n"


@pytest.mark.parametrize("url", ["https://www.quectel.com:100/update.zip",
                                 "ftp://u:p@www.quectel.com:100/update.zip"])
def test_notsupport(modtwin, url):
    """Another scheme is accepted, then refused by URC (seed 004 6.9; HTTPS: 3.2 note)."""
    m = start(modtwin, free_port())
    m.ser.write(f'AT+QFOTADL="{url}"\r'.encode())
    assert read_until(m.ser, b'"NOTSUPPORT"\r\n') == b"\r\nOK\r\n" + qind('"NOTSUPPORT"')
    assert read_for(m.ser, 0.3) == b""
    assert m.ctl.ok("status")["fota"]["state"] == "idle"


@pytest.mark.parametrize("line", [
    'AT+QFOTADL="coap://h/%s"' % ("x" * 250),   # <URL> over 255 bytes
    'AT+QFOTADL=coap://h/x.zip',                # not a string
    'AT+QFOTADL=""',
    'AT+QFOTADL',
    'AT+QFOTADL?',
])
def test_bad_command_lines(modtwin, line):
    m = start(modtwin, free_port(), fixed_rate=False)
    assert at(m.ser, line) == b"\r\nERROR\r\n"
    assert m.ctl.ok("status")["fota"]["state"] == "idle"


def test_extra_parameter(modtwin):
    """BC260Y-CN takes the URL only; like every error of the command, a plain ERROR."""
    m = start(modtwin, free_port(), fixed_rate=False)
    assert at(m.ser, 'AT+QFOTADL="coap://h/x.zip",1') == b"\r\nERROR\r\n"


# ---- the examples ------------------------------------------------------------------------------


def test_coap_example(modtwin, coap, pkgs):
    """Seed 004 7.1 as printed."""
    m = start(modtwin, coap)
    s = m.ser
    network_checks(s)
    m.ctl.ok("network", ip=NEW_IP)   # the next attach gets the example's new address
    s.write(b'AT+QFOTADL="coap://www.quectel.com:100/update.zip"\r')
    got = read_until(s, b"+IP: " + NEW_IP.encode() + b"\r\n", timeout=60)
    head = b"\r\nOK\r\n" + qind('"COAPSTART"', '"COAPEND",0', '"START"')
    updating_run(got, head, boot_lines(NEW_IP, end=0))
    m.wait_state("on")
    assert revision(s) == NEW_REV
    assert "update.zip" not in [f["name"] for f in m.ctl.ok("files")["files"]]
    assert "fota.pkg" not in [f["name"] for f in m.ctl.ok("files")["files"]]


def test_http_example(modtwin, web, pkgs):
    """Seed 004 7.2 as printed: every download percentage once, 1% to 100%."""
    m = start(modtwin, web.http_port)
    s = m.ser
    network_checks(s)
    m.ctl.ok("network", ip=NEW_IP)
    s.write(b'AT+QFOTADL="http://www.quectel.com:100/update.zip"\r')
    got = read_until(s, b"+IP: " + NEW_IP.encode() + b"\r\n", timeout=60)
    head = b"\r\nOK\r\n" + qind('"HTTPSTART"', *['"DOWNLOADING",%d%%' % i for i in range(1, 101)],
                                '"HTTPEND",0', '"START"')
    updating_run(got, head, boot_lines(NEW_IP, end=0))
    m.wait_state("on")
    assert revision(s) == NEW_REV
    assert m.ctl.ok("status")["boots"] == 2


def test_coap_default_port_is_80(modtwin, coap):
    """Seed 004 2.2: <port> defaults to 80 (not CoAP's 5683): the URL without a port reaches the
    server the map puts behind port 80."""
    m = modtwin("--map", "www.quectel.com:80=127.0.0.1:%d" % coap, model=MODEL)
    m.wait_state("on")
    s = m.open()
    at(s, "ATE0")
    at(s, "AT+IPR=115200")
    s.write(b'AT+QFOTADL="coap://www.quectel.com/update.zip"\r')
    got = read_until(s, b"+IP: 100.125.10.122\r\n", timeout=60)
    updating_run(got, b"\r\nOK\r\n" + qind('"COAPSTART"', '"COAPEND",0', '"START"'),
                 boot_lines("100.125.10.122", end=0))


def test_downloading_every_percent_at_a_slow_rate(modtwin, web):
    """A throttled transfer moves a percent or less per chunk: still every value once."""
    m = start(modtwin, web.http_port)
    m.ctl.ok("network", rate=100000)
    m.ser.write(b'AT+QFOTADL="http://www.quectel.com:100/update.zip"\r')
    got = read_until(m.ser, b'"START"\r\n', timeout=60)
    assert got.startswith(b"\r\nOK\r\n" + qind('"HTTPSTART"',
                                       *['"DOWNLOADING",%d%%' % i for i in range(1, 101)],
                                       '"HTTPEND",0', '"START"')), got


# ---- <dl_err> ------------------------------------------------------------------------------------


def download_fails(m, url, code):
    """QFOTADL of url ends its download with <dl_err> code; nothing follows, nothing changes."""
    word = "COAP" if url.startswith("coap") else "HTTP"
    m.ser.write(f'AT+QFOTADL="{url}"\r'.encode())
    got = read_until(m.ser, f'"{word}END",{code}\r\n'.encode(), timeout=60)
    assert got.startswith(b"\r\nOK\r\n" + qind(f'"{word}START"')), got
    assert read_for(m.ser, 0.3) == b""
    st = m.ctl.ok("status")
    assert (st["revision"], st["boots"], st["fota"]["state"]) == (OLD_REV, 1, "idle")
    return got


@pytest.mark.parametrize("scheme", ["coap", "http"])
def test_dl_err_1_unusable_url(modtwin, scheme):
    """A URL with no host passes the command's check; the transfer cannot use it."""
    m = start(modtwin, free_port())
    got = download_fails(m, f"{scheme}://:100/update.zip", 1)
    assert got == b"\r\nOK\r\n" + qind(f'"{scheme.upper()}START"', f'"{scheme.upper()}END",1')


@pytest.mark.parametrize("scheme", ["coap", "http"])
def test_dl_err_2_dns(modtwin, scheme):
    m = start(modtwin, free_port())
    m.ctl.ok("network", dns_fail=True)
    got = download_fails(m, f"{scheme}://www.quectel.com:100/update.zip", 2)
    assert got == b"\r\nOK\r\n" + qind(f'"{scheme.upper()}START"', f'"{scheme.upper()}END",2')


def test_dl_err_12_not_found_coap(modtwin, coap):
    m = start(modtwin, coap)
    got = download_fails(m, "coap://www.quectel.com:100/none.zip", 12)
    assert got == b"\r\nOK\r\n" + qind('"COAPSTART"', '"COAPEND",12')


@pytest.mark.parametrize("path", ["none.zip", "500"])
def test_dl_err_12_http_status(modtwin, web, path):
    m = start(modtwin, web.http_port)
    got = download_fails(m, "http://www.quectel.com:100/" + path, 12)
    assert got == b"\r\nOK\r\n" + qind('"HTTPSTART"', '"HTTPEND",12')


@pytest.mark.parametrize("scheme", ["coap", "http"])
def test_dl_err_12_server_down(modtwin, scheme):
    m = start(modtwin, free_port())   # nothing listens there
    download_fails(m, f"{scheme}://www.quectel.com:100/update.zip", 12)


def test_dl_err_12_connection_reset(modtwin, web):
    m = start(modtwin, web.http_port)
    m.ctl.ok("network", cut_after=20000)
    got = download_fails(m, "http://www.quectel.com:100/update.zip", 12)
    assert got == b"\r\nOK\r\n" + qind('"HTTPSTART"', *dl_pcts(got), '"HTTPEND",12')
    assert len(dl_pcts(got)) < 100     # the connection broke before the end


@pytest.mark.parametrize("scheme,port", [("coap", "coap"), ("http", "web")])
def test_dl_err_13_pdn_deactivated(modtwin, request, scheme, port):
    """The network detaches the module while the (throttled) download runs."""
    srv = request.getfixturevalue(port)
    m = start(modtwin, srv if scheme == "coap" else srv.http_port)
    m.ctl.ok("network", rate=8000)
    word = scheme.upper()
    m.ser.write(f'AT+QFOTADL="{scheme}://www.quectel.com:100/update.zip"\r'.encode())
    marker = '"DOWNLOADING",2%' if scheme == "http" else f'"{word}START"'
    first = read_until(m.ser, marker.encode() + b"\r\n", timeout=30)
    wait_got(m)
    m.ctl.ok("network", reg=0)
    got = first + read_until(m.ser, f'"{word}END",13\r\n'.encode(), timeout=30)
    dls = dl_pcts(got)
    assert 2 <= len(dls) < 100 if scheme == "http" else dls == []
    assert got == b"\r\nOK\r\n" + qind(f'"{word}START"', *dls, f'"{word}END",13')
    assert m.ctl.ok("status")["revision"] == OLD_REV


@pytest.mark.parametrize("how,code", [("AT+CGATT=0", 13), ("outage", 99)])
def test_dl_err_network_lost_otherwise(modtwin, web, how, code):
    """The host detaches the module mid-download (the bearer goes: 13); or data stops while the
    module stays attached, an outage (the network is unavailable: 99)."""
    m = start(modtwin, web.http_port)
    m.ctl.ok("network", rate=8000)
    m.ser.write(b'AT+QFOTADL="http://www.quectel.com:100/update.zip"\r')
    first = read_until(m.ser, b'"DOWNLOADING",2%\r\n', timeout=30)
    if how == "outage":
        m.ctl.ok("network", outage=True)
    else:
        m.ser.write(how.encode() + b"\r")
    got = first + read_until(m.ser, f'"HTTPEND",{code}\r\n'.encode(), timeout=30)
    if how != "outage":
        assert got.count(b"\r\nOK\r\n") == 2      # the command's and AT+CGATT's
        got = got.replace(b"\r\nOK\r\n", b"", 2)
    else:
        got = got.replace(b"\r\nOK\r\n", b"", 1)
    assert got == qind('"HTTPSTART"', *dl_pcts(got), f'"HTTPEND",{code}')
    assert m.ctl.ok("status")["revision"] == OLD_REV


@pytest.mark.parametrize("scheme", ["coap", "http"])
def test_dl_err_99_no_network(modtwin, scheme):
    m = start(modtwin, free_port())
    m.ctl.ok("network", reg=0)
    got = download_fails(m, f"{scheme}://www.quectel.com:100/update.zip", 99)
    assert got == b"\r\nOK\r\n" + qind(f'"{word(scheme)}START"', f'"{word(scheme)}END",99')
    # registered but detached by the host: no data either
    m.ctl.ok("network", reg=1)
    assert at(m.ser, "AT+CGATT=0") == b"\r\nOK\r\n"
    got = download_fails(m, f"{scheme}://www.quectel.com:100/update.zip", 99)
    assert got == b"\r\nOK\r\n" + qind(f'"{word(scheme)}START"', f'"{word(scheme)}END",99')


def test_dl_err_101_package_larger_than_ufs_coap(modtwin, coap):
    m = start(modtwin, coap)
    got = download_fails(m, "coap://www.quectel.com:100/big.zip", 101)
    assert got == b"\r\nOK\r\n" + qind('"COAPSTART"', '"COAPEND",101')


def test_dl_err_101_package_larger_than_ufs_http(modtwin, web):
    m = start(modtwin, web.http_port)
    got = download_fails(m, "http://www.quectel.com:100/big.zip", 101)
    assert got == b"\r\nOK\r\n" + qind('"HTTPSTART"', *dl_pcts(got), '"HTTPEND",101')
    # the space is free again: the real package fits and updates
    m.ser.write(b'AT+QFOTADL="http://www.quectel.com:100/update.zip"\r')
    read_until(m.ser, b"+IP: 100.125.10.122\r\n", timeout=60)
    m.wait_state("on")
    assert revision(m.ser) == NEW_REV


# ---- <upgrade_err> ---------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["project.zip", "r01.zip", "table.zip"])
def test_upgrade_err_255_refused(modtwin, web, name):
    """A package for another project or firmware line, or a corrupted one: the check before the
    upgrade refuses it; END,255 follows the download at once and the module does not restart."""
    m = start(modtwin, web.http_port)
    m.ser.write(f'AT+QFOTADL="http://www.quectel.com:100/{name}"\r'.encode())
    got = read_until(m.ser, b'"END",255\r\n', timeout=60)
    assert got == b"\r\nOK\r\n" + qind('"HTTPSTART"',
                                       *['"DOWNLOADING",%d%%' % i for i in range(1, 101)],
                                       '"HTTPEND",0', '"END",255')
    assert read_for(m.ser, 0.5) == b""
    assert m.ctl.ok("status")["boots"] == 1
    assert revision(m.ser) == OLD_REV
    assert "fota.pkg" not in [f["name"] for f in m.ctl.ok("files")["files"]]


def test_upgrade_err_255_over_coap(modtwin, coap):
    m = start(modtwin, coap)
    m.ser.write(b'AT+QFOTADL="coap://www.quectel.com:100/project.zip"\r')
    assert read_until(m.ser, b'"END",255\r\n', timeout=60) == \
        b"\r\nOK\r\n" + qind('"COAPSTART"', '"COAPEND",0', '"END",255')
    assert revision(m.ser) == OLD_REV


def test_upgrade_err_255_during_the_apply(modtwin, web, pkgs):
    """A payload corrupted past the checks of the header: the apply finds it, reports END,255
    and leaves the DFOTA mode; the old image runs on, unchanged."""
    m = start(modtwin, web.http_port)
    m.ser.write(b'AT+QFOTADL="http://www.quectel.com:100/payload.zip"\r')
    got = read_until(m.ser, b'"END",255\r\n', timeout=60)
    head = b"\r\nOK\r\n" + qind('"HTTPSTART"', *['"DOWNLOADING",%d%%' % i for i in range(1, 101)],
                                '"HTTPEND",0', '"START"')
    assert got.startswith(head) and got.endswith(qind('"END",255')), got
    mid = got[len(head):-len(qind('"END",255'))]
    pcts = [int(p) for p in UPDATING.findall(mid)]
    assert b"".join(b'\r\n+QIND: "FOTA","UPDATING",%d%%,1,1\r\n' % p for p in pcts) == mid
    assert all(p < 100 for p in pcts)
    assert read_for(m.ser, 0.5) == b""
    st = m.ctl.ok("status")
    assert (st["boots"], st["revision"]) == (1, OLD_REV)
    assert image_bytes(m, len(pkgs["a.img"])) == pkgs["a.img"]


# ---- power loss ------------------------------------------------------------------------------


def test_power_cut_while_updating_resumes(modtwin, web, pkgs):
    """A cut in the middle of the apply: the next boot is the forced upgrade, START then UPDATING
    from the saved progress, then the restart with END,0 among the boot lines."""
    m = start(modtwin, web.http_port, speed="1")
    s = m.ser
    s.write(b'AT+QFOTADL="http://www.quectel.com:100/update.zip"\r')
    before = read_until(s, b"%,1,1\r\n", timeout=60)
    rep = m.ctl.ok("cut_at", op=3, restore=0)      # within the next apply step
    assert rep["op"] == 3
    m.wait_state("upgrade", timeout=30)
    pcts_before = [int(p) for p in UPDATING.findall(before)]
    assert pcts_before and pcts_before[-1] < 100
    got = read_until(s, b"+IP: 100.125.10.122\r\n", timeout=60)
    updating_run(got, qind('"START"'), boot_lines("100.125.10.122", end=0))
    first = int(UPDATING.search(got).group(1))
    assert 0 < first < 100           # resumed, not started over
    m.wait_state("on")
    assert m.ctl.ok("status")["boots"] == 3   # the cut, the forced upgrade, the new firmware
    assert revision(s) == NEW_REV
    img = m.ctl.ok("image")
    assert (img["valid"], img["size"]) == (True, len(pkgs["b.img"]))
    assert image_bytes(m, img["size"]) == pkgs["b.img"]


def test_power_cut_during_the_download(modtwin, web, pkgs):
    """The package is not complete: after the boot no job is left, no URC, the old firmware."""
    m = start(modtwin, web.http_port)
    m.ctl.ok("network", rate=8000)
    m.ser.write(b'AT+QFOTADL="http://www.quectel.com:100/update.zip"\r')
    read_until(m.ser, b'"DOWNLOADING",3%\r\n', timeout=30)
    m.ctl.ok("power", action="cut", restore=0)
    m.wait_state("on")
    assert read_until(m.ser, b"+IP: 100.125.10.122\r\n", timeout=30) == boot_lines("100.125.10.122")
    assert read_for(m.ser, 0.5) == b""
    st = m.ctl.ok("status")
    assert (st["revision"], st["fota"]["state"]) == (OLD_REV, "idle")
    assert revision(m.ser) == OLD_REV
    assert image_bytes(m, len(pkgs["a.img"])) == pkgs["a.img"]


# ---- auto-baud -------------------------------------------------------------------------------


def test_autobaud_withholds_the_result(modtwin, web):
    """In auto-baud mode (the factory setting) the result URC waits for the host's first
    characters after the restart; the other boot lines come as the examples show them."""
    m = start(modtwin, web.http_port, fixed_rate=False)
    s = m.ser
    assert at(s, "AT+IPR?") == b"\r\n+IPR: 0\r\n\r\nOK\r\n"
    s.write(b'AT+QFOTADL="http://www.quectel.com:100/update.zip"\r')
    got = read_until(s, b"+IP: 100.125.10.122\r\n", timeout=60)
    assert got.endswith(qind('"UPDATING",100%,1,1') + boot_lines("100.125.10.122")), got
    m.wait_state("on")
    assert read_for(s, 0.5) == b""
    assert m.ctl.ok("status")["fota"]["state"] == "report"
    s.write(b"AT\r")
    assert read_until(s, b"OK\r\n") == qind('"END",0') + b"AT\r\r\nOK\r\n"
    assert m.ctl.ok("status")["fota"]["state"] == "idle"
    assert revision(s) == NEW_REV
    # the result is reported once
    assert read_for(s, 0.3) == b""


def test_fixed_rate_reports_at_once_and_is_kept(modtwin, web):
    """AT+IPR=<rate> leaves auto-baud mode and holds across restarts; the result then comes
    among the boot lines. AT+IPR=0 returns to auto-baud, also for good."""
    m = start(modtwin, web.http_port, fixed_rate=False)
    s = m.ser
    assert at(s, "AT+IPR=115200") == b"\r\nOK\r\n"
    s.write(b"AT+CFUN=1,1\r")
    assert read_until(s, b"+IP: 100.125.10.122\r\n", timeout=30) == \
        b"\r\nOK\r\n" + boot_lines("100.125.10.122")
    m.wait_state("on")
    at(s, "ATE0")
    assert at(s, "AT+IPR?") == b"\r\n+IPR: 115200\r\n\r\nOK\r\n"
    s.write(b'AT+QFOTADL="http://www.quectel.com:100/update.zip"\r')
    got = read_until(s, b"+IP: 100.125.10.122\r\n", timeout=60)
    assert got.endswith(qind('"UPDATING",100%,1,1') + boot_lines("100.125.10.122", end=0))
    m.wait_state("on")
    assert read_for(s, 0.3) == b""
    at(s, "ATE0")
    assert at(s, "AT+IPR=0") == b"\r\nOK\r\n"
    m.ctl.ok("power", action="cut", restore=0)
    m.wait_state("on")
    read_until(s, b"+IP: 100.125.10.122\r\n", timeout=30)
    at(s, "ATE0")
    assert at(s, "AT+IPR?") == b"\r\n+IPR: 0\r\n\r\nOK\r\n"


def test_lte_model_unaffected(modtwin):
    """EC200A-CN: +IPR: 115200 by default, and the rate is not kept over a restart."""
    m = modtwin()
    m.wait_state("on")
    s = m.open()
    at(s, "ATE0")
    assert at(s, "AT+IPR?") == b"\r\n+IPR: 115200\r\n\r\nOK\r\n"
    assert at(s, "AT+IPR=0") == b"\r\nOK\r\n"
    m.ctl.ok("power", action="cut", restore=0)
    m.wait_state("on")
    read_until(s, b"+QIND: SMS DONE\r\n", timeout=30)
    at(s, "ATE0")
    assert at(s, "AT+IPR?") == b"\r\n+IPR: 115200\r\n\r\nOK\r\n"
