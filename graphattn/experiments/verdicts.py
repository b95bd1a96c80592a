"""Verdicts on claims: what a rule concludes from measured numbers, printed and saved as CSV.

A claim script measures something, then a rule written in the script (a function whose
docstring states it) turns the numbers into a :class:`Verdict`: the number it rests on, one of
:data:`VERDICTS`, and the reason. :func:`write_verdicts` prints it and writes
``<name>_verdict.csv`` (claim, command, number, verdict, reason), the file that
``examples/claims_table.py`` collects into the README's science table.

>>> Verdict("max/min 1.03", "confirmed", "within 10%").verdict
'confirmed'
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

from .report import write_table

__all__ = ["VERDICTS", "Verdict", "write_verdicts"]

#: the verdicts a rule can reach
VERDICTS = ("confirmed", "partly", "refuted")

#: the columns of a ``*_verdict.csv``
COLUMNS = ("claim", "command", "number", "verdict", "reason")


class Verdict(NamedTuple):
    """A rule's conclusion: ``number`` (the measurement it rests on, as text), ``verdict``
    (one of :data:`VERDICTS`) and ``reason`` (why, in words)."""

    number: str
    verdict: str
    reason: str


def _check(verdict: object, where: str) -> Verdict:
    if not isinstance(verdict, tuple) or len(verdict) != 3:
        raise TypeError(f"`{where}` must be a Verdict (number, verdict, reason), got {verdict!r}")
    number, word, reason = verdict
    if word not in VERDICTS:
        raise ValueError(f"`{where}` has verdict {word!r}; expected one of {VERDICTS}")
    for name, text in (("number", number), ("reason", reason)):
        if not isinstance(text, str) or not text:
            raise ValueError(f"`{where}.{name}` must be a non-empty str, got {text!r}")
    return Verdict(number, word, reason)


def write_verdicts(
    path: str | Path,
    verdicts: Sequence[tuple[str, Verdict]],
    *,
    command: str,
    settings: dict | None = None,
    machine: dict[str, str] | None = None,
) -> list[dict]:
    """Print every ``(claim, verdict)`` of ``verdicts`` and write them as one CSV at ``path``
    (:data:`COLUMNS`; ``command`` is the command that measures them, recorded in every row and
    in the header). Returns the rows.

    >>> import tempfile, pathlib
    >>> out = pathlib.Path(tempfile.mkdtemp()) / "x_verdict.csv"
    >>> rows = write_verdicts(out, [("(x) a claim", Verdict("1.0", "partly", "why"))],
    ...     command="python x.py", machine={"cpu": "c", "cores": "1", "torch": "t",
    ...     "torch_threads": "1"})
    verdict (x) a claim: partly -- 1.0; why
    >>> rows[0]["command"]
    'python x.py'
    """
    if isinstance(verdicts, (str, bytes)) or not isinstance(verdicts, Sequence) or not verdicts:
        raise ValueError("`verdicts` must be a non-empty sequence of (claim, Verdict) pairs")
    if not isinstance(command, str) or not command:
        raise ValueError(f"`command` must be a non-empty str, got {command!r}")
    rows = []
    for i, pair in enumerate(verdicts):
        if not isinstance(pair, tuple) or len(pair) != 2 or not isinstance(pair[0], str):
            raise TypeError(f"`verdicts[{i}]` must be a (claim text, Verdict) pair, got {pair!r}")
        claim, verdict = pair[0], _check(pair[1], f"verdicts[{i}][1]")
        print(f"verdict {claim}: {verdict.verdict} -- {verdict.number}; {verdict.reason}")
        rows.append({"claim": claim, "command": command, **verdict._asdict()})
    rows = [{k: row[k] for k in COLUMNS} for row in rows]
    write_table(path, rows, settings=settings, machine=machine, command=command)
    return rows
