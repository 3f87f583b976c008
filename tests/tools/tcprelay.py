"""A TCP relay that stands for the network between one process and a server, in the tests:
`python tcprelay.py LISTEN_PORT TARGET_HOST TARGET_PORT` accepts on 127.0.0.1:LISTEN_PORT and
copies bytes both ways to the target, one thread pair per connection.

Stopping it (SIGSTOP) partitions whoever uses it as a cut network does: nothing passes and
nobody is told (no FIN, no RST); SIGCONT heals it. Standard library only; only run, never
imported by the tests.
"""

import socket
import sys
import threading

listen_port, host, port = int(sys.argv[1]), sys.argv[2], int(sys.argv[3])


def pipe(src: socket.socket, dst: socket.socket) -> None:
    try:
        while True:
            data = src.recv(65536)
            if not data:
                break
            dst.sendall(data)
    except OSError:
        pass
    finally:
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


server = socket.socket()
server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
server.bind(("127.0.0.1", listen_port))
server.listen(64)
print("ready", flush=True)
while True:
    client, _ = server.accept()
    try:
        upstream = socket.create_connection((host, port), timeout=5)
        upstream.settimeout(None)
    except OSError:
        client.close()
        continue
    threading.Thread(target=pipe, args=(client, upstream), daemon=True).start()
    threading.Thread(target=pipe, args=(upstream, client), daemon=True).start()
