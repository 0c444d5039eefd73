"""Draw ``docs/images/viewer.png``: ``lca view`` of an avatar in headless Chromium, in the A-pose and in the
wave preset with the head turned, side by side (each the canvas's centre and the control panel).

    python docs/images/make_viewer_png.py person.safetensors docs/images/viewer.png

Needs Debian's ``chromium`` and ``chromium-driver`` (``apt-get install chromium chromium-driver``).
"""

from __future__ import annotations

import io
import socket
import sys
import time

import numpy as np
from PIL import Image


def main(avatar_path: str, out: str) -> None:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    from lca.avatars import load_avatar
    from lca.viewer.server import AvatarViewer

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    viewer = AvatarViewer([("person", load_avatar(avatar_path))], port=port, size=384)
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for flag in ("--headless=new", "--no-sandbox", "--window-size=1100,700", "--use-angle=swiftshader",
                 "--enable-unsafe-swiftshader"):  # fmt: skip
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
    shots = []
    try:
        driver.get(viewer.url)
        time.sleep(8)
        for preset, head in (("A-pose", 0), ("wave", 30)):
            viewer.preset.value = preset
            viewer.sliders[(15, 1)].value = head
            time.sleep(4)
            page = np.asarray(Image.open(io.BytesIO(driver.get_screenshot_as_png())).convert("RGB"))
            shots.append(page[:, 330:])  # the canvas right of viser's "software WebGL" notice, and the panel
    finally:
        driver.quit()
        viewer.close()
    Image.fromarray(np.concatenate(shots, axis=1)).save(out, optimize=True)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
