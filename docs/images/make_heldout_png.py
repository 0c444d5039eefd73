"""docs/images/heldout_people.png: the first held-out person (test split) of each synthetic layout, targets
beside the driven renders of two trained runs (lca-tiny, and one with the paper's Fourier anchor tokens).

    python docs/images/make_heldout_png.py RUN PAPER_RUN [--out docs/images/heldout_people.png]

RUN and PAPER_RUN are run folders of `lca train` (their posttrain final checkpoints are read); the views
are `lca.compare.heldout_views`, the ones `lca eval` averages over.
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
    parser.add_argument("run", type=Path, help="the lca-tiny run folder")
    parser.add_argument("paper_run", type=Path, help="a run folder with the paper's Fourier tokens")
    parser.add_argument("--out", type=Path, default=Path(__file__).with_name("heldout_people.png"))
    args = parser.parse_args()
    torch.set_num_threads(1)
    models = {
        "lca-tiny": load_model(args.run / "checkpoints" / "posttrain" / "final")[0],
        "paper tokens": load_model(args.paper_run / "checkpoints" / "posttrain" / "final")[0],
    }
    config = models["lca-tiny"].config
    rows = {}
    for data in ("wild", "studio"):
        views = compare.heldout_views(config, data, 4)
        rows[f"{data}: target"] = views.target
        for label, model in models.items():
            rows[f"{data}: {label}"] = compare.render_views(model, views)
    title = "held-out people (test split, never trained on): targets and driven renders"
    fig = compare.image_grid(rows, scale=1.9, title=title)
    for ax in fig.axes:
        ax.yaxis.label.set_size(8)
    fig.savefig(args.out, dpi=70)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
