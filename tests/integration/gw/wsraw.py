# wsraw.py — a raw-socket WebSocket client for tests that need what a
# library will not do (unmasked frames, a reset with data unread): the
# upgrade handshake and one text frame, masked or not.
import base64, os, socket


def connect(host, port, rcvbuf=None, timeout=None):
    """Opens /ws with subprotocol flagcast.json; returns the socket once the
    101 answer is read (exits with the answer otherwise)."""
    s = socket.socket()
    if rcvbuf:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    if timeout:
        s.settimeout(timeout)
    s.connect((host, port))
    key = base64.b64encode(os.urandom(16)).decode()
    s.sendall(("GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
               "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n"
               "Sec-WebSocket-Protocol: flagcast.json\r\n\r\n" % key).encode())
    head = b""
    while b"\r\n\r\n" not in head:
        b = s.recv(1)
        if not b:
            raise SystemExit("no upgrade answer")
        head += b
    if b" 101 " not in head.split(b"\r\n")[0]:
        raise SystemExit("upgrade refused: %r" % head[:80])
    return s


def text_frame(payload, masked=True):
    """One final text frame (payload under 126 bytes)."""
    if not masked:
        return bytes([0x81, len(payload)]) + payload
    m = os.urandom(4)
    return bytes([0x81, 0x80 | len(payload)]) + m + bytes(c ^ m[i % 4] for i, c in enumerate(payload))
