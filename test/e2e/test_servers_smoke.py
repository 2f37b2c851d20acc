"""The server fixtures of servers.py, proven with the curl CLI alone (no modtwin): nginx HTTP and
HTTPS (Range, /500, /slow/ throttling, certificate checks by CA file and by name), pyftpdlib FTP
(user fw/fw, anonymous, bad login, missing file, resume) and explicit FTPS."""
import shutil
import subprocess
import time

import pytest

from servers import ftpd, nginx, payload, tls_cert, www  # noqa: F401 (fixtures)

CURL = shutil.which("curl")
pytestmark = pytest.mark.skipif(CURL is None, reason="curl CLI not installed (apt-get install curl)")
DATA = payload(1 << 20, 1)  # what the www fixture puts in fw1m.bin


def curl(*args, timeout=30):
    """Runs curl; returns (exit code, body bytes)."""
    p = subprocess.run([CURL, "-sS", "--connect-timeout", "10", *args], capture_output=True,
                       timeout=timeout)
    return p.returncode, p.stdout


def test_http_get_and_range(nginx):
    rc, body = curl(nginx.url("/fw1m.bin"))
    assert rc == 0 and body == DATA
    rc, body = curl("-r", "1000-1999", nginx.url("/fw1m.bin"))
    assert rc == 0 and body == DATA[1000:2000]
    rc, body = curl("-r", "1000000-", nginx.url("/fw1m.bin"))
    assert rc == 0 and body == DATA[1000000:]


def test_http_statuses(nginx):
    for path, status in (("/500", "500"), ("/401", "401"), ("/403", "403"),
                         ("/missing.bin", "404"), ("/fw1m.bin", "200")):
        rc, out = curl("-o", "/dev/null", "-w", "%{http_code}", nginx.url(path))
        assert rc == 0 and out.decode() == status, path
    rc, out = curl("-o", "/dev/null", "-w", "%{http_code}", "-r", "5000000-",
                   nginx.url("/fw1m.bin"))
    assert out.decode() == "416"
    rc, body = curl("-L", nginx.url("/redirect/fw1m.bin"))
    assert rc == 0 and body == DATA


def test_http_put_file(nginx):
    data = payload(12345, 7)
    nginx.put("sub/x.bin", data)
    rc, body = curl(nginx.url("/sub/x.bin"))
    assert rc == 0 and body == data


def test_http_slow_is_throttled(nginx):
    nginx.put("q.bin", payload(512 * 1024, 3))
    t0 = time.monotonic()
    rc, body = curl(nginx.url("/slow/q.bin"))
    elapsed = time.monotonic() - t0
    assert rc == 0 and len(body) == 512 * 1024
    assert elapsed > 0.7  # 256 KiB/s configured; nginx allows up to about twice that


def test_https_verified(nginx, tls_cert):
    cert, _ = tls_cert
    for host in ("localhost", "127.0.0.1"):  # DNS and IP SANs
        rc, body = curl("--cacert", cert, nginx.url("/fw1m.bin", tls=True, host=host))
        assert rc == 0 and body == DATA, host
    rc, _ = curl(nginx.url("/fw1m.bin", tls=True))  # not in the system's store
    assert rc == 60
    rc, body = curl("-k", nginx.url("/fw1m.bin", tls=True))
    assert rc == 0 and body == DATA


def test_ftp_user_and_anonymous(ftpd):
    rc, body = curl(ftpd.url("/fw1m.bin", user="fw", password="fw"))
    assert rc == 0 and body == DATA
    rc, body = curl(ftpd.url("/fw1m.bin"))
    assert rc == 0 and body == DATA
    rc, body = curl("-C", "700000", ftpd.url("/fw1m.bin", user="fw", password="fw"))
    assert rc == 0 and body == DATA[700000:]


def test_ftp_failures(ftpd):
    rc, _ = curl(ftpd.url("/fw1m.bin", user="fw", password="wrong"))
    assert rc == 67  # CURLE_LOGIN_DENIED (530)
    rc, _ = curl(ftpd.url("/missing.bin", user="fw", password="fw"))
    assert rc == 78  # CURLE_REMOTE_FILE_NOT_FOUND (550)


def test_ftps_explicit(ftpd, tls_cert):
    cert, _ = tls_cert
    url = ftpd.plain_url("/fw1m.bin", tls=True, user="fw", password="fw", host="localhost")
    rc, body = curl("--ssl-reqd", "--cacert", cert, url)
    assert rc == 0 and body == DATA
    rc, body = curl("--ssl-reqd", "--cacert", cert, "-r", "10-99", url)
    assert rc == 0 and body == DATA[10:100]
    # the FTPS port refuses a session without TLS
    rc, _ = curl(ftpd.plain_url("/fw1m.bin", tls=True, user="fw", password="fw"))
    assert rc != 0
