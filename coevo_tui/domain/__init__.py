"""Plain dataclasses and pure logic shared by the TUI and the headless commands.

Nothing here does I/O or imports Textual.
"""

from coevo_tui.domain.errors import ImportRejected, NotFound, ProjectFileError, UserError
from coevo_tui.domain.model import (
    Case,
    CaseSource,
    CaseState,
    Event,
    Label,
    LabelSource,
    Output,
    OutputStatus,
    Project,
    PromptVersion,
    Verdict,
    first_line,
    normalize_output_text,
)

__all__ = [
    "ImportRejected",
    "NotFound",
    "ProjectFileError",
    "UserError",
    "Case",
    "CaseSource",
    "CaseState",
    "Event",
    "Label",
    "LabelSource",
    "Output",
    "OutputStatus",
    "Project",
    "PromptVersion",
    "Verdict",
    "first_line",
    "normalize_output_text",
]
