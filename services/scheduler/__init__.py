"""Beat: the scheduler process, running the live schedule RedBeat holds in Redis."""
