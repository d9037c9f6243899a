# ws_unmasked.py HOST PORT MASKED — after a raw WS handshake sends one
# text frame {"type":"ping","id":7}, masked (1) or unmasked (0) as RFC 6455
# requires of clients, and prints repr() of what arrives within 3 s
# (<EOF> when the server closed the connection).
import base64, json, os, socket, struct, sys, time
host, port, masked = sys.argv[1], int(sys.argv[2]), sys.argv[3] == "1"
s = socket.socket(); s.settimeout(5); s.connect((host, port))
key = base64.b64encode(os.urandom(16)).decode()
s.sendall(("GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
           "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n"
           "Sec-WebSocket-Protocol: flagcast.json\r\n\r\n" % key).encode())
head = b""
while b"\r\n\r\n" not in head:
    head += s.recv(1)
payload = json.dumps({"type": "ping", "id": 7}).encode()
if masked:
    m = os.urandom(4); fr = bytes([0x81, 0x80 | len(payload)]) + m + bytes(c ^ m[i % 4] for i, c in enumerate(payload))
else:
    fr = bytes([0x81, len(payload)]) + payload
s.sendall(fr)
t0 = time.time(); data = b""
while time.time() - t0 < 3:
    try:
        b = s.recv(4096)
    except socket.timeout:
        break
    if not b: data += b"<EOF>"; break
    data += b
print(repr(data[-300:]))
