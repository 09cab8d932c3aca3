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
from coevo_tui.domain.carryover import (
    describe_label,
    is_carried,
    label_to_carry,
    propagation_targets,
    root_label_id,
)
from coevo_tui.domain.status import (
    Answer,
    ComparisonStatus,
    VerdictChange,
    VersionSummary,
    compare,
    compare_all,
    compare_answers,
    navigation_order,
    pass_rate,
    summarize,
    verdict_changes,
)
from coevo_tui.domain.versiondiff import DiffKind, DiffLine, text_diff, version_diff

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
    "describe_label",
    "is_carried",
    "label_to_carry",
    "propagation_targets",
    "root_label_id",
    "Answer",
    "ComparisonStatus",
    "VerdictChange",
    "VersionSummary",
    "compare",
    "compare_all",
    "compare_answers",
    "navigation_order",
    "pass_rate",
    "summarize",
    "verdict_changes",
    "DiffKind",
    "DiffLine",
    "text_diff",
    "version_diff",
]
