"""Quectel FILE commands (AT+QFLDS, +QFLST, +QFDEL, +QFUPL, +QFDWL) on an EC200A-CN, driven the way
fwupd's DFOTA updater (plugins/modem-manager/fu-mm-dfota-device.c) and the Quectel FILE manuals use
them. Uploads run at a finite --speed: the <timeout> of AT+QFUPL is on the virtual clock, and at
--speed max any pause of the host would be longer than it."""
import os
import re
import time

from conftest import at, read_for, read_until

NAME = "dfota_update.bin"


def checksum(data):
    """fwupd's check: XOR of big-endian 16-bit words, an odd last byte as the high half."""
    s = 0
    for i in range(0, len(data), 2):
        w = data[i] << 8
        if i + 1 < len(data):
            w |= data[i + 1]
        s ^= w
    return s


def boot(modtwin, *args, speed="10"):
    m = modtwin(*args, speed=speed)
    m.wait_state("on")
    m.ser = m.open()
    assert at(m.ser, "ATE0").endswith(b"\r\nOK\r\n")
    return m


def qflds(s):
    r = at(s, 'AT+QFLDS="UFS"')
    mt = re.fullmatch(rb"\r\n\+QFLDS: (\d+),(\d+)\r\n\r\nOK\r\n", r)
    assert mt, r
    return int(mt.group(1)), int(mt.group(2))


def upload(s, name, data, timeout=5, ack=False, chunk=None):
    """AT+QFUPL, then the data (in ACK mode 1 KiB at a time, waiting for each 'A')."""
    s.write(f'AT+QFUPL="{name}",{len(data)},{timeout},{1 if ack else 0}\r'.encode())
    assert read_until(s, b"CONNECT\r\n") == b"\r\nCONNECT\r\n"
    if ack:
        for off in range(0, len(data), 1024):
            piece = data[off:off + 1024]
            s.write(piece)
            if len(piece) == 1024:
                assert s.read(1) == b"A", off
    elif chunk:
        for off in range(0, len(data), chunk):
            s.write(data[off:off + chunk])
    else:
        s.write(data)
    return read_until(s, b"OK\r\n", timeout=30)


def upload_small(s, name, data=b"x"):
    r = upload(s, name, data)
    assert r == b"\r\n+QFUPL: %d,%x\r\n\r\nOK\r\n" % (len(data), checksum(data)), r


def download(s, name, size, timeout=30):
    s.write(f'AT+QFDWL="{name}"\r'.encode())
    want = len(b"\r\nCONNECT\r\n") + size
    buf = b""
    end = time.time() + timeout
    while len(buf) < want and time.time() < end:
        buf += s.read(min(65536, want - len(buf)))
    assert buf.startswith(b"\r\nCONNECT\r\n"), buf[:40]
    return buf[11:], read_until(s, b"OK\r\n")


def test_fwupd_dfota_upload_list_download_delete(modtwin):
    m = boot(modtwin)
    s = m.ser
    # A host with RTS/CTS; the pace without it has its own test below.
    assert at(s, "AT+IFC=2,2") == b"\r\nOK\r\n"
    # fwupd's setup: listing must work, and no old package may be there.
    assert at(s, "AT+QFLST=?") == b"\r\nOK\r\n"
    assert at(s, f'AT+QFLST="UFS:{NAME}"') == b"\r\n+CME ERROR: 405\r\n"
    free0, total = qflds(s)
    assert free0 == total > 5 << 20
    assert at(s, "AT+QFLDS") == b"\r\n+QFLDS: %d,%d\r\n\r\nOK\r\n" % (free0, total)

    data = os.urandom(300 * 1000)
    s.write(f'AT+QFUPL="{NAME}",{len(data)},5,1\r'.encode())
    assert read_until(s, b"CONNECT\r\n") == b"\r\nCONNECT\r\n"
    # fwupd: 2048-byte chunks padded with 0xFF, then one 'A' per full KiB of the chunk
    for off in range(0, len(data), 2048):
        chunk = data[off:off + 2048]
        s.write(chunk + b"\xff" * (2048 - len(chunk)))
        acks = len(chunk) // 1024
        if acks:
            assert s.read(acks) == b"A" * acks, off
    tail = read_until(s, b"\r\nOK\r\n")
    mt = re.search(rb"\r\n\+QFUPL:\s*(\d+),([0-9a-f]+)\r\n", tail)
    assert mt, tail
    assert int(mt.group(1)) == len(data)
    assert int(mt.group(2), 16) == checksum(data)
    read_for(s, 0.2)  # the padding after the last byte lands on the command line

    assert at(s, f'AT+QFLST="UFS:{NAME}"') == \
        b'\r\n+QFLST: "UFS:%s",300000\r\n\r\nOK\r\n' % NAME.encode()
    assert at(s, 'AT+QFLST="*"') == b'\r\n+QFLST: "UFS:%s",300000\r\n\r\nOK\r\n' % NAME.encode()
    assert at(s, 'AT+QFLST="UFS:dfota*"').count(b"+QFLST:") == 1
    assert at(s, 'AT+QFLST="UFS:x*"') == b"\r\nOK\r\n"
    free1, total1 = qflds(s)
    assert total1 == total and free1 == free0 - (300000 + 4095) // 4096 * 4096

    back, end = download(s, f"UFS:{NAME}", len(data))
    assert back == data
    assert end == b"\r\n+QFDWL: 300000,%x\r\n\r\nOK\r\n" % checksum(data)

    assert at(s, f'AT+QFDEL="{NAME}"') == b"\r\nOK\r\n"
    assert at(s, f'AT+QFLST="UFS:{NAME}"') == b"\r\n+CME ERROR: 405\r\n"
    assert qflds(s) == (free0, total)
    assert m.ctl.ok("status")["ports"][0]["overrun"] == 0


def test_odd_size_checksum_and_test_forms(modtwin):
    m = boot(modtwin)
    s = m.ser
    assert at(s, "AT+QFUPL=?") == \
        b"\r\n+QFUPL: <filename>[,(1-<freesize>)[,(1-65535)[,(0,1)]]]\r\n\r\nOK\r\n"
    assert at(s, "AT+QFDWL=?") == b"\r\n+QFDWL: <filename>\r\n\r\nOK\r\n"
    assert at(s, "AT+QFDEL=?") == b"\r\n+QFDEL: <filename>\r\n\r\nOK\r\n"
    assert at(s, "AT+QFLDS=?") == b"\r\nOK\r\n"
    # 10 bytes of text: +QFUPL: 10,3938
    upload_small(s, "test", b"1234567890")
    upload_small(s, "odd", b"\x01\x02\x03")  # 0x0102 ^ 0x0300 = 0x0202
    assert checksum(b"\x01\x02\x03") == 0x202
    back, end = download(s, "odd", 3)
    assert back == b"\x01\x02\x03" and end == b"\r\n+QFDWL: 3,202\r\n\r\nOK\r\n"
    r = at(s, "AT+QFLST")
    assert b'+QFLST: "UFS:test",10\r\n' in r and b'+QFLST: "UFS:odd",3\r\n' in r
    assert at(s, 'AT+QFDEL="*"') == b"\r\nOK\r\n"
    assert at(s, "AT+QFLST") == b"\r\nOK\r\n"


def test_error_codes(modtwin):
    m = boot(modtwin)
    s = m.ser
    free, total = qflds(s)
    # 405 file not found
    assert at(s, 'AT+QFDEL="nothere"') == b"\r\n+CME ERROR: 405\r\n"
    assert at(s, 'AT+QFDWL="UFS:nothere"') == b"\r\n+CME ERROR: 405\r\n"
    # 406 invalid file name: a wildcard, a name longer than 80 bytes, an empty one
    assert at(s, 'AT+QFUPL="a*b",10') == b"\r\n+CME ERROR: 406\r\n"
    assert at(s, 'AT+QFUPL="%s",10' % ("n" * 81)) == b"\r\n+CME ERROR: 406\r\n"
    assert at(s, 'AT+QFUPL="UFS:",10') == b"\r\n+CME ERROR: 406\r\n"
    assert at(s, 'AT+QFDWL="a/b"') == b"\r\n+CME ERROR: 406\r\n"
    # 425 invalid parameter: a storage this module does not have
    assert at(s, 'AT+QFUPL="RAM:x",10') == b"\r\n+CME ERROR: 425\r\n"
    assert at(s, 'AT+QFLDS="RAM"') == b"\r\n+CME ERROR: 425\r\n"
    # 400 invalid input value
    for bad in ('"x",0', '"x",10,0', '"x",10,5,2', '"x",ten', '"x",10,65536'):
        assert at(s, "AT+QFUPL=" + bad) == b"\r\n+CME ERROR: 400\r\n", bad
    # 423 file too large (more than the whole area), 420 no space (more than is free)
    assert at(s, 'AT+QFUPL="big",%d' % (total + 1)) == b"\r\n+CME ERROR: 423\r\n"
    upload_small(s, "one")
    assert at(s, 'AT+QFUPL="big",%d' % total) == b"\r\n+CME ERROR: 420\r\n"
    # 407 file already existed
    assert at(s, 'AT+QFUPL="one",1') == b"\r\n+CME ERROR: 407\r\n"
    # 413 the file table is full (64 files)
    for i in range(63):
        upload_small(s, f"f{i:02d}")
    assert at(s, 'AT+QFUPL="f64",1') == b"\r\n+CME ERROR: 413\r\n"
    assert at(s, "AT+QFLST").count(b"+QFLST:") == 64
    assert at(s, 'AT+QFDEL="*"') == b"\r\nOK\r\n"
    assert qflds(s) == (free, total)
    # +CMEE=2: the manuals' texts
    assert at(s, "AT+CMEE=2") == b"\r\nOK\r\n"
    assert at(s, 'AT+QFDEL="nothere"') == b"\r\n+CME ERROR: file not found\r\n"
    assert at(s, 'AT+QFLDS="RAM"') == b"\r\n+CME ERROR: invalid parameter\r\n"
    # +CMEE=0: plain ERROR
    assert at(s, "AT+CMEE=0") == b"\r\nOK\r\n"
    assert at(s, 'AT+QFDEL="nothere"') == b"\r\nERROR\r\n"
    # nothing was lost on the way
    assert m.ctl.ok("status")["ports"][0]["overrun"] == 0


def test_busy_while_the_other_port_uploads(modtwin):
    m = boot(modtwin)
    s = m.ser
    usb = m.open(m.ports[(0, "usb")])
    assert at(usb, "ATE0").endswith(b"\r\nOK\r\n")
    usb.write(b'AT+QFUPL="busy",4,60\r')
    assert read_until(usb, b"CONNECT\r\n") == b"\r\nCONNECT\r\n"
    # 426 file already opened: the upload holds the file
    assert at(s, 'AT+QFDEL="busy"') == b"\r\n+CME ERROR: 426\r\n"
    assert at(s, 'AT+QFUPL="busy",4') == b"\r\n+CME ERROR: 426\r\n"
    assert at(s, 'AT+QFDEL="*"') == b"\r\n+CME ERROR: 426\r\n"
    usb.write(b"\x00\x01\x02\x03")
    assert read_until(usb, b"OK\r\n") == b"\r\n+QFUPL: 4,202\r\n\r\nOK\r\n"
    assert at(s, 'AT+QFLST="busy"') == b'\r\n+QFLST: "UFS:busy",4\r\n\r\nOK\r\n'


def test_timeout_leaves_no_file(modtwin):
    m = boot(modtwin, speed="100")
    s = m.ser
    free, _ = qflds(s)
    # RTS/CTS: the module's own 15 KB/s pace (real time) would outlast 1 virtual s at speed 100
    assert at(s, "AT+IFC=2,2") == b"\r\nOK\r\n"
    s.write(b'AT+QFUPL="part.bin",10000,1,1\r')
    assert read_until(s, b"CONNECT\r\n") == b"\r\nCONNECT\r\n"
    s.write(os.urandom(3000))
    assert read_until(s, b"AA") == b"AA"
    # the host stops: 1 virtual second later (10 ms real) the module gives up
    t0 = time.time()
    assert read_until(s, b"\r\n+CME ERROR: 421\r\n", timeout=5) == b"\r\n+CME ERROR: 421\r\n"
    assert time.time() - t0 < 2
    assert at(s, 'AT+QFLST="part.bin"') == b"\r\n+CME ERROR: 405\r\n"
    assert at(s, "AT+QFLST") == b"\r\nOK\r\n"
    assert qflds(s)[0] == free
    # the same name uploads again
    upload_small(s, "part.bin", b"ok")


def test_power_cut_during_upload_leaves_no_data(modtwin):
    m = boot(modtwin)
    s = m.ser
    s.write(b'AT+QFUPL="cut.bin",8192,60,1\r')
    assert read_until(s, b"CONNECT\r\n") == b"\r\nCONNECT\r\n"
    s.write(b"\x55" * 4096)
    assert read_until(s, b"AAAA") == b"AAAA"
    m.ctl.ok("power", action="cut", restore=0)
    m.wait_state("on")
    read_for(s, 0.3)
    assert at(s, "ATE0").endswith(b"OK\r\n")
    # the entry made at open is there, empty; no byte of the upload is
    assert at(s, 'AT+QFLST="cut.bin"') == b'\r\n+QFLST: "UFS:cut.bin",0\r\n\r\nOK\r\n'
    # a new upload of the name replaces that trace instead of failing with 407
    upload_small(s, "cut.bin", b"\x55" * 8)


def test_paced_upload_without_flow_control(modtwin):
    # --pacing (115200 baud) and the FILE-mode limit of ~15 KB/s: ACK mode keeps the host in step
    m = boot(modtwin, "--pacing")
    s = m.ser
    data = os.urandom(12 * 1024)
    t0 = time.time()
    r = upload(s, "paced.bin", data, ack=True)
    took = time.time() - t0
    assert r == b"\r\n+QFUPL: %d,%x\r\n\r\nOK\r\n" % (len(data), checksum(data))
    assert took > 0.6, took  # 12 KiB at <= 15,000 B/s
    assert m.ctl.ok("status")["ports"][0]["overrun"] == 0
    # a host that blasts without ACK mode or RTS/CTS overruns the receiver and times out
    s.write(b'AT+QFUPL="blast.bin",20000,5\r')
    assert read_until(s, b"CONNECT\r\n") == b"\r\nCONNECT\r\n"
    s.write(os.urandom(20000))
    assert read_until(s, b"+CME ERROR: 421\r\n", timeout=10).endswith(b"\r\n+CME ERROR: 421\r\n")
    assert m.ctl.ok("status")["ports"][0]["overrun"] > 0
    assert at(s, 'AT+QFLST="blast.bin"') == b"\r\n+CME ERROR: 405\r\n"


def test_large_upload_with_rts_cts(modtwin):
    m = boot(modtwin)
    s = m.ser
    assert at(s, "AT+IFC=2,2") == b"\r\nOK\r\n"
    data = os.urandom(3 << 20)
    t0 = time.time()
    r = upload(s, "big.bin", data, chunk=65536)
    assert r == b"\r\n+QFUPL: %d,%x\r\n\r\nOK\r\n" % (len(data), checksum(data))
    assert time.time() - t0 < 20
    assert m.ctl.ok("status")["ports"][0]["overrun"] == 0
    back, end = download(s, "big.bin", len(data))
    assert back == data
    assert end == b"\r\n+QFDWL: %d,%x\r\n\r\nOK\r\n" % (len(data), checksum(data))
