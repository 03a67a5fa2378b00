# nbgrader's configuration for this course (README, "For instructors who grade").
# Run nbgrader from this folder, with the course's environment active (`source ../.venv/bin/activate`):
#   nbgrader generate_assignment lesson04     # source/lesson04/*.ipynb -> release/lesson04 (stubs)
#   nbgrader autograde lesson04               # submitted/<student>/lesson04 -> autograded, gradebook.db
#   nbgrader export                           # grades.csv
# git ignores everything here but this file (student work and grades stay on your machine).
c = get_config()  # noqa: F821 (nbgrader provides it)
c.CourseDirectory.root = "."
c.CourseDirectory.course_id = "deepdream"
# The course's exercises say what to write in their first line (# Exercise: ...); the stub points there.
c.ClearSolutions.code_stub = {"python": 'raise NotImplementedError("write this exercise: see the # Exercise line above")'}
# Lessons run in fast mode while grading (the checks do not depend on the mode), and a cell may take
# a few minutes on a laptop (nbgrader's default is 30 s).
c.Execute.timeout = 300
