"""The control API: network, SIM, time, events, flash counters, file push/pull, cut at a flash
operation, errors that name their field."""
import base64
import json
import socket
import time

from conftest import Control, at, read_for, read_until


def test_status_fields(module):
    st = module.ctl.ok("status")
    assert st["model"] == "EC200A-CN"
    assert st["power"] == "on"
    assert st["revision"] == "EC200ACNHAR01A02M16"
    assert len(st["imei"]) == 15
    kinds = [p["kind"] for p in st["ports"]]
    assert kinds == ["uart", "usb"]


def test_errors_name_the_field(module):
    c = module.ctl
    assert c("nosuch")["error"]["field"] == "cmd"
    assert c("power", action="explode")["error"]["field"] == "args.action"
    assert c("power", module=7, action="on")["error"]["field"] == "module"
    assert c("network", reg=9)["error"]["field"] == "args.reg"
    assert c("network", rssi="x")["error"]["field"] == "args.rssi"
    assert c("cut_at", op=0)["error"]["field"] == "args.op"
    assert c("time", speed=-1)["error"]["field"] == "args.speed"
    c.sock.sendall(b"{not json\n")
    assert c.line()["error"]["field"] == "request"
    c.sock.sendall(b"[1,2]\n")
    assert c.line()["error"]["field"] == "request"


def test_network_and_signal(module):
    s = module.ser
    at(s, "ATE0;+CEREG=2")
    module.ctl.ok("network", rssi=7, ber=3)
    assert at(s, "AT+CSQ") == b"\r\n+CSQ: 7,3\r\n\r\nOK\r\n"
    module.ctl.ok("network", reg=2)
    assert read_until(s, b"+CEREG: 2\r\n") == b"\r\n+CEREG: 2\r\n"
    assert at(s, "AT+CGATT?") == b"\r\n+CGATT: 0\r\n\r\nOK\r\n"
    module.ctl.ok("network", reg=5)
    assert read_until(s, b",7\r\n") == b'\r\n+CEREG: 5,"1A2B","0C3D4E5",7\r\n'


def test_events_stream(module):
    ev = Control(module.control_path)
    rep = ev.raw({"cmd": "events", "args": {"kinds": ["urc", "state", "rx", "tx"]}})
    assert rep["ok"]
    at(module.ser, "AT+CEREG=1")
    module.ctl.ok("network", reg=0)
    seen = []
    end = time.time() + 5
    while time.time() < end and not any(e.get("text") == "+CEREG: 0" for e in seen):
        seen.append(ev.line())
    assert any(e["event"] == "rx" and "AT+CEREG=1" in e["data"] for e in seen)
    assert any(e["event"] == "tx" and "OK" in e["data"] for e in seen)
    assert any(e["event"] == "urc" and e["text"] == "+CEREG: 0" for e in seen)
    module.ctl.ok("power", action="reset")
    states = []
    while "on" not in states:
        e = ev.line()
        if e["event"] == "state":
            states.append(e["state"])
    assert states[:3] == ["cut", "off", "booting"]
    ev.close()


def test_push_pull_files(module):
    data = bytes(range(256)) * 300
    module.ctl.ok("push", name="pkg.bin", data=base64.b64encode(data).decode())
    files = module.ctl.ok("files")
    assert {"name": "pkg.bin", "size": len(data)} in files["files"]
    assert files["free"] < files["total"]
    got = module.ctl.ok("pull", name="pkg.bin")
    assert base64.b64decode(got["data"]) == data
    # the file is in flash: it survives a power cut
    module.ctl.ok("power", action="cut", restore=0)
    module.wait_state("on")
    got = module.ctl.ok("pull", name="pkg.bin")
    assert base64.b64decode(got["data"]) == data
    assert module.ctl("pull", name="nope.bin")["ok"] is False


def test_push_into_full_area(module):
    # A request line is at most 1 MiB: fill the file area in 512 KiB appends until it refuses.
    total = module.ctl.ok("files")["total"]
    piece = base64.b64encode(b"\xa5" * (512 << 10)).decode()
    refused = None
    for i in range(total // (512 << 10) + 2):
        rep = module.ctl("push", name="huge.bin", data=piece, append=i > 0)
        if not rep["ok"]:
            refused = rep
            break
    assert refused is not None
    assert refused["error"]["field"] == "args.data"
    # nothing half-visible: the file holds whole pieces only, and the area still works
    size = {f["name"]: f["size"] for f in module.ctl.ok("files")["files"]}["huge.bin"]
    assert size % (512 << 10) == 0
    module.ctl.ok("push", name="huge.bin", data=base64.b64encode(b"ok").decode())
    assert base64.b64decode(module.ctl.ok("pull", name="huge.bin")["data"]) == b"ok"


def test_time_speed(module):
    t0 = module.ctl.ok("time")["t"]
    module.ctl.ok("time", speed=1000)
    time.sleep(0.2)
    t1 = module.ctl.ok("time")["t"]
    assert t1 - t0 > 50
    assert module.ctl.ok("time", speed="max")["speed"] == 0


def test_cut_at_flash_operation(module):
    s = module.ser
    at(s, "ATE0")
    before = module.ctl.ok("flash")["ops"]
    module.ctl.ok("cut_at", op=1, fault="before")
    # AT&W writes NV: its first flash operation is the cut point
    s.write(b"AT&W\r")
    assert read_for(s, 0.3) == b""
    module.wait_state("off")
    module.ctl.ok("power", action="on")
    module.wait_state("on")
    st = module.ctl.ok("status")
    assert st["flash"]["violations"] == 0
    assert before >= 0


def test_module_all(modtwin):
    m = modtwin(count=3)
    for i in range(3):
        m.wait_state("on", module=i)
    res = m.ctl.ok("status", module="all")
    assert [r["index"] for r in res] == [0, 1, 2]
    assert len({r["imei"] for r in res}) == 3
    s1 = m.open(m.ports[(1, "uart")])
    assert at(s1, "AT+CGMM") == b"AT+CGMM\r\r\nEC200A\r\n\r\nOK\r\n"


def test_fleet_beyond_inotify_instance_limit(modtwin):
    # 70 modules: more ports than a process may have inotify instances (128 by default)
    m = modtwin(model="BC260Y-CN", count=70)
    m.wait_state("on", module=69)
    s = m.open(m.ports[(69, "uart")])
    assert at(s, "AT+CGMM") == b"AT+CGMM\r\r\nBC260Y-CN\r\n\r\nOK\r\n"
    st = m.ctl.ok("status", module=69)
    assert st["ports"][0]["connected"] is True
