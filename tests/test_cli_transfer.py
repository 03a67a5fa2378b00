"""`python -m course_lib train` and `evaluate`: one clear line and exit 2 for user errors; a real round trip."""
from __future__ import annotations

import json
import shutil

import pytest

from course_lib.__main__ import main


def _folder(pets_dir, root, classes, per_class):
    for name in classes:
        (root / name).mkdir(parents=True)
        for photo in sorted((pets_dir / name).glob("*.jpg"))[:per_class]:
            shutil.copyfile(photo, root / name / photo.name)
    return root


def _one_error_line(capsys) -> str:
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), lines
    return lines[0]


def test_train_on_a_missing_folder_is_one_line_and_exit_2(tmp_path, capsys):
    assert main(["train", "--data", str(tmp_path / "nowhere"), "-o", str(tmp_path / "m.keras")]) == 2
    assert "does not exist" in _one_error_line(capsys)


def test_train_with_a_class_folder_without_images_is_one_line_and_exit_2(pets_dir, tmp_path, capsys):
    folder = _folder(pets_dir, tmp_path / "data", ["beagle"], per_class=2)
    (folder / "samoyed").mkdir()
    assert main(["train", "--data", str(folder), "-o", str(tmp_path / "m.keras")]) == 2
    assert "samoyed has no images" in _one_error_line(capsys)


def test_train_refuses_a_non_keras_output_before_training(pets_dir, tmp_path, capsys):
    assert main(["train", "--data", str(pets_dir), "-o", str(tmp_path / "model.h5")]) == 2
    assert ".keras" in _one_error_line(capsys)


@pytest.mark.parametrize(
    ("option", "value", "expected"),
    [("--learning-rate", "0", "learning_rate is 0.0, but it must be a positive number"),
     ("--learning-rate", "nan", "learning_rate is nan, but it must be a positive number"),
     ("--input-size", "0", "input_size is 0, but it must be between 32 and 1024")],
)
def test_train_refuses_zero_or_nan_settings_instead_of_using_defaults(pets_dir, tmp_path, capsys, option, value, expected):
    folder = _folder(pets_dir, tmp_path / "data", ["beagle", "cat"], per_class=2)
    model = tmp_path / "m.keras"
    code = main(["train", "--data", str(folder), "-o", str(model), "--backbone", "dog_breeds", option, value])
    assert code == 2 and not model.exists()
    assert expected in _one_error_line(capsys)


def test_evaluate_a_missing_model_is_one_line_and_exit_2(pets_dir, tmp_path, capsys):
    assert main(["evaluate", "--model", str(tmp_path / "none.keras"), "--data", str(pets_dir)]) == 2
    assert "No saved classifier" in _one_error_line(capsys)


@pytest.mark.slow
def test_train_then_evaluate_skips_broken_photos_and_leaves_out_training_photos(pets_dir, tmp_path, capsys):
    folder = _folder(pets_dir, tmp_path / "data", ["beagle", "cat", "samoyed"], per_class=6)
    (folder / "cat" / "broken.jpg").write_bytes((folder / "beagle").iterdir().__next__().read_bytes()[:200])
    model = tmp_path / "models" / "three.keras"
    code = main(["train", "--data", str(folder), "-o", str(model), "--backbone", "dog_breeds", "--input-size", "64",
                 "--epochs", "1", "--fine-tune-epochs", "0", "--seed", "3"])  # fmt: skip
    captured = capsys.readouterr()
    assert code == 0 and model.is_file()
    assert "warning: Skipped 1 unreadable image(s)" in captured.err and "broken.jpg" in captured.err
    assert "Saved the classifier and its 3 class names" in captured.out

    assert main(["evaluate", "--model", str(model), "--data", str(folder), "--json"]) == 0
    captured = capsys.readouterr()
    result = json.loads(captured.out)
    # 19 files: 13 trained on (4 or 5 per class, broken.jpg among the cat training photos or not),
    # the rest evaluated; the broken one is named if it was left for evaluation.
    assert result["class_names"] == ["beagle", "cat", "samoyed"]
    assert 5 <= result["count"] <= 6 and len(result["confusion_matrix"]) == 3
    assert set(result["per_class_accuracy"]) == {"beagle", "cat", "samoyed"}

    assert main(["evaluate", "--model", str(model), "--data", str(folder)]) == 0
    text = capsys.readouterr().out
    assert "left out: the classifier was trained or validated on them" in text and "confusion matrix" in text
