"""Beat schedule: the one table of periodic jobs, run by celery beat with RedBeat."""
