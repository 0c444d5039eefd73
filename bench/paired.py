"""Paired comparisons of held-out rows of different runs on the same images: each run's row minus a base row,
mean per-image difference with its 95% interval from a bootstrap over people.

    python bench/paired.py RUN[:ROW] ... --against BASE[:ROW] [--metric psnr] [--split test]

RUN and BASE are run folders that `bench/main_job.py` evaluated (it leaves ``RUN/heldout-<split>.json``
with every row's per-image records) or such files themselves. ROW names a row of that table (e.g.
``"per-person fit, 30 steps"``); without it, a run's final trained model (the last ``after ...`` row that
is not an EMA). Two models scored on the same people share each person's difficulty, which dominates
the intervals of the main table; the paired interval is what says whether one beats the other on these
people. It says nothing of the seed: a run's seed noise is measured by training again
(docs/evaluation.md).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, NoReturn

from heldout import STORES, paired_cell

from lca.data.json_file import read_json_object
from lca.errors import LcaError


def fail(message: str) -> NoReturn:
    """A user's mistake: the message on stderr, exit code 2 (as the toolkit's CLI)."""
    print(f"error: {message}", file=sys.stderr)
    raise SystemExit(2)


def load_row(spec: str, split: str) -> tuple[str, dict[str, Any]]:
    """``(label, row)`` of ``PATH[:ROW]``; a clear exit naming what is missing."""
    path, _, row = spec.partition(":")
    file = Path(path)
    if file.is_dir():
        file = file / f"heldout-{split}.json"
    try:
        rows = read_json_object(file, "held-out rows").get("rows")
    except FileNotFoundError:
        fail(
            f"{file} does not exist: evaluate the run first "
            f"(`python bench/main_job.py --eval-only {path} --split {split}`)."
        )
    except ValueError as error:
        fail(f"{error}: not a file `bench/main_job.py` wrote")
    if not isinstance(rows, dict):
        fail(f"{file} holds no 'rows' object: not a file `bench/main_job.py` wrote")
    if not row:
        finals = [label for label in rows if label.startswith("after ") and not label.endswith("(EMA)")]
        if not finals:
            fail(f"{file} has no trained model's row; name one: {', '.join(rows)}")
        row = finals[-1]
    if row not in rows:
        fail(f"{file} has no row {row!r}; its rows: {', '.join(rows)}")
    return f"{path}:{row}", rows[row]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("runs", nargs="+", metavar="RUN[:ROW]", help="rows to compare against the base")
    parser.add_argument("--against", required=True, metavar="BASE[:ROW]", help="the base row")
    parser.add_argument("--metric", default="psnr", help="per-image metric (psnr, ssim, lpips)")
    parser.add_argument("--split", default="test", help="the evaluated split (default: test)")
    args = parser.parse_args()
    base_label, base = load_row(args.against, args.split)
    print(
        f"paired {args.metric} differences against {base_label} (mean [95% interval], bootstrap over people)"
    )
    print(f"| row | {' | '.join(f'{key} d{args.metric}' for key in STORES)} |")
    print("|---|" + "---|" * len(STORES))
    digits = 2 if args.metric == "psnr" else 4
    for spec in args.runs:
        label, row = load_row(spec, args.split)
        try:
            cells = [paired_cell(row[key], base[key], args.metric, digits) for key in STORES]
        except LcaError as error:
            fail(f"{label} against {base_label}: {error}")
        print(f"| {label} | {' | '.join(cells)} |")


if __name__ == "__main__":
    main()
