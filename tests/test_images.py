"""Specification of course_lib.images: every picture becomes RGB uint8, or a clear ImageError.

Every test image is made here with Pillow or NumPy, so each test states exactly what goes in.
"""
from __future__ import annotations

import io
import struct
import subprocess
import sys
import textwrap
import types
import zlib

import numpy as np
import PIL.Image
import PIL.ImageFile
import pytest

from course_lib import images, plots
from course_lib.data import OfflineError

# ---------------------------------------------------------------------------------------------
# Helpers that make real image files
# ---------------------------------------------------------------------------------------------


def gradient_rgb(height: int = 48, width: int = 64) -> np.ndarray:
    """A smooth colour gradient (compresses well and survives JPEG nearly unchanged)."""
    rows = np.linspace(0, 255, height)[:, None]
    cols = np.linspace(0, 255, width)[None, :]
    return np.stack([rows + 0 * cols, 0 * rows + cols, (rows + cols) / 2], axis=-1).round().astype(np.uint8)


def noise_rgb(height: int, width: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


def png_header_only(width: int, height: int) -> bytes:
    """A PNG whose header declares width x height pixels, with almost no pixel data: a decompression bomb."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)  # 8-bit RGB
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\x00" * 16)) + chunk(b"IEND", b"")


# ---------------------------------------------------------------------------------------------
# Files and conversions
# ---------------------------------------------------------------------------------------------


def test_png_file_loads_as_identical_rgb_uint8(tmp_path):
    pixels = gradient_rgb()
    path = tmp_path / "photo.png"
    PIL.Image.fromarray(pixels).save(path)
    loaded = images.load(path)
    assert loaded.dtype == np.uint8 and loaded.shape == (48, 64, 3)
    np.testing.assert_array_equal(loaded, pixels)
    assert loaded.flags.writeable


def test_path_as_string_bytes_and_pil_image_give_the_same_pixels(tmp_path):
    pixels = gradient_rgb()
    path = tmp_path / "photo.png"
    PIL.Image.fromarray(pixels).save(path)
    np.testing.assert_array_equal(images.load(str(path)), pixels)
    np.testing.assert_array_equal(images.load(path.read_bytes()), pixels)
    with PIL.Image.open(path) as opened:
        np.testing.assert_array_equal(images.load(opened), pixels)


def test_sixteen_bit_grey_png_is_scaled_by_its_bit_depth_not_clipped(tmp_path):
    values = np.array([[0, 257 * 64, 257 * 128, 65535]], dtype=np.uint16).repeat(4, axis=0)
    path = tmp_path / "grey16.png"
    PIL.Image.fromarray(values).save(path)
    with PIL.Image.open(path) as reopened:
        assert reopened.mode in ("I;16", "I"), reopened.mode  # really a 16-bit file
    loaded = images.load(path)
    assert loaded.shape == (4, 4, 3)
    np.testing.assert_array_equal(loaded[0, :, 0], [0, 64, 128, 255])
    np.testing.assert_array_equal(loaded[..., 0], loaded[..., 2])  # grey: three equal channels


def test_eight_bit_grey_and_one_bit_images_become_three_equal_channels(tmp_path):
    grey = np.array([[0, 100, 200, 255]], dtype=np.uint8)
    PIL.Image.fromarray(grey, mode="L").save(tmp_path / "grey.png")
    np.testing.assert_array_equal(images.load(tmp_path / "grey.png")[0], np.stack([grey[0]] * 3, axis=-1))
    PIL.Image.fromarray(np.array([[True, False]])).convert("1").save(tmp_path / "bits.png")
    np.testing.assert_array_equal(images.load(tmp_path / "bits.png")[0], [[255, 255, 255], [0, 0, 0]])


def test_cmyk_jpeg_is_converted_to_rgb(tmp_path):
    cyan = PIL.Image.new("CMYK", (16, 16), (255, 0, 0, 0))  # full cyan ink, nothing else
    path = tmp_path / "print.jpg"
    cyan.save(path, quality=95)
    with PIL.Image.open(path) as reopened:
        assert reopened.mode == "CMYK"
    red, green, blue = images.load(path)[8, 8].astype(int)
    assert red < 20 and green > 235 and blue > 235, (red, green, blue)


def test_palette_png_transparency_is_composited_over_white(tmp_path):
    palette_image = PIL.Image.new("P", (2, 1))
    palette_image.putpalette([200, 0, 0, 0, 0, 200] + [0] * (256 * 3 - 6))
    palette_image.putpixel((0, 0), 0)  # opaque red
    palette_image.putpixel((1, 0), 1)  # blue, but declared fully transparent below
    path = tmp_path / "palette.png"
    palette_image.save(path, transparency=1)
    with PIL.Image.open(path) as reopened:
        assert reopened.mode == "P" and "transparency" in reopened.info
    np.testing.assert_array_equal(images.load(path)[0], [[200, 0, 0], [255, 255, 255]])


def test_rgba_and_la_half_transparent_black_becomes_mid_grey_over_white(tmp_path):
    PIL.Image.new("RGBA", (3, 3), (0, 0, 0, 128)).save(tmp_path / "rgba.png")
    PIL.Image.new("LA", (3, 3), (0, 128)).save(tmp_path / "la.png")
    expected = round(255 * (1 - 128 / 255))
    for name in ("rgba.png", "la.png"):
        loaded = images.load(tmp_path / name)
        assert loaded.shape == (3, 3, 3)
        assert np.all(loaded == expected), (name, loaded[0, 0])


def test_exif_orientation_six_rotates_the_photo_upright(tmp_path):
    wide = np.zeros((20, 40, 3), np.uint8)
    wide[:, :20] = (255, 0, 0)  # left half red
    wide[:, 20:] = (0, 0, 255)  # right half blue
    exif = PIL.Image.Exif()
    exif[0x0112] = 6  # Orientation: the camera was turned; display rotated 90 degrees clockwise
    path = tmp_path / "phone.jpg"
    PIL.Image.fromarray(wide).save(path, exif=exif, quality=95)
    loaded = images.load(path)
    assert loaded.shape == (40, 20, 3)  # now tall
    top, bottom = loaded[5, 10].astype(int), loaded[35, 10].astype(int)
    assert top[0] > 200 and top[2] < 60, top  # the left (red) half went to the top
    assert bottom[2] > 200 and bottom[0] < 60, bottom


def test_only_the_first_frame_of_an_animation_is_loaded(tmp_path):
    frames = [PIL.Image.new("RGB", (8, 8), colour) for colour in ((255, 0, 0), (0, 255, 0))]
    path = tmp_path / "anim.gif"
    frames[0].save(path, save_all=True, append_images=frames[1:])
    assert tuple(images.load(path)[0, 0]) == (255, 0, 0)


# ---------------------------------------------------------------------------------------------
# Arrays
# ---------------------------------------------------------------------------------------------


def test_float_array_in_unit_range_is_scaled_to_0_255():
    floats = np.array([[0.0, 0.5, 1.0]], dtype=np.float32)
    np.testing.assert_array_equal(images.load(floats)[0, :, 0], [0, 128, 255])


@pytest.mark.parametrize(
    "values, hint",
    [
        ([-1.0, 0.0, 1.0], "from_model_range"),
        ([0.0, 128.0, 255.0], "astype('uint8')"),
        ([-50.0, 3000.0, 1.0], "Rescale"),
    ],
)
def test_float_array_outside_unit_range_is_refused_with_a_hint(values, hint):
    with pytest.raises(images.ImageError, match="must be\\s+in \\[0, 1\\]") as error:
        images.load(np.array([values], dtype=np.float32))
    assert hint in str(error.value)


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_float_array_with_nan_or_inf_is_refused(bad):
    with pytest.raises(images.ImageError, match="NaN|infinite"):
        images.load(np.array([[0.2, bad]]))


def test_grey_array_shapes_become_rgb():
    grey = np.array([[10, 20], [30, 40]], np.uint8)
    for shaped in (grey, grey[:, :, None]):
        loaded = images.load(shaped)
        assert loaded.shape == (2, 2, 3)
        np.testing.assert_array_equal(loaded[..., 1], grey)


def test_rgba_array_is_composited_over_white_and_alpha_dropped():
    rgba = np.zeros((2, 2, 4), np.uint8)
    rgba[0, 0] = (10, 20, 30, 255)  # opaque: unchanged
    rgba[0, 1] = (10, 20, 30, 0)  # fully transparent: white
    loaded = images.load(rgba)
    assert loaded.shape == (2, 2, 3)
    np.testing.assert_array_equal(loaded[0, 0], [10, 20, 30])
    np.testing.assert_array_equal(loaded[0, 1], [255, 255, 255])


def test_uint16_bool_and_small_integer_arrays_are_scaled():
    np.testing.assert_array_equal(images.load(np.array([[0, 32896, 65535]], np.uint16))[0, :, 0], [0, 128, 255])
    np.testing.assert_array_equal(images.load(np.array([[False, True]]))[0, :, 0], [0, 255])
    np.testing.assert_array_equal(images.load(np.array([[0, 7, 255]], np.int64))[0, :, 0], [0, 7, 255])


@pytest.mark.parametrize(
    "array, message",
    [
        (np.array([[0, 300]], np.int32), "0..255"),
        (np.zeros((3, 8, 8), np.uint8), "moveaxis"),
        (np.zeros((1, 8, 8, 3), np.uint8), r"image\[0\]"),
        (np.zeros((8, 8, 5), np.uint8), "5 channels"),
        (np.zeros((0, 8, 3), np.uint8), "no pixels"),
        (np.array([["a", "b"]]), "not pixels"),
    ],
)
def test_arrays_that_are_not_images_are_refused_with_a_fix(array, message):
    with pytest.raises(images.ImageError, match=message):
        images.load(array)


def test_wrong_source_type_is_refused():
    with pytest.raises(images.ImageError, match="Cannot load an image from a dict"):
        images.load({"not": "an image"})


# ---------------------------------------------------------------------------------------------
# Refusals of bad files
# ---------------------------------------------------------------------------------------------


def test_truncated_jpeg_is_refused_not_half_loaded(tmp_path):
    assert PIL.ImageFile.LOAD_TRUNCATED_IMAGES is False  # the course never lets Pillow pad cut files
    buffer = io.BytesIO()
    PIL.Image.fromarray(noise_rgb(64, 64)).save(buffer, format="JPEG", quality=90)
    path = tmp_path / "cut.jpg"
    path.write_bytes(buffer.getvalue()[: len(buffer.getvalue()) // 2])
    with pytest.raises(images.ImageError, match="truncated or damaged") as error:
        images.load(path)
    assert str(path) in str(error.value)


def test_empty_file_and_empty_bytes_are_refused(tmp_path):
    path = tmp_path / "empty.jpg"
    path.write_bytes(b"")
    with pytest.raises(images.ImageError, match="empty.jpg is empty"):
        images.load(path)
    with pytest.raises(images.ImageError, match="empty"):
        images.load(b"")


def test_text_file_is_refused_naming_the_file(tmp_path):
    path = tmp_path / "notes.jpg"
    path.write_text("these are my notes, not a picture\n")
    with pytest.raises(images.ImageError, match="not an image Pillow can read") as error:
        images.load(path)
    assert str(path) in str(error.value) and "these are my notes" in str(error.value)


def test_missing_file_names_the_full_path(tmp_path):
    with pytest.raises(FileNotFoundError, match="no file at .*missing.png"):
        images.load(tmp_path / "missing.png")


def test_folder_is_refused(tmp_path):
    with pytest.raises(images.ImageError, match="is a folder"):
        images.load(tmp_path)


@pytest.mark.parametrize("width, height", [(8_000, 8_000), (10_000, 10_000), (20_000, 20_000)])
def test_decompression_bomb_is_refused_naming_its_size_and_the_limit(tmp_path, width, height):
    # 64 MP is over the course's limit; 100 MP over Pillow's warning; 400 MP over Pillow's error.
    path = tmp_path / "bomb.png"
    path.write_bytes(png_header_only(width, height))
    assert path.stat().st_size < 200
    with pytest.raises(images.ImageError) as error:
        images.load(path)
    message = str(error.value)
    assert f"{images.MAX_PIXELS:,}" in message
    assert (f"{width}x{height}" in message) or (f"{width * height:,} pixels" in message), message
    assert "thumbnail" in message  # how to shrink it


def test_image_smaller_than_the_network_minimum_names_the_minimum_and_network(tmp_path):
    PIL.Image.fromarray(gradient_rgb(60, 90)).save(tmp_path / "small.png")
    inception_like = types.SimpleNamespace(name="inception_v3", min_size=75)  # what a Backbone carries
    with pytest.raises(images.ImageError, match="90x60 pixels, but inception_v3 needs at least 75"):
        images.load(tmp_path / "small.png", min_size=inception_like)
    with pytest.raises(images.ImageError, match="at least 75 pixels"):
        images.load(tmp_path / "small.png", min_size=75)
    assert images.load(tmp_path / "small.png", min_size=60).shape == (60, 90, 3)


def test_max_dim_that_shrinks_below_the_minimum_is_reported():
    with pytest.raises(images.ImageError, match="larger max_dim"):
        images.load(gradient_rgb(100, 400), max_dim=200, min_size=75)  # 200x50 after shrinking
    with pytest.raises(ValueError, match="max_dim=50 is smaller"):
        images.load(gradient_rgb(), max_dim=50, min_size=75)


# ---------------------------------------------------------------------------------------------
# Size and model range
# ---------------------------------------------------------------------------------------------


def test_max_dim_shrinks_the_longer_side_like_thumbnail_and_never_enlarges():
    pixels = gradient_rgb(300, 451)
    shrunk = images.load(pixels, max_dim=100)
    expected = PIL.Image.fromarray(pixels)
    expected.thumbnail((100, 100))
    assert shrunk.shape == (expected.height, expected.width, 3) and max(shrunk.shape[:2]) == 100
    np.testing.assert_array_equal(shrunk, np.asarray(expected))
    assert images.load(pixels, max_dim=1000).shape == (300, 451, 3)
    assert images.resize_max_dim(pixels, 451) is pixels


@pytest.mark.parametrize("bad", [0, -5, 2.5, "500", True])
def test_max_dim_must_be_a_positive_whole_number(bad):
    with pytest.raises(ValueError, match="max_dim"):
        images.load(gradient_rgb(), max_dim=bad)


def test_resize_max_dim_refuses_non_rgb_uint8():
    with pytest.raises(images.ImageError, match="images.load"):
        images.resize_max_dim(np.zeros((10, 10), np.float32), 5)


def test_model_range_round_trip_is_exact_for_every_pixel_value():
    every_value = np.arange(256, dtype=np.uint8).reshape(16, 16, 1).repeat(3, axis=2)
    model_input = images.to_model_range(every_value)
    assert model_input.dtype == np.float32
    assert model_input.min() == -1.0 and model_input.max() == 1.0
    np.testing.assert_allclose(model_input, every_value / 127.5 - 1, atol=1e-6)  # inception preprocess_input
    np.testing.assert_array_equal(images.from_model_range(model_input), every_value)


def test_from_model_range_clips_values_a_dream_pushed_too_far():
    np.testing.assert_array_equal(images.from_model_range(np.array([-3.0, -1.0, 0.0, 1.0, 1.5])), [0, 0, 128, 255, 255])


def test_model_range_refuses_the_wrong_kind_of_input():
    with pytest.raises(images.ImageError, match="expects uint8"):
        images.to_model_range(np.zeros((2, 2, 3), np.float32))
    with pytest.raises(images.ImageError, match="expects floats"):
        images.from_model_range(np.zeros((2, 2, 3), np.uint8))
    with pytest.raises(images.ImageError, match="NaN"):
        images.from_model_range(np.array([0.0, np.nan]))


# ---------------------------------------------------------------------------------------------
# Show and save
# ---------------------------------------------------------------------------------------------


def test_show_grid_tiles_images_of_different_sizes_with_their_titles():
    pictures = [gradient_rgb(40, 60), noise_rgb(90, 30), gradient_rgb(20, 20)]
    titles = ["wide", "tall", "small"]
    figure = plots.show_grid(pictures, titles)
    assert len(figure.axes) == 3
    assert [axes.get_title() for axes in figure.axes] == titles
    assert [axes.images[0].get_array().shape[:2] for axes in figure.axes] == [(40, 60), (90, 30), (20, 20)]
    one_row = plots.show_grid(pictures, columns=3)
    assert {axes.get_subplotspec().rowspan.start for axes in one_row.axes} == {0}


def test_show_grid_refuses_mismatched_titles_and_empty_lists():
    with pytest.raises(ValueError, match="2 images but 1 titles"):
        plots.show_grid([gradient_rgb(), gradient_rgb()], ["only one"])
    with pytest.raises(ValueError, match="at least one image"):
        plots.show_grid([])
    with pytest.raises(ValueError, match="columns"):
        plots.show_grid([gradient_rgb()], columns=0)


def test_show_draws_the_image_and_leaves_no_figure_open():
    import matplotlib.pyplot as plt

    before = set(plt.get_fignums())
    plots.show(gradient_rgb(), title="a gradient")
    assert set(plt.get_fignums()) == before
    with pytest.raises(images.ImageError, match="from_model_range"):
        plots.show(np.full((4, 4, 3), -0.5))


def test_save_png_round_trips_exactly_and_jpeg_closely(tmp_path):
    pixels = gradient_rgb()
    written = images.save(pixels, tmp_path / "out" / "dream.png")
    assert written == tmp_path / "out" / "dream.png"
    np.testing.assert_array_equal(images.load(written), pixels)
    jpeg = images.save(pixels, tmp_path / "dream.JPG")
    with PIL.Image.open(jpeg) as reopened:
        assert reopened.format == "JPEG"
    assert np.abs(images.load(jpeg).astype(int) - pixels).mean() < 3
    assert sorted(p.name for p in tmp_path.rglob("*")) == ["dream.JPG", "dream.png", "out"]


def test_save_refuses_an_unknown_extension_and_writes_nothing(tmp_path):
    with pytest.raises(ValueError, match="'.gif' is not one of .png, .jpg, .jpeg"):
        images.save(gradient_rgb(), tmp_path / "dream.gif")
    with pytest.raises(ValueError, match="dream.png"):
        images.save(gradient_rgb(), tmp_path / "dream")
    assert list(tmp_path.iterdir()) == []


def test_save_that_fails_midway_leaves_the_old_file_and_no_temporary(tmp_path):
    target = tmp_path / "dream.png"
    images.save(gradient_rgb(), target)
    old_bytes = target.read_bytes()
    # A real failing write: a child process whose file-size limit is 4 kB saves 1.2 MB of noise.
    script = textwrap.dedent(
        f"""
        import resource, signal, sys
        import numpy as np
        from course_lib import images
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # get an OSError instead of being killed
        resource.setrlimit(resource.RLIMIT_FSIZE, (4096, 4096))
        noise = np.random.default_rng(0).integers(0, 256, (640, 640, 3), dtype=np.uint8)
        try:
            images.save(noise, {str(target)!r})
        except OSError as error:
            print("failed:", error)
            sys.exit(0)
        sys.exit("the save did not fail")
        """
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "failed:" in result.stdout
    assert target.read_bytes() == old_bytes
    assert [p.name for p in tmp_path.iterdir()] == ["dream.png"]


# ---------------------------------------------------------------------------------------------
# URLs (a real HTTP server on 127.0.0.1)
# ---------------------------------------------------------------------------------------------


def test_url_is_downloaded_once_into_the_cache(http_server, course_settings):
    pixels = gradient_rgb()
    PIL.Image.fromarray(pixels).save(http_server.root / "photo.png")
    url = http_server.url("photo.png")
    np.testing.assert_array_equal(images.load(url), pixels)
    np.testing.assert_array_equal(images.load(url, max_dim=32), images.load(pixels, max_dim=32))
    assert http_server.requests == ["/photo.png"]  # the second load came from the cache


def test_url_that_is_not_an_image_is_refused_and_not_cached(http_server, course_settings):
    (http_server.root / "page.png").write_text("<html>Not found</html>")
    with pytest.raises(images.ImageError, match="not an image Pillow can read"):
        images.load(http_server.url("page.png"))
    cache = course_settings().cache_dir
    assert not any(p.is_file() for p in cache.rglob("*"))


def test_url_offline_and_not_cached_raises_offline_error_without_a_request(http_server, course_settings):
    PIL.Image.fromarray(gradient_rgb()).save(http_server.root / "photo.png")
    course_settings(offline=True)
    with pytest.raises(OfflineError, match="DEEPDREAM_OFFLINE") as error:
        images.load(http_server.url("photo.png"))
    assert "put it at" in str(error.value)
    assert http_server.requests == []


def test_only_http_urls_are_accepted():
    with pytest.raises(images.ImageError, match="only http:// and https://"):
        images.load("ftp://example.com/photo.jpg")
