"""`python -m course_lib dream`: writes a real dream; bad input is one clear line and exit code 2."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import PIL.Image
import pytest

from course_lib.__main__ import main
from course_lib.commands.dream import parse_octaves


def test_octaves_are_parsed_as_the_tutorial_writes_them():
    assert list(parse_octaves("-2..2")) == [-2, -1, 0, 1, 2]
    assert list(parse_octaves("-1,0,1")) == [-1, 0, 1]
    assert list(parse_octaves("0")) == [0]


def test_a_text_file_as_input_exits_2_with_one_line_on_stderr(tmp_path):
    text = tmp_path / "notes.jpg"
    text.write_text("shopping list: eggs, milk\n")
    result = subprocess.run(
        [sys.executable, "-m", "course_lib", "dream", str(text), "-o", str(tmp_path / "out.png")],
        capture_output=True, text=True, timeout=300,
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ") and "not an image" in lines[0] and "notes.jpg" in lines[0]
    assert not (tmp_path / "out.png").exists()


@pytest.mark.parametrize(
    "options, message",
    [
        (["--octaves", "2..-2"], "run backwards"),
        (["--steps", "-3"], "steps"),
        (["--step-size", "nan"], "step_size"),
        (["--max-dim", "-5"], "--max-dim"),
        (["--backbone", "vgg16"], "Unknown backbone 'vgg16'"),
        (["--layers", "mixed12"], "not found"),
        (["--tile-size", "0"], "--tile-size is 0"),
        (["--tile-size", "-512"], "--tile-size is -512"),
        (["--octaves", "-2..20"], "more than the course's limit"),
    ],
)
def test_bad_options_exit_2_saying_what_is_wrong(tmp_path, capsys, labrador_path, options, message):
    argv = ["dream", str(labrador_path), "-o", str(tmp_path / "out.png"), "--backbone", "dog_breeds", *options]
    assert _exit_code(argv) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "out.png").exists()


def test_an_unknown_output_format_is_refused_before_dreaming(tmp_path, capsys, labrador_path):
    assert main(["dream", str(labrador_path), "-o", str(tmp_path / "out.gif")]) == 2
    assert "extension must be one of .png" in capsys.readouterr().err


def test_dream_writes_a_png_that_differs_from_the_photo(tmp_path, labrador_path):
    output = tmp_path / "dream.png"
    code = main(["dream", str(labrador_path), "-o", str(output), "--backbone", "dog_breeds",
                 "--steps", "3", "--octaves", "-1..0", "--max-dim", "128", "--seed", "1"])
    assert code == 0
    dreamed = np.asarray(PIL.Image.open(output))
    photo = np.asarray(PIL.Image.open(labrador_path).convert("RGB").resize(dreamed.shape[1::-1]))
    assert dreamed.shape[2] == 3 and max(dreamed.shape[:2]) == 128
    assert np.abs(dreamed.astype(int) - photo.astype(int)).mean() > 2, "the dream did not change the photo"


def _exit_code(argv: list[str]) -> int:
    """main()'s exit code, including argparse's own exit for a malformed option."""
    try:
        return main(argv)
    except SystemExit as exit:
        return int(exit.code)


def test_dream_writes_the_frames_as_an_animation(tmp_path, labrador_path):
    import PIL.Image

    output, animation = tmp_path / "out.png", tmp_path / "forming.gif"
    code = main(["dream", str(labrador_path), "-o", str(output), "--backbone", "dog_breeds", "--steps", "4",
                 "--octaves", "-1..0", "--max-dim", "96", "--frames", str(animation), "--frame-every", "2"])
    assert code == 0 and output.is_file()
    gif = PIL.Image.open(animation)
    assert gif.n_frames == 1 + 2 * 2 and gif.size[1] == 96


def test_an_unknown_animation_format_is_refused_before_dreaming(tmp_path, labrador_path, capsys):
    assert main(["dream", str(labrador_path), "-o", str(tmp_path / "out.png"), "--frames", str(tmp_path / "a.mp4")]) == 2
    assert "--frames" in capsys.readouterr().err and not (tmp_path / "out.png").exists()
