# rst_client.py HOST PORT CHANNEL SECONDS — a WebSocket client that
# subscribes to CHANNEL with a 4 KB receive buffer, never reads, and after
# SECONDS closes with data unread (SO_LINGER 0: the kernel sends RST).
# Prints "closed with RST".
import base64, json, os, socket, struct, sys, time

host, port, ch, secs = sys.argv[1], int(sys.argv[2]), sys.argv[3], float(sys.argv[4])
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
s.connect((host, port))
key = base64.b64encode(os.urandom(16)).decode()
s.sendall(("GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
           "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n"
           "Sec-WebSocket-Protocol: flagcast.json\r\n\r\n" % key).encode())
head = b""
while b"\r\n\r\n" not in head:
    b = s.recv(1)
    if not b:
        sys.exit("no upgrade answer")
    head += b
if b" 101 " not in head.split(b"\r\n")[0]:
    sys.exit("upgrade refused: %r" % head[:80])
payload = json.dumps({"type": "subscribe", "channels": [ch]}).encode()
mask = os.urandom(4)
s.sendall(bytes([0x81, 0x80 | len(payload)]) + mask +
          bytes(c ^ mask[i % 4] for i, c in enumerate(payload)))
time.sleep(secs)
s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
s.close()
print("closed with RST")
