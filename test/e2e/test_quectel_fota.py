"""AT+QFOTADL on the LTE models (seed 002): the documents' example exchanges byte for byte against
real servers (nginx, pyftpdlib) and a package sent over the AT port, then every result code by a
real cause: transfer failures, packages the module refuses, bad command lines."""
import subprocess

import pytest

from conftest import BIN, at, read_for, read_until, run_ok as run
from servers import Ftpd, free_port, nginx, tls_cert, www  # noqa: F401 (fixtures)

OLD_REV = "EC200ACNHAR01A02M16"
NEW_REV = "EC200ACNHAR01A03M16"
PKG = "EC200ACNHAR01A02M16.bin"   # the name the seed's URLs use


@pytest.fixture(scope="module")
def pkgs(tmp_path_factory, www):
    """Packages for the factory image, served from the servers' root under the seed's name."""
    d = tmp_path_factory.mktemp("pkgs")
    a, b = d / "a.img", d / "b.img"
    run("image", "--model", "EC200A-CN", "-o", str(a))
    run("image", "--from", str(a), "--revision", NEW_REV, "--change", "3", "--seed", "5",
        "-o", str(b))
    out = {}
    for name, args in (("ab", (a, b)), ("ba", (b, a))):
        out[name] = d / (name + ".pkg")
        run("pack", "-q", "-l", "3", *map(str, args), "-o", str(out[name]))
    other = d / "other.img"
    run("image", "--revision", "EC200NCNLAR03A01M08", "--size", "256K", "-o", str(other))
    out["project"] = d / "project.pkg"
    run("pack", "-q", "-l", "3", str(other), "-o", str(out["project"]))
    line = d / "line.img"
    run("image", "--from", str(a), "--revision", "EC200ACNHAR02A01M16", "--baseline",
        "EC200ACNHAR02", "--change", "1", "-o", str(line))
    out["baseline"] = d / "baseline.pkg"
    run("pack", "-q", "-l", "3", str(line), "-o", str(out["baseline"]))
    data = out["ab"].read_bytes()
    out["corrupt"] = d / "corrupt.pkg"
    out["corrupt"].write_bytes(data[:600] + bytes([data[600] ^ 0xFF]) + data[601:])
    for name in out:
        www.put(name + ".pkg", out[name].read_bytes())
    www.put(PKG, out["ab"].read_bytes())
    www.put("sub/" + PKG, out["ab"].read_bytes())
    return out


def qind(*lines):
    return b"".join(b'\r\n+QIND: "FOTA",' + ln.encode() + b"\r\n" for ln in lines)


def seq(kind, first, last):
    return [f'"{kind}",{i}' for i in range(first, last + 1)]


def revision(ser):
    r = at(ser, "AT+CGMR")
    return r.split(b"\r\n")[-4].decode() if r.count(b"\r\n") >= 4 else r.decode()


@pytest.fixture
def ec200a(modtwin, nginx):
    m = modtwin(*nginx.map_args("www.example.com"),
                "--map", "www.example.com:100=127.0.0.1:%d" % nginx.http_port)
    m.wait_state("on")
    m.ser = m.open()
    at(m.ser, "ATE0")
    return m


def test_test_form(ec200a):
    assert at(ec200a.ser, "AT+QFOTADL=?") == \
        b"\r\n+QFOTADL: <url>,(0,1),(0,5-100),(0,5-100)\r\n\r\nOK\r\n"


def test_http_example(ec200a, pkgs):
    """Seed 002 3.3.1.2, as printed: the context, then the update."""
    s = ec200a.ser
    for line in ('AT+QICSGP=2,1,"cmnet","",1', 'AT+QCFG="fota/cid",2', "AT+QIACT=2"):
        assert at(s, line) == b"\r\nOK\r\n"
    s.write(b'AT+QFOTADL="http://www.example.com:100/EC200ACNHAR01A02M16.bin",1,50\r')
    want = b"\r\nOK\r\n" + qind('"HTTPSTART"', *seq("DOWNLOADING", 1, 50), '"HTTPEND",0',
                                '"START"', *seq("UPDATING", 1, 100), '"END",0')
    got = read_until(s, b'"END",0\r\n', timeout=60)
    assert got == want
    # then the module restarts into the new firmware
    read_until(s, b"+QIND: SMS DONE\r\n", timeout=30)
    ec200a.wait_state("on")
    assert revision(s) == NEW_REV
    files = [f["name"] for f in ec200a.ctl.ok("files")["files"]]
    assert "fota.pkg" not in files


def test_ftp_example(modtwin, tmp_path, www, tls_cert, pkgs):
    """Seed 002 3.3.1.1 with its URL and credentials (test:test at 192.0.2.2:21)."""
    ftp = Ftpd(tmp_path / "ftpd", www.path, *tls_cert, user="test", password="test")
    try:
        m = modtwin("--map", "192.0.2.2:21=127.0.0.1:%d" % ftp.port)
        m.wait_state("on")
        s = m.open()
        at(s, "ATE0")
        s.write(b'AT+QFOTADL="FTP://test:test@192.0.2.2:21/EC200ACNHAR01A02M16.bin",1,50\r')
        want = b"\r\nOK\r\n" + qind('"FTPSTART"', *seq("DOWNLOADING", 1, 50), '"FTPEND",0',
                                    '"START"', *seq("UPDATING", 1, 100), '"END",0')
        assert read_until(s, b'"END",0\r\n', timeout=60) == want
        read_until(s, b"+QIND: SMS DONE\r\n", timeout=30)
        m.wait_state("on")
        at(s, "ATE0")
        assert revision(s) == NEW_REV
        # a path below the root: the module only stores from the root directory (612)
        s.write(b'AT+QFOTADL="FTP://test:test@192.0.2.2:21/sub/x.bin",1,0,0\r')
        assert read_until(s, b'"FTPEND",612\r\n') == \
            b"\r\nOK\r\n" + qind('"FTPSTART"', '"FTPEND",612')
        # a wrong password (625) and a missing file (627: the server's 550)
        s.write(b'AT+QFOTADL="FTP://test:bad@192.0.2.2:21/x.bin",1,0,0\r')
        assert read_until(s, b'"FTPEND",625\r\n', timeout=30) == \
            b"\r\nOK\r\n" + qind('"FTPSTART"', '"FTPEND",625')
        s.write(b'AT+QFOTADL="FTP://test:test@192.0.2.2:21/none.bin",1,0,0\r')
        assert read_until(s, b'"FTPEND",627\r\n', timeout=30) == \
            b"\r\nOK\r\n" + qind('"FTPSTART"', '"FTPEND",627')
    finally:
        ftp.stop()


def test_file_example_with_flow_control(modtwin, pkgs):
    """Seed 002 3.3.1.3 on the main UART with AT+IFC=2,2 (the USB form is in the net tests).
    A finite --speed: the receive time-out is on the virtual clock."""
    m = modtwin(speed="10")
    m.wait_state("on")
    s = m.open()
    at(s, "ATE0")
    data = pkgs["ab"].read_bytes()
    s.rtscts = True
    assert at(s, "AT+IFC=2,2").endswith(b"OK\r\n")
    s.write(f'AT+QFOTADL="FILE:{len(data)}",1,50\r'.encode())
    assert read_until(s, b'"FILESTART"\r\n') == b"\r\nOK\r\n" + qind('"FILESTART"')
    s.write(data)
    want = qind(*seq("DOWNLOADING", 1, 50), '"FILEEND",0', '"START"',
                *seq("UPDATING", 1, 100), '"END",0')
    assert read_until(s, b'"END",0\r\n', timeout=60) == want
    read_until(s, b"+QIND: SMS DONE\r\n", timeout=30)
    assert revision(s) == NEW_REV


def test_file_example_on_usb(modtwin, pkgs):
    """Seed 002 3.3.1.3 as printed, on the USB AT port with AT+QCFG="usbifc",2,2."""
    m = modtwin(speed="10")
    m.wait_state("on")
    s = m.open(m.ports[(0, "usb")])
    at(s, "ATE0")
    s.rtscts = True
    data = pkgs["ab"].read_bytes()
    assert at(s, 'AT+QCFG="usbifc",2,2') == b"\r\nOK\r\n"
    assert at(s, 'AT+QCFG="usbifc"') == b'\r\n+QCFG: "usbifc",2,2\r\n\r\nOK\r\n'
    s.write(f'AT+QFOTADL="FILE:{len(data)}",1,50\r'.encode())
    assert read_until(s, b'"FILESTART"\r\n') == b"\r\nOK\r\n" + qind('"FILESTART"')
    s.write(data)
    want = qind(*seq("DOWNLOADING", 1, 50), '"FILEEND",0', '"START"',
                *seq("UPDATING", 1, 100), '"END",0')
    assert read_until(s, b'"END",0\r\n', timeout=60) == want


def test_file_without_flow_control_loses_bytes(modtwin, pkgs):
    """No flow control: the module takes 15 KB/s; a host that sends faster overruns the FIFO,
    the package never completes and the receive ends with <file_err> 500."""
    m = modtwin("--pacing", speed="10")
    m.wait_state("on")
    s = m.open()
    at(s, "ATE0")
    data = pkgs["ab"].read_bytes()
    s.write(f'AT+QFOTADL="FILE:{len(data)}",1,0\r'.encode())
    read_until(s, b'"FILESTART"\r\n')
    s.write(data)
    got = read_until(s, b'"FILEEND",500\r\n', timeout=60)
    assert got == qind('"FILEEND",500')
    assert m.ctl.ok("status")["revision"] == OLD_REV


def test_package_already_in_ufs(ec200a, pkgs):
    """fwupd's way: AT+QFUPL the package, then AT+QFOTADL="/data/ufs/<file>"."""
    import base64
    s = ec200a.ser
    data = pkgs["ab"].read_bytes()
    for i in range(0, len(data), 512 << 10):
        ec200a.ctl.ok("push", name="dfota_update.bin", append=i > 0,
                      data=base64.b64encode(data[i:i + (512 << 10)]).decode())
    s.write(b'AT+QFOTADL="/data/ufs/dfota_update.bin",1,0,5\r')
    assert read_until(s, b'"END",0\r\n', timeout=60) == \
        b"\r\nOK\r\n" + qind('"START"', *seq("UPDATING", 1, 5), '"END",0')


def test_upgrade_mode_0_and_urc_counts(ec200a, pkgs):
    """upgrade_mode 0: restart, then the upgrade; 5 DOWNLOADING and 0 UPDATING URCs."""
    s = ec200a.ser
    s.write(b'AT+QFOTADL="http://www.example.com:100/ab.pkg",0,5,0\r')
    got = read_until(s, b'"END",0\r\n', timeout=60)
    assert got == b"\r\nOK\r\n" + qind('"HTTPSTART"', *seq("DOWNLOADING", 1, 5),
                                       '"HTTPEND",0', '"START"', '"END",0')
    read_until(s, b"+QIND: SMS DONE\r\n", timeout=30)
    assert revision(s) == NEW_REV


def test_update_urc_max(ec200a, pkgs):
    s = ec200a.ser
    s.write(b'AT+QFOTADL="http://www.example.com:100/ab.pkg",1,0,7\r')
    got = read_until(s, b'"END",0\r\n', timeout=60)
    assert got == b"\r\nOK\r\n" + qind('"HTTPSTART"', '"HTTPEND",0', '"START"',
                                       *seq("UPDATING", 1, 7), '"END",0')


@pytest.mark.parametrize("pkg,err", [("project", 552), ("baseline", 553), ("ba", 507),
                                     ("corrupt", 505)])
def test_refused_packages(ec200a, pkgs, pkg, err):
    s = ec200a.ser
    s.write(f'AT+QFOTADL="http://www.example.com:100/{pkg}.pkg",1,0\r'.encode())
    got = read_until(s, f'"END",{err}\r\n'.encode(), timeout=60)
    assert got == b"\r\nOK\r\n" + qind('"HTTPSTART"', '"HTTPEND",0', f'"END",{err}')
    assert revision(s) == OLD_REV
    assert ec200a.ctl.ok("status")["boots"] == 1


@pytest.mark.parametrize("url,code", [
    ("http://www.example.com:100/missing.bin", 723),     # 404
    ("http://www.example.com:100/500", 723),
    ("http://unknown.invalid/x.bin", 714),               # no such host
])
def test_http_errors(ec200a, pkgs, url, code):
    s = ec200a.ser
    s.write(f'AT+QFOTADL="{url}",1,0\r'.encode())
    got = read_until(s, f'"HTTPEND",{code}\r\n'.encode(), timeout=60)
    assert got == b"\r\nOK\r\n" + qind('"HTTPSTART"', f'"HTTPEND",{code}')
    assert read_for(s, 0.3) == b""


def test_context_not_activated(ec200a, pkgs):
    """fota/cid names a context the host never activated: 708 (HTTP) / 605 (FTP)."""
    s = ec200a.ser
    assert at(s, 'AT+QICSGP=3,1,"cmnet","",1') == b"\r\nOK\r\n"
    assert at(s, 'AT+QCFG="fota/cid",3') == b"\r\nOK\r\n"
    s.write(b'AT+QFOTADL="http://www.example.com:100/ab.pkg",1,0\r')
    assert read_until(s, b'"HTTPEND",708\r\n', timeout=30) == \
        b"\r\nOK\r\n" + qind('"HTTPSTART"', '"HTTPEND",708')
    s.write(b'AT+QFOTADL="FTP://u:p@ftp.example.com/ab.pkg",1,0\r')
    assert read_until(s, b'"FTPEND",605\r\n', timeout=30) == \
        b"\r\nOK\r\n" + qind('"FTPSTART"', '"FTPEND",605')
    assert at(s, "AT+QIACT=3") == b"\r\nOK\r\n"
    s.write(b'AT+QFOTADL="http://www.example.com:100/ab.pkg",1,0,0\r')
    assert read_until(s, b'"END",0\r\n', timeout=60).endswith(qind('"START"', '"END",0'))


def test_http_refused_and_no_network(ec200a):
    s = ec200a.ser
    port = free_port()
    s.write(f'AT+QFOTADL="http://127.0.0.1:{port}/x.bin",1,0\r'.encode())
    assert read_until(s, b'"HTTPEND",716\r\n', timeout=30).endswith(qind('"HTTPEND",716'))
    assert at(s, "AT+CGATT=0").endswith(b"OK\r\n")
    s.write(b'AT+QFOTADL="http://www.example.com:100/ab.pkg",1,0\r')
    assert read_until(s, b'"HTTPEND",707\r\n', timeout=30) == \
        b"\r\nOK\r\n" + qind('"HTTPSTART"', '"HTTPEND",707')


@pytest.mark.parametrize("line", [
    'AT+QFOTADL="http://h/x.bin",2',               # mode 2 is for FILE only
    'AT+QFOTADL="http://h/x.bin",1,4',             # 1..4 is not a count
    'AT+QFOTADL="http://h/x.bin",1,101',
    'AT+QFOTADL="http://h/x.bin",1,50,101',
    'AT+QFOTADL="gopher://h/x.bin"',
    'AT+QFOTADL="FILE:0"',
    'AT+QFOTADL="FILE:12x"',
    'AT+QFOTADL="FILE:100",2,50',
    'AT+QFOTADL="FTP://u:p@h:0/x.bin"',
    'AT+QFOTADL="FTP://u:p@h:65536/x.bin"',
    'AT+QFOTADL="FTP://%s:p@h/x.bin"' % ("u" * 51),
    'AT+QFOTADL="FTP://u:%s@h/x.bin"' % ("p" * 51),
    'AT+QFOTADL="FTP://u:p@%s/x.bin"' % ("h" * 51),
    'AT+QFOTADL="FTP://u:p@h/%s"' % ("x" * 51),
    'AT+QFOTADL="http://h/%s"' % ("x" * 250),     # URL over 255
    'AT+QFOTADL=http://h/x.bin',                  # not a string
    'AT+QFOTADL="/data/ufs/none.bin"',            # no such file
    'AT+QFOTADL="http://h/x.bin",1,5,5,1',        # a fifth field
    'AT+QFOTADL',
])
def test_bad_command_lines(ec200a, line):
    assert at(ec200a.ser, line) == b"\r\nERROR\r\n"


def test_busy_while_downloading(ec200a, nginx, pkgs):
    s = ec200a.ser
    ec200a.ctl.ok("network", rate=20000)
    s.write(b'AT+QFOTADL="http://www.example.com:100/ab.pkg",1,0\r')
    read_until(s, b'"HTTPSTART"\r\n')
    assert at(s, 'AT+QFOTADL="http://www.example.com:100/ab.pkg"') == b"\r\nERROR\r\n"


REPLY_FTPD = r'''
import re, sys
from pyftpdlib.authorizers import DummyAuthorizer
from pyftpdlib.handlers import FTPHandler
from pyftpdlib.servers import FTPServer

root, port = sys.argv[1], int(sys.argv[2])
auth = DummyAuthorizer()
auth.add_user("test", "test", root, perm="elr")


class Replies(FTPHandler):
    """RETR of reply-NNN.bin answers NNN: the negative replies of RFC 959 on demand."""
    authorizer = auth

    def ftp_RETR(self, file):
        m = re.search(r"reply-(\d{3})\.bin$", file)
        if m:
            self.respond("%s Simulated reply." % m.group(1))
            return
        return super().ftp_RETR(file)


FTPServer(("127.0.0.1", port), Replies).serve_forever()
'''

FTP_REPLIES = {421: 614, 425: 615, 426: 616, 450: 617, 451: 618, 452: 619, 500: 620,
               501: 621, 502: 622, 503: 623, 504: 624, 532: 626, 550: 627, 551: 628, 552: 629,
               553: 612}


@pytest.fixture(scope="module")
def reply_ftpd(tmp_path_factory):
    from servers import PYTHON, _stop, _wait_port
    d = tmp_path_factory.mktemp("replyftpd")
    root = d / "root"
    root.mkdir()
    for reply in FTP_REPLIES:
        (root / f"reply-{reply}.bin").write_bytes(b"x" * 1000)
    script = d / "ftpd.py"
    script.write_text(REPLY_FTPD)
    port = free_port()
    err = open(d / "err", "wb")
    proc = subprocess.Popen([PYTHON, str(script), str(root), str(port)],
                            stdin=subprocess.DEVNULL, stdout=err, stderr=err)
    _wait_port(port, proc, str(d / "err"))
    yield port
    _stop(proc)
    err.close()


def test_ftp_server_replies(modtwin, reply_ftpd):
    """<FTP_err> 612 and 614-629 from the server's own replies to RETR (RFC 959 order)."""
    m = modtwin("--map", "ftp.example.com:21=127.0.0.1:%d" % reply_ftpd)
    m.wait_state("on")
    s = m.open()
    at(s, "ATE0")
    for reply, code in FTP_REPLIES.items():
        s.write(f'AT+QFOTADL="FTP://test:test@ftp.example.com/reply-{reply}.bin",1,0\r'
                .encode())
        assert read_until(s, f'"FTPEND",{code}\r\n'.encode(), timeout=30) == \
            b"\r\nOK\r\n" + qind('"FTPSTART"', f'"FTPEND",{code}'), reply


def test_https(modtwin, nginx, tls_cert, pkgs):
    """HTTPS verifies the server against --ca; an untrusted server ends with 716."""
    m = modtwin("--ca", tls_cert[0])
    m.wait_state("on")
    s = m.open()
    at(s, "ATE0")
    url = nginx.url("/ab.pkg", tls=True)
    s.write(f'AT+QFOTADL="{url}",1,5,0\r'.encode())
    assert read_until(s, b'"END",0\r\n', timeout=60) == b"\r\nOK\r\n" + qind(
        '"HTTPSTART"', *seq("DOWNLOADING", 1, 5), '"HTTPEND",0', '"START"', '"END",0')


def test_https_untrusted(modtwin, nginx, pkgs):
    m2 = modtwin()          # the system trust store does not know the test CA
    m2.wait_state("on")
    s2 = m2.open()
    at(s2, "ATE0")
    url = nginx.url("/ab.pkg", tls=True)
    s2.write(f'AT+QFOTADL="{url}",1,0\r'.encode())
    assert read_until(s2, b'"HTTPEND",716\r\n', timeout=60) == \
        b"\r\nOK\r\n" + qind('"HTTPSTART"', '"HTTPEND",716')


def test_protocol_mode_with_the_sender(modtwin, pkgs):
    """Seed 002 3.3.1.4: "FILE:<length>",2 answers 010003; `modtwin fota-send` sends the package
    with the protocol of docs/qfota-protocol.md over a UART without flow control (--pacing:
    the module takes 15 KB/s, the sender's window keeps the FIFO from overrunning)."""
    m = modtwin("--pacing")
    m.wait_state("on")
    data = pkgs["ab"].read_bytes()
    out = subprocess.run([BIN, "fota-send", m.uart, str(pkgs["ab"])], capture_output=True,
                         timeout=300)
    assert out.returncode == 0, out.stderr
    s = m.open()
    got = read_until(s, b"+QIND: SMS DONE\r\n", timeout=60)
    end = got.index(b'"END",0\r\n') + 9
    assert got[:end] == qind('"FILEEND",0', '"START"', *seq("UPDATING", 1, 100), '"END",0')
    m.wait_state("on")
    assert m.ctl.ok("status")["revision"] == NEW_REV
    assert m.ctl.ok("status")["ports"][0]["overrun"] == 0
    assert len(data) > 100000


def test_protocol_mode_answers_010003(ec200a):
    s = ec200a.ser
    s.write(b'AT+QFOTADL="FILE:5000",2\r')
    assert read_until(s, b"010003\r\n") == b"\r\n010003\r\n"
    # a host that never sends a frame: the session ends after its silence time-out
    got = read_until(s, b'"FILEEND",500\r\n', timeout=30)
    assert got.endswith(qind('"FILEEND",500'))
    assert at(s, "AT") == b"\r\nOK\r\n"


# ---- the codes of the simulated world's failures --------------------------------------------------

def qfotadl_end(s, url, kind, timeout=60):
    """Sends AT+QFOTADL=url,1,0 and returns the code of its xxxEND URC (after checking the
    URCs before it are exactly OK and xxxSTART)."""
    s.write(f'AT+QFOTADL="{url}",1,0\r'.encode())
    got = read_until(s, f'"{kind}END",'.encode(), timeout=timeout)
    if not got.endswith(b"\r\n"):
        got += read_until(s, b"\r\n", timeout=5)
    head = b"\r\nOK\r\n" + qind(f'"{kind}START"') + f'\r\n+QIND: "FOTA","{kind}END",'.encode()
    assert got.startswith(head), got
    return int(got[len(head):].strip())


@pytest.fixture(scope="module")
def bigfile(www):
    """6 MiB: more than EC200A-CN's UFS area holds."""
    from servers import payload
    www.put("big.bin", payload(6 << 20, 3))
    return "big.bin"


def test_http_world_codes(ec200a, pkgs, bigfile):
    s, ctl = ec200a.ser, ec200a.ctl
    base = "http://www.example.com:100/"
    ctl.ok("network", outage=True)
    assert qfotadl_end(s, base + "ab.pkg", "HTTP") == 710          # registered, nothing flows
    ctl.ok("network", outage=False, dns_fail=True)
    assert qfotadl_end(s, base + "ab.pkg", "HTTP") == 714
    ctl.ok("network", dns_fail=False, cut_after=50000)
    assert qfotadl_end(s, base + "ab.pkg", "HTTP") == 717          # reset after data
    ctl.ok("network", cut_after=0)
    assert qfotadl_end(s, "http://[zz]/x.bin", "HTTP") == 711       # a URL libcurl refuses
    assert qfotadl_end(s, base + bigfile, "HTTP") == 701            # larger than UFS
    # the context goes down while the package comes (the host detaches)
    ctl.ok("network", rate=20000)
    s.write(f'AT+QFOTADL="{base}ab.pkg",1,0\r'.encode())
    read_until(s, b'"HTTPSTART"\r\n')
    s.write(b"AT+CGATT=0\r")
    assert read_until(s, b'"HTTPEND",709\r\n', timeout=30) == \
        b"\r\nOK\r\n" + qind('"HTTPEND",709')
    assert ec200a.ctl.ok("status")["revision"] == OLD_REV


def test_http_stall_after_data(ec200a, pkgs):
    """A server that stops sending: 722 after the low-speed time (20 s, real time)."""
    s, ctl = ec200a.ser, ec200a.ctl
    ctl.ok("network", rate=20000)
    s.write(b'AT+QFOTADL="http://www.example.com:100/ab.pkg",1,0\r')
    read_until(s, b'"HTTPSTART"\r\n')
    import time
    time.sleep(0.5)
    ctl.ok("network", stall=True)
    assert read_until(s, b'"HTTPEND",722\r\n', timeout=60).endswith(qind('"HTTPEND",722'))


def test_wrong_target_md5_is_506(ec200a, pkgs, www):
    """A package whose target MD5 (header offset 104, header CRC made good again) does not match
    what the apply builds: the upgrade fails with 506 and the old firmware runs on."""
    import zlib
    data = bytearray(pkgs["ab"].read_bytes())
    data[104] ^= 0xFF
    data[508:512] = zlib.crc32(bytes(data[:508])).to_bytes(4, "little")
    www.put("md5.pkg", bytes(data))
    s = ec200a.ser
    s.write(b'AT+QFOTADL="http://www.example.com:100/md5.pkg",1,0,0\r')
    got = read_until(s, b'"END",506\r\n', timeout=60)
    assert got == b"\r\nOK\r\n" + qind('"HTTPSTART"', '"HTTPEND",0', '"START"', '"END",506')
    assert ec200a.ctl.ok("status")["revision"] == OLD_REV


def test_ftp_world_codes(modtwin, tmp_path, www, tls_cert, pkgs, bigfile):
    ftp = Ftpd(tmp_path / "ftpd", www.path, *tls_cert, user="test", password="test")
    try:
        m = modtwin("--map", "ftp.example.com:21=127.0.0.1:%d" % ftp.port)
        m.wait_state("on")
        s = m.open()
        at(s, "ATE0")
        url = "FTP://test:test@ftp.example.com/"
        m.ctl.ok("network", dns_fail=True)
        assert qfotadl_end(s, url + "ab.pkg", "FTP") == 604
        m.ctl.ok("network", dns_fail=False, outage=True)
        assert qfotadl_end(s, url + "ab.pkg", "FTP") == 605
        m.ctl.ok("network", outage=False, cut_after=50000)
        assert qfotadl_end(s, url + "ab.pkg", "FTP") == 607         # data connection closed
        m.ctl.ok("network", cut_after=0)
        assert qfotadl_end(s, url + bigfile, "FTP") == 613          # does not fit in UFS
        assert qfotadl_end(s, "FTP://test:test@[zz]/x.bin", "FTP") == 610
        m.ctl.ok("network", stall=True)
        assert qfotadl_end(s, url + "ab.pkg", "FTP", timeout=90) == 609
    finally:
        ftp.stop()
