"""A SOCKS5 proxy on loopback for the tests (RFC 1928, RFC 1929): no authentication or
a user name and password, CONNECT to loopback only. It records what it was asked."""

from __future__ import annotations

import contextlib
import select
import socket
import socketserver
import struct
import threading

LOOPBACK = ("127.0.0.1", "localhost", "::1")


class Socks5Proxy:
    """Listens on 127.0.0.1 (port 0); ``login`` (user, password) makes it want them."""

    def __init__(self, login: tuple[str, str] | None = None) -> None:
        self.login = login
        self.connects: list[tuple[str, int]] = []  # (host as sent, port)
        self.refused_logins = 0
        self.relayed = bytearray()  # every byte a client sent through to a site
        proxy = self

        class Handler(socketserver.BaseRequestHandler):
            def handle(self) -> None:
                proxy.serve(self.request)

        self.server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def url(self, user: str | None = None, password: str | None = None) -> str:
        login = f"{user}:{password}@" if user is not None else ""
        return f"socks5://{login}127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def serve(self, client: socket.socket) -> None:
        _version, count = _read(client, 2)
        method = 2 if self.login is not None else 0
        if method not in _read(client, count):
            client.sendall(b"\x05\xff")  # no acceptable method
            return
        client.sendall(bytes([5, method]))
        if method == 2:
            _version, size = _read(client, 2)
            user = _read(client, size).decode()
            password = _read(client, _read(client, 1)[0]).decode()
            accepted = (user, password) == self.login
            client.sendall(b"\x01\x00" if accepted else b"\x01\x01")
            if not accepted:
                self.refused_logins += 1
                return
        _version, command, _reserved, kind = _read(client, 4)
        if kind == 1:
            host = socket.inet_ntoa(_read(client, 4))
        elif kind == 4:
            host = socket.inet_ntop(socket.AF_INET6, _read(client, 16))
        else:
            host = _read(client, _read(client, 1)[0]).decode()
        (port,) = struct.unpack("!H", _read(client, 2))
        self.connects.append((host, port))
        if command != 1 or host not in LOOPBACK:
            client.sendall(b"\x05\x02\x00\x01" + bytes(6))  # not allowed by ruleset
            return
        try:
            upstream = socket.create_connection((host, port), timeout=10)
        except OSError:
            client.sendall(b"\x05\x05\x00\x01" + bytes(6))  # connection refused
            return
        client.sendall(b"\x05\x00\x00\x01" + socket.inet_aton("127.0.0.1") + bytes(2))
        with upstream:
            _relay(client, upstream, self.relayed)


def _read(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = sock.recv(size - len(data))
        if not chunk:
            raise ConnectionError("the client went away")
        data += chunk
    return data


def _relay(client: socket.socket, upstream: socket.socket, sent: bytearray) -> None:
    """Copy bytes both ways until either side closes; what the client sent is added
    to ``sent``."""
    peers = {client: upstream, upstream: client}
    with contextlib.suppress(OSError):
        while True:
            readable, _, _ = select.select(list(peers), [], [], 30)
            if not readable:
                return
            for sock in readable:
                data = sock.recv(65536)
                if not data:
                    return
                if sock is client:
                    sent += data
                peers[sock].sendall(data)
