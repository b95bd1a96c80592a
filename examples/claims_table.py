"""Collect the verdicts of the claims scripts into one table: ``results/claims/claims.csv``.

``examples/transformer_claims.py`` and ``examples/head_claims.py`` end every claim with a
``<claim>_verdict.csv`` (claim, command, number, verdict, reason), the verdict computed from the
measured numbers by a rule written in the script. This script gathers them, in the order of the
design documents' claims, into one CSV that the README's science table is generated from::

    python examples/claims_table.py                    # the recorded verdicts -> outputs/claims
    python examples/claims_table.py --out results/claims   # the README's table
    python examples/claims_table.py --inputs outputs/transformer_claims outputs/head_claims

A claim whose verdict file is missing is an error (``--allow-missing`` leaves it out).
"""

from __future__ import annotations

import sys
from pathlib import Path

from graphattn.experiments import RunFolder, print_table, read_table, write_table
from graphattn.experiments.cli import ScriptParser, output_folder

# (verdict file, number of rows it holds), in the order the table lists the claims
VERDICTS = (
    ("variance_verdict.csv", 1),
    ("params_verdict.csv", 1),
    ("logits_verdict.csv", 1),
    ("depth_verdict.csv", 2),
    ("memory_verdict.csv", 1),
    ("copy_verdict.csv", 1),
    ("diversity_verdict.csv", 1),
    ("motifs_verdict.csv", 1),
    ("sparse_verdict.csv", 1),
    ("prune_verdict.csv", 1),
)
COLUMNS = ["claim", "command", "number", "verdict", "reason", "date", "machine"]
#: where the recorded runs behind the README's table keep their verdicts
RECORDED = (
    "results/transformer_claims/full",
    "results/transformer_claims/memory_quick",
    "results/head_claims",
)


def collect(inputs: list[Path], allow_missing: bool = False) -> list[dict]:
    """The verdict rows found in ``inputs`` (folders), in the order of :data:`VERDICTS`, each
    with the date and machine of the run that measured it."""
    rows, missing = [], []
    for name, count in VERDICTS:
        found = [folder / name for folder in inputs if (folder / name).exists()]
        if not found:
            missing.append(name)
            continue
        if len(found) > 1:
            raise ValueError(f"{name} is in more than one input folder: {found}")
        table, meta = read_table(found[0])
        if len(table) != count or any(set(r) != set(COLUMNS[:5]) for r in table):
            raise ValueError(f"{found[0]} must hold {count} row(s) with columns {COLUMNS[:5]}")
        for row in table:
            rows.append(
                {
                    **{k: row[k] for k in COLUMNS[:5]},
                    "date": meta.get("date", ""),
                    "machine": meta.get("machine", "").removeprefix("machine: "),
                }
            )
    if missing and not allow_missing:
        raise FileNotFoundError(f"no verdict for {missing} in {[str(p) for p in inputs]}")
    return rows


def main(argv: list[str] | None = None) -> list[dict]:
    parser = ScriptParser(doc=__doc__)
    parser.add_argument(
        "--inputs",
        type=Path,
        nargs="+",
        default=[Path(p) for p in RECORDED],
        help="folders holding the claims scripts' *_verdict.csv files (default: the recorded runs)",
    )
    parser.add_argument("--out", type=output_folder, default=Path("outputs/claims"))
    parser.add_argument(
        "--allow-missing", action="store_true", help="leave out claims with no verdict file"
    )
    argv = sys.argv[1:] if argv is None else list(argv)
    args = parser.parse_args(argv)
    with RunFolder(args.out):  # writable? checked before the inputs are read
        rows = collect(args.inputs, args.allow_missing)
        print_table(rows, ["claim", "verdict"], title="claims")
        path = write_table(
            args.out / "claims.csv", rows, settings={"inputs": [str(p) for p in args.inputs]},
            command=" ".join(["python examples/claims_table.py", *argv]),
        )  # fmt: skip
    print(f"wrote {path}")
    return rows


if __name__ == "__main__":
    main()
