"""Writing stores frame by frame, so a renderer or an importer never holds a whole clip in memory.

    with StoreWriter("people.zarr", "wild-video", codec="jpeg") as store:
        clip = store.add_clip("clip-0000", identity="id-0000", split="train", num_frames=T, height=H, width=W)
        for t in range(T):
            clip.append(image=rgb, mask=alpha, smplx=params, face_box=box, viewmat=w2c, K=K)
    # leaving the block closes every group and consolidates the metadata

Images and masks go to disk as they are appended (one chunk each); the small per-frame arrays (cameras,
SMPL-X, boxes, gaze, blendshapes) are buffered and written whole when the group is closed.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numcodecs
import numpy as np
import zarr
from numpy.typing import ArrayLike
from zarr.codecs import ZstdCodec

from lca.data.schema import (
    ARKIT52_NAMES,
    CODECS,
    LAYOUTS,
    SCHEMA_VERSION,
    SMPLX_GROUP,
    SMPLX_POSE_DIMS,
    ZARR_FORMAT,
    register_image_codecs,
)
from lca.errors import Problem, StoreError
from lca.splits import SPLITS


def _image_compressor(codec: str, quality: int) -> Any:
    """The compressor of ``frames`` for a store codec (imagecodecs' numcodecs codecs for lossy ones)."""
    from imagecodecs.numcodecs import Jpeg, Webp

    if codec == "jpeg":
        return Jpeg(level=quality)
    if codec == "webp":
        return Webp(level=quality, lossless=False)
    return ZstdCodec(level=3, checksum=True)


def _lossless(zarr_format: int) -> Any:
    """Zstd with a checksum, so corrupted bytes fail loudly, in the codec flavour of the zarr format."""
    return ZstdCodec(level=3, checksum=True) if zarr_format == 3 else numcodecs.Zstd(level=3, checksum=True)


class GroupWriter:
    """One clip (``wild-video``) or capture (``studio``) being written; frames are appended in order."""

    def __init__(
        self,
        group: zarr.Group,
        name: str,
        layout: str,
        num_frames: int,
        frame_shape: tuple[int, ...],
        *,
        betas: np.ndarray | None,
        num_betas: int,
        num_expression: int,
        with_gaze: bool,
        with_blendshapes: bool,
        image_compressor: Any,
        zarr_format: int,
    ) -> None:
        self.group, self.name, self.layout, self.num_frames = group, name, layout, num_frames
        self.frame_shape = frame_shape  # (H, W) for wild, (C, H, W) for studio
        self.betas, self.num_betas, self.num_expression = betas, num_betas, num_expression
        self.with_gaze, self.with_blendshapes = with_gaze, with_blendshapes
        self._zarr_format = zarr_format
        self._next = 0
        self._closed = False
        self._buffers: dict[str, list[np.ndarray]] = {}
        lead = (num_frames, *frame_shape[:-2])
        self.frames = self._create("frames", (*lead, *frame_shape[-2:], 3), image_compressor)
        self.masks = self._create("masks", (*lead, *frame_shape[-2:]), _lossless(zarr_format))

    def _create(self, name: str, shape: tuple[int, ...], compressor: Any) -> zarr.Array:
        chunk_lead = 2 if self.layout == "studio" else 1
        chunks = (1,) * chunk_lead + shape[chunk_lead:]
        extra: dict[str, Any] = {}
        if self._zarr_format == 3:
            dims = ["t", "camera", "y", "x", "c"] if self.layout == "studio" else ["t", "y", "x", "c"]
            extra["dimension_names"] = dims[: len(shape)]
        # write_empty_chunks: a black frame must still exist on disk, so a missing chunk file is a defect.
        return self.group.create_array(
            name,
            shape=shape,
            chunks=chunks,
            dtype="uint8",
            compressors=compressor,
            filters=None,
            config={"write_empty_chunks": True},
            **extra,
        )

    def _push(self, key: str, value: ArrayLike, shape: tuple[int, ...]) -> None:
        array = np.asarray(value, dtype=np.float32)
        if array.shape != shape:
            raise ValueError(
                f"group '{self.name}' frame {self._next}: '{key}' has shape {array.shape}, expected {shape}"
            )
        self._buffers.setdefault(key, []).append(array)

    def append(
        self,
        *,
        image: ArrayLike,
        mask: ArrayLike,
        smplx: Mapping[str, ArrayLike],
        face_box: ArrayLike,
        viewmat: ArrayLike | None = None,
        K: ArrayLike | None = None,
        gaze: ArrayLike | None = None,
        blendshapes: ArrayLike | None = None,
    ) -> int:
        """Write the next frame and return its index.

        Args:
            image: uint8 RGB ``[H,W,3]`` (wild) or ``[C,H,W,3]`` (studio).
            mask: uint8 ``[H,W]`` / ``[C,H,W]``, 0 background to 255 person.
            smplx: SMPL-X parameters of this frame: every key of ``SMPLX_POSE_DIMS`` (flat axis-angle,
                ``transl`` in metres), ``expression [E]``, and ``betas [S]`` when betas are per frame.
            face_box: ``[4]`` (wild) or ``[C,4]`` (studio), x0,y0,x1,y1 pixels; x1<=x0 when no face.
            viewmat, K: this frame's world-to-camera ``[4,4]`` and intrinsics ``[3,3]`` (wild only).
            gaze: ``[2,3]`` unit directions of the left and right eye in world space, if the group has gaze.
            blendshapes: ``[52]`` ARKit coefficients (groups created with blendshapes).
        """
        if self._closed or self._next >= self.num_frames:
            raise ValueError(f"group '{self.name}': all {self.num_frames} frames are already written")
        t = self._next
        lead = self.frame_shape[:-2]
        image = np.asarray(image)
        mask = np.asarray(mask)
        if image.dtype != np.uint8 or image.shape != (*self.frame_shape, 3):
            raise ValueError(
                f"group '{self.name}' frame {t}: image is {image.dtype} {image.shape}, "
                f"expected uint8 {(*self.frame_shape, 3)}"
            )
        if mask.dtype != np.uint8 or mask.shape != self.frame_shape:
            raise ValueError(
                f"group '{self.name}' frame {t}: mask is {mask.dtype} {mask.shape}, "
                f"expected uint8 {self.frame_shape}"
            )
        for key, width in SMPLX_POSE_DIMS.items():
            self._push(f"{SMPLX_GROUP}/{key}", _need(smplx, key, self.name, t), (width,))
        self._push(
            f"{SMPLX_GROUP}/expression", _need(smplx, "expression", self.name, t), (self.num_expression,)
        )
        if self.betas is None:
            self._push(f"{SMPLX_GROUP}/betas", _need(smplx, "betas", self.name, t), (self.num_betas,))
        self._push("face_box", face_box, (*lead, 4))
        if self.layout == "wild-video":
            if viewmat is None or K is None:
                raise ValueError(f"group '{self.name}' frame {t}: wild-video frames need a viewmat and K")
            self._push("viewmats", viewmat, (4, 4))
            self._push("Ks", K, (3, 3))
        if self.with_gaze:
            if gaze is None:
                raise ValueError(
                    f"group '{self.name}' frame {t}: this group was created with gaze; pass gaze"
                )
            self._push("gaze", gaze, (2, 3))
        if self.with_blendshapes:
            if blendshapes is None:
                raise ValueError(f"group '{self.name}' frame {t}: this group was created with blendshapes")
            self._push("blendshapes", blendshapes, (len(ARKIT52_NAMES),))
        self.frames[t] = image
        self.masks[t] = mask
        self._next += 1
        return t

    def close(self) -> None:
        """Write the buffered per-frame arrays; every frame must have been appended."""
        if self._closed:
            return
        if self._next != self.num_frames:
            raise ValueError(f"group '{self.name}': {self._next} of {self.num_frames} frames were appended")
        if self.betas is not None:
            self._write_small(f"{SMPLX_GROUP}/betas", self.betas)
        for key, rows in self._buffers.items():
            self._write_small(key, np.stack(rows))
        self._closed = True

    def _write_small(self, name: str, data: np.ndarray) -> None:
        # write_empty_chunks: an all-zero pose is stored too, so a missing chunk is a defect (schema v2)
        self.group.create_array(
            name,
            data=data.astype(np.float32),
            compressors=_lossless(self._zarr_format),
            config={"write_empty_chunks": True},
        )


def _need(params: Mapping[str, ArrayLike], key: str, group: str, t: int) -> ArrayLike:
    if key not in params:
        raise ValueError(f"group '{group}' frame {t}: SMPL-X parameter '{key}' is missing")
    return params[key]


class StoreWriter:
    """Creates a store of one layout and codec, then its groups; consolidates metadata on close. Used as a
    context manager, a failure inside removes the store again (:meth:`discard`)."""

    def __init__(
        self,
        url: str,
        layout: str,
        *,
        codec: str = "zstd",
        quality: int = 95,
        storage_options: Mapping[str, Any] | None = None,
        overwrite: bool = False,
    ) -> None:
        if layout not in LAYOUTS:
            raise ValueError(f"unknown layout '{layout}', expected one of {LAYOUTS}")
        if codec not in CODECS:
            raise ValueError(f"unknown codec '{codec}', expected one of {CODECS}")
        self.url, self.layout, self.codec = url, layout, codec
        self._zarr_format = ZARR_FORMAT[codec]
        self._image_compressor = _image_compressor(codec, quality)
        options = dict(storage_options) if storage_options else None
        self._storage_options = dict(options or {})
        register_image_codecs()  # consolidation re-reads the lossy arrays' metadata
        try:
            self.root = zarr.open_group(
                url, mode="w" if overwrite else "w-", zarr_format=self._zarr_format, storage_options=options
            )
        except FileExistsError as error:
            message = "already holds data; pass overwrite=True (CLI: --overwrite) to replace it"
            raise StoreError([Problem(str(url), message)]) from error
        attrs: dict[str, Any] = {"schema_version": SCHEMA_VERSION, "layout": layout, "codec": codec}
        if codec != "zstd":
            attrs["codec_quality"] = quality
        self.root.attrs.update(attrs)
        self._groups: list[GroupWriter] = []

    def _group(
        self,
        name: str,
        identity: str,
        split: str,
        fps: float,
        source: str,
        extra_attrs: Mapping[str, Any],
    ) -> zarr.Group:
        if split not in SPLITS:
            raise ValueError(f"group '{name}': split '{split}' is not one of {SPLITS}")
        group = self.root.create_group(name)
        group.attrs.update(
            {
                "schema_version": SCHEMA_VERSION,
                "layout": self.layout,
                "identity": identity,
                "split": split,
                "fps": float(fps),
                "source": source,
                **extra_attrs,
            }
        )
        return group

    def add_clip(
        self,
        name: str,
        *,
        identity: str,
        split: str,
        num_frames: int,
        height: int,
        width: int,
        fps: float = 30.0,
        source: str = "",
        betas: ArrayLike | None = None,
        num_betas: int = 10,
        num_expression: int = 10,
        with_gaze: bool = False,
        with_blendshapes: bool = False,
    ) -> GroupWriter:
        """Start a ``wild-video`` clip; ``betas [S]`` fixes the shape for the clip, ``None``: per frame.
        ``with_blendshapes``: per-frame ARKit-52 coefficients (e.g. from a monocular face tracker)."""
        if self.layout != "wild-video":
            raise ValueError(
                f"add_clip writes wild-video groups; this store is '{self.layout}' (use add_capture)"
            )
        extra = {"blendshape_names": list(ARKIT52_NAMES)} if with_blendshapes else {}
        group = self._group(name, identity, split, fps, source, extra)
        return self._start(
            group,
            name,
            num_frames,
            (height, width),
            betas,
            num_betas,
            num_expression,
            with_gaze,
            with_blendshapes,
        )

    def add_capture(
        self,
        name: str,
        *,
        identity: str,
        split: str,
        num_frames: int,
        height: int,
        width: int,
        viewmats: ArrayLike,
        Ks: ArrayLike,
        camera_ids: Sequence[str] | None = None,
        fps: float = 30.0,
        source: str = "",
        betas: ArrayLike | None = None,
        num_betas: int = 10,
        num_expression: int = 10,
        with_gaze: bool = False,
        with_blendshapes: bool = False,
    ) -> GroupWriter:
        """Start a ``studio`` capture with fixed calibrated cameras ``viewmats [C,4,4]``, ``Ks [C,3,3]``."""
        if self.layout != "studio":
            raise ValueError(
                f"add_capture writes studio groups; this store is '{self.layout}' (use add_clip)"
            )
        viewmats = np.asarray(viewmats, dtype=np.float32)
        Ks = np.asarray(Ks, dtype=np.float32)
        cameras = viewmats.shape[0]
        if viewmats.shape != (cameras, 4, 4) or Ks.shape != (cameras, 3, 3):
            raise ValueError(
                f"group '{name}': viewmats {viewmats.shape} and Ks {Ks.shape} must be [C,4,4] and [C,3,3]"
            )
        ids = list(camera_ids) if camera_ids is not None else [f"cam{c:03d}" for c in range(cameras)]
        if len(ids) != cameras:
            raise ValueError(f"group '{name}': {len(ids)} camera_ids for {cameras} cameras")
        extra: dict[str, Any] = {"camera_ids": ids}
        if with_blendshapes:
            extra["blendshape_names"] = list(ARKIT52_NAMES)
        group = self._group(name, identity, split, fps, source, extra)
        writer = self._start(
            group,
            name,
            num_frames,
            (cameras, height, width),
            betas,
            num_betas,
            num_expression,
            with_gaze,
            with_blendshapes,
        )
        writer._write_small("viewmats", viewmats)
        writer._write_small("Ks", Ks)
        return writer

    def _start(
        self,
        group: zarr.Group,
        name: str,
        num_frames: int,
        frame_shape: tuple[int, ...],
        betas: ArrayLike | None,
        num_betas: int,
        num_expression: int,
        with_gaze: bool,
        with_blendshapes: bool,
    ) -> GroupWriter:
        fixed_betas = None if betas is None else np.asarray(betas, dtype=np.float32).reshape(-1)
        writer = GroupWriter(
            group,
            name,
            self.layout,
            num_frames,
            frame_shape,
            betas=fixed_betas,
            num_betas=num_betas if fixed_betas is None else fixed_betas.shape[0],
            num_expression=num_expression,
            with_gaze=with_gaze,
            with_blendshapes=with_blendshapes,
            image_compressor=self._image_compressor,
            zarr_format=self._zarr_format,
        )
        self._groups.append(writer)
        return writer

    def close(self) -> None:
        """Close every group and consolidate the metadata (one read opens the whole store)."""
        for writer in self._groups:
            writer.close()
        with warnings.catch_warnings():
            # zarr warns that consolidated metadata is not in the v3 spec; zarr-python itself reads it.
            warnings.simplefilter("ignore", category=UserWarning)
            zarr.consolidate_metadata(self.root.store)

    def __enter__(self) -> StoreWriter:
        return self

    def __exit__(self, exc_type: object, *_: object) -> None:
        if exc_type is None:
            self.close()
        else:
            self.discard()

    def discard(self) -> None:
        """Remove the store this writer created (after a failure): a half-written store must never be left
        where a reader could take it for a whole one."""
        import fsspec

        fs, path = fsspec.core.url_to_fs(str(self.url), **self._storage_options)
        if fs.exists(path):
            fs.rm(path, recursive=True)
