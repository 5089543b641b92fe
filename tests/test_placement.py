"""A run's files are placed all together or not at all: when moving the last finished file
into place fails, the files already placed are taken back and an older file replaced under
``output.overwrite`` is put back, byte for byte; nothing is left in the output folder."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import tsm_core
from tsm_core.errors import OutputError
from tsm_core.products.claims import claim_output, commit_together
from tsm_core.products.registry import Registry


def _listing(directory: Path) -> dict[str, bytes | str]:
    """Every entry of ``directory``: a file's bytes, or ``"dir"``."""
    return {p.name: (p.read_bytes() if p.is_file() else "dir") for p in sorted(directory.iterdir())}


def test_a_failed_last_placement_puts_the_older_training_set_back(base_config, tsm_home):
    out = Path(base_config["output"]["directory"])
    out.mkdir(parents=True)
    base_config["output"].update(overwrite=True, unmatched=True)
    older = out / "test_set_1.parquet"  # the name the first product of a fresh registry gets
    pq.write_table(pa.table({"z": [0.5]}), older)
    blocked = out / "test_set_1_unmatched.parquet"
    blocked.mkdir()  # a folder that a file cannot replace: the second rename fails
    (blocked / "keep.txt").write_text("not the run's")
    before = _listing(out)

    with pytest.raises(OutputError, match="test_set_1_unmatched.parquet: cannot move the finished file into place"):
        tsm_core.run(base_config)

    assert _listing(out) == before  # no staging folder, claim, reservation or new file
    assert pq.read_table(older).to_pydict() == {"z": [0.5]}
    assert (blocked / "keep.txt").read_text() == "not the run's"
    [product] = Registry.at_home(tsm_home).products()
    assert product.status == "failed" and product.output_path is None


def test_reserved_names_are_freed_when_a_later_placement_fails(tmp_path):
    first, second = tmp_path / "a.parquet", tmp_path / "b.parquet"
    claims = [claim_output(first), claim_output(second)]  # both names reserved (no overwrite)
    folder = claims[0].stage().parent
    (folder / first.name).write_bytes(b"new a")
    # the second file is never written: its placement fails after the first one's
    with pytest.raises(OutputError, match="the writer did not create b.parquet"):
        commit_together([(claims[0], folder / first.name), (claims[1], folder / second.name)])
    for claim in claims:
        claim.release()
    assert sorted(p.name for p in tmp_path.iterdir()) == []


def test_a_run_killed_between_placements_gets_its_older_files_back(tmp_path):
    """A process that placed its first file (replacing an older one under overwrite) and was
    SIGKILLed before the second: the recovery of interrupted runs puts the older file back."""
    import subprocess
    import sys

    from tsm_core.products.claims import release_files

    first, second = tmp_path / "a.parquet", tmp_path / "b.parquet"
    first.write_bytes(b"old a")
    second.write_bytes(b"old b")
    code = (
        "import os, signal, sys, json\n"
        "from pathlib import Path\n"
        "from tsm_core.products.claims import claim_output\n"
        f"first, second = Path({str(first)!r}), Path({str(second)!r})\n"
        "claims = [claim_output(first, overwrite=True), claim_output(second, overwrite=True)]\n"
        "folder = claims[0].stage().parent\n"
        "(folder / first.name).write_bytes(b'new a')\n"
        "(folder / second.name).write_bytes(b'new b')\n"
        "claims[0].commit(folder / first.name)\n"
        "print(json.dumps([str(folder), str(claims[0].claim), str(claims[1].claim)]), flush=True)\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.returncode == -9, done.stderr
    import json

    staging, claim_a, claim_b = json.loads(done.stdout)
    assert first.read_bytes() == b"new a"  # half placed when it died
    release_files(staging, claim_a, str(first), pid=None)
    release_files(None, claim_b, str(second), pid=None)
    assert first.read_bytes() == b"old a" and second.read_bytes() == b"old b"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.parquet", "b.parquet"]


def test_recovery_ignores_a_claim_file_that_is_not_this_users_own(tmp_path):
    """A claim planted in a shared output folder (here a link; as root also a file of another
    user) naming a product is not acted on: the empty file it points at stays."""
    import json
    import os

    from tsm_core.products.claims import claim_path, release_files

    victim = tmp_path / "victim.txt"
    victim.touch()
    record = {"host": os.uname().nodename, "pid": 12345, "placeholder": victim.stat().st_ino}
    planted = tmp_path / "planted.json"
    planted.write_text(json.dumps(record))
    linked = claim_path(victim)
    linked.symlink_to(planted)
    release_files(None, str(linked), str(victim), pid=12345)
    assert victim.exists()
    if os.getuid() == 0:  # a regular file of another user
        linked.unlink()
        linked.write_text(json.dumps(record))
        os.chown(linked, 65534, 65534)
        release_files(None, str(linked), str(victim), pid=12345)
        assert victim.exists()
