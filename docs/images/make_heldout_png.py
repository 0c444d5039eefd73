"""docs/images/heldout_people.png: the first held-out people (test split) of each synthetic layout, targets
beside the driven renders of trained runs (e.g. lca-tiny and lca-small), one row per run, labelled with its
pipeline and its colour refinement (``model.refine_steps``); ``--unrefined`` adds, above each, the same
model with the refinement off.

    python docs/images/make_heldout_png.py RUN [RUN ...] [--unrefined] [--out docs/images/heldout_people.png]

Each RUN is a run folder of `lca train` (its posttrain final checkpoint is read); the views are
`lca.compare.heldout_views`, the ones `lca eval` averages over.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib
import torch

from lca import compare
from lca.avatars.create import load_model

matplotlib.use("Agg")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", type=Path, nargs="+", help="run folders of `lca train`, one row each")
    parser.add_argument("--unrefined", action="store_true", help="also each model without colour refinement")
    parser.add_argument("--out", type=Path, default=Path(__file__).with_name("heldout_people.png"))
    args = parser.parse_args()
    torch.set_num_threads(1)
    models = [load_model(run / "checkpoints" / "posttrain" / "final")[0] for run in args.runs]
    config = models[0].config
    rows = {}
    for data in ("wild", "studio"):
        views = compare.heldout_views(config, data, 4)
        rows[f"{data}: target"] = views.target
        for model in models:
            options = model.config.model
            steps = options.refine_steps
            if args.unrefined and steps:
                options.refine_steps = 0
                rows[f"{data}: {model.config.name}, unrefined"] = compare.render_views(model, views)
                options.refine_steps = steps
            label = f"{model.config.name}, refined x{steps}" if steps else model.config.name
            rows[f"{data}: {label}"] = compare.render_views(model, views)
    title = "held-out people (test split, never trained on): targets and driven renders"
    fig = compare.image_grid(rows, scale=1.9, title=title)
    for ax in fig.axes:
        ax.yaxis.label.set_size(8)
    fig.savefig(args.out, dpi=70)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
