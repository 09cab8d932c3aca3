"""The project file's schema as numbered forward migrations.

The schema version lives in ``PRAGMA user_version``; ``PRAGMA application_id`` marks the
file as a coevo project so that other SQLite files are refused before anything is written.
Each migration is a list of statements run in one transaction together with the bump of
``user_version``. Never edit a released migration: add the next one.
"""

from __future__ import annotations

# "CoEv" in ASCII: lets us recognise our files from the 100-byte SQLite header alone.
APPLICATION_ID = 0x436F4576

MIGRATIONS: dict[int, list[str]] = {
    1: [
        f"PRAGMA application_id = {APPLICATION_ID}",
        """
        CREATE TABLE project (
            id              INTEGER PRIMARY KEY CHECK (id = 1),
            name            TEXT NOT NULL,
            task            TEXT NOT NULL DEFAULT '',
            model           TEXT,
            params          TEXT NOT NULL DEFAULT '{}',
            assistant_model TEXT,
            created_at      TEXT NOT NULL
        )
        """,
        """
        CREATE TABLE prompt_version (
            id            INTEGER PRIMARY KEY,
            number        INTEGER NOT NULL UNIQUE,
            instructions  TEXT NOT NULL,
            user_template TEXT,
            parent_id     INTEGER REFERENCES prompt_version(id),
            note          TEXT NOT NULL DEFAULT '',
            created_at    TEXT NOT NULL
        )
        """,
        """
        CREATE TABLE cases (
            id             INTEGER PRIMARY KEY,
            ext_id         TEXT NOT NULL UNIQUE,
            input          TEXT NOT NULL CHECK (length(input) > 0),
            tags           TEXT NOT NULL DEFAULT '[]',
            note           TEXT NOT NULL DEFAULT '',
            source         TEXT NOT NULL
                           CHECK (source IN ('manual', 'imported', 'generated', 'similar')),
            origin_case_id INTEGER REFERENCES cases(id),
            state          TEXT NOT NULL CHECK (state IN ('candidate', 'active', 'archived')),
            created_at     TEXT NOT NULL,
            updated_at     TEXT NOT NULL
        )
        """,
        "CREATE INDEX cases_state ON cases(state)",
        """
        CREATE TABLE output (
            id         INTEGER PRIMARY KEY,
            case_id    INTEGER NOT NULL REFERENCES cases(id),
            version_id INTEGER NOT NULL REFERENCES prompt_version(id),
            model      TEXT NOT NULL,
            params     TEXT NOT NULL DEFAULT '{}',
            text       TEXT NOT NULL DEFAULT '',
            status     TEXT NOT NULL CHECK (status IN ('ok', 'error', 'cancelled')),
            error      TEXT,
            latency_ms REAL,
            tokens_in  INTEGER,
            tokens_out INTEGER,
            cost       REAL,
            created_at TEXT NOT NULL
        )
        """,
        "CREATE INDEX output_case_version ON output(case_id, version_id, model)",
        """
        CREATE TABLE label (
            id           INTEGER PRIMARY KEY,
            output_id    INTEGER NOT NULL REFERENCES output(id),
            verdict      TEXT NOT NULL CHECK (verdict IN ('good', 'bad', 'unsure')),
            rationale    TEXT NOT NULL DEFAULT '',
            source       TEXT NOT NULL CHECK (source IN ('human', 'carried', 'judge')),
            carried_from INTEGER REFERENCES label(id),
            created_at   TEXT NOT NULL
        )
        """,
        "CREATE INDEX label_output ON label(output_id)",
        """
        CREATE TABLE event (
            id        INTEGER PRIMARY KEY,
            at        TEXT NOT NULL,
            kind      TEXT NOT NULL,
            entity    TEXT NOT NULL,
            entity_id INTEGER,
            payload   TEXT NOT NULL DEFAULT '{}'
        )
        """,
    ],
    # 2: runs (so a halted run can be resumed and reported), the call cache key, the
    # judge's suggestions, and the cases that motivated a version.
    2: [
        """
        CREATE TABLE run (
            id          INTEGER PRIMARY KEY,
            version_id  INTEGER NOT NULL REFERENCES prompt_version(id),
            model       TEXT NOT NULL,
            params      TEXT NOT NULL DEFAULT '{}',
            total       INTEGER NOT NULL DEFAULT 0,
            started_at  TEXT NOT NULL,
            finished_at TEXT,
            status      TEXT NOT NULL DEFAULT 'running'
                        CHECK (status IN ('running', 'done', 'halted'))
        )
        """,
        "ALTER TABLE output ADD COLUMN run_id INTEGER REFERENCES run(id)",
        "ALTER TABLE output ADD COLUMN cache_key TEXT",
        "ALTER TABLE output ADD COLUMN cached INTEGER NOT NULL DEFAULT 0",
        "CREATE INDEX output_cache_key ON output(cache_key) WHERE status = 'ok'",
        """
        CREATE TABLE judgement (
            id         INTEGER PRIMARY KEY,
            output_id  INTEGER NOT NULL REFERENCES output(id),
            verdict    TEXT NOT NULL CHECK (verdict IN ('good', 'bad', 'unsure')),
            rationale  TEXT NOT NULL DEFAULT '',
            model      TEXT NOT NULL,
            label_id   INTEGER REFERENCES label(id),
            created_at TEXT NOT NULL
        )
        """,
        "CREATE INDEX judgement_output ON judgement(output_id)",
        """
        CREATE TABLE version_motivation (
            version_id INTEGER NOT NULL REFERENCES prompt_version(id),
            case_id    INTEGER NOT NULL REFERENCES cases(id),
            label_id   INTEGER REFERENCES label(id),
            PRIMARY KEY (version_id, case_id)
        )
        """,
    ],
    # 3: the newest answer per case under a version and model (the Compare and Overview
    # screens' bulk reads) as a range of one covering index instead of a scan of every
    # version's outputs; status is in it so that skipping cancelled outputs needs no row.
    3: [
        "CREATE INDEX output_version_model_case ON output(version_id, model, case_id, status)",
    ],
    # 4: who runs a run (host, process id, and the process's start time so that a reused
    # id is not mistaken for it), so that a run whose process was killed or ran out of disk
    # is marked halted the next time the project is opened for writing, while a run another
    # shell is doing right now is left alone.
    4: [
        "ALTER TABLE run ADD COLUMN owner_host TEXT",
        "ALTER TABLE run ADD COLUMN owner_pid INTEGER",
        "ALTER TABLE run ADD COLUMN owner_started TEXT",
    ],
    # 5: the assistant. A case can be rejected (a candidate the user turned down: kept,
    # hidden, never proposed again), and says which rule of which version it probes and
    # why (the assistant's one-line reason). SQLite cannot change a CHECK constraint, so
    # `cases` is rebuilt the way SQLite's documentation prescribes (new table, copy,
    # drop, rename; `_migrate` turns foreign-key enforcement off around it and checks
    # every reference before committing): ids, the index and every reference to a case
    # stay as they were. The numbered rules of each version's instructions get a table.
    5: [
        """
        CREATE TABLE cases_new (
            id                INTEGER PRIMARY KEY,
            ext_id            TEXT NOT NULL UNIQUE,
            input             TEXT NOT NULL CHECK (length(input) > 0),
            tags              TEXT NOT NULL DEFAULT '[]',
            note              TEXT NOT NULL DEFAULT '',
            source            TEXT NOT NULL
                              CHECK (source IN ('manual', 'imported', 'generated', 'similar')),
            origin_case_id    INTEGER REFERENCES cases(id),
            state             TEXT NOT NULL
                              CHECK (state IN ('candidate', 'active', 'archived', 'rejected')),
            created_at        TEXT NOT NULL,
            updated_at        TEXT NOT NULL,
            rule_number       INTEGER,
            reason            TEXT NOT NULL DEFAULT '',
            origin_version_id INTEGER REFERENCES prompt_version(id)
        )
        """,
        """
        INSERT INTO cases_new (id, ext_id, input, tags, note, source, origin_case_id, state,
                               created_at, updated_at)
        SELECT id, ext_id, input, tags, note, source, origin_case_id, state, created_at,
               updated_at FROM cases
        """,
        "DROP TABLE cases",
        "ALTER TABLE cases_new RENAME TO cases",
        "CREATE INDEX cases_state ON cases(state)",
        """
        CREATE TABLE policy_rule (
            id         INTEGER PRIMARY KEY,
            version_id INTEGER NOT NULL REFERENCES prompt_version(id),
            number     INTEGER NOT NULL CHECK (number > 0),
            title      TEXT NOT NULL,
            text       TEXT NOT NULL DEFAULT '',
            created_at TEXT NOT NULL,
            UNIQUE (version_id, number)
        )
        """,
    ],
    # 6: the project's own preferences for how it is shown (a JSON object; the first is
    # whether the Cases screen shows the line naming the loop's next step), kept in the
    # project file so that they follow the project from one machine to another.
    6: [
        "ALTER TABLE project ADD COLUMN preferences TEXT NOT NULL DEFAULT '{}'",
    ],
}

SCHEMA_VERSION = max(MIGRATIONS)
