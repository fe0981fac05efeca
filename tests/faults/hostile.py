"""A hostile web server on loopback: every response here is one a real server has sent.

Endpoints (all under one host, so the tests can mix them with a normal site):
``/huge.xml`` a 50 MB feed; ``/bomb.xml`` a gzip bomb (1 MB that inflates to 1 GB);
``/laughs.xml`` entity expansion; ``/xxe.xml`` an external entity naming
/etc/passwd; ``/loop`` a redirect to itself; ``/hop/<n>`` a 30-hop chain;
``/drip.xml`` one byte a second; ``/silent.xml`` accepts and never answers;
``/binary.html`` random bytes labelled text/html; ``/mislabelled.html`` Windows-1252
declared as UTF-8; ``/sjis.html`` Shift_JIS with no declaration; ``/links.xml`` a
feed whose items link to ``javascript:``, ``file:`` and the pages above;
``/endless.xml`` a feed with no Content-Length that never ends (50 MB, then the
connection closes); ``/drip.html`` an article page sent one byte a second, linked
from ``/driplinks.xml``, eight of them (``/drip.html?n=0`` …) from ``/manydrips.xml``.
"""

from __future__ import annotations

import contextlib
import gzip
import io
import os
import threading
import time
from functools import cache
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

MB = 1024 * 1024

LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol1 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol2 "&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<rss version="2.0"><channel><title>&lol9;</title>
<item><title>&lol9;</title><link>http://127.0.0.1:1/never</link></item>
</channel></rss>
"""

XXE = b"""<?xml version="1.0"?>
<!DOCTYPE rss [<!ENTITY secret SYSTEM "file:///etc/passwd">]>
<rss version="2.0"><channel><title>XXE</title>
<item><title>&secret;</title><link>{base}/mislabelled.html</link></item>
</channel></rss>
"""

MISLABELLED = (
    "<html><head><meta charset='utf-8'><title>Caf\u00e9 society \u2013 a na\u00efve "
    "r\u00e9sum\u00e9</title></head><body><article><h1>Caf\u00e9 society \u2013 a na\u00efve "
    "r\u00e9sum\u00e9</h1>"
    + "".join(
        f"<p>Paragraph {n}: the caf\u00e9 owner\u2019s na\u00efve r\u00e9sum\u00e9 \u2013 "
        "\u201cquoted\u201d \u2013 was read in Palmyra and Z\u00fcrich alike.</p>"
        for n in range(8)
    )
    + "</article></body></html>"
).encode("cp1252")

SJIS = (
    "<html><head><title>\u30d1\u30eb\u30df\u30e9\u306e\u535a\u7269\u9928\u304c\u518d\u958b"
    "</title></head><body><article><h1>\u30d1\u30eb\u30df\u30e9\u306e\u535a\u7269\u9928\u304c"
    "\u518d\u958b</h1>"
    + "".join(
        "<p>\u30b7\u30ea\u30a2\u4e2d\u90e8\u306e\u53e4\u4ee3\u90fd\u5e02\u30d1\u30eb\u30df\u30e9"
        "\u306e\u535a\u7269\u9928\u304c\u3001\u4fee\u5fa9\u3092\u7d42\u3048\u3066\u518d\u958b\u3057"
        "\u307e\u3057\u305f\u3002\u7814\u7a76\u8005\u305f\u3061\u306f\u7834\u58ca\u3055\u308c\u305f"
        "\u5f6b\u50cf\u3092\u4e00\u3064\u305a\u3064\u7d44\u307f\u7acb\u3066\u307e\u3057\u305f\u3002"
        "</p>"
        for _ in range(6)
    )
    + "</article></body></html>"
).encode("shift_jis")

LINKS = """<?xml version="1.0"?>
<rss version="2.0"><channel><title>Links</title>
<item><title>js</title><link>javascript:alert(document.cookie)</link></item>
<item><title>file</title><link>file:///etc/passwd</link></item>
<item><title>binary</title><link>{base}/binary.html</link></item>
<item><title>mislabelled</title><link>{base}/mislabelled.html</link></item>
<item><title>sjis</title><link>{base}/sjis.html</link></item>
</channel></rss>
"""


DRIP_LINKS = """<?xml version="1.0"?>
<rss version="2.0"><channel><title>Drip links</title>
<item><title>slow article</title><link>{base}/drip.html</link></item>
</channel></rss>
"""

MANY_DRIPS = (
    '<?xml version="1.0"?>\n<rss version="2.0"><channel><title>Drips</title>\n'
    + "".join(
        f"<item><title>slow {n}</title><link>{{base}}/drip.html?n={n}</link></item>\n"
        for n in range(8)
    )
    + "</channel></rss>\n"
)


@cache
def gzip_bomb() -> bytes:
    """About 1 MB of gzip that inflates to 1 GB of zeros (made once per test run)."""
    buffer = io.BytesIO()
    chunk = bytes(MB)
    with gzip.GzipFile(fileobj=buffer, mode="wb", compresslevel=9) as packed:
        for _ in range(1024):
            packed.write(chunk)
    return buffer.getvalue()


class HostileSite:
    """Serves the endpoints above on 127.0.0.1 and a free port."""

    def __init__(self) -> None:
        site = self
        self.requests: list[str] = []
        # Built now, not at the first request: it takes seconds of CPU, which on a busy
        # machine would run into the client's download timeout.
        gzip_bomb()

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                site.requests.append(self.path)
                # The client giving up (as it should) is no error of the server's.
                with contextlib.suppress(BrokenPipeError, ConnectionResetError, TimeoutError):
                    site.answer(self)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def url(self, path: str) -> str:
        return f"{self.base}/{path.lstrip('/')}"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def answer(self, handler: BaseHTTPRequestHandler) -> None:
        path = handler.path.split("?", 1)[0]
        base = self.base.encode()
        if path == "/robots.txt":
            self._send(handler, 200, b"User-agent: *\nAllow: /\n", "text/plain")
        elif path == "/huge.xml":
            self._huge(handler)
        elif path == "/bomb.xml":
            self._send(
                handler, 200, gzip_bomb(), "application/rss+xml", {"Content-Encoding": "gzip"}
            )
        elif path == "/laughs.xml":
            self._send(handler, 200, LAUGHS, "application/rss+xml")
        elif path == "/xxe.xml":
            self._send(handler, 200, XXE.replace(b"{base}", base), "application/rss+xml")
        elif path == "/loop":
            self._send(handler, 302, b"", "text/plain", {"Location": self.url("loop")})
        elif path.startswith("/hop/"):
            hop = int(path.rsplit("/", 1)[1])
            self._send(handler, 302, b"", "text/plain", {"Location": self.url(f"hop/{hop + 1}")})
        elif path == "/drip.xml":
            self._drip(handler)
        elif path == "/drip.html":
            self._drip(
                handler,
                b"<html><head><title>slow</title></head><body><p>",
                "text/html; charset=utf-8",
            )
        elif path == "/driplinks.xml":
            self._send(
                handler,
                200,
                DRIP_LINKS.replace("{base}", self.base).encode(),
                "application/rss+xml",
            )
        elif path == "/manydrips.xml":
            self._send(
                handler,
                200,
                MANY_DRIPS.replace("{base}", self.base).encode(),
                "application/rss+xml",
            )
        elif path == "/endless.xml":
            self._endless(handler)
        elif path == "/silent.xml":
            time.sleep(600)
        elif path == "/binary.html":
            self._send(handler, 200, os.urandom(200_000), "text/html")
        elif path == "/mislabelled.html":
            self._send(handler, 200, MISLABELLED, "text/html; charset=utf-8")
        elif path == "/sjis.html":
            self._send(handler, 200, SJIS, "text/html")
        elif path == "/links.xml":
            self._send(
                handler, 200, LINKS.replace("{base}", self.base).encode(), "application/rss+xml"
            )
        else:
            self._send(handler, 404, b"not here", "text/plain")

    @staticmethod
    def _send(
        handler: BaseHTTPRequestHandler,
        status: int,
        body: bytes,
        kind: str,
        headers: dict[str, str] | None = None,
    ) -> None:
        handler.send_response(status)
        handler.send_header("Content-Type", kind)
        handler.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            handler.send_header(name, value)
        handler.end_headers()
        handler.wfile.write(body)

    @staticmethod
    def _huge(handler: BaseHTTPRequestHandler) -> None:
        item = b"<item><title>Filler</title><link>http://127.0.0.1:1/x</link></item>\n"
        count = 50 * MB // len(item)
        handler.send_response(200)
        handler.send_header("Content-Type", "application/rss+xml")
        handler.send_header("Content-Length", str(count * len(item) + 60))
        handler.end_headers()
        handler.wfile.write(b'<?xml version="1.0"?><rss version="2.0"><channel>\n'.ljust(60))
        for _ in range(count // 1000):
            handler.wfile.write(item * 1000)

    @staticmethod
    def _endless(handler: BaseHTTPRequestHandler) -> None:
        """No Content-Length: the size is known only when it is too late."""
        handler.send_response(200)
        handler.send_header("Content-Type", "application/rss+xml")
        handler.send_header("Connection", "close")
        handler.end_headers()
        handler.wfile.write(b'<?xml version="1.0"?><rss version="2.0"><channel>\n')
        item = b"<item><title>Filler</title><link>http://127.0.0.1:1/x</link></item>\n" * 1000
        for _ in range(50 * MB // len(item)):
            handler.wfile.write(item)
        handler.close_connection = True

    @staticmethod
    def _drip(
        handler: BaseHTTPRequestHandler,
        body: bytes = b'<?xml version="1.0"?><rss version="2.0"><channel><title>slow</title>',
        kind: str = "application/rss+xml",
    ) -> None:
        handler.send_response(200)
        handler.send_header("Content-Type", kind)
        handler.send_header("Content-Length", str(len(body) + 100))
        handler.end_headers()
        for byte in body:
            handler.wfile.write(bytes([byte]))
            handler.wfile.flush()
            time.sleep(1)
