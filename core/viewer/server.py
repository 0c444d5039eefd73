"""``lca view``: a viser web viewer for drivable avatars.

Rendering is done on the server, with the avatar's own ``drive`` and the pipeline's rasterizer, for each
browser's camera, and sent to the page as its background image. viser's splat renderer would orbit
faster, but it draws fixed Gaussians: the avatar's appearance depends on the pose (the decoder's
driving correction, per-frame skinning), which only ``drive`` computes; a render from the model's own
path is what training and evaluation see.

Controls: a body-pose preset and sliders for the main joints, the template's expression coefficients,
gaze, driving corrections on/off, a motion file's play/pause and frame, screenshot and record-to-MP4
buttons, and the frame rate. With two avatars (``--compare``) both are drawn side by side from the same
camera.
"""

from __future__ import annotations

import math
import socket
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from lca.avatars.animate import draw, face_input_size, framing, skinned_anchors, write_video
from lca.avatars.file import AvatarFile
from lca.avatars.motion import MotionClip, open_motion
from lca.avatars.player import load_player
from lca.errors import LcaError
from lca.viewer.expression import CODE_SIGNAL, CodeDirections, face_crop_driver, install_code_directions
from lca.viewer.follow import RunFollower
from lca.viewer.pose import AXES, BLENDSHAPE_SLIDERS, JOINTS, PRESETS, PoseControls

MAX_EXPRESSION_SLIDERS = 10
BACKGROUND = "grey"
STAGE_COLORS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd")


def check_port(host: str, port: int) -> None:
    """Refuse a port something else listens on (viser would silently move to another one)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as error:
            raise LcaError(
                f"Port {port} on {host} is in use ({error.strerror}): choose another with --port."
            ) from error


@dataclass
class Shown:
    """One avatar on screen: its file, player, batched tensors and (for a face-crop expression driver) the
    principal directions of its expression code."""

    name: str
    avatar: AvatarFile
    player: Any
    batch: Any
    codes: CodeDirections | None = None


def show(name: str, avatar: AvatarFile, device: str, crops: torch.Tensor | None = None) -> Shown:
    """An avatar ready to draw; ``crops`` (face crops of changing expressions) give its code directions."""
    player = load_player(avatar, device)
    codes = None if crops is None else install_code_directions(player, crops.to(device))
    return Shown(name, avatar, player, avatar.batched(device), codes)


def _expression_crops(size: int | None) -> torch.Tensor:
    """Face crops ``[T, 3, size, size]`` of the demo performer's changing expressions."""
    from lca.avatars.demo import demo_motion

    clip = demo_motion(frames=24, face_size=size or 64)
    return torch.from_numpy(clip.signals["face_crop"]).float()


def camera_matrices(
    position: np.ndarray, wxyz: np.ndarray, fov: float, width: int, height: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """viser's camera (OpenCV axes: position and camera-to-world rotation ``wxyz``, vertical ``fov`` in
    radians) -> world-to-camera ``[4, 4]`` and ``K [3, 3]`` for a ``width x height`` image."""
    from scipy.spatial.transform import Rotation

    w, x, y, z = (float(v) for v in wxyz)
    c2w = np.eye(4)
    c2w[:3, :3] = Rotation.from_quat([x, y, z, w]).as_matrix()
    c2w[:3, 3] = position
    focal = 0.5 * height / math.tan(fov / 2)
    K = np.array([[focal, 0, width / 2], [0, focal, height / 2], [0, 0, 1]])
    return torch.from_numpy(np.linalg.inv(c2w)).float(), torch.from_numpy(K).float()


class AvatarViewer:
    """A viser server showing ``avatars`` (one, or two side by side) driven by the page's controls."""

    def __init__(
        self,
        avatars: list[tuple[str, AvatarFile]],
        *,
        host: str = "127.0.0.1",
        port: int = 8080,
        size: int = 256,
        motion: MotionClip | str | None = None,
        output_dir: Path = Path("."),
        device: str = "cpu",
        follow: RunFollower | None = None,
        poll_s: float = 5.0,
    ) -> None:
        import viser

        check_port(host, port)
        self.size = size
        self.device = device
        self.output_dir = Path(output_dir)
        self.shown = [show(name, avatar, device) for name, avatar in avatars]
        first = self.shown[0].player
        self.num_expression = first.template.num_expression
        if isinstance(motion, str):
            motion = open_motion(motion, self.num_expression, face_input_size(first) or 64)
        self.motion = motion
        self.crops = _expression_crops(face_input_size(first)) if face_crop_driver(first) else None
        if self.crops is not None:
            for shown in self.shown:
                shown.codes = install_code_directions(shown.player, self.crops.to(device))
        self.reads_blendshapes = any("blendshapes" in d.signals for d in first.drivers.values())
        self.controls = PoseControls(expression=[0.0] * self.num_expression)
        self.lock = threading.Lock()
        self.last: dict[int, np.ndarray] = {}
        self.recording: list[np.ndarray] | None = None
        self.frame_ms: float | None = None
        self.server = viser.ViserServer(host=host, port=port, verbose=False)
        self.url = f"http://{host}:{port}"
        self._frame_camera()
        self._build_gui()
        self.server.on_client_connect(self._connect)
        self._playing = threading.Event()
        self._stop = threading.Event()
        threading.Thread(target=self._play_loop, daemon=True).start()
        self.follow = follow
        if follow is not None:
            self._build_follow_gui()
            threading.Thread(target=self._follow_loop, args=(poll_s,), daemon=True).start()

    # -------------------------------------------------------------------------------- set-up
    def _frame_camera(self) -> None:
        """New browsers start in front of the body (+z), framing it in the A-pose."""
        shown = self.shown[0]
        clip = PoseControls().clip(self.num_expression)
        params = clip.template_params(shown.avatar.betas, self.num_expression)
        with torch.no_grad():
            centre, distance = framing(skinned_anchors(shown.player, shown.avatar, params))
        centre = centre.numpy().astype(float)
        self.server.initial_camera.position = tuple(centre + np.array([0.0, 0.0, distance]))
        self.server.initial_camera.look_at = tuple(centre)
        self.server.initial_camera.up = (0.0, 1.0, 0.0)

    def _build_gui(self) -> None:
        gui = self.server.gui
        self.fps_text = gui.add_text("Frame rate", initial_value="-", disabled=True)
        self.preset = gui.add_dropdown("Pose preset", tuple(PRESETS), initial_value=self.controls.preset)
        self.corrections = gui.add_checkbox("Driving corrections", initial_value=True)
        self.sliders: dict[tuple[int, int], Any] = {}
        with gui.add_folder("Body (degrees)", expand_by_default=False):
            for joint, name in JOINTS.items():
                for axis in range(3):
                    self.sliders[(joint, axis)] = gui.add_slider(
                        f"{name} {AXES[axis]}", min=-90, max=90, step=1, initial_value=0
                    )
        self.code_sliders: list[Any] = []
        if self.shown[0].codes is not None:
            with gui.add_folder("Expression code (principal directions)"):
                for i in range(len(self.shown[0].codes.spreads)):
                    self.code_sliders.append(
                        gui.add_slider(f"direction {i + 1} (std)", min=-3, max=3, step=0.1, initial_value=0)
                    )
        self.blendshape_sliders: dict[str, Any] = {}
        if self.reads_blendshapes:
            with gui.add_folder("Blendshapes (ARKit)"):
                for name in BLENDSHAPE_SLIDERS:
                    self.blendshape_sliders[name] = gui.add_slider(
                        name, min=0, max=1, step=0.05, initial_value=0
                    )
        self.expression: list[Any] = []
        with gui.add_folder("Template expression", expand_by_default=False):
            for i in range(min(self.num_expression, MAX_EXPRESSION_SLIDERS)):
                self.expression.append(
                    gui.add_slider(f"coefficient {i}", min=-3, max=3, step=0.1, initial_value=0)
                )
        with gui.add_folder("Gaze (degrees)"):
            self.gaze = (gui.add_slider("yaw", min=-40, max=40, step=1, initial_value=0),
                         gui.add_slider("pitch", min=-30, max=30, step=1, initial_value=0))  # fmt: skip
        self.use_motion = self.play = self.frame = None
        if self.motion is not None:
            with gui.add_folder("Motion"):
                self.use_motion = gui.add_checkbox("Drive with the motion", initial_value=True)
                self.play = gui.add_checkbox("Play", initial_value=False)
                self.frame = gui.add_slider(
                    "Frame", min=0, max=self.motion.num_frames - 1, step=1, initial_value=0
                )
        self.screenshot_button = gui.add_button("Screenshot")
        self.record_button = gui.add_button("Record")
        handles = (*self.sliders.values(), *self.expression, *self.gaze, *self.code_sliders)
        for handle in (self.preset, self.corrections, *handles, *self.blendshape_sliders.values()):
            handle.on_update(lambda _event: self.redraw_all())
        if self.frame is not None:
            self.use_motion.on_update(lambda _event: self.redraw_all())
            self.frame.on_update(lambda _event: self.redraw_all())
            self.play.on_update(
                lambda _event: self._playing.set() if self.play.value else self._playing.clear()
            )
        self.screenshot_button.on_click(lambda _event: self.screenshot())
        self.record_button.on_click(lambda _event: self.toggle_recording())

    def _build_follow_gui(self) -> None:
        gui = self.server.gui
        label = self.follow.last.label if self.follow.last else "none yet"
        self.checkpoint_text = gui.add_text("Checkpoint", initial_value=label, disabled=True)
        self.loss_plot = None
        self.update_losses()

    def update_losses(self) -> None:
        """Plot the run's logged total loss per stage (created on the first data)."""
        import viser.uplot as uplot

        x, series = self.follow.losses()
        if not len(x):
            return
        data = (x, *series.values())
        if self.loss_plot is not None and len(self.loss_plot.data) == len(data):
            self.loss_plot.data = data
            return
        if self.loss_plot is not None:
            self.loss_plot.remove()
        lines = [
            uplot.Series(label=stage, stroke=STAGE_COLORS[i % len(STAGE_COLORS)])
            for i, stage in enumerate(series)
        ]
        self.loss_plot = self.server.gui.add_uplot(
            data, (uplot.Series(label="step"), *lines), title="loss (total)", aspect=1.6
        )

    def _follow_loop(self, poll_s: float) -> None:
        while not self._stop.wait(poll_s):
            snapshot = self.follow.poll()
            if snapshot is not None:
                shown = show(snapshot.label, snapshot.avatar, self.device, self.crops)
                with self.lock:
                    self.shown[0] = shown
                self.checkpoint_text.value = snapshot.label
                self.redraw_all()
            self.update_losses()

    def _connect(self, client: Any) -> None:
        client.camera.on_update(lambda _camera: self.redraw(client))
        self.redraw(client)

    # -------------------------------------------------------------------------------- drawing
    def current_clip(self) -> MotionClip:
        """The frame to draw: the motion's current frame when one drives the avatar, else the controls'."""
        if self.motion is not None and self.use_motion.value:
            return self.motion.select([int(self.frame.value)])
        self.controls.preset = self.preset.value
        self.controls.offsets_deg = {key: float(s.value) for key, s in self.sliders.items() if s.value}
        self.controls.expression = [float(s.value) for s in self.expression]
        self.controls.gaze_deg = (float(self.gaze[0].value), float(self.gaze[1].value))
        self.controls.blendshapes = {name: float(h.value) for name, h in self.blendshape_sliders.items()}
        return self.controls.clip(self.num_expression)

    def render(self, position: np.ndarray, wxyz: np.ndarray, fov: float, aspect: float) -> np.ndarray:
        """The image a camera sees: each avatar at ``size`` pixels high, side by side."""
        clip = self.current_clip()
        height = self.size
        width = max(16, round(self.size * aspect / len(self.shown)))
        viewmat, K = camera_matrices(position, wxyz, fov, width, height)
        start = time.perf_counter()
        images = []
        with self.lock, torch.no_grad():
            for shown in self.shown:
                params = clip.template_params(shown.avatar.betas, self.num_expression)
                signals = clip.driving_signals(params, face_input_size(shown.player))
                if shown.codes is not None and not (self.motion is not None and self.use_motion.value):
                    signals[CODE_SIGNAL] = shown.codes.code([float(h.value) for h in self.code_sliders])
                cameras = (viewmat[None], K[None], (width, height))
                image = draw(shown.player, shown.batch, params, signals, *cameras, BACKGROUND,
                             corrections=self.corrections.value)  # fmt: skip
                images.append(image[0])
        elapsed = time.perf_counter() - start
        self.frame_ms = elapsed * 1000 if self.frame_ms is None else 0.8 * self.frame_ms + 200 * elapsed
        self.fps_text.value = f"{1000 / self.frame_ms:.1f} frames/s ({self.frame_ms:.0f} ms per frame)"
        return np.concatenate(images, axis=1)

    def redraw(self, client: Any) -> None:
        camera = client.camera
        image = self.render(np.asarray(camera.position), np.asarray(camera.wxyz), camera.fov, camera.aspect)
        self.last[client.client_id] = image
        if self.recording is not None:
            self.recording.append(image)
        client.scene.set_background_image(image, format="jpeg")

    def redraw_all(self) -> None:
        for client in self.server.get_clients().values():
            self.redraw(client)

    def _play_loop(self) -> None:
        while not self._stop.is_set():
            if not self._playing.wait(timeout=0.2):
                continue
            start = time.perf_counter()
            self.frame.value = (int(self.frame.value) + 1) % self.motion.num_frames
            self.redraw_all()  # a value set on the server sends it to the page but calls no callback
            time.sleep(max(0.0, 1.0 / self.motion.fps - (time.perf_counter() - start)))

    # -------------------------------------------------------------------------------- outputs
    def screenshot(self) -> list[Path]:
        """Each browser's last picture as ``screenshot-<client>-<time>.png`` in the output folder."""
        import imageio.v3 as iio

        self.output_dir.mkdir(parents=True, exist_ok=True)
        stamp = time.strftime("%Y%m%d-%H%M%S")
        paths = []
        for client_id, image in self.last.items():
            paths.append(self.output_dir / f"screenshot-{client_id}-{stamp}.png")
            iio.imwrite(paths[-1], image)
        return paths

    def toggle_recording(self) -> Path | None:
        """Start recording every drawn picture, or stop and write them as ``recording-<time>.mp4``."""
        if self.recording is None:
            self.recording = []
            self.record_button.label = "Stop recording"
            return None
        frames, self.recording = self.recording, None
        self.record_button.label = "Record"
        if not frames:
            return None
        shape = frames[0].shape
        frames = [f for f in frames if f.shape == shape]  # a resized window changes the picture's size
        path = self.output_dir / f"recording-{time.strftime('%Y%m%d-%H%M%S')}.mp4"
        self.output_dir.mkdir(parents=True, exist_ok=True)
        return write_video(path, np.stack(frames), fps=self.motion.fps if self.motion else 10.0)

    def close(self) -> None:
        self._stop.set()
        self.server.stop()
