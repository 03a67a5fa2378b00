"""Specification of course_lib.data: sample photos, verified downloads, the dog data set.

Downloads are tested against a real HTTP server on 127.0.0.1 (the ``http_server`` fixture) that
serves archives these tests build; settings are pointed at tmp_path (``course_settings``).
"""
from __future__ import annotations

import hashlib
import io
import shutil
import socket
import tarfile
from pathlib import Path

import numpy as np
import PIL.Image
import pytest

from course_lib import data, downloads, files, images

# ---------------------------------------------------------------------------------------------
# Sample photos
# ---------------------------------------------------------------------------------------------


def test_every_offline_sample_image_is_a_real_rgb_photo(course_settings):
    course_settings(offline=True)
    for name in data.SAMPLE_IMAGES:
        if name == "labrador":
            continue
        photo = data.sample_image(name, max_dim=120)
        assert photo.dtype == np.uint8 and photo.ndim == 3 and photo.shape[2] == 3, name
        assert max(photo.shape[:2]) == 120, name
        assert photo.std() > 20, f"{name} looks flat, not like a photograph"


def test_sample_image_full_size_is_the_scikit_image_photo():
    import skimage.data

    np.testing.assert_array_equal(data.sample_image("chelsea"), skimage.data.chelsea())


def test_unknown_sample_name_lists_the_valid_names_and_suggests_one():
    with pytest.raises(ValueError, match="Did you mean 'chelsea'") as error:
        data.sample_image("chelsey")
    for name in data.SAMPLE_IMAGES:
        assert name in str(error.value)


def test_labrador_is_read_from_a_seeded_keras_cache_without_network(tmp_path, monkeypatch, labrador_path, course_settings):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    cached = tmp_path / "keras" / "datasets" / data.LABRADOR_FILE
    cached.parent.mkdir(parents=True)
    shutil.copyfile(labrador_path, cached)
    course_settings(offline=True)  # any network use would raise
    photo = data.sample_image("labrador")
    np.testing.assert_array_equal(photo, images.load(labrador_path))
    assert photo.shape[2] == 3 and min(photo.shape[:2]) > 100
    assert max(data.sample_image("labrador", max_dim=100).shape[:2]) == 100


def test_labrador_offline_and_not_cached_falls_back_to_the_committed_copy_and_says_so(
    tmp_path, monkeypatch, course_settings, labrador_path, capsys
):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "empty-keras"))
    monkeypatch.setattr(data, "_said", set())
    course_settings(offline=True)
    np.testing.assert_array_equal(data.sample_image("labrador"), images.load(labrador_path))
    printed = capsys.readouterr().out
    assert printed.count("\n") == 1 and "course's copy" in printed and "DEEPDREAM_OFFLINE is set" in printed
    data.sample_image("labrador")
    assert capsys.readouterr().out == "", "the choice is said once per process, not at every load"
    assert not (tmp_path / "empty-keras" / "datasets" / data.LABRADOR_FILE).exists()


def test_labrador_is_downloaded_into_the_keras_cache_when_online(tmp_path, monkeypatch, course_settings,
                                                                 labrador_path, http_server):
    shutil.copyfile(labrador_path, http_server.root / data.LABRADOR_FILE)
    monkeypatch.setattr(data, "LABRADOR_URL", http_server.url(data.LABRADOR_FILE))
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    path = data.labrador_path()
    assert path == tmp_path / "keras" / "datasets" / data.LABRADOR_FILE
    assert path.read_bytes() == labrador_path.read_bytes()
    assert http_server.requests == [f"/{data.LABRADOR_FILE}"]


def test_labrador_download_that_fails_falls_back_to_the_committed_copy(tmp_path, monkeypatch, course_settings,
                                                                      labrador_path, http_server, capsys):
    monkeypatch.setattr(data, "LABRADOR_URL", http_server.url("gone.jpg"))  # the server answers 404
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras"))
    monkeypatch.setattr(data, "_said", set())
    assert data.labrador_path() == data.SAMPLE_LABRADOR
    assert "the download failed" in capsys.readouterr().out
    assert data.labrador_path() == data.SAMPLE_LABRADOR
    assert http_server.requests == ["/gone.jpg"], "a failed download is not tried again in the same process"
    assert not any((tmp_path / "keras" / "datasets").glob("*")), "a failed download leaves nothing behind"


def test_labrador_with_no_cache_no_network_and_no_committed_copy_names_the_url_the_cache_path_and_an_alternative(
    tmp_path, monkeypatch, course_settings
):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "empty-keras"))
    monkeypatch.setattr(data, "SAMPLE_LABRADOR", tmp_path / "removed" / data.LABRADOR_FILE)
    course_settings(offline=True)
    with pytest.raises(downloads.OfflineError) as error:
        data.sample_image("labrador")
    message = str(error.value)
    assert str(tmp_path / "empty-keras" / "datasets" / "YellowLabradorLooking_new.jpg") in message
    assert data.LABRADOR_URL in message and "DEEPDREAM_OFFLINE" in message
    assert 'sample_image("chelsea")' in message


def test_the_committed_labrador_is_the_tutorials_photo(labrador_path):
    """The sample copy must stay the photo the README credits (236x293, its SHA-1 in data/samples/README.md)."""
    assert hashlib.sha1(labrador_path.read_bytes()).hexdigest() == "c7f1d9104af521ea5808ce36adc98869d6326379"
    assert images.load(labrador_path).shape == (293, 236, 3)


# ---------------------------------------------------------------------------------------------
# Verified downloads
# ---------------------------------------------------------------------------------------------


def _served_file(http_server, name: str = "blob.bin", size: int = 50_000) -> tuple[str, bytes]:
    payload = np.random.default_rng(7).integers(0, 256, size, dtype=np.uint8).tobytes()
    (http_server.root / name).write_bytes(payload)
    return http_server.url(name), payload


def test_download_with_the_right_size_and_checksums_writes_the_file(http_server, course_settings, tmp_path):
    url, payload = _served_file(http_server)
    target = tmp_path / "got" / "blob.bin"
    written = downloads.download(
        url,
        target,
        md5=hashlib.md5(payload).hexdigest(),
        sha256=hashlib.sha256(payload).hexdigest(),
        size=len(payload),
    )
    assert written == target and target.read_bytes() == payload
    assert [p.name for p in target.parent.iterdir()] == ["blob.bin"]


@pytest.mark.parametrize("wrong", ["md5", "sha256", "size"])
def test_download_checksum_or_size_mismatch_leaves_nothing_behind(http_server, course_settings, tmp_path, wrong):
    url, payload = _served_file(http_server)
    expected = {"md5": hashlib.md5(payload).hexdigest(), "sha256": hashlib.sha256(payload).hexdigest(), "size": len(payload)}
    expected[wrong] = expected["size"] + 1 if wrong == "size" else "0" * len(expected[wrong])
    folder = tmp_path / "got"
    with pytest.raises(downloads.DownloadError, match=wrong if wrong != "size" else "bytes"):
        downloads.download(url, folder / "blob.bin", **expected)
    assert not folder.exists() or list(folder.iterdir()) == []


def test_download_shorter_than_content_length_leaves_nothing(http_server, course_settings, tmp_path):
    # The server announces 1000 bytes more than it sends, then closes: a connection dropped
    # mid-transfer. Without a size from the caller (as in cached_url) only Content-Length tells.
    url, _ = _served_file(http_server, "cut.bin")
    http_server.overstate_length["/cut.bin"] = 1000
    folder = tmp_path / "got"
    with pytest.raises(downloads.DownloadError, match="broke off"):
        downloads.download(url, folder / "cut.bin")
    assert not folder.exists() or list(folder.iterdir()) == []
    cache = course_settings().cache_dir / "downloads"
    with pytest.raises(downloads.DownloadError, match="broke off"):
        downloads.cached_url(url)
    assert not cache.exists() or list(cache.iterdir()) == []


def test_download_of_a_missing_file_is_an_http_error_and_leaves_nothing(http_server, course_settings, tmp_path):
    with pytest.raises(downloads.DownloadError, match="HTTP 404"):
        downloads.download(http_server.url("nothing-here.bin"), tmp_path / "x.bin")
    assert list(tmp_path.iterdir()) == [http_server.root]


def test_download_offline_raises_without_touching_the_network(http_server, course_settings, tmp_path):
    url, _ = _served_file(http_server)
    course_settings(offline=True)
    with pytest.raises(downloads.OfflineError, match="DEEPDREAM_OFFLINE") as error:
        downloads.download(url, tmp_path / "blob.bin")
    assert str(tmp_path / "blob.bin") in str(error.value)
    assert http_server.requests == []
    assert not (tmp_path / "blob.bin").exists()


def test_download_from_an_unreachable_server_is_an_offline_error(course_settings, tmp_path):
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(downloads.OfflineError, match="Cannot reach"):
        downloads.download(f"http://127.0.0.1:{port}/file.bin", tmp_path / "file.bin", timeout=5)
    assert not (tmp_path / "file.bin").exists()


# ---------------------------------------------------------------------------------------------
# The dog data set
# ---------------------------------------------------------------------------------------------


def _jpeg_bytes(colour: tuple[int, int, int]) -> bytes:
    buffer = io.BytesIO()
    PIL.Image.new("RGB", (24, 16), colour).save(buffer, format="JPEG")
    return buffer.getvalue()


def _add_file(tar: tarfile.TarFile, name: str, payload: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(payload)
    tar.addfile(info, io.BytesIO(payload))


def _imagewoof_like(path: Path, extra=None) -> dict:
    """A tiny archive laid out like imagewoof2-160.tgz; returns the url arguments for it."""
    with tarfile.open(path, "w:gz") as tar:
        _add_file(tar, "imagewoof2-160/noisy_imagewoof.csv", b"path,noisy_labels_0\n")
        _add_file(tar, "imagewoof2-160/train/n02088364/n02088364_1.JPEG", _jpeg_bytes((200, 150, 100)))
        _add_file(tar, "imagewoof2-160/train/n02088364/same.JPEG", _jpeg_bytes((190, 140, 90)))
        _add_file(tar, "imagewoof2-160/val/n02088364/same.JPEG", _jpeg_bytes((180, 130, 80)))
        _add_file(tar, "imagewoof2-160/val/n02111889/ILSVRC2012_val_00000001.JPEG", _jpeg_bytes((240, 240, 240)))
        if extra:
            extra(tar)
    return {"size": path.stat().st_size, "md5": files.md5_of(path)}


def _nothing_left(course_settings_now, tmp_path: Path) -> None:
    data_dir = course_settings_now.data_dir
    assert not (data_dir / "pets").exists()
    assert not data_dir.exists() or list(data_dir.iterdir()) == [], list(data_dir.iterdir())
    cache = course_settings_now.cache_dir
    assert not cache.exists() or list(cache.iterdir()) == [], list(cache.iterdir())
    assert not (tmp_path / "evil").exists()


@pytest.fixture(params=["tarfile's data filter", "no filter (Python before 3.11.4)"])
def tar_filters(request, monkeypatch):
    """Extraction with tarfile's own "data" filter where Python has it, and without, as on Debian 12's 3.11.2."""
    if request.param.startswith("no filter"):
        monkeypatch.setattr(downloads, "_TAR_FILTERS", False)
        monkeypatch.setattr(downloads, "_FILTER_ERRORS", ())
    elif not downloads._TAR_FILTERS:
        pytest.skip("this Python has no tarfile extraction filters")
    return request.param


def test_extract_tar_strips_set_uid_and_sticky_bits(tmp_path, tar_filters):
    archive = tmp_path / "modes.tar"
    with tarfile.open(archive, "w") as tar:
        info = tarfile.TarInfo("tool")
        info.size, info.mode = 2, 0o6755
        tar.addfile(info, io.BytesIO(b"hi"))
    (tmp_path / "out").mkdir()
    downloads.extract_tar(archive, tmp_path / "out")
    mode = (tmp_path / "out" / "tool").stat().st_mode
    assert (tmp_path / "out" / "tool").read_bytes() == b"hi" and mode & 0o7000 == 0


def test_pets_dataset_downloads_verifies_and_lays_out_breed_folders(http_server, course_settings, tar_filters):
    checks = _imagewoof_like(http_server.root / "imagewoof2-160.tgz")
    folder = data.pets_dataset(url=http_server.url("imagewoof2-160.tgz"), **checks)
    settings = course_settings()
    assert folder == settings.data_dir / "pets"
    breeds = sorted(p.name for p in folder.iterdir() if p.is_dir())
    assert breeds == ["beagle", "samoyed"]
    assert sorted(p.name for p in (folder / "beagle").iterdir()) == ["n02088364_1.JPEG", "same.JPEG", "val_same.JPEG"]
    samoyed = images.load(folder / "samoyed" / "ILSVRC2012_val_00000001.JPEG")
    assert samoyed.shape == (16, 24, 3) and samoyed.mean() > 230
    assert sorted(p.name for p in settings.data_dir.iterdir()) == ["pets"]  # no temporary folder left
    # A second call finds the folder and never asks the server again.
    requests = list(http_server.requests)
    assert data.pets_dataset(url=http_server.url("imagewoof2-160.tgz"), **checks) == folder
    assert http_server.requests == requests == ["/imagewoof2-160.tgz"]


def test_pets_dataset_reuses_a_verified_archive_from_the_cache(http_server, course_settings):
    checks = _imagewoof_like(http_server.root / "imagewoof2-160.tgz")
    folder = data.pets_dataset(url=http_server.url("imagewoof2-160.tgz"), **checks)
    shutil.rmtree(folder)
    course_settings(offline=True)
    assert data.pets_dataset(url=http_server.url("imagewoof2-160.tgz"), **checks) == folder
    assert (folder / "beagle").is_dir() and http_server.requests == ["/imagewoof2-160.tgz"]


def test_pets_dataset_checksum_mismatch_leaves_nothing_behind(http_server, course_settings, tmp_path):
    checks = _imagewoof_like(http_server.root / "imagewoof2-160.tgz")
    with pytest.raises(downloads.DownloadError, match="md5"):
        data.pets_dataset(url=http_server.url("imagewoof2-160.tgz"), size=checks["size"], md5="0" * 32)
    _nothing_left(course_settings(), tmp_path)


@pytest.mark.parametrize(
    "name, kind",
    [
        ("../evil", tarfile.REGTYPE),
        ("imagewoof2-160/../../evil", tarfile.REGTYPE),
        ("/tmp/evil-absolute", tarfile.REGTYPE),
        ("imagewoof2-160/train/n02088364/link.JPEG", tarfile.SYMTYPE),
        ("imagewoof2-160/train/n02088364/hard.JPEG", tarfile.LNKTYPE),
    ],
)
def test_pets_dataset_refuses_a_member_escaping_the_target_and_leaves_nothing(
    http_server, course_settings, tmp_path, name, kind, tar_filters
):
    def add_evil(tar: tarfile.TarFile) -> None:
        info = tarfile.TarInfo(name)
        info.type = kind
        if kind == tarfile.REGTYPE:
            info.size = 4
            tar.addfile(info, io.BytesIO(b"evil"))
        else:
            info.linkname = str(tmp_path / "evil") if kind == tarfile.SYMTYPE else "../../../evil"
            tar.addfile(info)

    checks = _imagewoof_like(http_server.root / "evil.tgz", extra=add_evil)
    with pytest.raises(data.UnsafeArchiveError, match="Refused to extract evil.tgz"):
        data.pets_dataset(url=http_server.url("evil.tgz"), **checks)
    _nothing_left(course_settings(), tmp_path)
    assert not Path("/tmp/evil-absolute").exists()


def test_pets_dataset_refuses_an_archive_without_imagewoof_folders(http_server, course_settings, tmp_path):
    path = http_server.root / "other.tgz"
    with tarfile.open(path, "w:gz") as tar:
        _add_file(tar, "photos/cat.jpg", _jpeg_bytes((1, 2, 3)))
    with pytest.raises(downloads.DownloadError, match="not the ImageWoof archive"):
        data.pets_dataset(url=http_server.url("other.tgz"), size=None, md5=None)
    _nothing_left(course_settings(), tmp_path)


def test_pets_dataset_refuses_a_file_that_is_not_a_tar_archive(http_server, course_settings, tmp_path):
    (http_server.root / "page.tgz").write_text("<html>moved</html>")
    with pytest.raises(downloads.DownloadError, match="not a readable tar archive"):
        data.pets_dataset(url=http_server.url("page.tgz"), size=None, md5=None)
    _nothing_left(course_settings(), tmp_path)


def test_pets_dataset_offline_uses_the_committed_sample_without_touching_the_network(http_server, course_settings,
                                                                                    pets_dir, capsys):
    checks = _imagewoof_like(http_server.root / "imagewoof2-160.tgz")
    course_settings(offline=True)
    assert data.pets_dataset(url=http_server.url("imagewoof2-160.tgz"), **checks) == data.SAMPLE_PETS_DIR == pets_dir
    printed = capsys.readouterr().out
    assert printed.count("\n") == 1 and "small sample" in printed and "DEEPDREAM_OFFLINE is set" in printed
    assert "9 classes, 270 photos" in printed
    assert http_server.requests == []


def test_pets_dataset_in_fast_mode_uses_the_sample_and_never_downloads(http_server, course_settings, capsys):
    checks = _imagewoof_like(http_server.root / "imagewoof2-160.tgz")
    settings = course_settings(fast=True)
    assert data.pets_dataset(url=http_server.url("imagewoof2-160.tgz"), **checks) == data.SAMPLE_PETS_DIR
    assert "fast mode" in capsys.readouterr().out
    assert http_server.requests == [] and not (settings.data_dir / "pets").exists()


def test_pets_dataset_falls_back_to_the_sample_when_the_server_cannot_be_reached(course_settings, capsys):
    with socket.socket() as closed:  # a port nobody listens on: the connection is refused at once
        closed.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{closed.getsockname()[1]}/imagewoof2-160.tgz"
    settings = course_settings()
    assert data.pets_dataset(url=url, size=None, md5=None) == data.SAMPLE_PETS_DIR
    printed = capsys.readouterr().out
    assert "ImageWoof cannot be downloaded" in printed and "refused" in printed.lower()
    assert not (settings.data_dir / "pets").exists() and not any(settings.cache_dir.rglob("*.tgz"))


def test_pets_dataset_with_nothing_at_all_names_every_way_out(http_server, course_settings, monkeypatch, tmp_path):
    checks = _imagewoof_like(http_server.root / "imagewoof2-160.tgz")
    monkeypatch.setattr(data, "SAMPLE_PETS_DIR", tmp_path / "removed")
    course_settings(offline=True)
    with pytest.raises(downloads.OfflineError, match="DEEPDREAM_PETS_DIR") as error:
        data.pets_dataset(url=http_server.url("imagewoof2-160.tgz"), **checks)
    assert http_server.url("imagewoof2-160.tgz") in str(error.value) and "removed" in str(error.value)
    assert http_server.requests == []


def test_pets_dataset_prefers_the_environment_folder_then_the_data_folder(pets_dir, course_settings, http_server):
    course_settings(pets_dir=pets_dir)
    assert data.pets_dataset(url=http_server.url("never.tgz")) == pets_dir
    settings = course_settings(pets_dir=None)
    (settings.data_dir / "pets" / "beagle").mkdir(parents=True)
    assert data.pets_dataset(url=http_server.url("never.tgz")) == settings.data_dir / "pets"
    assert http_server.requests == []


def test_pets_dir_that_does_not_exist_is_an_error_not_a_silent_download(course_settings, tmp_path, http_server):
    course_settings(pets_dir=tmp_path / "no-such-folder")
    with pytest.raises(FileNotFoundError, match="DEEPDREAM_PETS_DIR is set to .*no-such-folder"):
        data.pets_dataset(url=http_server.url("never.tgz"))
    assert http_server.requests == []


def test_pets_folder_without_breed_subfolders_is_refused(course_settings, tmp_path):
    (tmp_path / "flat").mkdir()
    (tmp_path / "flat" / "dog.jpg").write_bytes(_jpeg_bytes((1, 2, 3)))
    course_settings(pets_dir=tmp_path / "flat")
    with pytest.raises(ValueError, match="one sub-folder per breed"):
        data.pets_dataset()


def test_imagewoof_breed_names_cover_its_ten_classes():
    assert len(data.IMAGEWOOF_BREEDS) == 10 and len(set(data.IMAGEWOOF_BREEDS.values())) == 10
    assert data.IMAGEWOOF_BREEDS["n02111889"] == "samoyed" and data.IMAGEWOOF_BREEDS["n02088364"] == "beagle"
