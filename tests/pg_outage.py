"""A real PostgreSQL outage a test can cause and end: a TCP proxy in front of the server.

The store under test connects through the proxy.  :meth:`TcpProxy.cut` closes every
connection and the listening socket, so the store sees what a restarting or unreachable
server looks like (established connections reset, new ones refused); :meth:`restore`
listens again on the same port.  The server itself, and every other test's connection to
it, is untouched, and nothing global (roles, settings) changes.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass

from sqlalchemy.engine import make_url

from tests.conftest import drop_pg_schema, pg_url_or_skip

CHUNK = 65536


class TcpProxy:
    """Forwards 127.0.0.1:<port> to ``target``; cut and restored on demand."""

    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = 0
        self._listener: socket.socket | None = None
        self._sockets: set[socket.socket] = set()
        self._lock = threading.Lock()

    def start(self) -> TcpProxy:
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self.port = listener.getsockname()[1]
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), name="pg-proxy-accept", daemon=True).start()
        return self

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return  # cut
            try:
                upstream = socket.create_connection(self.target, timeout=5)
                upstream.settimeout(None)
            except OSError:
                client.close()
                continue
            with self._lock:
                if self._listener is not listener:  # cut meanwhile
                    client.close()
                    upstream.close()
                    return
                self._sockets.update((client, upstream))
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pump, args=(source, sink), name="pg-proxy-pump", daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while data := source.recv(CHUNK):
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                self._close(sock)

    def _close(self, sock: socket.socket) -> None:
        with self._lock:
            self._sockets.discard(sock)
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
        with contextlib.suppress(OSError):
            sock.close()

    def cut(self) -> None:
        """The outage: refuse new connections and reset the open ones."""
        with self._lock:
            listener, self._listener = self._listener, None
            open_sockets = list(self._sockets)
        if listener is not None:
            self._close(listener)
        for sock in open_sockets:
            self._close(sock)

    def restore(self) -> None:
        """The server is back, on the same address."""
        self.start()

    def close(self) -> None:
        self.cut()


@dataclass(frozen=True)
class Outage:
    """A fresh PostgreSQL schema, reachable directly and through a proxy that can be cut."""

    proxy: TcpProxy
    url: str  # through the proxy: give this one to the code under test
    direct_url: str  # straight to the server: the test's own view of the store


@contextlib.contextmanager
def pg_outage() -> Iterator[Outage]:
    """A schema on the test server behind a :class:`TcpProxy` (skipped, or failed in CI,
    when no server answers); dropped afterwards."""
    direct_url = pg_url_or_skip()
    parsed = make_url(direct_url)
    proxy = TcpProxy(parsed.host or "127.0.0.1", parsed.port or 5432).start()
    try:
        proxied = parsed.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
        yield Outage(proxy, proxied, direct_url)
    finally:
        proxy.close()
        drop_pg_schema(direct_url)


__all__ = ["Outage", "TcpProxy", "pg_outage"]
