"""The versioned schema of the two store layouts, store opening, and structural validation.

A store is a Zarr hierarchy: root attributes name the schema version, the layout and the image codec;
each child group is one clip (``wild-video``) or one capture (``studio``). Images are uint8, one frame
(one camera of one frame for ``studio``) per chunk; everything per-frame but small (cameras, SMPL-X
parameters, face boxes, gaze, blendshapes) is a small float32 array read whole into RAM.

The image codec is chosen per store:

- ``zstd`` (lossless): a Zarr v3 store, ``zarr.codecs.ZstdCodec`` with its frame checksum on, so a
  corrupted chunk fails to decode instead of returning wrong pixels.
- ``jpeg`` / ``webp`` (lossy, ~10x smaller on natural images): a Zarr v2 store whose image arrays use
  imagecodecs' numcodecs codecs (``imagecodecs_jpeg`` / ``imagecodecs_webp``). Zarr 3.1 only lets
  numcodecs codecs into v2 arrays (zarr v3 resolves codec names through its own registry, which
  imagecodecs does not populate), so plain zarr decodes these stores after one call,
  ``imagecodecs.numcodecs.register_codecs()``; no toolkit code is needed.

Shapes below use symbols: T frames, C cameras, H x W pixels, S shape coefficients, E expression
coefficients. Units: metres, OpenCV cameras (world-to-camera), pixels for intrinsics and boxes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import zarr

from lca.errors import Problem, SchemaError
from lca.splits import SPLITS

SCHEMA_VERSION = 2
"""Version written by this toolkit; stores with a higher version are refused (written by a newer one).
Version 2: every chunk of every array is stored. Version 1 stored every image chunk, but Zarr left out the
all-zero chunks of the small per-frame arrays (a zero hand pose), so there a missing one reads as zeros."""

EVERY_CHUNK_SINCE = 2
"""The first schema version whose stores hold every chunk of the small arrays too."""

LAYOUTS = ("wild-video", "studio")
CODECS = ("zstd", "jpeg", "webp")
ZARR_FORMAT = {"zstd": 3, "jpeg": 2, "webp": 2}
"""Zarr format per image codec (see the module docstring for why the lossy codecs need v2)."""

SMPLX_GROUP = "smplx"
SMPLX_POSE_DIMS = {
    "global_orient": 3,
    "body_pose": 63,
    "left_hand_pose": 45,
    "right_hand_pose": 45,
    "jaw_pose": 3,
    "leye_pose": 3,
    "reye_pose": 3,
    "transl": 3,
}
"""Per-frame SMPL-X parameters of fixed width (axis-angle radians, ``transl`` in metres), shape [T, d]."""
SMPLX_KEYS = ("betas", *SMPLX_POSE_DIMS, "expression")
MAX_TRANSLATION_M = 100.0
"""A person stays within a few metres of the cameras: importers refuse a translation beyond this as being
in the wrong unit (millimetres)."""

ARKIT52_NAMES = (
    "eyeBlinkLeft",
    "eyeLookDownLeft",
    "eyeLookInLeft",
    "eyeLookOutLeft",
    "eyeLookUpLeft",
    "eyeSquintLeft",
    "eyeWideLeft",
    "eyeBlinkRight",
    "eyeLookDownRight",
    "eyeLookInRight",
    "eyeLookOutRight",
    "eyeLookUpRight",
    "eyeSquintRight",
    "eyeWideRight",
    "jawForward",
    "jawLeft",
    "jawRight",
    "jawOpen",
    "mouthClose",
    "mouthFunnel",
    "mouthPucker",
    "mouthLeft",
    "mouthRight",
    "mouthSmileLeft",
    "mouthSmileRight",
    "mouthFrownLeft",
    "mouthFrownRight",
    "mouthDimpleLeft",
    "mouthDimpleRight",
    "mouthStretchLeft",
    "mouthStretchRight",
    "mouthRollLower",
    "mouthRollUpper",
    "mouthShrugLower",
    "mouthShrugUpper",
    "mouthPressLeft",
    "mouthPressRight",
    "mouthLowerDownLeft",
    "mouthLowerDownRight",
    "mouthUpperUpLeft",
    "mouthUpperUpRight",
    "browDownLeft",
    "browDownRight",
    "browInnerUp",
    "browOuterUpLeft",
    "browOuterUpRight",
    "cheekPuff",
    "cheekSquintLeft",
    "cheekSquintRight",
    "noseSneerLeft",
    "noseSneerRight",
    "tongueOut",
)
"""ARKit's 52 blendshape names, in Apple's documented order; stored in the ``blendshape_names`` attribute."""


@dataclass(frozen=True)
class ArraySpec:
    """One array of a group: shape in symbols, dtype, whether required, and its meaning (for docs)."""

    name: str
    shape: tuple[str | int, ...]
    dtype: str
    meaning: str
    required: bool = True


def _common(frame_dims: tuple[str, ...]) -> list[ArraySpec]:
    """Arrays shared by both layouts; ``frame_dims`` is ("T",) or ("T", "C")."""
    smplx = [
        ArraySpec(f"{SMPLX_GROUP}/{k}", ("T", d), "float32", f"SMPL-X {k} per frame")
        for k, d in SMPLX_POSE_DIMS.items()
    ]
    return [
        ArraySpec("frames", (*frame_dims, "H", "W", 3), "uint8", "RGB images, sRGB, one image per chunk"),
        ArraySpec("masks", (*frame_dims, "H", "W"), "uint8", "foreground coverage, 0 background, 255 person"),
        ArraySpec("face_box", (*frame_dims, 4), "float32", "face box x0,y0,x1,y1 in pixels; x1<=x0: no face"),
        ArraySpec(
            f"{SMPLX_GROUP}/betas", ("S",), "float32", "SMPL-X shape, per clip ([S]) or per frame ([T,S])"
        ),
        *smplx,
        ArraySpec(f"{SMPLX_GROUP}/expression", ("T", "E"), "float32", "SMPL-X expression coefficients"),
        ArraySpec("gaze", ("T", 2, 3), "float32", "unit gaze directions (left, right eye), world", False),
        ArraySpec("blendshapes", ("T", 52), "float32", "ARKit-52 coefficients in [0,1]", False),
    ]


LAYOUT_ARRAYS: dict[str, list[ArraySpec]] = {
    "wild-video": [
        *_common(("T",)),
        ArraySpec("viewmats", ("T", 4, 4), "float32", "world-to-camera per frame, OpenCV, metres"),
        ArraySpec("Ks", ("T", 3, 3), "float32", "intrinsics per frame, pixels"),
    ],
    "studio": [
        *_common(("T", "C")),
        ArraySpec("viewmats", ("C", 4, 4), "float32", "world-to-camera per camera, OpenCV, metres"),
        ArraySpec("Ks", ("C", 3, 3), "float32", "intrinsics per camera, pixels"),
    ],
}

ROOT_ATTRS = {"schema_version": int, "layout": str, "codec": str}
GROUP_ATTRS: dict[str, type | tuple[type, ...]] = {
    "schema_version": int,
    "layout": str,
    "identity": str,
    "split": str,
    "fps": (int, float),
    "source": str,
}
STUDIO_ATTRS = {"camera_ids": list}


def register_image_codecs() -> None:
    """Make imagecodecs' numcodecs codecs known to numcodecs (idempotent); needed to open lossy stores."""
    import imagecodecs.numcodecs

    imagecodecs.numcodecs.register_codecs(verbose=False)


def open_store(url: str, mode: str = "r", storage_options: Mapping[str, Any] | None = None) -> zarr.Group:
    """Open a store's root group at a local path or any fsspec URL (``s3://``, ``gs://``, ``memory://``...).

    Reading uses consolidated metadata when present (one request instead of one per array).
    """
    register_image_codecs()
    options = dict(storage_options) if storage_options else None
    try:
        return zarr.open_group(url, mode=mode, storage_options=options)
    except FileNotFoundError as error:
        raise SchemaError([Problem(url, f"no Zarr store here ({error})")]) from error
    except (ValueError, TypeError, AttributeError) as error:  # zarr's errors on unparsable metadata
        message = (
            f"its metadata cannot be read (a corrupt or truncated zarr.json / .zgroup / .zmetadata?): "
            f"{type(error).__name__}: {error}; restore the store from its source, or rewrite it"
        )
        raise SchemaError([Problem(url, message)]) from error


def group_names(root: zarr.Group) -> list[str]:
    """Names of the clip/capture groups of a store, sorted."""
    return sorted(name for name, _ in root.groups())


def _check_attrs(
    attrs: Mapping[str, Any], wanted: Mapping[str, Any], store: str, group: str
) -> list[Problem]:
    problems = []
    for key, kind in wanted.items():
        if key not in attrs:
            problems.append(Problem(store, f"missing attribute '{key}'", group))
        elif not isinstance(attrs[key], kind) or isinstance(attrs[key], bool):
            problems.append(
                Problem(store, f"attribute '{key}' is {attrs[key]!r}, expected {_kind_name(kind)}", group)
            )
    return problems


def _kind_name(kind: type | tuple[type, ...]) -> str:
    kinds = kind if isinstance(kind, tuple) else (kind,)
    return " or ".join(k.__name__ for k in kinds)


def _check_version(attrs: Mapping[str, Any], store: str, group: str) -> list[Problem]:
    version = attrs.get("schema_version")
    if isinstance(version, int) and version > SCHEMA_VERSION:
        return [
            Problem(
                store,
                f"schema version {version} is from the future (this toolkit reads up to {SCHEMA_VERSION}); "
                "upgrade lca-toolkit",
                group,
            )
        ]
    if isinstance(version, int) and version < 1:
        return [Problem(store, f"schema version {version} is invalid (versions start at 1)", group)]
    return []


def validate_root(root: zarr.Group, store: str) -> list[Problem]:
    """Problems of the root attributes (version, layout, codec)."""
    attrs = dict(root.attrs)
    problems = _check_attrs(attrs, ROOT_ATTRS, store, "") + _check_version(attrs, store, "")
    if isinstance(attrs.get("layout"), str) and attrs["layout"] not in LAYOUTS:
        problems.append(Problem(store, f"unknown layout '{attrs['layout']}', expected one of {LAYOUTS}"))
    if isinstance(attrs.get("codec"), str) and attrs["codec"] not in CODECS:
        problems.append(Problem(store, f"unknown codec '{attrs['codec']}', expected one of {CODECS}"))
    return problems


def validate_group(group: zarr.Group, name: str, layout: str, store: str) -> list[Problem]:
    """Problems of one clip/capture group: attributes, then every array's presence, dtype and shape."""
    attrs = dict(group.attrs)
    wanted = {**GROUP_ATTRS, **(STUDIO_ATTRS if layout == "studio" else {})}
    problems = _check_attrs(attrs, wanted, store, name) + _check_version(attrs, store, name)
    if isinstance(attrs.get("layout"), str) and attrs["layout"] != layout:
        problems.append(
            Problem(store, f"attribute 'layout' is '{attrs['layout']}' but the store is '{layout}'", name)
        )
    if isinstance(attrs.get("split"), str) and attrs["split"] not in SPLITS:
        problems.append(
            Problem(store, f"attribute 'split' is '{attrs['split']}', expected one of {SPLITS}", name)
        )
    sizes: dict[str, int] = {}
    for spec in LAYOUT_ARRAYS[layout]:
        try:
            array = group[spec.name]
        except KeyError:
            if spec.required:
                problems.append(Problem(store, "missing array", name, spec.name))
            continue
        if not isinstance(array, zarr.Array):
            problems.append(Problem(store, "expected an array, found a group", name, spec.name))
            continue
        problems += _check_array(array, spec, sizes, store, name, layout)
        if spec.name == "blendshapes" and attrs.get("blendshape_names") != list(ARKIT52_NAMES):
            problems.append(Problem(store, "attribute 'blendshape_names' must list the ARKit-52 names", name))
    cameras = attrs.get("camera_ids")
    if layout == "studio" and isinstance(cameras, list) and "C" in sizes and len(cameras) != sizes["C"]:
        problems.append(
            Problem(
                store,
                f"attribute 'camera_ids' has {len(attrs['camera_ids'])} entries for C={sizes['C']}",
                name,
            )
        )
    return problems


def _check_array(
    array: zarr.Array, spec: ArraySpec, sizes: dict[str, int], store: str, group: str, layout: str
) -> list[Problem]:
    """Dtype, rank and shape of one array; symbols (T, H, ...) are bound by the first array using them."""
    if array.dtype != np.dtype(spec.dtype):
        return [Problem(store, f"dtype is {array.dtype}, expected {spec.dtype}", group, spec.name)]
    expected = spec.shape
    if spec.name == f"{SMPLX_GROUP}/betas" and array.ndim == 2:
        expected = ("T", "S")  # per-frame shape coefficients
    if array.ndim != len(expected):
        return [Problem(store, f"shape is {array.shape}, expected {_shape_text(expected)}", group, spec.name)]
    for dim, (size, symbol) in enumerate(zip(array.shape, expected, strict=True)):
        bound = symbol if isinstance(symbol, int) else sizes.setdefault(symbol, size)
        if size != bound:
            return [
                Problem(
                    store,
                    f"shape is {array.shape}, expected {_shape_text(expected)} with "
                    f"{symbol}={bound} (axis {dim})",
                    group,
                    spec.name,
                )
            ]
    if spec.name in ("frames", "masks"):
        image_chunk = array.shape[-3:] if spec.name == "frames" else array.shape[-2:]
        wanted_chunks = (1,) * (2 if layout == "studio" else 1) + tuple(image_chunk)
        if tuple(array.chunks) != wanted_chunks:
            return [
                Problem(
                    store,
                    f"chunks are {array.chunks}, expected {wanted_chunks} (one image per chunk)",
                    group,
                    spec.name,
                )
            ]
    return []


def _shape_text(shape: tuple[str | int, ...]) -> str:
    return "[" + ",".join(str(s) for s in shape) + "]"


def validate(root: zarr.Group, store: str) -> list[Problem]:
    """Every structural problem of a store (root attributes, then each group); empty when it is valid."""
    problems = validate_root(root, store)
    layout = root.attrs.get("layout")
    if problems or layout not in LAYOUTS:
        return problems
    names = group_names(root)
    if not names:
        return [Problem(store, "the store holds no clip/capture groups")]
    splits_of: dict[str, set[str]] = {}
    for name in names:
        group = root[name]
        problems += validate_group(group, name, layout, store)
        splits_of.setdefault(str(group.attrs.get("identity")), set()).add(str(group.attrs.get("split")))
    for identity, splits in sorted(splits_of.items()):
        if len(splits) > 1:  # splits are by identity: a person seen in training must not be evaluated on
            problems.append(
                Problem(store, f"identity '{identity}' appears in several splits {sorted(splits)}")
            )
    return problems


def require_valid(root: zarr.Group, store: str) -> None:
    """Raise :class:`SchemaError` listing every structural problem, if any."""
    problems = validate(root, store)
    if problems:
        raise SchemaError(problems)
