"""Seed 004 §7.1/§7.2: the network checks a host makes before a BC260Y-CN update, as printed."""
from conftest import at


def test_network_checks_as_printed(modtwin):
    m = modtwin(model="BC260Y-CN")
    m.wait_state("on")
    s = m.open()
    at(s, "ATE0")
    assert at(s, "AT+CESQ") == b"\r\n+CESQ: 99,99,255,255,23,49\r\n\r\nOK\r\n"
    assert at(s, "AT+CEREG?") == b"\r\n+CEREG: 0,1\r\n\r\nOK\r\n"
    assert at(s, "AT+CPIN?") == b"\r\n+CPIN: READY\r\n\r\nOK\r\n"
    assert at(s, "AT+CGPADDR?") == b'\r\n+CGPADDR: 0,"100.125.10.122"\r\n\r\nOK\r\n'


def test_boot_lines(modtwin):
    m = modtwin(model="BC260Y-CN", off=True)
    s = m.open()
    m.ctl.ok("power", action="on")
    from conftest import read_until
    assert read_until(s, b"+IP: 100.125.10.122\r\n") == (
        b"\r\nRDY\r\n\r\n+CFUN: 1\r\n\r\n+CPIN: READY\r\n\r\n+IP: 100.125.10.122\r\n")
    assert m.ports.get((0, "usb")) is None
