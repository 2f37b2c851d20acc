"""Real servers on loopback for the end-to-end tests: nginx (HTTP, HTTPS) and pyftpdlib (FTP and
explicit FTPS), each on free ports of 127.0.0.1, with everything they write kept in a temporary
directory, stopped at teardown. A missing binary or module skips the tests that need it, with the
reason. Recipes: /work/shared/reference/probe-local.md section 3 (and gotcha 5 for pyftpdlib FTPS).

Use from a test module (no conftest changes needed):

    from servers import nginx, ftpd, tls_cert, www   # fixtures (module scope)

    def test_x(nginx, ftpd):
        nginx.put("fw.bin", data)                    # into the shared document root
        url = nginx.url("/fw.bin")                   # http://127.0.0.1:PORT/fw.bin
        url = nginx.url("/fw.bin", tls=True, host="localhost")
        url = ftpd.url("/fw.bin", user="fw", password="fw", tls=True)
        maps = nginx.map_args("fota.example.com")    # ["--map", "fota.example.com:80=127.0.0.1:P", ...]

nginx serves the root at /, the same files throttled under /slow/ (limit_rate, default 256 KiB/s;
nginx lets through up to about twice that), `location = /500 { return 500; }`, /401 and /403
likewise, and /redirect/NAME -> 302 to /NAME. Range requests work (nginx's default).
pyftpdlib: user fw / password fw (read-only) and anonymous, same root; passive mode on ports the
OS picks; FTPS is explicit (AUTH TLS) with TLS required on both channels.
"""
import os
import random
import shutil
import socket
import subprocess
import sys
import time

import pytest

PYTHON = "/usr/bin/python3"  # Debian's: pyftpdlib and python3-openssl live there (probe gotcha 2)
FTP_USER = "fw"
FTP_PASS = "fw"


def free_port():
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def payload(size, seed=0):
    """size deterministic pseudo-random bytes."""
    return random.Random(seed).randbytes(size)


def _wait_port(port, proc, errfile, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError("server exited with %s: %s" % (proc.returncode, _tail(errfile)))
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("server did not listen on %d: %s" % (port, _tail(errfile)))


def _tail(path, n=2000):
    try:
        with open(path, "rb") as f:
            return f.read()[-n:].decode(errors="replace")
    except OSError:
        return ""


def _stop(proc):
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


def _find(name):
    return shutil.which(name) or next(
        (p for p in ("/usr/sbin/" + name, "/sbin/" + name) if os.access(p, os.X_OK)), None)


def make_cert(directory, kind="rsa", names=()):
    """A self-signed certificate for localhost and 127.0.0.1 (SAN) plus any extra DNS names
    (the documents' host names, for HTTPS through --map with verification on), RSA 2048 or EC
    P-256. Returns (cert_path, key_path); skips when the openssl CLI is missing."""
    openssl = _find("openssl")
    if not openssl:
        pytest.skip("openssl CLI not installed (apt-get install openssl)")
    os.makedirs(directory, exist_ok=True)
    cert = os.path.join(directory, "cert.pem")
    key = os.path.join(directory, "key.pem")
    newkey = ["-newkey", "rsa:2048"] if kind == "rsa" else \
        ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1"]
    subprocess.run([openssl, "req", "-x509", *newkey, "-nodes", "-keyout", key, "-out", cert,
                    "-days", "30", "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=" + ",".join(
                       ["DNS:localhost", "IP:127.0.0.1"] + ["DNS:" + n for n in names])],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return cert, key


class _Root:
    """The document root shared by the servers of a test module."""

    def __init__(self, path):
        self.path = str(path)
        os.makedirs(self.path, exist_ok=True)

    def put(self, name, data):
        """Writes data to NAME (relative, may contain '/') under the root; returns its path."""
        p = os.path.join(self.path, name.lstrip("/"))
        os.makedirs(os.path.dirname(p), exist_ok=True)
        with open(p, "wb") as f:
            f.write(data)
        return p


NGINX_CONF = """\
daemon off;
master_process off;
worker_processes 1;
pid {dir}/nginx.pid;
error_log /dev/stderr warn;
events {{ worker_connections 256; }}
http {{
    access_log {dir}/access.log;
    client_body_temp_path {dir}/tmp_body;
    proxy_temp_path {dir}/tmp_proxy;
    fastcgi_temp_path {dir}/tmp_fcgi;
    uwsgi_temp_path {dir}/tmp_uwsgi;
    scgi_temp_path {dir}/tmp_scgi;
    types {{ application/octet-stream bin; }}
    default_type application/octet-stream;
    sendfile on;
    server {{
        listen 127.0.0.1:{http};
        listen 127.0.0.1:{https} ssl;
        server_name localhost;
        ssl_certificate {cert};
        ssl_certificate_key {key};
        root {root};
        location /slow/ {{ alias {root}/; limit_rate {rate}; }}
        location = /500 {{ return 500; }}
        location = /401 {{ return 401; }}
        location = /403 {{ return 403; }}
        location /redirect/ {{ rewrite ^/redirect/(.*)$ /$1 redirect; }}
    }}
}}
"""


class Nginx(_Root):
    """nginx on two free ports (http, https); stop() ends it."""

    def __init__(self, directory, root, cert, key, rate="256k"):
        binary = _find("nginx")
        if not binary:
            pytest.skip("nginx not installed (apt-get install nginx)")
        super().__init__(root)
        self.dir = str(directory)
        self.cert, self.key = cert, key
        os.makedirs(self.dir, exist_ok=True)
        self.http_port, self.https_port = free_port(), free_port()
        conf = os.path.join(self.dir, "nginx.conf")
        with open(conf, "w") as f:
            f.write(NGINX_CONF.format(dir=self.dir, http=self.http_port, https=self.https_port,
                                      cert=cert, key=key, root=self.path, rate=rate))
        self.errfile = os.path.join(self.dir, "nginx.err")
        with open(self.errfile, "wb") as err:
            # -e: the error log before the config is read (else /var/log/nginx/error.log)
            self.proc = subprocess.Popen([binary, "-p", self.dir, "-c", conf, "-e", "/dev/stderr"],
                                         stdin=subprocess.DEVNULL, stdout=err, stderr=err)
        try:
            _wait_port(self.http_port, self.proc, self.errfile)
            _wait_port(self.https_port, self.proc, self.errfile)
        except Exception:
            self.stop()
            raise

    def url(self, path="/", tls=False, host="127.0.0.1"):
        scheme, port = ("https", self.https_port) if tls else ("http", self.http_port)
        return "%s://%s:%d/%s" % (scheme, host, port, path.lstrip("/"))

    def map_args(self, host):
        """--map options that send the documents' host (ports 80 and 443) to this server."""
        return ["--map", "%s:80=127.0.0.1:%d" % (host, self.http_port),
                "--map", "%s:443=127.0.0.1:%d" % (host, self.https_port)]

    def stop(self):
        _stop(self.proc)


FTPD_SCRIPT = r'''
import sys
from pyftpdlib.authorizers import DummyAuthorizer
from pyftpdlib.handlers import FTPHandler
from pyftpdlib.servers import FTPServer
from pyftpdlib.ioloop import IOLoop

root, port, tls_port, cert, key, user, password = sys.argv[1:8]
port, tls_port = int(port), int(tls_port)
auth = DummyAuthorizer()
auth.add_user(user, password, root, perm="elr")
auth.add_anonymous(root)


class Plain(FTPHandler):
    authorizer = auth


io = IOLoop()
FTPServer(("127.0.0.1", port), Plain, ioloop=io)
if tls_port:
    from pyftpdlib.handlers import TLS_FTPHandler, TLS_DTPHandler

    class FixedTLSDTP(TLS_DTPHandler):
        # backport of pyftpdlib PR #612 (Debian has 1.5.7): keep reading during the data
        # channel's TLS handshake, else curl 7.88 sees "Bad PASV/EPSV response: 200"
        def readable(self):
            return self._ssl_accepting or super().readable()

    class Secure(TLS_FTPHandler):
        dtp_handler = FixedTLSDTP
        authorizer = auth
        certfile = cert
        keyfile = key
        tls_control_required = True
        tls_data_required = True

    FTPServer(("127.0.0.1", tls_port), Secure, ioloop=io)
print("ready", flush=True)
io.loop()
'''


class Ftpd(_Root):
    """pyftpdlib: plain FTP on `port`, explicit FTPS on `tls_port` (None without pyOpenSSL)."""

    def __init__(self, directory, root, cert, key, user=FTP_USER, password=FTP_PASS):
        probe = subprocess.run([PYTHON, "-c", "import pyftpdlib"], capture_output=True)
        if not os.access(PYTHON, os.X_OK) or probe.returncode != 0:
            pytest.skip("pyftpdlib not installed for %s (apt-get install python3-pyftpdlib)"
                        % PYTHON)
        has_tls = subprocess.run([PYTHON, "-c", "import OpenSSL"],
                                 capture_output=True).returncode == 0
        super().__init__(root)
        self.dir = str(directory)
        os.makedirs(self.dir, exist_ok=True)
        self.port = free_port()
        self.tls_port = free_port() if has_tls else None
        script = os.path.join(self.dir, "ftpd.py")
        with open(script, "w") as f:
            f.write(FTPD_SCRIPT)
        self.errfile = os.path.join(self.dir, "ftpd.err")
        with open(self.errfile, "wb") as err:
            self.proc = subprocess.Popen(
                [PYTHON, script, self.path, str(self.port), str(self.tls_port or 0), cert, key,
                 user, password], stdin=subprocess.DEVNULL, stdout=err, stderr=err)
        try:
            _wait_port(self.port, self.proc, self.errfile)
            if self.tls_port:
                _wait_port(self.tls_port, self.proc, self.errfile)
        except Exception:
            self.stop()
            raise

    def url(self, path="/", tls=False, user=None, password=None, host="127.0.0.1"):
        """ftp://[user:password@]host:port/path; tls=True gives the ftps:// form on the FTPS
        port (explicit FTPS: modtwin maps ftps:// to AUTH TLS, curl CLI needs --ssl-reqd with
        ftp://, see plain_url)."""
        if tls and not self.tls_port:
            pytest.skip("FTPS needs python3-openssl for %s" % PYTHON)
        cred = ""
        if user is not None:
            cred = user + (":" + password if password is not None else "") + "@"
        return "%s://%s%s:%d/%s" % ("ftps" if tls else "ftp", cred, host,
                                    self.tls_port if tls else self.port, path.lstrip("/"))

    def plain_url(self, *args, **kw):
        """The same as url() with an ftp:// scheme (for the curl CLI with --ssl-reqd)."""
        u = self.url(*args, **kw)
        return "ftp://" + u.split("://", 1)[1]

    def map_args(self, host):
        """--map options sending HOST:21 to the plain FTP port (FTPS: map the port you use)."""
        return ["--map", "%s:21=127.0.0.1:%d" % (host, self.port)]

    def stop(self):
        _stop(self.proc)


# ---- fixtures (module scope: one set of servers per test module) ------------------------------

@pytest.fixture(scope="module")
def tls_cert(tmp_path_factory):
    """(cert, key) paths: RSA, SAN localhost and 127.0.0.1. The cert is also the CA to trust."""
    return make_cert(str(tmp_path_factory.mktemp("tls")), "rsa")


@pytest.fixture(scope="module")
def www(tmp_path_factory):
    """The document root both servers serve, with fw1m.bin (1 MiB, payload(1 << 20, 1))."""
    root = _Root(tmp_path_factory.mktemp("www"))
    root.put("fw1m.bin", payload(1 << 20, 1))
    return root


@pytest.fixture(scope="module")
def nginx(tmp_path_factory, www, tls_cert):
    srv = Nginx(tmp_path_factory.mktemp("nginx"), www.path, *tls_cert)
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def ftpd(tmp_path_factory, www, tls_cert):
    srv = Ftpd(tmp_path_factory.mktemp("ftpd"), www.path, *tls_cert)
    yield srv
    srv.stop()


if __name__ == "__main__":
    # Manual use: python3 servers.py DIR  -> runs both servers until Ctrl-C, printing their URLs.
    import signal
    import tempfile
    signal.signal(signal.SIGTERM, lambda *_: (_ for _ in ()).throw(KeyboardInterrupt()))
    base = sys.argv[1] if len(sys.argv) > 1 else tempfile.mkdtemp(prefix="modtwin-srv-")
    c, k = make_cert(os.path.join(base, "tls"))
    root = _Root(os.path.join(base, "www"))
    root.put("fw1m.bin", payload(1 << 20, 1))
    n = Nginx(os.path.join(base, "nginx"), root.path, c, k)
    f = Ftpd(os.path.join(base, "ftpd"), root.path, c, k)
    print(n.url("/fw1m.bin"), n.url("/fw1m.bin", tls=True), f.url("/fw1m.bin"),
          f.url("/fw1m.bin", tls=True), "ca=" + c, flush=True)
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        n.stop()
        f.stop()
