"""Two processes with the same project open, both writing: nobody sees "database is locked".

Writes take SQLite's write lock up front (BEGIN IMMEDIATE) and wait on the busy handler, so
a second writer queues behind a long transaction (a big import) instead of failing.
"""

from __future__ import annotations

import asyncio
import sys
import textwrap
from pathlib import Path

from coevo_tui.domain.model import OutputStatus, Verdict
from coevo_tui.store import NewCase, Store

IMPORT_ROWS = 40_000


def coevo_command() -> list[str]:
    """The installed `coevo` script beside this Python, else `python -m coevo_tui`."""
    script = Path(sys.executable).parent / "coevo"
    return [str(script)] if script.exists() else [sys.executable, "-m", "coevo_tui"]


def write_big_import(path: Path, rows: int) -> None:
    with path.open("w", encoding="utf-8") as f:
        for i in range(rows):
            f.write(f'{{"id": "bulk{i}", "input": "bulk case {i}: may I get a refund?",'
                    f' "tags": ["bulk"]}}\n')


async def test_cli_import_while_this_process_writes(tmp_path) -> None:
    project = tmp_path / "shared.db"
    src = tmp_path / "big.jsonl"
    write_big_import(src, IMPORT_ROWS)
    async with await Store.open(project) as store:
        version = await store.versions.latest()
        proc = await asyncio.create_subprocess_exec(
            *coevo_command(), "import", str(project), str(src),
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            stdin=asyncio.subprocess.DEVNULL,
        )
        communicate = asyncio.ensure_future(proc.communicate())
        mine: list[int] = []
        rounds = 0
        # Keep writing for as long as the import runs, and a few rounds after.
        while not communicate.done() or rounds < 20:
            case = await store.cases.add(NewCase(input=f"mine {rounds}", ext_id=f"mine{rounds}"))
            await store.cases.edit(case.id, tags=["edited"], note=f"round {rounds}")
            output = await store.outputs.add(case_id=case.id, version_id=version.id,
                                            model="m", params={}, text=f"answer {rounds}",
                                            status=OutputStatus.OK)
            await store.labels.write(output.id, Verdict.BAD, f"reason {rounds}")
            mine.append(case.id)
            rounds += 1
        stdout, stderr = await communicate
        assert proc.returncode == 0, stderr.decode()
        assert stderr == b""
        assert stdout.decode() == f"imported {IMPORT_ROWS} cases into {project}\n"

        counts = await store.cases.counts_by_state()
        assert counts["active"] == IMPORT_ROWS + rounds
        for n, case_id in enumerate(mine):
            case = await store.cases.get(case_id)
            assert (case.ext_id, case.tags, case.note) == (f"mine{n}", ("edited",),
                                                           f"round {n}")
            (output,) = await store.outputs.of_case(case_id)
            label = await store.labels.current(output.id)
            assert label is not None and label.rationale == f"reason {n}"
        # The import committed while this process was writing: our events straddle it.
        (imported,) = await store.events.recent(10, kind="import")
        labels = [e.id for e in await store.events.recent(10_000, kind="label")]
        assert min(labels) < imported.id < max(labels)


WRITER = textwrap.dedent(
    """
    import asyncio, sys, time
    from pathlib import Path
    from coevo_tui.domain.model import OutputStatus, Verdict
    from coevo_tui.store import NewCase, Store

    async def main(path, name, rounds, ready_dir):
        async with await Store.open(path) as store:
            version = await store.versions.latest()
            (Path(ready_dir) / name).touch()
            while len(list(Path(ready_dir).iterdir())) < 2:  # start together
                time.sleep(0.01)
            for i in range(rounds):
                if i == rounds // 2:  # halfway, wait for the other: a loaded machine may
                    # otherwise run one writer to its end before the other starts
                    (Path(ready_dir) / f"{name}-half").touch()
                    while len(list(Path(ready_dir).iterdir())) < 4:
                        time.sleep(0.01)
                case = await store.cases.add(NewCase(input=f"{name} {i}", ext_id=f"{name}-{i}"))
                out = await store.outputs.add(case_id=case.id, version_id=version.id,
                                             model=name, params={}, text=f"{name} says {i}",
                                             status=OutputStatus.OK)
                await store.labels.write(out.id, Verdict.GOOD)
                await store.labels.write(out.id, Verdict.BAD, "changed my mind")
                await store.cases.edit(case.id, note="edited")
        print(f"{name} done")

    asyncio.run(main(sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]))
    """
)


async def test_two_processes_write_the_same_project(tmp_path) -> None:
    project = tmp_path / "shared.db"
    async with await Store.open(project):
        pass
    script = tmp_path / "writer.py"
    script.write_text(WRITER)
    ready = tmp_path / "ready"
    ready.mkdir()
    rounds = 60
    procs = [
        await asyncio.create_subprocess_exec(
            sys.executable, str(script), str(project), name, str(rounds), str(ready),
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
            stdin=asyncio.subprocess.DEVNULL,
        )
        for name in ("left", "right")
    ]
    results = await asyncio.gather(*(p.communicate() for p in procs))
    for proc, (stdout, stderr), name in zip(procs, results, ("left", "right")):
        assert proc.returncode == 0, stderr.decode()
        assert stderr == b"" and stdout.decode() == f"{name} done\n"
    async with await Store.open(project) as store:
        cases = await store.cases.all()
        assert sorted(c.ext_id for c in cases) == sorted(
            f"{name}-{i}" for name in ("left", "right") for i in range(rounds))
        assert {c.note for c in cases} == {"edited"}
        for case in cases:
            (output,) = await store.outputs.of_case(case.id)
            history = await store.labels.history(output.id)
            assert [lb.verdict for lb in history] == [Verdict.GOOD, Verdict.BAD]
        # Both writers' work interleaved in the log rather than one after the other.
        models = [e.payload["model"] for e in reversed(await store.events.recent(10_000, kind="create"))
                  if e.entity == "output"]
        switches = sum(1 for a, b in zip(models, models[1:]) if a != b)
        assert switches > 1
