"""The project file: aiosqlite store, schema migrations and event log (no Textual)."""

from coevo_tui.store.project_file import check_project_file
from coevo_tui.store.schema import SCHEMA_VERSION
from coevo_tui.store.store import CaseRow, NewCase, Store, utc_now

__all__ = ["SCHEMA_VERSION", "CaseRow", "NewCase", "Store", "check_project_file", "utc_now"]
