"""Gunicorn settings for the API container (start-api); values come from the environment."""

import os

import gunicorn.http.wsgi
import gunicorn.util
from gunicorn.glogging import Logger

from services.api.edge import SERVER_NAME, write_json_error
from services.api.metrics import child_exit  # noqa: F401 - gunicorn hook: a dead worker's metric files go

# gunicorn answers malformed and oversize requests itself, before Flask: with the API's JSON error
# shape and headers instead of its HTML page, and no server banner on any response.
gunicorn.util.write_error = write_json_error
gunicorn.http.wsgi.SERVER = SERVER_NAME

bind = "0.0.0.0:8000"
workers = int(os.environ.get("GUNICORN_WORKERS", "2"))
# The heartbeat files on tmpfs: on the container's overlay filesystem a slow disk stalls workers.
worker_tmp_dir = "/dev/shm"
accesslog = "-"
# Request size limits (gunicorn's defaults, stated): beyond them the answer is a JSON 414 / 431 / 400.
limit_request_line = 4094
limit_request_fields = 100
limit_request_field_size = 8190
# Behind whatever proxy the operator puts in front; the container itself is not reachable from outside.
forwarded_allow_ips = "*"
# gunicorn's control socket defaults to $HOME/.gunicorn, and the app user's home is read-only.
control_socket = "/tmp/gunicorn.ctl"


class _AccessLogWithoutProbes(Logger):
    """The access log minus the container's own liveness probe, which would be most of it."""

    def access(self, resp, req, environ, request_time):
        if req.path != "/api/health/live":
            super().access(resp, req, environ, request_time)


logger_class = _AccessLogWithoutProbes
