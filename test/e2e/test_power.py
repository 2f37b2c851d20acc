"""Power on, off, cut, reset and reboot; persistence across a kill -9; boot lines; the USB port
that goes away with the power; host reconnects."""
import base64
import os
import signal
import time

import serial

from conftest import Control, Modtwin, at, read_for, read_until, read_until_final

BOOT = b"\r\nRDY\r\n\r\n+CFUN: 1\r\n\r\n+CPIN: READY\r\n\r\n+QUSIM: 1\r\n\r\n+QIND: SMS DONE\r\n"


def test_boot_lines_on_power_on(modtwin):
    m = modtwin(off=True)
    s = m.open()
    assert m.ctl.ok("status")["power"] == "off"
    assert read_for(s, 0.2) == b""
    m.ctl.ok("power", action="on")
    assert read_until(s, b"SMS DONE\r\n") == BOOT
    assert at(s, "AT") == b"AT\r\r\nOK\r\n"


def test_boot_without_sim(modtwin):
    m = modtwin(off=True)
    s = m.open()
    m.ctl.ok("sim", present=False)
    m.ctl.ok("power", action="on")
    assert read_until(s, b"NOT READY\r\n") == b"\r\nRDY\r\n\r\n+CFUN: 1\r\n\r\n+CPIN: NOT READY\r\n"
    at(s, "ATE0")
    assert at(s, "AT+CPIN?") == b"\r\n+CME ERROR: 10\r\n"
    assert at(s, "AT+CIMI") == b"\r\n+CME ERROR: 10\r\n"
    assert at(s, "AT+CREG?") == b"\r\n+CREG: 0,0\r\n\r\nOK\r\n"
    m.ctl.ok("sim", present=True)
    assert at(s, "AT+CPIN?") == b"\r\n+CPIN: READY\r\n\r\nOK\r\n"


def test_module_is_deaf_while_off_and_booting(modtwin):
    m = modtwin(off=True, speed="1")
    s = m.open()
    s.write(b"AT\r")
    assert read_for(s, 0.3) == b""
    m.ctl.ok("power", action="on")       # 3 s of boot at real speed
    s.write(b"AT\r")
    assert read_for(s, 0.3) == b""
    assert m.ctl.ok("status")["power"] == "booting"


def test_orderly_power_off(module):
    s = module.ser
    module.ctl.ok("power", action="off")
    assert read_until(s, b"POWERED DOWN\r\n") == b"\r\nPOWERED DOWN\r\n"
    module.wait_state("off")
    s.write(b"AT\r")
    assert read_for(s, 0.3) == b""
    rep = module.ctl("power", action="off")
    module.ctl.ok("power", action="on")
    assert read_until(s, b"SMS DONE\r\n") == BOOT


def test_cut_is_silent_and_restores(module):
    s = module.ser
    module.ctl.ok("power", action="cut")
    module.wait_state("off")
    assert read_for(s, 0.3) == b""
    module.ctl.ok("power", action="cut", restore=1)   # already off: stays off
    assert module.ctl.ok("status")["power"] == "off"
    module.ctl.ok("power", action="on")
    assert read_until(s, b"SMS DONE\r\n") == BOOT
    module.ctl.ok("power", action="cut", restore=2)
    assert read_until(s, b"SMS DONE\r\n") == BOOT
    assert module.ctl.ok("status")["boots"] == 3


def test_reset_and_reboot(module):
    s = module.ser
    module.ctl.ok("power", action="reset")
    assert read_until(s, b"SMS DONE\r\n") == BOOT
    module.ctl.ok("power", action="reboot")
    assert read_until(s, b"SMS DONE\r\n") == BOOT
    at(s, "ATE0")
    s.write(b"AT+CFUN=1,1\r")
    assert read_until(s, b"SMS DONE\r\n") == b"\r\nOK\r\n" + BOOT


def test_settings_are_volatile_without_and_w(module):
    s = module.ser
    assert at(s, "ATE0;+CMEE=2") == b"ATE0;+CMEE=2\r\r\nOK\r\n"
    module.ctl.ok("power", action="reset")
    read_until(s, b"SMS DONE\r\n")
    assert at(s, "AT+CMEE?") == b"AT+CMEE?\r\r\n+CMEE: 1\r\n\r\nOK\r\n"


def test_profile_survives_kill_9(modtwin, tmp_path):
    m = modtwin()
    m.wait_state("on")
    s = m.open()
    assert at(s, "ATE0;+CMEE=2;&W") == b"ATE0;+CMEE=2;&W\r\r\nOK\r\n"
    m.stop(signal.SIGKILL)
    m2 = modtwin(state=tmp_path / "state")
    m2.wait_state("on")
    s2 = m2.open()
    assert at(s2, "AT+CMEE?") == b"\r\n+CMEE: 2\r\n\r\nOK\r\n"
    assert m2.ctl.ok("status")["flash"]["violations"] == 0


def test_sigterm_is_orderly(modtwin):
    m = modtwin()
    m.wait_state("on")
    s = m.open()
    m.proc.send_signal(signal.SIGTERM)
    assert read_until(s, b"POWERED DOWN\r\n") == b"\r\nPOWERED DOWN\r\n"
    assert m.proc.wait(10) == 0


def test_usb_port_follows_power(module):
    usb = module.ports[(0, "usb")]
    assert os.path.islink(usb)
    u = module.open(usb)
    assert at(u, "AT+CGMM") == b"AT+CGMM\r\r\nEC200A\r\n\r\nOK\r\n"
    module.ctl.ok("power", action="off")
    module.wait_state("off")
    assert not os.path.exists(usb)
    try:
        u.write(b"AT\r")
        got = u.read(10)
        assert got == b""
    except serial.SerialException:
        pass  # the port hung up, as a USB CDC port does
    module.ctl.ok("power", action="on")
    module.wait_state("on")
    u2 = module.open(usb)
    assert at(u2, "AT") == b"AT\r\r\nOK\r\n"


def test_reconnect_gets_no_stale_bytes(module):
    s = module.ser
    at(s, "ATE0;+CREG=1")
    s.close()
    # the network changes while no host holds the port: the URC is not kept for the next one
    module.ctl.ok("network", reg=0)
    time.sleep(0.2)
    s2 = module.open()
    assert read_for(s2, 0.3) == b""
    assert at(s2, "AT+CREG?") == b"\r\n+CREG: 1,0\r\n\r\nOK\r\n"
    module.ctl.ok("network", reg=1)
    assert read_until(s2, b"+CREG: 1\r\n") == b"\r\n+CREG: 1\r\n"


def test_host_opens_before_power_on(modtwin, tmp_path):
    m = modtwin(off=True)
    s = serial.Serial(m.link, 115200, timeout=2)
    m.ctl.ok("power", action="on")
    assert read_until(s, b"SMS DONE\r\n") == BOOT
    s.close()
