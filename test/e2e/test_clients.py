"""Real host tools against the PTY: gammu identifies the module."""
import shutil
import subprocess

import pytest


@pytest.mark.skipif(not shutil.which("gammu"), reason="gammu not installed")
def test_gammu_identify(module, tmp_path):
    rc = tmp_path / "gammurc"
    rc.write_text(f"[gammu]\ndevice = {module.uart}\nconnection = at115200\n")
    module.ser.close()
    out = subprocess.run(["gammu", "-c", str(rc), "identify"], capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "Quectel" in out.stdout
    assert "EC200A" in out.stdout
    assert "EC200ACNHAR01A02M16" in out.stdout
    st = module.ctl.ok("status")
    assert st["imei"] in out.stdout
