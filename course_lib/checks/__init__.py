"""Exercise checks: compare a student's function with the library's, and say clearly what differs.

A check prints one line starting with "Correct" when the exercise is right; otherwise it raises
:class:`ExerciseNotDone` or :class:`ExerciseIncorrect` with a message that says what was expected,
what came back and what to try (:mod:`.common`). One module per lesson, ``lessonNN``; every check
is also here, as ``checks.check_<what>(student_function, ...)``.

Every check is deterministic: its printed line is the same in fast and full mode, so notebooks
mark check cells ``# NBVAL_CHECK_OUTPUT``.
"""
from course_lib.checks.common import (CheckFailure, ExerciseIncorrect, ExerciseNotDone,  # noqa: F401 (re-exported)
                                      assert_close, call_student, passed, small_dream_model)
from course_lib.checks.lesson00 import *  # noqa: F401,F403
from course_lib.checks.lesson01 import *  # noqa: F401,F403
from course_lib.checks.lesson02 import *  # noqa: F401,F403
from course_lib.checks.lesson03 import *  # noqa: F401,F403
from course_lib.checks.lesson04 import *  # noqa: F401,F403
from course_lib.checks.lesson05 import *  # noqa: F401,F403
from course_lib.checks.lesson06 import *  # noqa: F401,F403
from course_lib.checks.lesson07 import *  # noqa: F401,F403
from course_lib.checks.lesson08 import *  # noqa: F401,F403
from course_lib.checks.lesson09 import *  # noqa: F401,F403
from course_lib.checks.lesson10 import *  # noqa: F401,F403
