"""--pacing on the transmit side: the UART sends no faster than AT+IPR's baud rate (10 bits per
byte on the wire), every byte, in order. The elapsed times asserted are lower bounds that the wire
itself sets (bytes * 10 / baud seconds): a correctness check of the pacing, not a performance
figure. Without --pacing the same answers arrive, with no bound."""
import base64
import time

from conftest import Control, at, read_for, read_until, read_until_final

SLACK = 0.02  # seconds: clock granularity between the host's time.time() readings


def ati_block(s):
    """One ATI answer without its final OK: "\\r\\nQuectel\\r\\nEC200A\\r\\nRevision: ...\\r\\n"."""
    r = at(s, "ATI")
    assert r.startswith(b"\r\nQuectel\r\n") and r.endswith(b"\r\n\r\nOK\r\n"), r
    return r[:-len(b"\r\nOK\r\n")]


def ati_line(n):
    """n identity answers on one line (a line holds at most 16 commands)."""
    return "ATI" + ";I" * (n - 1)


def define_contexts(s):
    """PDP contexts 1-15 with 62-byte APNs; returns what AT+CGDCONT? must answer (1,469 bytes)."""
    want = b"\r\n"
    for cid in range(1, 16):
        apn = f"apn{cid:02d}." + "x" * 56
        assert at(s, f'AT+CGDCONT={cid},"IP","{apn}"') == b"\r\nOK\r\n"
        want += b'+CGDCONT: %d,"IP","%s","0.0.0.0",0,0\r\n' % (cid, apn.encode())
    return want + b"\r\nOK\r\n"


def timed(s, cmd, timeout=20):
    """Sends one command line; returns its answer and the seconds until the last byte arrived."""
    t0 = time.time()
    s.write(cmd.encode() + b"\r")
    r = read_until_final(s, timeout)
    return r, time.time() - t0


def paced(modtwin):
    m = modtwin("--pacing")
    m.wait_state("on")
    s = m.open()
    read_for(s, 0.2)  # boot lines
    assert at(s, "ATE0").endswith(b"\r\nOK\r\n")
    return m, s


def test_long_answers_at_9600_then_4800(modtwin):
    m, s = paced(modtwin)
    want = define_contexts(s)
    block = ati_block(s)
    assert at(s, "AT+IPR=9600") == b"\r\nOK\r\n"
    r, took = timed(s, "AT+CGDCONT?")
    assert r == want
    assert took >= len(r) * 10 / 9600 - SLACK, (len(r), took)
    # AT+IPR changes the rate for what follows: at 4800 the wire takes twice as long per byte
    assert at(s, "AT+IPR=4800") == b"\r\nOK\r\n"
    r, took = timed(s, ati_line(16))
    assert r == block * 16 + b"\r\nOK\r\n"
    assert took >= len(r) * 10 / 4800 - SLACK, (len(r), took)
    assert at(s, "AT+IPR?") == b"\r\n+IPR: 4800\r\n\r\nOK\r\n"


def test_unpaced_answers_are_the_same(module):
    s = module.ser
    assert at(s, "ATE0").endswith(b"\r\nOK\r\n")
    want = define_contexts(s)
    block = ati_block(s)
    assert at(s, "AT+IPR=9600") == b"\r\nOK\r\n"
    assert at(s, "AT+CGDCONT?") == want
    assert at(s, ati_line(16)) == block * 16 + b"\r\nOK\r\n"


def test_paced_download_is_whole(modtwin):
    # AT+QFDWL queues its file in steps while the port holds little: that still works paced
    m, s = paced(modtwin)
    data = bytes((i * 131 + i // 256) & 0xFF for i in range(16 << 10))
    m.ctl.ok("push", name="f.bin", data=base64.b64encode(data).decode())
    t0 = time.time()
    s.write(b'AT+QFDWL="f.bin"\r')
    got = read_until(s, b"OK\r\n", timeout=20)
    took = time.time() - t0
    assert got.startswith(b"\r\nCONNECT\r\n" + data + b"\r\n+QFDWL: %d," % len(data)), got[:40]
    assert got.endswith(b"\r\n\r\nOK\r\n")
    assert took >= len(got) * 10 / 115200 - SLACK, (len(got), took)


def test_tx_events_follow_the_wire(modtwin):
    m, s = paced(modtwin)
    block = ati_block(s)
    ev = Control(m.control_path)
    assert ev.raw({"cmd": "events", "args": {"kinds": ["tx"]}})["ok"]
    assert at(s, "AT+IPR=9600") == b"\r\nOK\r\n"
    before = b""
    while before != b"\r\nOK\r\n":  # the answer to AT+IPR, maybe in pieces
        before += ev.line()["data"].encode("latin-1")
    want = block * 10 + b"\r\nOK\r\n"
    r, _ = timed(s, ati_line(10))
    assert r == want
    told, events = b"", 0
    while len(told) < len(want):
        e = ev.line()
        assert e["event"] == "tx" and e["port"] == "uart", e
        told += e["data"].encode("latin-1")
        events += 1
    assert told == want
    assert events > 1  # told piece by piece as the pieces are written, not all at once
    ev.close()


def test_cut_drops_what_is_queued(modtwin):
    m, s = paced(modtwin)
    data = bytes((i * 7 + 3) & 0xFF for i in range(16 << 10))
    m.ctl.ok("push", name="g.bin", data=base64.b64encode(data).decode())
    assert at(s, "AT+IPR=4800") == b"\r\nOK\r\n"
    s.write(b'AT+QFDWL="g.bin"\r')  # 16 KiB at 480 B/s: over half a minute on the wire
    head = read_until(s, b"CONNECT\r\n")
    m.ctl.ok("power", action="cut", restore=0)
    m.wait_state("on")
    rest = read_for(s, 0.5)
    # the module answers at once after the boot: the download's backlog went with the power
    r = at(s, "AT", timeout=5)
    assert r.endswith(b"\r\nOK\r\n"), r
    seen = head + rest + r
    assert b"+QFDWL:" not in seen
    assert len(seen) < len(data)
    # what did leave before the cut is the file's beginning, in order; the boot lines follow
    got = (head + rest).split(b"\r\nCONNECT\r\n", 1)[1]
    assert b"\r\nRDY\r\n" in got
    assert data.startswith(got.split(b"\r\nRDY\r\n", 1)[0])


def test_orderly_power_off_lets_the_queue_drain(modtwin):
    # unlike a cut, an orderly power-off sends what is queued, then its last words
    m, s = paced(modtwin)
    block = ati_block(s)
    assert at(s, "AT+IPR=9600") == b"\r\nOK\r\n"
    s.write(ati_line(16).encode() + b"\r")
    head = read_until(s, b"Quectel")  # the answer is being sent
    m.ctl.ok("power", action="off")
    rest = read_until(s, b"POWERED DOWN\r\n", timeout=10)
    assert head + rest == block * 16 + b"\r\nOK\r\n\r\nPOWERED DOWN\r\n"
    m.wait_state("off")
