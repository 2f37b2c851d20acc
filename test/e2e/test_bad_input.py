"""Hostile input never crashes or hangs the module: it gets the documented error and the module
keeps answering."""
from conftest import at, read_for, read_until_final


def alive(s):
    assert at(s, "AT") == b"\r\nOK\r\n"


def test_overlong_line(module):
    s = module.ser
    at(s, "ATE0")
    s.write(b"AT+" + b"X" * 5000 + b"\r")
    assert read_until_final(s) == b"\r\nERROR\r\n"
    alive(s)


def test_longest_documented_line_is_accepted(module):
    # A 512-byte hex write (AT+MFWDLOAD) is about 1,050 characters; the limit admits 4 KiB.
    s = module.ser
    at(s, "ATE0")
    # The handler, not the line limit, answers: the APN is longer than a context takes.
    line = 'AT+CGDCONT=3,"IP","' + "a" * 2000 + '"'
    assert at(s, line) == b"\r\n+CME ERROR: 24\r\n"


def test_nul_and_binary_garbage(module):
    s = module.ser
    at(s, "ATE0")
    s.write(b"AT+CG\x00MI\r")
    assert read_until_final(s) == b"\r\nERROR\r\n"
    s.write(bytes(range(256)) * 4)
    read_for(s, 0.3)
    s.write(b"\r")
    read_for(s, 0.3)
    alive(s)


def test_unterminated_quote(module):
    s = module.ser
    at(s, "ATE0")
    assert at(s, 'AT+CSCS="GSM') == b"\r\nERROR\r\n"
    alive(s)


def test_thousands_of_parameters(module):
    s = module.ser
    at(s, "ATE0")
    assert at(s, "AT+CGDCONT=" + ",".join(["1"] * 1500)) == b"\r\nERROR\r\n"
    alive(s)


def test_huge_integers(module):
    s = module.ser
    at(s, "ATE0")
    assert at(s, "AT+CMEE=99999999999999999999999") == b"\r\n+CME ERROR: 50\r\n"
    assert at(s, "ATE99999999999999999999") == b"\r\nERROR\r\n"
    assert at(s, "AT+CMEE=-1") == b"\r\n+CME ERROR: 50\r\n"
    alive(s)


def test_many_commands_in_one_line(module):
    s = module.ser
    at(s, "ATE0")
    assert at(s, "AT+CSQ" + ";+CSQ" * 40) == b"\r\nERROR\r\n"
    alive(s)


def test_wrong_arity(module):
    s = module.ser
    at(s, "ATE0")
    assert at(s, "AT+CMEE=1,2") == b"\r\n+CME ERROR: 50\r\n"
    assert at(s, "AT+CGMR=1") == b"\r\nERROR\r\n"
    assert at(s, "AT+CSQ?") == b"\r\nERROR\r\n"
    alive(s)
