"""Specification of plots.animate: frames played inline with no network, and saved as GIF or WebP."""
from __future__ import annotations

import base64
import re

import numpy as np
import PIL.Image
import pytest

from course_lib import plots


def _frames(count: int = 6, shape=(48, 64, 3)) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    base = rng.integers(0, 256, size=shape, dtype=np.uint8)
    return [np.roll(base, 4 * i, axis=1) for i in range(count)]


def test_inline_animation_is_an_embedded_webp_that_plays_every_frame():
    html = plots.animate(_frames(), fps=5)._repr_html_()
    match = re.fullmatch(r'<img src="data:image/webp;base64,([A-Za-z0-9+/=]+)" width="64" height="48" .*>', html)
    assert match, html[:120]
    assert "http" not in html  # nothing to fetch: it plays offline, in the slides and on the site
    import io

    image = PIL.Image.open(io.BytesIO(base64.b64decode(match.group(1))))
    assert image.format == "WEBP" and image.n_frames == 6 and image.is_animated


@pytest.mark.parametrize("suffix, kind", [(".gif", "GIF"), (".webp", "WEBP")])
def test_saved_animation_has_every_frame_and_the_timing(tmp_path, suffix, kind):
    path = plots.animate(_frames(), fps=4).save(tmp_path / f"dream{suffix}")
    image = PIL.Image.open(path)
    assert image.format == kind and image.n_frames == 6
    if kind == "GIF":  # Pillow reads GIF frame timings back (WebP keeps them, but Pillow does not report them)
        durations = []
        for index in range(image.n_frames):
            image.seek(index)
            durations.append(image.info["duration"])
        assert durations[0] == 250 and durations[-1] == 250 + 1500  # 4 fps, and the last frame held
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"dream{suffix}"]  # written atomically


def test_frames_are_shrunk_so_files_stay_small():
    animation = plots.animate(_frames(shape=(600, 800, 3)), max_dim=200)
    assert animation.frames[0].shape == (150, 200, 3)


@pytest.mark.parametrize(
    "frames, options, message",
    [([np.zeros((8, 8, 3), np.uint8)], {}, "at least 2 frames"),
     ([np.zeros((8, 8, 3), np.uint8), np.zeros((8, 9, 3), np.uint8)], {}, "same shape"),
     (None, {"fps": 0}, "fps"), (None, {"fps": float("nan")}, "fps")],
)
def test_bad_animations_are_refused_clearly(frames, options, message):
    with pytest.raises(ValueError, match=message):
        plots.animate(_frames() if frames is None else frames, **options)


def test_unknown_formats_are_refused_before_writing(tmp_path):
    with pytest.raises(ValueError, match=r"\.gif or \.webp"):
        plots.animate(_frames()).save(tmp_path / "dream.mp4")
    assert not list(tmp_path.iterdir())
