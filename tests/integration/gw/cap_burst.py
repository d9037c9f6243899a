# cap_burst.py HOST PORT N HOLD — opens N SSE and WS streams at once
# (threads released together), holds every admitted one open HOLD seconds
# so that all admitted streams overlap, and prints "admitted K refused R".
import base64, os, socket, sys, threading, time

host, port, n, hold = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
go = threading.Event()
lock = threading.Lock()
res = {"admitted": 0, "refused": 0, "other": 0}

def one(i):
    s = socket.socket()
    s.settimeout(10)
    s.connect((host, port))
    if i % 2:
        key = base64.b64encode(os.urandom(16)).decode()
        req = ("GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
               "Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n"
               "Sec-WebSocket-Protocol: flagcast.json\r\n\r\n" % key)
    else:
        req = "GET /api/v1/realtime/sse HTTP/1.1\r\nHost: x\r\n\r\n"
    go.wait()
    s.sendall(req.encode())
    data = b""
    kind = "other"
    t0 = time.time()
    try:
        while time.time() - t0 < 8:
            b = s.recv(4096)
            if not b:
                break
            data += b
            if b"x-flagcast-refused" in data.lower() or b"\x88" in data.split(b"\r\n\r\n", 1)[-1][:2]:
                kind = "refused"
                break
            if b"connected" in data.lower() or b"event: connection" in data:
                kind = "admitted"
                break
    except socket.timeout:
        pass
    with lock:
        res[kind] += 1
    if kind == "admitted":
        time.sleep(hold)
    s.close()

ts = [threading.Thread(target=one, args=(i,)) for i in range(n)]
for t in ts:
    t.start()
time.sleep(0.3)
go.set()
for t in ts:
    t.join()
print("admitted %d refused %d other %d" % (res["admitted"], res["refused"], res["other"]))
