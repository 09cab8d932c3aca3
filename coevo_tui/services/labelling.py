"""Which answer a label goes on: one rule for `coevo label` and the screens.

A label belongs to one output: the newest non-cancelled answer of the case under the
version (the store reads the newest per model), from

1. the model asked for (`coevo label --model`, a Compare side's model);
2. else the model under test (``--model`` at start, the project's model, ``COEVO_MODEL``,
   or the offline model) when it answered;
3. else the only model that answered.

When several models answered and none of these applies, `coevo label` refuses and names
them. An error answer cannot be labelled (re-run it first).
"""

from __future__ import annotations

from collections.abc import Mapping

from coevo_tui.domain.errors import NotFound, UserError
from coevo_tui.domain.model import Output, OutputStatus, first_line


class SeveralAnswers(UserError):
    """Several models answered the case and nothing says which answer is meant."""


def answer_of(outputs: Mapping[str, Output], asked: str | None = None,
              under_test: str | None = None) -> Output | None:
    """The answer by the rule above among the newest output per model (None when there
    is none). Raises NotFound for an asked model without an answer, SeveralAnswers when
    several models answered and neither `asked` nor `under_test` is one of them."""
    if not outputs:
        return None
    if asked is not None:
        if asked not in outputs:
            raise NotFound(f"no output from model {asked} "
                           f"(outputs from: {', '.join(sorted(outputs))})")
        return outputs[asked]
    if under_test is not None and under_test in outputs:
        return outputs[under_test]
    if len(outputs) == 1:
        return next(iter(outputs.values()))
    raise SeveralAnswers(f"outputs from several models ({', '.join(sorted(outputs))}); "
                         "choose one with --model")


def choose_output(outputs: Mapping[str, Output], case_ext_id: str, version_number: int,
                  model: str | None, under_test: str | None = None) -> Output:
    """The output `coevo label` labels, or a UserError saying why there is none."""
    where = f"case {case_ext_id} under version {version_number}"
    try:
        output = answer_of(outputs, model, under_test)
    except (NotFound, SeveralAnswers) as exc:
        raise type(exc)(f"{where} has {exc}") from None
    if output is None:
        raise NotFound(f"{where} has no output yet; run it first "
                       f"(coevo run PATH --version {version_number})")
    if output.status == OutputStatus.ERROR:
        raise UserError(f"the newest output of {where} is an error "
                        f"({first_line(output.error or 'no message', 60)}); re-run it first")
    return output
