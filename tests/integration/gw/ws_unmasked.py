# ws_unmasked.py HOST PORT MASKED — after a raw WS handshake sends one
# text frame {"type":"ping","id":7}, masked (1) or unmasked (0) as RFC 6455
# requires of clients, and prints repr() of what arrives within 3 s
# (<EOF> when the server closed the connection).
import json, socket, sys, time
import wsraw
host, port, masked = sys.argv[1], int(sys.argv[2]), sys.argv[3] == "1"
s = wsraw.connect(host, port, timeout=5)
fr = wsraw.text_frame(json.dumps({"type": "ping", "id": 7}).encode(), masked)
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
