"""The photo upload and the dream explorer, driven as their buttons drive them, without a browser."""
from __future__ import annotations

import datetime
import io

import numpy as np
import PIL.Image
import pytest

from course_lib import images, models, widgets


def _png(width: int, height: int) -> bytes:
    """The bytes of a small real PNG, a colour ramp (what a browser uploads)."""
    ramp = np.linspace(0, 255, width * height * 3).astype(np.uint8).reshape(height, width, 3)
    buffer = io.BytesIO()
    PIL.Image.fromarray(ramp).save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture(scope="module")
def backbone():
    return models.backbone("dog_breeds", verbose=False)


# --- photo upload ---


def test_upload_of_a_real_photo_sets_the_image_shrunk_to_max_dim(labrador_path):
    upload = widgets.PhotoUpload(max_dim=100)
    image = upload.load_bytes(labrador_path.read_bytes(), "labrador.jpg")
    assert image is not None and upload.image is image
    assert image.dtype == np.uint8 and image.shape[2] == 3 and max(image.shape[:2]) == 100
    assert upload.error is None
    assert "Loaded labrador.jpg" in upload.message.value
    assert bytes(upload.preview.value).startswith(b"\x89PNG")


def test_upload_of_a_text_file_shows_a_clear_message_and_does_not_raise():
    upload = widgets.PhotoUpload(max_dim=100)
    result = upload.load_bytes(b"shopping list: eggs, milk, bread\n", "notes.txt")
    assert result is None and upload.image is None
    assert "notes.txt" in upload.error and "not an image" in upload.error
    assert "Not loaded" in upload.message.value and "not an image" in upload.message.value


def test_a_bad_upload_keeps_the_previous_photo():
    upload = widgets.PhotoUpload()
    first = upload.load_bytes(_png(40, 30), "ramp.png")
    assert upload.load_bytes(b"", "empty.jpg") is None
    assert upload.image is first
    assert "empty" in upload.error


def test_upload_smaller_than_the_network_minimum_is_refused_with_the_network_named(backbone):
    upload = widgets.PhotoUpload(min_size=backbone)
    assert upload.load_bytes(_png(20, 12), "tiny.png") is None
    assert "dog_breeds" in upload.error and str(backbone.min_size) in upload.error


def test_the_upload_button_value_goes_through_the_same_check():
    upload = widgets.PhotoUpload()
    content = _png(48, 36)
    upload.button.value = ({"name": "ramp.png", "type": "image/png", "size": len(content),
                            "content": memoryview(content), "last_modified": datetime.datetime(2024, 1, 1)},)
    assert upload.image is not None and upload.image.shape == (36, 48, 3)
    upload.button.value = ({"name": "notes.txt", "type": "text/plain", "size": 5,
                            "content": memoryview(b"hello"), "last_modified": datetime.datetime(2024, 1, 1)},)
    assert upload.image.shape == (36, 48, 3) and "notes.txt" in upload.error


def test_photo_upload_refuses_a_nonsense_max_dim_at_once():
    with pytest.raises(ValueError, match="max_dim"):
        widgets.photo_upload(max_dim=0)


# --- dream explorer ---


@pytest.mark.slow
def test_dream_explorer_run_dreams_and_save_writes_the_dream(backbone, labrador_path, tmp_path):
    explorer = widgets.DreamExplorer(backbone, labrador_path, max_dim=64, save_folder=tmp_path)
    explorer.layers.value = ("block_2_expand_relu",)
    explorer.steps.value = 3
    explorer.octaves.value = (-1, 0)
    # No picture yet: the empty Image widget (a broken-image icon) is hidden behind a line of text.
    assert explorer.result_view.layout.display == "none" and explorer.result_placeholder.layout.display != "none"
    result = explorer.run()
    assert explorer.result_view.layout.display != "none" and explorer.result_placeholder.layout.display == "none"
    assert result.shape == explorer.image.shape and result.dtype == np.uint8
    assert np.abs(result.astype(int) - explorer.image.astype(int)).mean() > 1, "the dream changed the photo"
    assert bytes(explorer.result_view.value).startswith(b"\x89PNG") and not explorer.save_button.disabled
    assert "2 octave(s)" in explorer.status.value

    written = explorer.save()
    assert written.parent == tmp_path and written.suffix == ".png"
    assert np.array_equal(images.load(written), result)
    assert str(written.resolve()) in explorer.status.value
    assert [p.name for p in tmp_path.iterdir()] == [written.name], "no temporary file left behind"

    chosen = explorer.save(tmp_path / "mine.jpg")
    assert chosen.exists() and images.load(chosen).shape == result.shape

    # Saving never replaces a file: not a chosen path saved twice, nor two saves in the same second.
    first_bytes = chosen.read_bytes()
    again = explorer.save(tmp_path / "mine.jpg")
    assert again == tmp_path / "mine-2.jpg" and chosen.read_bytes() == first_bytes
    quick = [explorer.save() for _ in range(3)]
    assert len(set(quick)) == 3 and all(path.exists() for path in quick)
    assert written.exists() and np.array_equal(images.load(written), result)


def test_unused_path_adds_a_counter_instead_of_overwriting(tmp_path):
    target = tmp_path / "dream.png"
    assert widgets.unused_path(target) == target
    target.write_bytes(b"first")
    assert widgets.unused_path(target) == tmp_path / "dream-2.png"
    (tmp_path / "dream-2.png").write_bytes(b"second")
    assert widgets.unused_path(target) == tmp_path / "dream-3.png"
    assert target.read_bytes() == b"first"


def test_dream_explorer_save_before_run_says_to_run_first(backbone, labrador_path, tmp_path):
    explorer = widgets.DreamExplorer(backbone, labrador_path, max_dim=64, save_folder=tmp_path)
    with pytest.raises(ValueError, match="press Run"):
        explorer.save()
    explorer.save_button.click()  # the button shows the message instead of raising
    assert "press Run" in explorer.status.value
    assert not list(tmp_path.iterdir())


def test_dream_explorer_with_no_layer_chosen_shows_a_message(backbone, labrador_path):
    explorer = widgets.DreamExplorer(backbone, labrador_path, max_dim=64)
    explorer.layers.value = ()
    explorer.run_button.click()
    assert "No layer is chosen" in explorer.status.value and explorer.result is None
    assert not explorer.run_button.disabled


def test_dream_explorer_upload_replaces_the_photo_and_a_bad_one_does_not(backbone, labrador_path):
    explorer = widgets.DreamExplorer(backbone, labrador_path, max_dim=64)
    explorer.upload.load_bytes(_png(80, 60), "ramp.png")
    assert explorer.image.shape == (48, 64, 3) and explorer.image_name == "ramp"
    explorer.upload.load_bytes(b"not a picture", "notes.txt")
    assert explorer.image.shape == (48, 64, 3)
    assert "not an image" in explorer.upload.message.value


def test_dream_explorer_offers_the_backbone_blocks_and_starts_with_its_dream_layers(backbone, labrador_path):
    explorer = widgets.DreamExplorer(backbone, labrador_path, max_dim=64)
    assert list(explorer.layers.options) == list(backbone.blocks)
    assert explorer.chosen_settings()["layers"] == tuple(backbone.dream_layers)
    assert explorer.chosen_settings()["octaves"] == range(-2, 3)  # the tutorial's octaves
