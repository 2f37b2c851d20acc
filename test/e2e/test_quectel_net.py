"""Quectel PDP contexts and AT+QCFG (AT+QICSGP, +QIACT, +QIDEACT, +QCFG="fota/cid" / "usbifc") on
EC200A-CN and EC200N-CN, starting from the DFOTA guide's own examples (seed 002 §3.3.1.1-3). The
network side (registration, attach) is driven through AT+CGATT and the control API."""
import os

import pytest

from conftest import at, read_until

IP = "10.76.33.120"  # EC200A-CN: the address the network gives the default bearer (cid 1)
OK = b"\r\nOK\r\n"
SMS_DONE = b"SMS DONE\r\n"


def boot(modtwin, model="EC200A-CN", speed="max", echo=False):
    m = modtwin(model=model, speed=speed)
    m.wait_state("on")
    m.ser = m.open()
    if not echo:
        assert at(m.ser, "ATE0").endswith(OK)
    return m


def info(*lines):
    """A response of information lines then OK, framed as with ATV1 and echo off."""
    return b"\r\n" + b"".join(l.encode() + b"\r\n" for l in lines) + OK


def cme(code):
    return b"\r\n+CME ERROR: %d\r\n" % code


ERROR = b"\r\nERROR\r\n"


def test_seed_002_examples_as_printed(modtwin):
    m = boot(modtwin, echo=True)
    s = m.ser
    # §3.3.1.1 / §3.3.1.2: context 2, APN "cmnet", user and password empty, PAP
    for cmd in ('AT+QICSGP=2,1,"cmnet","",1', 'AT+QCFG="fota/cid",2', "AT+QIACT=2"):
        assert at(s, cmd) == cmd.encode() + b"\r" + OK
    # §3.3.1.3 on the USB AT port
    usb = m.open(m.ports[(0, "usb")])
    assert at(usb, 'AT+QCFG="usbifc",2,2') == b'AT+QCFG="usbifc",2,2\r' + OK
    assert at(usb, 'AT+QCFG="usbifc"') == \
        b'AT+QCFG="usbifc"\r\r\n+QCFG: "usbifc",2,2\r\n\r\nOK\r\n'
    # what the examples left behind, read back
    assert at(s, "AT+QICSGP=2") == b'AT+QICSGP=2\r\r\n+QICSGP: 1,"cmnet","","",1\r\n' + OK
    assert at(s, 'AT+QCFG="fota/cid"') == \
        b'AT+QCFG="fota/cid"\r\r\n+QCFG: "fota/cid",2\r\n' + OK
    assert at(s, "AT+QIACT?") == \
        b'AT+QIACT?\r\r\n+QIACT: 1,1,1,"%s"\r\n+QIACT: 2,1,1,"10.76.33.122"\r\n\r\nOK\r\n' % \
        IP.encode()


def test_default_bearer_and_defaults(modtwin):
    m = boot(modtwin)
    s = m.ser
    # LTE attach activated the network's default bearer; nothing else is active
    assert at(s, "AT+QIACT?") == info(f'+QIACT: 1,1,1,"{IP}"')
    assert at(s, "AT+QIACT=1") == OK  # already active
    assert at(s, "AT+QICSGP=1") == info('+QICSGP: 1,"","","",0')
    assert at(s, "AT+QICSGP=7") == info('+QICSGP: 1,"","","",0')  # never configured
    assert at(s, 'AT+QCFG="fota/cid"') == info('+QCFG: "fota/cid",1')
    assert at(s, 'AT+QCFG="usbifc"') == info('+QCFG: "usbifc",0,0')
    # test forms
    assert at(s, "AT+QICSGP=?") == \
        info("+QICSGP: (1-15),(1-3),<APN>,<username>,<password>,(0-3)")
    assert at(s, "AT+QIACT=?") == info("+QIACT: (1-15)")
    assert at(s, "AT+QIDEACT=?") == info("+QIDEACT: (1-15)")
    assert at(s, "AT+QCFG=?") == info('+QCFG: "fota/cid",(1-15)', '+QCFG: "usbifc",(0,2),(0,2)')


def test_qicsgp_forms_and_active_context(modtwin):
    m = boot(modtwin)
    s = m.ser
    # the six-field form
    assert at(s, 'AT+QICSGP=3,3,"internet","user","pass",3') == OK
    assert at(s, "AT+QICSGP=3") == info('+QICSGP: 3,"internet","user","pass",3')
    assert at(s, 'AT+CGDCONT?').count(b'+CGDCONT: 3,"IPV4V6","internet"') == 1
    # five fields, the fifth quoted: it is the password
    assert at(s, 'AT+QICSGP=4,2,"apn4","u","p"') == OK
    assert at(s, "AT+QICSGP=4") == info('+QICSGP: 2,"apn4","u","p",0')
    # five fields, the fifth a bare integer: <authentication>, password empty (seed 002)
    assert at(s, 'AT+QICSGP=5,1,"apn5","bob",2') == OK
    assert at(s, "AT+QICSGP=5") == info('+QICSGP: 1,"apn5","bob","",2')
    # three fields: user, password and authentication back to empty / none
    assert at(s, 'AT+QICSGP=5,1,"apn5b"') == OK
    assert at(s, "AT+QICSGP=5") == info('+QICSGP: 1,"apn5b","","",0')

    assert at(s, "AT+QIACT=3") == OK
    assert at(s, "AT+QIACT?") == info(f'+QIACT: 1,1,1,"{IP}"', '+QIACT: 3,1,3,"10.76.33.123"')
    # an active context keeps its parameters: 572 operation not allowed
    assert at(s, 'AT+QICSGP=3,1,"other"') == cme(572)
    assert at(s, 'AT+QICSGP=1,1,"cmnet","",1') == cme(572)  # the default bearer, attached
    assert at(s, "AT+QICSGP=3") == info('+QICSGP: 3,"internet","user","pass",3')
    assert at(s, "AT+QIDEACT=3") == OK
    assert at(s, "AT+QIDEACT=3") == OK  # already inactive
    assert at(s, 'AT+QICSGP=3,1,"other"') == OK
    assert at(s, "AT+QIACT?") == info(f'+QIACT: 1,1,1,"{IP}"')


def test_qiact_needs_a_configured_ip_context(modtwin):
    m = boot(modtwin)
    s = m.ser
    # never configured (not the default, no +CGDCONT, no AT+QICSGP): 573 APN not configured
    assert at(s, "AT+QIACT=5") == cme(573)
    assert at(s, "AT+QIDEACT=5") == OK
    # a +CGDCONT context is configured too
    assert at(s, 'AT+CGDCONT=4,"IP","apn4"') == OK
    assert at(s, "AT+QIACT=4") == OK
    assert at(s, "AT+QIACT?") == info(f'+QIACT: 1,1,1,"{IP}"', '+QIACT: 4,1,1,"10.76.33.124"')
    # a Non-IP context has no IP to open: 561
    assert at(s, 'AT+CGDCONT=6,"Non-IP","nb"') == OK
    assert at(s, "AT+QICSGP=6") == info('+QICSGP: 0,"nb","","",0')
    assert at(s, "AT+QIACT=6") == cme(561)
    # +CMEE=2 prints the TCP/IP manual's text, +CMEE=0 a plain ERROR
    assert at(s, "AT+CMEE=2") == OK
    assert at(s, "AT+QIACT=5") == b"\r\n+CME ERROR: APN not configured\r\n"
    assert at(s, "AT+QIACT=6") == b"\r\n+CME ERROR: open PDP context failed\r\n"
    assert at(s, 'AT+QICSGP=4,1,"x"') == b"\r\n+CME ERROR: operation not allowed\r\n"
    assert at(s, "AT+CMEE=0") == OK
    assert at(s, "AT+QIACT=5") == ERROR


def test_detach_with_cgatt_drops_every_context(modtwin):
    m = boot(modtwin)
    s = m.ser
    assert at(s, 'AT+QICSGP=2,1,"cmnet","",1') == OK
    assert at(s, "AT+QIACT=2") == OK
    assert at(s, "AT+CGATT=0") == OK
    assert at(s, "AT+QIACT?") == OK
    # detached: 561 open PDP context failed, for the default context and any other
    assert at(s, "AT+QIACT=2") == cme(561)
    assert at(s, "AT+QIACT=1") == cme(561)
    assert at(s, "AT+QIACT?") == OK
    # the configuration stays; the attach brings the default bearer back, not context 2
    assert at(s, "AT+CGATT=1") == OK
    assert at(s, "AT+QIACT?") == info(f'+QIACT: 1,1,1,"{IP}"')
    assert at(s, "AT+QICSGP=2") == info('+QICSGP: 1,"cmnet","","",1')
    assert at(s, "AT+QIACT=2") == OK
    assert at(s, "AT+QIACT?") == info(f'+QIACT: 1,1,1,"{IP}"', '+QIACT: 2,1,1,"10.76.33.122"')


def test_network_loss_drops_every_context(modtwin):
    m = boot(modtwin)
    s = m.ser
    assert at(s, 'AT+QICSGP=2,1,"cmnet","",1') == OK
    assert at(s, "AT+QIACT=2") == OK
    m.ctl.ok("network", reg=0)  # the network drops the module
    assert at(s, "AT+CGATT?") == info("+CGATT: 0")
    assert at(s, "AT+QIACT?") == OK
    assert at(s, "AT+QIACT=2") == cme(561)
    m.ctl.ok("network", reg=1, ip="10.1.2.3")
    assert at(s, "AT+QIACT?") == info('+QIACT: 1,1,1,"10.1.2.3"')
    assert at(s, "AT+QIACT=2") == OK
    assert at(s, "AT+QIACT?") == info('+QIACT: 1,1,1,"10.1.2.3"', '+QIACT: 2,1,1,"10.1.2.5"')
    # an outage stops data, not the contexts: they stay active
    m.ctl.ok("network", outage=True)
    assert at(s, "AT+QIACT?") == info('+QIACT: 1,1,1,"10.1.2.3"', '+QIACT: 2,1,1,"10.1.2.5"')
    # CFUN=4 (radio off) deregisters and so detaches
    assert at(s, "AT+CFUN=4") == OK
    assert at(s, "AT+QIACT?") == OK
    assert at(s, "AT+QIACT=1") == cme(561)


def test_host_deactivates_the_default_bearer(modtwin):
    m = boot(modtwin)
    s = m.ser
    assert at(s, "AT+QIDEACT=1") == OK
    assert at(s, "AT+QIACT?") == OK
    # a change of the radio that keeps the attach does not bring it back ...
    m.ctl.ok("network", rssi=10)
    assert at(s, "AT+QIACT?") == OK
    # ... AT+QIACT does, and so does a new attach
    assert at(s, "AT+QIACT=1") == OK
    assert at(s, "AT+QIACT?") == info(f'+QIACT: 1,1,1,"{IP}"')
    assert at(s, "AT+QIDEACT=1") == OK
    assert at(s, "AT+CGATT=0;+CGATT=1") == OK
    assert at(s, "AT+QIACT?") == info(f'+QIACT: 1,1,1,"{IP}"')


@pytest.mark.parametrize("cmd", [
    "AT+QICSGP=0",                          # cid out of 1-15
    "AT+QICSGP=16",
    'AT+QICSGP=2,0,"cmnet"',                # context type out of 1-3
    'AT+QICSGP=2,4,"cmnet"',
    "AT+QICSGP=2,1",                        # APN missing
    'AT+QICSGP=2,1,"cmnet","user"',         # a user name without a password
    'AT+QICSGP=2,1,"cmnet","u","p",4',      # authentication out of 0-3
    'AT+QICSGP=2,1,"cmnet","u","p",',
    'AT+QICSGP=2,1,"cmnet","",5',           # seed's five-field form, auth out of range
    'AT+QICSGP=2,1,"cmnet","",x',
    "AT+QICSGP=2,1,cmnet",                  # an APN not quoted
    'AT+QICSGP=2,1,"%s"' % ("a" * 64),      # longer than 63 bytes
    'AT+QICSGP=2,1,"cmnet","%s",""' % ("u" * 64),
    'AT+QICSGP=2,1,"cmnet","","%s"' % ("p" * 64),
    'AT+QICSGP=2,1,"cm\\22net"',            # a '"' the read form could not print back
    "AT+QIACT=0",
    "AT+QIACT=16",
    "AT+QIACT=x",
    "AT+QIACT",                             # no execution form
    "AT+QIDEACT=16",
    "AT+QIDEACT?",
    'AT+QCFG="fota/cid",0',
    'AT+QCFG="fota/cid",16',
    'AT+QCFG="fota/cid",2,1',
    'AT+QCFG="usbifc",1,1',
    'AT+QCFG="usbifc",2,3',
    'AT+QCFG="usbifc",2',
    'AT+QCFG="usbifc",2,',
    'AT+QCFG="nwscanmode"',                 # an item this module does not have
    'AT+QCFG="nope",1',
    "AT+QCFG?",
])
def test_malformed_is_plain_error(modtwin, cmd):
    m = boot(modtwin)
    s = m.ser
    assert at(s, cmd) == ERROR
    # nothing changed
    assert at(s, "AT+QICSGP=2") == info('+QICSGP: 1,"","","",0')
    assert at(s, 'AT+QCFG="fota/cid"') == info('+QCFG: "fota/cid",1')
    assert at(s, 'AT+QCFG="usbifc"') == info('+QCFG: "usbifc",0,0')
    assert at(s, "AT+QIACT?") == info(f'+QIACT: 1,1,1,"{IP}"')


def test_argument_count_beyond_the_table_is_the_engines_50(modtwin):
    # the engine checks the arity of every command before its handler (docs/errata.md)
    m = boot(modtwin)
    assert at(m.ser, 'AT+QICSGP=2,1,"a","u","p",1,1') == cme(50)
    assert at(m.ser, 'AT+QCFG="usbifc",2,2,2') == cme(50)
    assert at(m.ser, "AT+QIACT=1,2") == cme(50)


def test_settings_are_volatile(modtwin):
    m = boot(modtwin)
    s = m.ser
    assert at(s, 'AT+QICSGP=2,1,"cmnet","",1;+QIACT=2;+QCFG="fota/cid",2;+QCFG="usbifc",2,2') == OK
    m.ctl.ok("power", action="reset")
    read_until(s, SMS_DONE)
    assert at(s, "ATE0").endswith(OK)
    assert at(s, 'AT+QCFG="fota/cid"') == info('+QCFG: "fota/cid",1')
    assert at(s, 'AT+QCFG="usbifc"') == info('+QCFG: "usbifc",0,0')
    assert at(s, "AT+QICSGP=2") == info('+QICSGP: 1,"","","",0')
    assert at(s, "AT+QIACT?") == info(f'+QIACT: 1,1,1,"{IP}"')


def test_ec200n_minifota_has_no_fota_cid(modtwin):
    m = boot(modtwin, model="EC200N-CN")
    s = m.ser
    # seed 002 §3.3.1.1 note 2: MiniFOTA builds do not support AT+QCFG="fota/cid"
    assert at(s, 'AT+QCFG="fota/cid",2') == ERROR
    assert at(s, 'AT+QCFG="fota/cid"') == ERROR
    assert at(s, "AT+QCFG=?") == info('+QCFG: "usbifc",(0,2),(0,2)')
    # the rest of the seed's sequence runs as on EC200A-CN
    assert at(s, 'AT+QICSGP=2,1,"cmnet","",1') == OK
    assert at(s, "AT+QIACT=2") == OK
    assert at(s, "AT+QIACT?") == \
        info('+QIACT: 1,1,1,"10.76.33.121"', '+QIACT: 2,1,1,"10.76.33.123"')
    assert at(s, 'AT+QCFG="usbifc",2,2') == OK
    assert at(s, 'AT+QCFG="usbifc"') == info('+QCFG: "usbifc",2,2')


def test_bc260y_has_none_of_these(modtwin):
    m = boot(modtwin, model="BC260Y-CN")
    for cmd in ('AT+QICSGP=2,1,"cmnet","",1', "AT+QIACT?", 'AT+QCFG="usbifc"', "AT+QIDEACT=1"):
        assert at(m.ser, cmd) == ERROR


def upload_blast(port, name, size):
    """AT+QFUPL, then all the data in one write, without ACK mode."""
    port.write(f'AT+QFUPL="{name}",{size},5\r'.encode())
    assert read_until(port, b"CONNECT\r\n") == b"\r\nCONNECT\r\n"
    port.write(os.urandom(size))


def test_usbifc_gives_the_usb_port_flow_control(modtwin):
    # Without flow control a FILE upload is taken at ~15 KB/s and a host that blasts overruns
    # the receiver; with AT+QCFG="usbifc",2,2 the module holds the sender instead.
    m = boot(modtwin, speed="10")
    usb = m.open(m.ports[(0, "usb")])
    assert at(usb, "ATE0").endswith(OK)
    assert at(usb, 'AT+QCFG="usbifc",2,2') == OK
    upload_blast(usb, "flow.bin", 20000)
    assert read_until(usb, b"OK\r\n", timeout=20).endswith(b"\r\nOK\r\n")
    assert m.ctl.ok("status")["ports"][1]["overrun"] == 0
    assert at(usb, 'AT+QFLST="flow.bin"') == info('+QFLST: "UFS:flow.bin",20000')

    assert at(usb, 'AT+QCFG="usbifc",0,0') == OK
    upload_blast(usb, "blast.bin", 20000)
    assert read_until(usb, b"+CME ERROR: 421\r\n", timeout=10).endswith(cme(421))
    assert m.ctl.ok("status")["ports"][1]["overrun"] > 0
