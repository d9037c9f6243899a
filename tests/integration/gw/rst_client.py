# rst_client.py HOST PORT CHANNEL SECONDS — a WebSocket client that
# subscribes to CHANNEL with a 4 KB receive buffer, never reads, and after
# SECONDS closes with data unread (SO_LINGER 0: the kernel sends RST).
# Prints "closed with RST".
import json, socket, struct, sys, time
import wsraw

host, port, ch, secs = sys.argv[1], int(sys.argv[2]), sys.argv[3], float(sys.argv[4])
s = wsraw.connect(host, port, rcvbuf=4096)
s.sendall(wsraw.text_frame(json.dumps({"type": "subscribe", "channels": [ch]}).encode()))
time.sleep(secs)
s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
s.close()
print("closed with RST")
