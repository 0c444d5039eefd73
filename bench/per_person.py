"""The per-person optimisation baseline (the classic Codec Avatars route the paper contrasts itself with):
for each held-out person, fit the same Gaussians on the same template directly to exactly the reference
views the feed-forward model is given, then render the same targets.

What is fitted is the reference decoder's (``dual-branch``) canonical parameterisation with its heads'
outputs set free: per anchor and Gaussian, the pre-activation offset, rotation, scale, colour and opacity,
through the decoder's own activations and bounds (``max_offset * tanh``, the scale range, sigmoids), from
the decoder's initial values (the anchors' Gaussians before any training). No correction branch: a fit to
a few frames has no driving signal to learn from, so targets are the canonical Gaussians skinned to the
target pose, as the model's canonical branch. Loss: the training objective's image terms (masked L1 and
alpha against the mask, weight 1 each), Adam. Used as a :data:`lca.evaluate.Predictor`, so the numbers
come from the very protocol of ``lca eval``.
"""

from __future__ import annotations

import time
from dataclasses import fields
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor

from lca.config import PipelineConfig, resolve_raw
from lca.contracts.decoder import AnchorGaussians
from lca.contracts.sample import Batch, Views
from lca.contracts.template import TemplateParams
from lca.losses.terms import mask_loss, masked_l1
from lca.model.avatar import Avatar, AvatarModel


def fitting_config(config: PipelineConfig) -> PipelineConfig:
    """``config`` without drivers: the fitted avatar is canonical only (no correction branch input)."""
    raw = config.to_dict()
    raw["slots"]["drivers"] = {}
    return resolve_raw(raw, f"{config.name} (per-person fit)")


def _params(views: Views) -> TemplateParams:
    return TemplateParams(**{f.name: views.params[f.name] for f in fields(TemplateParams)})


class PerPersonFit:
    """A predictor that fits each group's references once (``steps`` Adam steps at ``lr``) and renders its
    targets from the fit; ``seconds`` accumulates the fitting time, ``people`` counts the fits."""

    def __init__(self, config: PipelineConfig, steps: int, lr: float = 0.05, seed: int = 0) -> None:
        torch.manual_seed(seed)
        self.model = AvatarModel(fitting_config(config)).eval()
        self.steps, self.lr = steps, lr
        self.seconds, self.people = 0.0, 0
        self._group: str | None = None
        self._avatar: Avatar | None = None

    def _gaussians(self, raw: dict[str, Tensor]) -> AnchorGaussians:
        decoder = self.model.decoder
        c = decoder.config
        span = c.max_scale - c.min_scale
        return AnchorGaussians(
            offsets=c.max_offset * torch.tanh(raw["offsets"] + decoder.offset_shift),
            quats=F.normalize(raw["quats"] + decoder.identity_quat, dim=-1),
            scales=c.min_scale + span * torch.sigmoid(raw["scales"] + decoder.scale_shift),
            opacities=torch.sigmoid(raw["opacities"] + decoder.opacity_shift),
            colors=torch.sigmoid(raw["colors"]),
        )

    @torch.enable_grad()  # evaluation runs under no_grad; the fit is an optimisation
    def fit(self, references: Views) -> Avatar:
        """The fitted avatar of one person (batch of one) from their reference views."""
        began = time.perf_counter()
        model, betas = self.model, references.params["betas"][:, 0]
        neutral = betas.new_zeros(betas.shape[0], model.template.num_expression)
        anchors = model.template.shaped_anchors(betas, neutral)
        n, k = anchors.shape[1], model.decoder.num_gaussians
        sizes = {"offsets": 3, "quats": 4, "scales": 3, "colors": 3}
        raw = {name: torch.zeros(1, n, k, d, requires_grad=True) for name, d in sizes.items()}
        raw["opacities"] = torch.zeros(1, n, k, requires_grad=True)
        optimizer = torch.optim.Adam(raw.values(), lr=self.lr)
        params, (height, width) = _params(references), references.images.shape[-2:]
        target = references.images * references.masks
        features = anchors.new_zeros(1, n, model.config.model.width)
        for _ in range(self.steps):
            avatar = Avatar(anchors, features, self._gaussians(raw), betas)
            out = model.drive(avatar, params, {}, references.viewmats, references.Ks, width, height).driven
            loss = masked_l1(out.color, target, references.masks, references.valid) + mask_loss(
                out.alpha, references.masks, references.valid
            )
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        with torch.no_grad():
            avatar = Avatar(anchors, features, self._gaussians(raw), betas)
        self.seconds += time.perf_counter() - began
        self.people += 1
        return avatar

    def __call__(self, batch: Batch) -> Tensor:
        if batch.group[0] != self._group:
            self._avatar, self._group = self.fit(batch.references), batch.group[0]
        targets = batch.targets
        height, width = targets.images.shape[-2:]
        with torch.no_grad():
            out = self.model.drive(
                self._avatar, _params(targets), {}, targets.viewmats, targets.Ks, width, height
            )
        return out.driven.color[0].clamp(0, 1)


def fit_rows(config: PipelineConfig, steps: list[int], evaluate: Any) -> list[tuple[str, dict, float]]:
    """``(label, summary per store, seconds per person)`` for each step count; ``evaluate(predictor)``
    returns the per-store summaries (:func:`heldout.heldout` with a predictor)."""
    rows = []
    for count in steps:
        predictor = PerPersonFit(config, count)
        summary = evaluate(predictor)
        rows.append((f"per-person fit, {count} steps", summary, predictor.seconds / max(predictor.people, 1)))
    return rows


def main() -> None:
    """Only the baseline's rows: ``python bench/per_person.py [--steps 30,100] [--pipeline lca-tiny]``."""
    import argparse

    from heldout import STORES, cell, heldout
    from machine import machine_line

    from lca.config import resolve_pipeline

    parser = argparse.ArgumentParser(description=main.__doc__)
    parser.add_argument(
        "--pipeline", default="lca-tiny", help="pipeline whose data settings and decoder to use"
    )
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="a config override")
    parser.add_argument("--steps", default="30,100", help="comma-separated Adam step counts")
    parser.add_argument("--split", default="test", help="store split (default: test)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    config = resolve_pipeline(args.pipeline, args.set)
    model = AvatarModel(config).eval()
    print(f"machine: {machine_line()}")
    rows = fit_rows(
        config,
        [int(s) for s in args.steps.split(",") if s.strip()],
        lambda predictor: {
            key: heldout(model, store, args.split, None, predictor) for key, store in STORES.items()
        },
    )
    print(f"| model | {' | '.join(f'{key} PSNR | {key} SSIM' for key in STORES)} | s/person |")
    print("|---|" + "---|" * (2 * len(STORES) + 1))
    for label, summary, seconds in rows:
        cells = [
            cell(summary[k], "identity", "full", m, 2 if m == "psnr" else 4)
            for k in STORES
            for m in ("psnr", "ssim")
        ]
        print(f"| {label} | {' | '.join(cells)} | {seconds:.1f} |")


if __name__ == "__main__":
    main()
