"""The baseline commands and the line handling of a real module, byte for byte on the PTY."""
import time

from conftest import at, read_for, read_until, read_until_final

EC200A_ATI = b"\r\nQuectel\r\nEC200A\r\nRevision: EC200ACNHAR01A02M16\r\n\r\nOK\r\n"


def test_at_ok_with_echo(module):
    assert at(module.ser, "AT") == b"AT\r\r\nOK\r\n"


def test_lower_case_prefix(module):
    assert at(module.ser, "at") == b"at\r\r\nOK\r\n"


def test_echo_off_and_on(module):
    assert at(module.ser, "ATE0") == b"ATE0\r\r\nOK\r\n"
    assert at(module.ser, "AT") == b"\r\nOK\r\n"
    assert at(module.ser, "ATE1") == b"\r\nOK\r\n"
    assert at(module.ser, "AT") == b"AT\r\r\nOK\r\n"


def test_identity(module):
    s = module.ser
    at(s, "ATE0")
    assert at(s, "ATI") == EC200A_ATI
    assert at(s, "AT+CGMI") == b"\r\nQuectel\r\n\r\nOK\r\n"
    assert at(s, "AT+CGMM") == b"\r\nEC200A\r\n\r\nOK\r\n"
    assert at(s, "AT+CGMR") == b"\r\nEC200ACNHAR01A02M16\r\n\r\nOK\r\n"
    assert at(s, "AT+GMR") == b"\r\nEC200ACNHAR01A02M16\r\n\r\nOK\r\n"
    imei = at(s, "AT+CGSN").split(b"\r\n")[1]
    assert len(imei) == 15 and imei.isdigit()
    # Luhn check digit
    digits = [int(c) for c in imei.decode()]
    total = sum(d if i % 2 == 0 else (d * 2 - 9 if d * 2 > 9 else d * 2)
                for i, d in enumerate(digits[:14]))
    assert (10 - total % 10) % 10 == digits[14]
    assert at(s, "AT+CGSN=1") == b'\r\n+CGSN: "' + imei + b'"\r\n\r\nOK\r\n'


def test_unknown_command_is_error(module):
    at(module.ser, "ATE0")
    assert at(module.ser, "AT+NOSUCH") == b"\r\nERROR\r\n"
    assert at(module.ser, "AT+NOSUCH=?") == b"\r\nERROR\r\n"
    assert at(module.ser, "ATX") == b"\r\nERROR\r\n"


def test_cmee_modes(module):
    s = module.ser
    at(s, "ATE0")
    assert at(s, "AT+CMEE?") == b"\r\n+CMEE: 1\r\n\r\nOK\r\n"
    assert at(s, "AT+CMEE=?") == b"\r\n+CMEE: (0-2)\r\n\r\nOK\r\n"
    assert at(s, "AT+CMEE=3") == b"\r\n+CME ERROR: 50\r\n"
    assert at(s, "AT+CMEE=2") == b"\r\nOK\r\n"
    assert at(s, "AT+CMEE=3") == b"\r\n+CME ERROR: incorrect parameters\r\n"
    assert at(s, "AT+CMEE=0") == b"\r\nOK\r\n"
    assert at(s, "AT+CMEE=3") == b"\r\nERROR\r\n"


def test_test_forms(module):
    s = module.ser
    at(s, "ATE0")
    assert at(s, "AT+CSCS=?") == b'\r\n+CSCS: ("GSM","IRA","UCS2")\r\n\r\nOK\r\n'
    assert at(s, "AT+CSCS?") == b'\r\n+CSCS: "GSM"\r\n\r\nOK\r\n'
    assert at(s, 'AT+CSCS="UCS2"') == b"\r\nOK\r\n"
    assert at(s, "AT+CSCS?") == b'\r\n+CSCS: "UCS2"\r\n\r\nOK\r\n'
    assert at(s, "AT+CGMR=?") == b"\r\nOK\r\n"
    assert at(s, "AT+CSQ=?") == b"\r\n+CSQ: (0-31,99),(0-7,99)\r\n\r\nOK\r\n"


def test_network_queries(module):
    s = module.ser
    at(s, "ATE0")
    assert at(s, "AT+CSQ") == b"\r\n+CSQ: 23,99\r\n\r\nOK\r\n"
    assert at(s, "AT+CREG?") == b"\r\n+CREG: 0,1\r\n\r\nOK\r\n"
    assert at(s, "AT+CEREG?") == b"\r\n+CEREG: 0,1\r\n\r\nOK\r\n"
    assert at(s, "AT+CGATT?") == b"\r\n+CGATT: 1\r\n\r\nOK\r\n"
    assert at(s, "AT+CPIN?") == b"\r\n+CPIN: READY\r\n\r\nOK\r\n"
    assert at(s, "AT+CFUN?") == b"\r\n+CFUN: 1\r\n\r\nOK\r\n"
    assert at(s, "AT+CGPADDR=1") == b'\r\n+CGPADDR: 1,"10.76.33.120"\r\n\r\nOK\r\n'
    assert at(s, "AT+CGDCONT?") == b'\r\n+CGDCONT: 1,"IP","","0.0.0.0",0,0\r\n\r\nOK\r\n'
    assert at(s, 'AT+CGDCONT=2,"IP","cmnet"') == b"\r\nOK\r\n"
    assert at(s, "AT+CGDCONT?") == (b'\r\n+CGDCONT: 1,"IP","","0.0.0.0",0,0\r\n'
                                    b'+CGDCONT: 2,"IP","cmnet","0.0.0.0",0,0\r\n\r\nOK\r\n')


def test_cfun_deregisters(module):
    s = module.ser
    at(s, "ATE0")
    assert at(s, "AT+CEREG=1") == b"\r\nOK\r\n"
    s.write(b"AT+CFUN=0\r")
    assert read_until(s, b"+CEREG: 0\r\n") == b"\r\nOK\r\n\r\n+CEREG: 0\r\n"
    assert at(s, "AT+CEREG?") == b"\r\n+CEREG: 1,0\r\n\r\nOK\r\n"
    assert at(s, "AT+CSQ") == b"\r\n+CSQ: 99,99\r\n\r\nOK\r\n"
    assert at(s, "AT+CGATT=1") == b"\r\n+CME ERROR: 30\r\n"
    s.write(b"AT+CFUN=1\r")
    assert read_until(s, b"+CEREG: 1\r\n") == b"\r\nOK\r\n\r\n+CEREG: 1\r\n"
    assert at(s, "AT+CGATT?") == b"\r\n+CGATT: 1\r\n\r\nOK\r\n"


def test_port_settings(module):
    s = module.ser
    at(s, "ATE0")
    assert at(s, "AT+IPR?") == b"\r\n+IPR: 115200\r\n\r\nOK\r\n"
    assert at(s, "AT+IPR=12345") == b"\r\n+CME ERROR: 50\r\n"
    assert at(s, "AT+IFC?") == b"\r\n+IFC: 0,0\r\n\r\nOK\r\n"
    assert at(s, "AT+IFC=2,2") == b"\r\nOK\r\n"
    assert at(s, "AT+IFC?") == b"\r\n+IFC: 2,2\r\n\r\nOK\r\n"
    assert at(s, "AT+IFC=1,1") == b"\r\n+CME ERROR: 50\r\n"


def test_concatenation(module):
    s = module.ser
    at(s, "ATE0")
    assert at(s, "AT+CGMI;+CGMM") == b"\r\nQuectel\r\n\r\nEC200A\r\n\r\nOK\r\n"
    assert at(s, "ATE0V1;+CGMM;") == b"\r\nEC200A\r\n\r\nOK\r\n"
    assert at(s, "AT + CGMM") == b"\r\nEC200A\r\n\r\nOK\r\n"
    # a failing command stops the line: no OK, the rest does not run
    assert at(s, "AT+CMEE=0;+NOSUCH;+CMEE=2") == b"\r\nERROR\r\n"
    assert at(s, "AT+CMEE?") == b"\r\n+CMEE: 0\r\n\r\nOK\r\n"


def test_repeat_last_line(module):
    s = module.ser
    at(s, "ATE0")
    assert at(s, "AT+CGMM") == b"\r\nEC200A\r\n\r\nOK\r\n"
    s.write(b"A/")
    assert read_until_final(s) == b"\r\nEC200A\r\n\r\nOK\r\n"


def test_backspace_editing(module):
    s = module.ser
    s.write(b"AT+CGMX\bM\r")
    assert read_until_final(s) == b"AT+CGMX\bM\r\r\nEC200A\r\n\r\nOK\r\n"


def test_one_byte_writes(module):
    s = module.ser
    for c in b"AT+CGMI\r":
        s.write(bytes([c]))
        time.sleep(0.001)
    assert read_until_final(s) == b"AT+CGMI\r\r\nQuectel\r\n\r\nOK\r\n"


def test_noise_before_at_is_ignored(module):
    s = module.ser
    at(s, "ATE0")
    s.write(b"\x1b\r\nxyz AT\r")
    assert read_until_final(s) == b"\r\nOK\r\n"


def test_numeric_and_quiet_results(module):
    s = module.ser
    at(s, "ATE0")
    s.write(b"ATV0\r")
    assert read_for(s, 0.3) == b"0\r"
    s.write(b"AT+CGMM\r")
    assert read_for(s, 0.3) == b"EC200A\r\n0\r"
    s.write(b"AT+NOSUCH\r")
    assert read_for(s, 0.3) == b"4\r"
    s.write(b"ATV1Q1\r")
    assert read_for(s, 0.3) == b""
    s.write(b"AT+CGMM\r")
    assert read_for(s, 0.3) == b"\r\nEC200A\r\n"
    assert at(s, "ATQ0") == b"\r\nOK\r\n"


def test_s_registers(module):
    s = module.ser
    at(s, "ATE0")
    assert at(s, "ATS3?") == b"\r\n013\r\n\r\nOK\r\n"
    assert at(s, "ATS5?") == b"\r\n008\r\n\r\nOK\r\n"
    assert at(s, "ATS3=200") == b"\r\nERROR\r\n"


def test_and_w_and_z(module):
    s = module.ser
    at(s, "ATE0")
    assert at(s, "AT+CMEE=2") == b"\r\nOK\r\n"
    assert at(s, "AT&W") == b"\r\nOK\r\n"
    assert at(s, "AT+CMEE=0;E1") == b"\r\nOK\r\n"
    assert at(s, "ATZ") == b"ATZ\r\r\nOK\r\n"
    assert at(s, "AT+CMEE?") == b"\r\n+CMEE: 2\r\n\r\nOK\r\n"
    assert at(s, "AT&F") == b"\r\nOK\r\n"
    assert at(s, "AT") == b"AT\r\r\nOK\r\n"


def test_cme_codes_from_real_causes(module):
    s = module.ser
    at(s, "ATE0;+CMEE=2")
    # the card asks for no PIN: entering one is not allowed
    assert at(s, 'AT+CPIN="1234"') == b"\r\n+CME ERROR: operation not allowed\r\n"
    # 27.007 defines AT+CGSN=2 (IMEISV) and 3 (SVN); this module reports only the IMEI
    assert at(s, "AT+CGSN=2") == b"\r\n+CME ERROR: operation not supported\r\n"
    assert at(s, "AT+COPS=1") == b"\r\n+CME ERROR: operation not supported\r\n"
    at(s, "AT+CMEE=1")
    assert at(s, 'AT+CGDCONT=3,"IP","' + "x" * 64 + '"') == b"\r\n+CME ERROR: 24\r\n"
    assert at(s, 'AT+CGDCONT=3,"PPP"') == b"\r\n+CME ERROR: 50\r\n"


def test_uart_overrun_and_rts_cts(modtwin):
    # --pacing: the UART takes bytes at AT+IPR's rate (115200 baud = 11,520 B/s)
    m = modtwin("--pacing")
    m.wait_state("on")
    s = m.open()
    assert at(s, "ATE0") == b"ATE0\r\r\nOK\r\n"
    s.write(b"x" * 20000)          # far more than the 4 KiB FIFO, all at once
    time.sleep(0.6)
    assert at(s, "AT", timeout=10) == b"\r\nOK\r\n"
    assert m.ctl.ok("status")["ports"][0]["overrun"] > 10000
    # with RTS/CTS the module holds the sender instead: nothing is lost
    assert at(s, "AT+IFC=2,2") == b"\r\nOK\r\n"
    before = m.ctl.ok("status")["ports"][0]["overrun"]
    s.write(b"y" * 20000 + b"AT\r")
    assert read_until(s, b"OK\r\n", timeout=15) == b"\r\nOK\r\n"
    assert m.ctl.ok("status")["ports"][0]["overrun"] == before
