"""The assistant (SPEC section 1, steps 2 to 5, and the judge): prompts, schemas and the
parsing of answers, one module per task, all on llm/structured.py. No Textual here.

    rules.py       extract(session, version) -> RulesResult; ensure_rules(...)
    candidates.py  generate(session, n, rule) -> AsyncIterator[AssistEvent]
    similar.py     generate(session, case_id, n) -> AsyncIterator[AssistEvent]
    rationale.py   suggest(session, output_id, verdict) -> SuggestionResult
    revision.py    draft(session) -> RevisionDraft
    judge.py       judge(session, version, model) -> AsyncIterator[AssistEvent]
    events.py      the events and AssistSummary; assistant.py the model and the event log
    context.py     what the assistant is shown of the project's labels

Every answer is validated; what does not match is left out and reported in one line,
and nothing a model does raises. Each task leaves one event of kind "assist".
"""
