"""Pipeline orchestration: run kinds, stages, and the tasks that start and finish runs."""
