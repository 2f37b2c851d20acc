"""Downloads into the module's UFS through its own transfer stack, from real servers on loopback
(nginx HTTP/HTTPS, pyftpdlib FTP/FTPS, libcoap's coap-server): byte-identical files, every error
class provoked by a real cause, the world's conditions from the control API, and a download
resumed after a power cut."""
import base64
import os
import shutil
import subprocess
import time

import pytest

from conftest import Control
from servers import ftpd, free_port, nginx, payload, tls_cert, www  # noqa: F401 (fixtures)

DATA = payload(1 << 20, 1)  # fw1m.bin on both servers


def wait_download(m, timeout=60):
    end = time.time() + timeout
    while time.time() < end:
        d = m.ctl.ok("status")["download"]
        if d["state"] in ("done", "failed"):
            return d
        time.sleep(0.02)
    raise TimeoutError("download never ended")


def pull(m, name):
    size = {f["name"]: f["size"] for f in m.ctl.ok("files")["files"]}.get(name)
    if size is None:
        return None
    out = b""
    while len(out) < size:
        r = m.ctl.ok("pull", name=name, offset=len(out), length=512 << 10)
        out += base64.b64decode(r["data"])
    return out


def fetch(m, url, name="f.bin", resume=False):
    m.ctl.ok("download", url=url, file=name, resume=resume)
    return wait_download(m)


@pytest.fixture
def mod(modtwin, tls_cert, nginx, ftpd):
    m = modtwin("--ca", tls_cert[0], *nginx.map_args("fota.example.com"),
                *ftpd.map_args("ftp.example.com"))
    m.wait_state("on")
    return m


@pytest.fixture(scope="module")
def coap(tmp_path_factory):
    srv = shutil.which("coap-server-notls")
    cli = shutil.which("coap-client-notls")
    if not srv or not cli:
        pytest.skip("libcoap3-bin not installed")
    port = free_port()
    proc = subprocess.Popen([srv, "-A", "127.0.0.1", "-p", str(port), "-d", "4"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    f = tmp_path_factory.mktemp("coap") / "fw.bin"
    f.write_bytes(DATA[:300001])
    time.sleep(0.3)
    subprocess.run([cli, "-m", "put", "-b", "1024", "-f", str(f),
                    "coap://127.0.0.1:%d/fw" % port], check=True, timeout=60,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    yield port
    proc.terminate()
    proc.wait(10)


@pytest.mark.parametrize("kind", ["http", "https", "ftp", "ftp-user", "ftps"])
def test_download_is_byte_identical(mod, nginx, ftpd, kind):
    url = {
        "http": nginx.url("/fw1m.bin"),
        "https": nginx.url("/fw1m.bin", tls=True, host="localhost"),
        "ftp": ftpd.url("/fw1m.bin"),
        "ftp-user": ftpd.url("/fw1m.bin", user="fw", password="fw"),
        "ftps": ftpd.url("/fw1m.bin", tls=True, user="fw", password="fw", host="localhost"),
    }[kind]
    d = fetch(mod, url)
    assert d["state"] == "done", d
    assert d["got"] == len(DATA)
    assert pull(mod, "f.bin") == DATA


def test_documents_host_names_through_the_map(mod):
    # the documents' URLs run unchanged: the map sends them to loopback
    d = fetch(mod, "http://fota.example.com/fw1m.bin")
    assert d["state"] == "done" and pull(mod, "f.bin") == DATA
    d = fetch(mod, "ftp://fw:fw@ftp.example.com/fw1m.bin", "g.bin")
    assert d["state"] == "done" and pull(mod, "g.bin") == DATA


def test_coap_blockwise(modtwin, coap):
    m = modtwin(model="BC260Y-CN", *["--map", "www.quectel.com:100=127.0.0.1:%d" % coap])
    m.wait_state("on")
    d = fetch(m, "coap://www.quectel.com:100/fw")
    assert d["state"] == "done", d
    assert pull(m, "f.bin") == DATA[:300001]
    d = fetch(m, "coap://www.quectel.com:100/nothing", "h.bin")
    assert (d["state"], d["error"]) == ("failed", "not_found")


@pytest.mark.parametrize("path,error,detail", [
    ("/missing.bin", "not_found", 404),
    ("/500", "server", 500),
    ("/401", "auth", 401),
    ("/403", "auth", 403),
])
def test_http_errors(mod, nginx, path, error, detail):
    d = fetch(mod, nginx.url(path))
    assert (d["state"], d["error"], d["detail"]) == ("failed", error, detail)


def test_ftp_errors(mod, ftpd):
    d = fetch(mod, ftpd.url("/fw1m.bin", user="fw", password="wrong"))
    assert (d["error"], d["detail"]) == ("auth", 530)
    d = fetch(mod, ftpd.url("/missing.bin", user="fw", password="fw"))
    assert (d["error"], d["detail"]) == ("not_found", 550)


def test_tls_verification(modtwin, nginx):
    # without the test CA the server's certificate is not trusted
    m = modtwin()
    m.wait_state("on")
    d = fetch(m, nginx.url("/fw1m.bin", tls=True))
    assert (d["state"], d["error"]) == ("failed", "tls")


def test_server_down_and_dns(mod):
    d = fetch(mod, "http://127.0.0.1:%d/fw.bin" % free_port())
    assert d["error"] == "connect"
    d = fetch(mod, "http://no-such-host.invalid/fw.bin")
    assert d["error"] == "dns"


def test_world_conditions(mod, nginx):
    url = nginx.url("/fw1m.bin")
    mod.ctl.ok("network", dns_fail=True)
    assert fetch(mod, "http://fota.example.com/fw1m.bin")["error"] == "dns"
    mod.ctl.ok("network", dns_fail=False, refuse=True)
    assert fetch(mod, url)["error"] == "connect"
    mod.ctl.ok("network", refuse=False, cut_after=100000)
    d = fetch(mod, url)
    assert d["error"] == "reset"
    mod.ctl.ok("network", cut_after=0, outage=True)
    rep = mod.ctl("download", url=url, file="f.bin")
    assert rep["error"]["field"] == "module"
    mod.ctl.ok("network", outage=False, reg=0)
    assert mod.ctl("download", url=url, file="f.bin")["ok"] is False
    mod.ctl.ok("network", reg=1)
    assert fetch(mod, url)["state"] == "done"


def test_outage_during_download(mod, nginx):
    mod.ctl.ok("network", rate=200000)
    mod.ctl.ok("download", url=nginx.url("/fw1m.bin"), file="f.bin")
    time.sleep(0.5)
    mod.ctl.ok("network", outage=True)
    d = wait_download(mod)
    assert (d["state"], d["error"]) == ("failed", "no_network")
    # what arrived and was synced stays; a resume completes the file
    mod.ctl.ok("network", outage=False, rate=0)
    d = fetch(mod, nginx.url("/fw1m.bin"), resume=True)
    assert d["state"] == "done"
    assert pull(mod, "f.bin") == DATA


def test_storage_full(modtwin, www, nginx):
    big = payload(1200 << 10, 5)
    www.put("big.bin", big)
    m = modtwin(model="BC260Y-CN")   # 832 KiB of UFS
    m.wait_state("on")
    d = fetch(m, nginx.url("/big.bin"))
    assert (d["state"], d["error"]) == ("failed", "storage_full")


def test_resume_after_power_cut(modtwin, nginx):
    m = modtwin("--speed", "1")
    m.wait_state("on")
    m.ctl.ok("network", rate=300000)
    m.ctl.ok("download", url=nginx.url("/fw1m.bin"), file="f.bin")
    time.sleep(1.5)
    m.ctl.ok("power", action="cut", restore=0)
    m.wait_state("on")
    have = {f["name"]: f["size"] for f in m.ctl.ok("files")["files"]}.get("f.bin", 0)
    assert 0 < have < len(DATA)          # a synced prefix survived the cut
    assert pull(m, "f.bin") == DATA[:have]
    m.ctl.ok("network", rate=0)
    rep = m.ctl.ok("download", url=nginx.url("/fw1m.bin"), file="f.bin", resume=True)
    assert rep["from"] == have
    d = wait_download(m)
    assert d["state"] == "done"
    assert pull(m, "f.bin") == DATA


def test_stall_times_out_and_bad_urls(mod, nginx):
    mod.ctl.ok("network", stall=True)
    mod.ctl.ok("download", url=nginx.url("/fw1m.bin"), file="f.bin", timeout=1)
    d = wait_download(mod)
    assert (d["state"], d["error"]) == ("failed", "timeout")
    mod.ctl.ok("network", stall=False)
    rep = mod.ctl("download", url="gopher://example.com/fw.bin", file="f.bin")
    assert rep["error"]["field"] == "args.url"
    assert mod.ctl.ok("status")["download"]["error"] == "url"
