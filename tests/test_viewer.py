"""``lca view`` in a real browser: the viewer serves a tiny avatar on 127.0.0.1, headless Chromium (Debian's
``chromium`` and ``chromium-driver``, driven by Selenium) opens it, and its screenshot shows the person
drawn over the viewer's grey; typing into a control's box in the page (an expression slider), and
setting the pose through viser's handles, each change the picture. Without Chromium the browser test is
skipped (``.ci/run`` installs it); the rest runs everywhere: the camera conversion against a closed form,
the controls' pose, bad input."""

from __future__ import annotations

import io
import math
import shutil
import socket
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from avatar_helpers import make_run, make_stores
from PIL import Image

from lca.cli import main
from lca.testing.helpers import free_port
from lca.viewer.pose import PRESETS, PoseControls
from lca.viewer.server import AvatarViewer, camera_matrices

GREY = 127.5  # the viewer's background, 0.5 grey


@pytest.fixture(scope="module")
def avatar(tmp_path_factory: pytest.TempPathFactory) -> dict:
    from lca.avatars import save_avatar
    from lca.avatars.create import create_avatar_file, load_model, store_references
    from lca.model.avatar import reference_poses

    folder = tmp_path_factory.mktemp("viewer")
    stores = make_stores(folder)
    run, _ = make_run(folder, stores)
    model, _ = load_model(run)
    views, _ = store_references(model.config, stores["studio"], "g002", 1)
    file = create_avatar_file(
        model, views.images, views.params["betas"][0], view_mask=views.valid, poses=reference_poses(views)
    )
    path = save_avatar(folder / "person.safetensors", file)
    return {"folder": folder, "file": file, "path": path, "run": run, "stores": stores}


def test_viser_camera_becomes_world_to_camera_and_intrinsics() -> None:
    """A camera at (0, 0, 3) turned half a turn about x (OpenCV axes: looking down -z, y still down on
    screen as the world's -y) sees the origin at the image centre, 3 m away; ``fov`` is vertical."""
    viewmat, K = camera_matrices(
        np.array([0.0, 0.0, 3.0]), np.array([0.0, 1.0, 0.0, 0.0]), math.pi / 2, 200, 100
    )
    origin = viewmat @ torch.tensor([0.0, 0.0, 0.0, 1.0])
    torch.testing.assert_close(origin[:3], torch.tensor([0.0, 0.0, 3.0]))
    torch.testing.assert_close(K, torch.tensor([[50.0, 0, 100], [0, 50.0, 50], [0, 0, 1]]))
    up = viewmat @ torch.tensor([0.0, 1.0, 0.0, 1.0])  # the world's up is the image's up (-y)
    assert up[1] < 0


def test_controls_pose_the_body() -> None:
    controls = PoseControls(
        preset="A-pose", offsets_deg={(18, 1): 90.0}, expression=[0.5], gaze_deg=(90.0, 0.0)
    )
    pose = controls.body_pose().reshape(21, 3)
    np.testing.assert_allclose(pose[15], PRESETS["A-pose"][16])  # left shoulder: joint 16 -> row 15
    assert pose[17, 1] == pytest.approx(math.pi / 2)  # left elbow, y, +90 degrees
    np.testing.assert_allclose(controls.gaze(), [[1.0, 0.0, 0.0]] * 2, atol=1e-7)  # yaw 90: the body's left
    clip = controls.clip(num_expression=10)
    assert clip.num_frames == 1 and clip.params["expression"][0, 0] == 0.5


def _screenshot(driver) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(driver.get_screenshot_as_png())).convert("RGB"), np.float64)


def _person_pixels(image: np.ndarray) -> int:
    """Pixels of the 3-D canvas (the page's left part; viser's control panel is on the right) that are not
    the render's grey background."""
    canvas = image[:, : image.shape[1] // 2]
    return int((np.abs(canvas - GREY).max(axis=-1) > 12).sum())


def _type_into(driver, handle, text: str) -> None:
    """Type ``text`` into the number box beside a viser slider (the page's own control) and leave it."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    slider = driver.find_element(By.ID, handle._impl.uuid)  # viser gives the slider its handle's id
    box = slider.find_element(By.XPATH, "./ancestor::*[.//input[@type='text']][1]//input[@type='text']")
    box.send_keys(Keys.CONTROL, "a")
    box.send_keys(text)
    box.send_keys(Keys.TAB)


def _changed(driver, before: np.ndarray, timeout: float = 30.0) -> bool:
    """Whether the canvas (left of viser's panel) shows a different picture within ``timeout``: at least
    50 of its pixels changed by more than 20 grey levels (the JPEG's own noise stays below that)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        time.sleep(1.0)
        after = _screenshot(driver)
        half = after.shape[1] // 2
        if int((np.abs(after[:, :half] - before[:, :half]).max(axis=-1) > 20).sum()) >= 50:
            return True
    return False


def test_the_browser_draws_the_person_and_a_pose_control_changes_it(avatar: dict) -> None:
    chromium, driver_path = shutil.which("chromium"), shutil.which("chromedriver")
    if chromium is None or driver_path is None:
        pytest.skip("Debian's chromium and chromium-driver are not installed (.ci/run installs them)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    viewer = AvatarViewer(
        [("person", avatar["file"])], port=free_port(), size=192, output_dir=avatar["folder"]
    )
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=900,600",
                 "--use-angle=swiftshader", "--enable-unsafe-swiftshader"):  # fmt: skip
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(driver_path), options=options)
    try:
        driver.get(viewer.url)
        deadline, drawn = time.time() + 60, 0
        while time.time() < deadline and drawn < 200:
            time.sleep(1.0)
            drawn = _person_pixels(before := _screenshot(driver))
        assert drawn >= 200, f"no person in the canvas ({drawn} foreground pixels)"
        _type_into(driver, viewer.code_sliders[0], "3")  # through the page: the slider's number box
        assert _changed(driver, before), "the picture did not change with the expression control"
        assert viewer.code_sliders[0].value == 3
        before = _screenshot(driver)
        viewer.preset.value = "sit"  # through viser's handles, as a script would; a value set on the
        viewer.sliders[(16, 2)].value = -60  # server reaches the page but calls no callback: redraw
        viewer.redraw_all()
        assert _changed(driver, before), "the picture did not change with the pose"
        shots = viewer.screenshot()
        assert shots and Image.open(shots[0]).size[1] == 192
    finally:
        driver.quit()
        viewer.close()


def test_bad_input_is_named(avatar: dict, tmp_path: Path, capsys) -> None:
    corrupt = tmp_path / "corrupt.safetensors"
    corrupt.write_bytes(b"not a safetensors file")
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        cases = [
            ([str(tmp_path / "none.safetensors")], "does not exist"),
            ([str(corrupt)], "corrupt.safetensors"),
            (["--checkpoint", str(avatar["run"])], "--checkpoint needs --store STORE and --group G"),
            ([], "Give an avatar file, or --checkpoint RUN --store STORE --group G, or --run RUN_DIR"),
            (["--run", str(tmp_path / "no-run")], "no-run does not exist (give runs/<pipeline>/<time>"),
            ([str(avatar["path"]), "--port", str(port)], f"Port {port} on 127.0.0.1 is in use"),
        ]
        for args, message in cases:
            assert main(["view", *args]) == 2, args
            err = " ".join(capsys.readouterr().err.split())
            assert message in err and "Traceback" not in err, (message, err)


def test_following_a_run_shows_each_new_checkpoint_and_the_losses(avatar: dict, tmp_path: Path) -> None:
    """A run whose pretraining checkpoint exists, then whose final post-training one appears: the follower
    makes an avatar of each in turn (the viewer swaps it in), and plots each stage's logged total loss."""
    from torch.utils.tensorboard import SummaryWriter

    from lca.avatars.create import load_model
    from lca.train.checkpoint import model_signature, save_checkpoint
    from lca.viewer.follow import RunFollower

    run = tmp_path / "run"
    shutil.copytree(avatar["run"], run)
    final = run / "checkpoints" / "posttrain"
    shutil.move(final, tmp_path / "later")
    model, _ = load_model(avatar["run"])
    meta = {"stage": "pretrain", "stage_index": 0, "step": 5, "final": False, "pipeline": model.config.name,
            "signature": model_signature(model.config)}  # fmt: skip
    save_checkpoint(run / "checkpoints" / "pretrain", "step-00000005", model=model, state=None, ema=None,
                    config_yaml=(run / "config.yaml").read_text(), meta=meta)  # fmt: skip
    writer = SummaryWriter(str(run / "tensorboard"))
    for step in range(3):
        writer.add_scalar("pretrain/loss/total", 1.0 - 0.1 * step, step)
    writer.flush()
    follower = RunFollower(run, avatar["stores"]["studio"])
    first = follower.poll()
    assert first is not None and first.label == "pretrain/step-00000005" and follower.group == "g002"
    assert follower.poll() is None  # nothing new
    viewer = AvatarViewer(
        [(first.label, first.avatar)], port=free_port(), size=32, follow=follower, poll_s=0.2
    )
    try:
        shutil.move(tmp_path / "later", final)
        for step in range(2):
            writer.add_scalar("posttrain/loss/total", 0.5 - 0.1 * step, step)
        writer.flush()
        deadline = time.time() + 30
        while time.time() < deadline and viewer.shown[0].name != "posttrain/final":
            time.sleep(0.2)
        assert viewer.shown[0].name == "posttrain/final" and viewer.checkpoint_text.value == "posttrain/final"
        x, series = follower.losses()
        np.testing.assert_array_equal(x, np.arange(5))
        np.testing.assert_allclose(series["pretrain"][:3], [1.0, 0.9, 0.8], atol=1e-6)
        np.testing.assert_allclose(series["posttrain"][3:], [0.5, 0.4], atol=1e-6)
        assert np.isnan(series["pretrain"][3:]).all() and np.isnan(series["posttrain"][:3]).all()
        assert viewer.loss_plot is not None and len(viewer.loss_plot.data) == 3
    finally:
        writer.close()
        viewer.close()


class _LineDriver(torch.nn.Module):
    """A face-crop driver whose code is ``mean + brightness * direction``: its codes lie on one line."""

    signals = ("face_crop",)

    def __init__(self) -> None:
        super().__init__()
        self.mean, self.direction = torch.tensor([1.0, -2.0, 0.5]), torch.tensor([0.6, 0.8, 0.0])

    def forward(self, signals: dict) -> torch.Tensor:
        brightness = signals["face_crop"].mean(dim=(2, 3, 4))  # [B, M]
        return self.mean + brightness[..., None] * self.direction


def test_code_directions_find_the_line_the_codes_lie_on() -> None:
    from lca.viewer.expression import CODE_SIGNAL, CodeDirections, CodeOverride

    levels = torch.tensor([0.1, 0.3, 0.5, 0.7, 0.9])
    crops = levels[:, None, None, None].expand(5, 3, 4, 4).clone()
    driver = _LineDriver()
    codes = CodeDirections(driver, crops, count=2)
    torch.testing.assert_close(codes.mean.float(), driver.mean + 0.5 * driver.direction)
    assert abs(float(codes.directions[0].float() @ driver.direction)) == pytest.approx(1.0, abs=1e-6)
    assert float(codes.spreads[0]) == pytest.approx(float(levels.std()), abs=1e-6)
    assert float(codes.spreads[1]) == pytest.approx(0.0, abs=1e-6)  # nothing off the line
    one_up = codes.code([1.0])[0, 0]
    assert float((one_up - codes.mean.float()).norm()) == pytest.approx(float(levels.std()), abs=1e-5)
    wrapped = CodeOverride(driver)
    given = torch.zeros(1, 1, 3)
    assert wrapped({CODE_SIGNAL: given, "face_crop": crops[None]}) is given
    torch.testing.assert_close(wrapped({"face_crop": crops[None]}), driver({"face_crop": crops[None]}))


def test_the_expression_code_sliders_reach_the_decoder(avatar: dict) -> None:
    """lca-tiny's expression driver reads face crops: its code's first principal direction changes the
    driven picture and leaves the canonical Gaussians (corrections off) as they were."""
    viewer = AvatarViewer([("person", avatar["file"])], port=free_port(), size=48)
    try:
        assert viewer.code_sliders, "a face-crop expression driver gets principal-direction sliders"
        camera = (np.asarray(viewer.server.initial_camera.position), np.array([0.0, 1.0, 0.0, 0.0]), 0.7, 1.0)
        images = {}
        for corrections in (True, False):
            viewer.corrections.value = corrections
            for value in (0.0, 3.0):
                viewer.code_sliders[0].value = value
                images[(corrections, value)] = viewer.render(*camera).astype(float)
        assert np.abs(images[(True, 3.0)] - images[(True, 0.0)]).max() > 0
        np.testing.assert_array_equal(images[(False, 3.0)], images[(False, 0.0)])
    finally:
        viewer.close()


def test_a_motion_plays_and_a_recording_becomes_an_mp4(avatar: dict, tmp_path: Path) -> None:
    import imageio.v3 as iio

    from lca.avatars.demo import demo_motion

    motion = demo_motion(frames=6, fps=20.0, face_size=16)
    viewer = AvatarViewer(
        [("person", avatar["file"])], port=free_port(), size=32, motion=motion, output_dir=tmp_path
    )
    try:
        camera = (np.asarray(viewer.server.initial_camera.position), np.array([0.0, 1.0, 0.0, 0.0]), 0.7, 1.0)
        first = viewer.render(*camera)
        viewer.frame.value = 3
        assert np.abs(viewer.render(*camera).astype(float) - first).max() > 0  # another frame of the dance
        viewer.use_motion.value = False
        viewer.toggle_recording()
        for degrees in (0, 30, 60):
            viewer.sliders[(17, 2)].value = degrees
            viewer.recording.append(viewer.render(*camera))  # what redraw appends for each browser
        path = viewer.toggle_recording()
        assert path is not None and iio.imread(path, plugin="FFMPEG").shape[0] == 3
        viewer.use_motion.value = True
        viewer.play.value = True
        start = int(viewer.frame.value)
        deadline = time.time() + 10
        while time.time() < deadline and int(viewer.frame.value) == start:
            time.sleep(0.05)
        assert int(viewer.frame.value) != start  # playing advances the frame
    finally:
        viewer.close()
