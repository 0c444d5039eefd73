"""Render-and-compare refinement of an avatar's colours against the reference views it was created from.

A feed-forward avatar's colours come from one pass of the network (and the colour prior's samples at each
anchor's projection), so what the references show is blurred twice: by the readout and by the Gaussians'
overlapping footprints. Rendering the avatar back into its own reference views and correcting each
Gaussian's colour by the residual under its footprint removes much of that, with no learned part and no
optimizer: the render is linear in the colours (``render(p) = sum_i w_i(p) c_i``, ``w_i(p)`` the Gaussian's
alpha-compositing weight at pixel ``p``), so one step is

    c_i <- clamp(c_i + sum_p w_i(p) r(p) / (sum_p m(p) w_i(p) + damping), 0, 1)
    r   =  m * (m * reference - render)

over the person's pixels (``m`` the reference masks, soft at the silhouette) of every real view: the
residual averaged over the Gaussian's footprint, weighted by its contribution (a SIRT-style step: normalised
by each Gaussian's own coverage, so the corrections of overlapping footprints do not pile up). The residual
compares the render with the person's premultiplied image and counts each pixel by its mask again, so the
soft silhouette band, where a colour error and a coverage error cannot be told apart, pulls little (the
best of four weightings of that band measured on lca-tiny, docs/training.md). ``damping`` shrinks the step
of a Gaussian that contributes to few pixels (seen at a grazing angle, mostly hidden), whose footprint
average is a noisy estimate; a Gaussian no reference sees (``sum_p w_i(p) = 0``) keeps its colour. Both
sums are vector-Jacobian products of the renderer (``w_i(p) = d render(p) / d c_i``), so any rasterizer
with a backward pass serves (torch, gsplat).

The corrections are computed without a graph to the network (they are data, as the colour prior's samples
are) and added to the colours the model produced, so gradients still reach the decoder's colour head if
a caller trains through a refined avatar.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import torch
from torch import Tensor

from lca.contracts.decoder import AnchorGaussians

ReferenceRenderer = Callable[[AnchorGaussians], Tensor]
"""Canonical Gaussians ``[B, N, K, ...]`` -> their renders into the reference views ``[B, V, 3, H, W]`` over
black (posing and rasterizing are the model's)."""


def refine_colors(
    canonical: AnchorGaussians,
    render: ReferenceRenderer,
    references: Tensor,
    masks: Tensor,
    valid: Tensor,
    steps: int,
    damping: float,
) -> AnchorGaussians:
    """``canonical`` with its colours refined by ``steps`` render-and-compare steps (see the module doc).

    ``references [B, V, 3, H, W]`` the reference images, ``masks [B, V, 1, H, W]`` the person's pixels,
    ``valid [B, V]`` bool (padding views count for nothing)."""
    if steps == 0:
        return canonical
    weight = masks * valid[:, :, None, None, None].to(masks.dtype)
    target = references * weight
    start = canonical.colors.detach()
    current = start
    for _ in range(steps):
        with torch.enable_grad():
            colors = current.clone().requires_grad_(True)
            rendered = render(replace(canonical, colors=colors))
            residual = ((target - rendered) * weight).detach()
            (along,) = torch.autograd.grad((rendered * residual).sum(), colors, retain_graph=True)
            (coverage,) = torch.autograd.grad((rendered * weight).sum(), colors)
        current = (current + along / (coverage + damping).clamp(min=1e-6)).clamp(0, 1)
    return replace(canonical, colors=canonical.colors + (current - start))
