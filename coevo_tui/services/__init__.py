"""The loop's use cases, in one copy for the TUI and the headless commands (no Textual).

Each module holds decisions that both front ends make, so that they cannot drift apart:
`comparison` (which two versions and which model to compare), `labelling` (which answer
a label goes on), `overview` (per-version facts and provenance). The runner is wired in
one place, `Session.runner`.
"""
