"""The checks' toolkit (course_lib/checks/common.py): deciding right / closest slip / neither, the
quiet call of the student's code, and reading a pair or one number from an answer."""
from __future__ import annotations

import numpy as np
import pytest

from course_lib.checks import common
from course_lib.checks.common import ExerciseIncorrect, ExerciseNotDone, first_slip

START = np.random.default_rng(0).uniform(-1, 1, (12, 10, 3))
STEP = np.random.default_rng(1).normal(0, 0.05, START.shape)
EXPECTED = START + STEP


def test_the_right_answer_and_round_off_are_accepted():
    assert first_slip(EXPECTED.copy(), EXPECTED, [(START - STEP, "descent")], start=START) is None
    noisy = START + STEP * (1 + 1e-3 * np.random.default_rng(2).normal(size=STEP.shape))
    assert first_slip(noisy, EXPECTED, [(START - STEP, "descent")], start=START) is None


def test_the_tolerance_is_relative_to_the_change_not_to_the_image():
    # 2 % of the image's values is small beside the image but 20 % of the step: not the same result.
    answer = START + STEP + 0.02 * np.abs(START).mean() * np.sign(STEP)
    assert common.distance(answer, EXPECTED) < 0.05 < common.distance(answer, EXPECTED, start=START)
    assert first_slip(answer, EXPECTED, [], start=START, otherwise="differs") == "differs"


def test_the_closest_slip_wins_even_when_no_result_is_near_equal():
    slips = [(START - STEP, "descent"), (START + 0.2 * STEP, "step too small"), (START, "no step")]
    # 0.3 of the step: 0.1 from "too small", 0.3 from "no step", 0.7 from the expected result.
    answer = START + 0.3 * STEP
    assert common.distance(answer, START + 0.2 * STEP, start=START) > 0.05
    assert first_slip(answer, EXPECTED, slips, start=START) == "step too small"
    # The order of the list does not matter, only the distances.
    assert first_slip(answer, EXPECTED, slips[::-1], start=START) == "step too small"


def test_an_answer_equidistant_from_two_slips_gets_the_generic_message():
    across = 0.3 * np.roll(STEP, 1)
    slips = [(START - STEP + across, "descent, one way"), (START - STEP - across, "descent, the other")]
    answer = START - STEP  # 0.3 from both slips, 2 from the expected result
    assert first_slip(answer, EXPECTED, slips, start=START, otherwise="generic") == "generic"
    # Nearer one slip, but not twice nearer than the other: still no hint.
    near_tie = [(START + 2.0 * STEP, "a"), (START + 1.9 * STEP + 0.15 * np.roll(STEP, 3), "b")]
    assert first_slip(START + 1.9 * STEP, EXPECTED, near_tie, start=START, otherwise="generic") == "generic"
    # Twice nearer: named.
    assert first_slip(START + 1.95 * STEP, EXPECTED, near_tie, start=START) == "a"


def test_a_slip_is_not_named_when_the_expected_result_is_as_near():
    answer = START + 0.5 * STEP  # halfway between "no step" and the right step
    assert first_slip(answer, EXPECTED, [(START, "no step")], start=START, otherwise="generic") == "generic"


def test_coinciding_slips_count_once_and_the_first_listed_names_it():
    same = START + 0.2 * STEP
    assert first_slip(same, EXPECTED, [(same, "first"), (same.copy(), "second")], start=START) == "first"
    # A slip that equals the expected result for this input cannot be told from it: generic.
    slips = [(EXPECTED, "the slip"), (START, "no step")]
    assert first_slip(EXPECTED + 0.1 * STEP, EXPECTED, slips, start=START, otherwise="generic") == "generic"


def test_results_of_another_shape_or_not_finite_are_never_the_closest():
    slips = [(np.zeros((3, 3)), "wrong shape"), (np.full(START.shape, np.nan), "nan"), (START, "no step")]
    assert first_slip(START + 1e-4 * STEP, EXPECTED, slips, start=START) == "no step"
    assert first_slip(np.zeros((2, 2)), EXPECTED, slips, start=START, otherwise="generic") == "generic"


def test_numbers_are_compared_relative_to_the_expected_value():
    slips = [(30.0, "the sum"), (5.0, "the first"), (10.0 / 3, "the average")]
    assert first_slip(10.004, 10.0, slips) is None
    assert first_slip(5.3, 10.0, slips) == "the first"
    assert first_slip(3.4, 10.0, slips, tolerance=1e-4) == "the average"
    assert first_slip(20.0, 10.0, slips, otherwise="generic") == "generic"
    # An exact formula names only an exact slip: 5.3 is nearest "the first", but not within reach of it.
    assert first_slip(5.3, 10.0, slips, tolerance=1e-9, reach=1e-9, otherwise="generic") == "generic"
    assert first_slip(5.0, 10.0, slips, tolerance=1e-9, reach=1e-9) == "the first"


# --- call_student --------------------------------------------------------------------------------


def test_call_student_keeps_the_students_prints_out_of_the_output(capsys):
    def chatty(x):
        print("Tracing")
        return 2 * x

    assert common.call_student(chatty, 21) == 42
    assert capsys.readouterr().out == ""


def test_call_student_turns_the_stub_into_not_done():
    def stub():
        raise NotImplementedError("write this function")

    with pytest.raises(ExerciseNotDone, match="stub is not written yet: write this function"):
        common.call_student(stub)


def test_call_student_quotes_the_matched_words_of_a_long_tensorflow_message_with_the_hint():
    def slip():
        raise ValueError("{{function_node __wrapped__Mul}} in user code:\n  File x, line 3\n" + "x" * 300
                         + " Attempt to convert a value (None) with an unsupported type. More text. [Op:Mul]")

    with pytest.raises(ExerciseIncorrect) as raised:
        common.call_student(slip, hints=[(ValueError, r"convert a value \(None\)", "Call tape.watch(img).")])
    message = str(raised.value)
    assert message == ("slip raised ValueError (convert a value (None) with an unsupported type). "
                       "Call tape.watch(img).")


def test_call_student_raises_an_unknown_error_unchanged_and_lets_a_checks_own_failure_pass():
    def broken():
        raise KeyError("mine")

    with pytest.raises(KeyError, match="mine"):
        common.call_student(broken, hints=[(ValueError, "mine", "never")])

    def recorder():
        raise ExerciseIncorrect("from the check's stand-in")

    with pytest.raises(ExerciseIncorrect, match="stand-in"):
        common.call_student(recorder, hints=[(Exception, "stand-in", "not this hint")])


# --- expect_pair, expect_number, assert_close --------------------------------------------------------


def test_expect_pair():
    assert common.expect_pair((1, 2), "f", "(a, b)", "return a, b") == (1, 2)
    with pytest.raises(ExerciseIncorrect, match=r"^f returned int; expected a pair \(a, b\): return a, b\.$"):
        common.expect_pair(3, "f", "(a, b)", "return a, b")
    with pytest.raises(ExerciseIncorrect, match="returned a tuple of 3"):
        common.expect_pair((1, 2, 3), "f", "(a, b)", "return a, b")


@pytest.mark.parametrize("value, message", [
    (None, "returned nothing"), (np.ones(3), r"shape \(3,\); it must return one number"), ("ten", "str 'ten'; it must return one")])
def test_expect_number_explains_what_is_not_one_number(value, message):
    with pytest.raises(ExerciseIncorrect, match=message):
        common.expect_number(value, "loss", "Sum it.")


def test_expect_number_accepts_a_scalar_tensor():
    import tensorflow as tf

    assert common.expect_number(tf.constant(2.5), "loss") == 2.5


def test_assert_close_gives_the_worst_value_and_the_hint():
    common.assert_close([1.0, np.nan], [1.0, np.nan], "values")
    with pytest.raises(ExerciseIncorrect, match=r"up to 0.5 .*index \(1,\).*Divide by 2\.$"):
        common.assert_close([1.0, 2.5], [1.0, 2.0], "values", hint="Divide by 2.")
