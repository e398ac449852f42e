"""The /metrics endpoint: a scrape's body as the Exporter renders it, served by a small threaded WSGI server."""

from __future__ import annotations

import re
import socket
import struct
import threading
import zlib
from collections.abc import Callable, Iterable, Iterator
from urllib.parse import parse_qs
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client.core import Metric
from prometheus_client.exposition import ThreadingWSGIServer, gzip_accepted
from prometheus_client.utils import floatToGoString

__all__ = ["EOF", "Chunk", "EMPTY", "render_families", "gzip_body", "metrics_app", "serve_metrics"]

EOF = b"# EOF\n"  # OpenMetrics' last line; a body pieced together carries it once, at its end
# prometheus_client compresses at level 9: 250 ms for the 4 MB of 10,000 instruments on the
# 2-core VM, against 25 ms at level 1 for a gzip two fifths larger (docs/benchmarks.md).
GZIP_LEVEL = 1
# gzip member header: magic, deflate, no flags, no mtime, no extra flags, OS unknown (RFC 1952).
_GZIP_HEADER = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"


class Chunk:
    """Exposition bytes that open many scrapes' bodies, deflated once for all of them.

    The deflate stream is raw and ends on a sync flush, without a final block: any
    deflate stream may follow it, which is how gzip_body puts a fresh tail behind it.
    """

    def __init__(self, data: bytes) -> None:
        self.data = data
        self._deflated: tuple[bytes, int] | None = None

    def deflated(self) -> tuple[bytes, int]:
        """(raw deflate of `data` ending byte-aligned and not final, its CRC-32); computed once."""
        if self._deflated is None:  # two scrapes racing here compute the same bytes twice, no harm
            compressor = zlib.compressobj(GZIP_LEVEL, zlib.DEFLATED, -zlib.MAX_WBITS)
            self._deflated = (compressor.compress(self.data) + compressor.flush(zlib.Z_SYNC_FLUSH),
                              zlib.crc32(self.data))
        return self._deflated


EMPTY = Chunk(b"")

Render = Callable[[str | None, list[str] | None], tuple[Chunk, bytes, str]]


class _Families:
    """Families already built, shaped like a registry for prometheus_client's encoders."""

    def __init__(self, families: Iterable[Metric]) -> None:
        self._families = families

    def collect(self) -> Iterator[Metric]:
        return iter(self._families)


def render_families(encoder: Callable[[object], bytes], families: Iterable[Metric], content_type: str = "") -> bytes:
    """`families` as `encoder` writes them, without OpenMetrics' closing `# EOF` line.

    Sample lines of gauges, counters and histograms are written here, byte for byte as
    prometheus_client writes them in both text formats and 2.5 (text) to 4-5 (OpenMetrics)
    times faster: 10,000 instruments make 40,000 of them, and OpenMetrics' encoder escapes
    every sample's name character by character. The encoder still writes each family's
    HELP and TYPE lines, and every family the shortcut does not cover (other types,
    timestamps, exemplars, `_created` samples, names it would escape).
    """
    plain_names = not _ESCAPES_NAMES.search(content_type)
    parts = []
    for family in families:
        if plain_names and _plain(family):
            header = Metric(family.name, family.documentation, family.type, family.unit)
            parts.append(_without_eof(encoder(_Families([header]))))
            parts.append(_sample_lines(family))
        else:
            parts.append(_without_eof(encoder(_Families([family]))))
    return b"".join(parts)


# Escaping schemes that rewrite even names of the classic character set (underscores
# doubled); the classic ones and UTF-8 leave such names as they are.
_ESCAPES_NAMES = re.compile(r"escaping=(?!underscores|allow-utf-8)")
_CLASSIC_NAME = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")  # no colon: OpenMetrics' underscore escaping rewrites it
_PLAIN_TYPES = ("gauge", "counter", "histogram")
# Samples the classic text format moves into a gauge family of their own.
_MOVED_SUFFIXES = ("_created", "_gsum", "_gcount")


def _plain(family: Metric) -> bool:
    """Samples both formats write alike: classic names and label names, a value and nothing else."""
    if family.type not in _PLAIN_TYPES or not _CLASSIC_NAME.fullmatch(family.name) or family.name.startswith("__"):
        return False
    names: set[str] = set()
    for sample in family.samples:
        if (sample.timestamp is not None or sample.exemplar is not None or sample.native_histogram is not None
                or sample.name.endswith(_MOVED_SUFFIXES) or not _CLASSIC_NAME.fullmatch(sample.name)):
            return False
        names.update(sample.labels)
    return all(_CLASSIC_NAME.fullmatch(name) and not name.startswith("__") for name in names)


def _sample_lines(family: Metric) -> bytes:
    # One %-template per sample name and label set, label names sorted as prometheus_client
    # sorts them: a sample then costs a lookup, its label values' escape checks and one format.
    templates: dict[tuple[str, ...], tuple[str, tuple[str, ...]]] = {}
    lines = []
    for sample in family.samples:
        labels = sample.labels
        shape = (sample.name, *labels)
        template = templates.get(shape)
        if template is None:
            keys = tuple(sorted(labels))
            text = ",".join(f'{key}="%s"' for key in keys)  # names are classic: no % in them
            template = templates[shape] = (f"{sample.name}{{{text}}} %s\n" if keys else f"{sample.name} %s\n", keys)
        pattern, keys = template
        lines.append(pattern % (*[_label_value(labels[key]) for key in keys], _go_float(sample.value)))
    return "".join(lines).encode()


_INF, _MINUS_INF = float("inf"), float("-inf")


def _go_float(value: float) -> str:
    """floatToGoString, inlined for plain floats (nearly every value; timestamps take its exponent branch)."""
    if type(value) is float and value == value and value != _INF and value != _MINUS_INF:
        text = repr(value)
        dot = text.find(".")
        if value > 0 and dot > 6:  # Go switches to an exponent sooner than Python
            mantissa = f"{text[0]}.{text[1:dot]}{text[dot + 1:]}".rstrip("0.")
            return f"{mantissa}e+{dot - 1:02d}"
        return text
    return floatToGoString(value)


def _label_value(value: str) -> str:
    if "\\" in value or "\n" in value or '"' in value:
        return value.replace("\\", r"\\").replace("\n", r"\n").replace('"', r'\"')
    return value


def _without_eof(out: bytes) -> bytes:
    return out[:-len(EOF)] if out.endswith(EOF) else out


def gzip_body(head: Chunk, tail: bytes) -> bytes:
    """One gzip member of head.data + tail: head's deflate stream as computed once, then tail's.

    Deflating the 5 MB of 10,000 instruments' Postgres families took a scrape 25-60 ms at
    level 1; the tail (every other collector, ~75 kB) takes one. The CRC runs on from head's.
    """
    deflated, crc = head.deflated()
    compressor = zlib.compressobj(GZIP_LEVEL, zlib.DEFLATED, -zlib.MAX_WBITS)
    rest = compressor.compress(tail) + compressor.flush(zlib.Z_FINISH)
    size = (len(head.data) + len(tail)) & 0xFFFFFFFF
    return b"".join((_GZIP_HEADER, deflated, rest, struct.pack("<II", zlib.crc32(tail, crc), size)))


def metrics_app(render: Render) -> Callable:
    """A WSGI app answering GET with the body `render(accept_header, name[] params)` makes, as prometheus_client's own.

    `render` returns the body as a Chunk it opens with, the rest and the content type.
    """

    def app(environ, start_response):
        method = environ["REQUEST_METHOD"]
        if method == "OPTIONS":
            status, headers, body = "200 OK", [("Allow", "OPTIONS,GET")], b""
        elif method != "GET":
            status, headers = "405 Method Not Allowed", [("Allow", "OPTIONS,GET")]
            body = f"# HTTP {status}: {method}; use OPTIONS or GET\n".encode()
        elif environ.get("PATH_INFO") == "/favicon.ico":
            status, headers, body = "200 OK", [], b""
        else:
            names = parse_qs(environ.get("QUERY_STRING", "")).get("name[]")
            head, tail, content_type = render(environ.get("HTTP_ACCEPT"), names)
            status, headers = "200 OK", [("Content-Type", content_type)]
            if gzip_accepted(environ.get("HTTP_ACCEPT_ENCODING")):
                body = gzip_body(head, tail)
                headers.append(("Content-Encoding", "gzip"))
            else:
                body = head.data + tail
        start_response(status, headers)
        return [body]

    return app


class _SilentHandler(WSGIRequestHandler):
    """No access log line per scrape."""

    def log_message(self, format, *args) -> None:
        return None


def serve_metrics(app: Callable, bind: str, port: int) -> tuple[WSGIServer, threading.Thread]:
    """Serve `app` on bind:port from a daemon thread, a thread per request; IPv6 addresses work too."""
    family, _, _, _, sockaddr = socket.getaddrinfo(bind, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0]

    class Server(ThreadingWSGIServer):
        address_family = family

    server = make_server(sockaddr[0], port, app, Server, handler_class=_SilentHandler)
    thread = threading.Thread(target=server.serve_forever, name="exporter-http", daemon=True)
    thread.start()
    return server, thread
