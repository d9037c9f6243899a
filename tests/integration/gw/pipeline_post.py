"""pipeline_post.py PORT: two evaluation POSTs pipelined on one connection.
Prints the status lines received before the gateway closed (lws 4.1 cannot
serve a request pipelined behind a body: the first is answered with
Connection: close and the client repeats the second)."""
import socket, sys

port = int(sys.argv[1])
req = (b'POST /ofrep/v1/evaluate/flags HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}')
s = socket.create_connection(("127.0.0.1", port))
s.settimeout(5)
s.sendall(req + req)
out = b""
try:
    while True:
        d = s.recv(65536)
        if not d:
            break
        out += d
except socket.timeout:
    print("timeout")
s.close()
for line in out.split(b"\r\n"):
    if line.startswith(b"HTTP/"):
        print(line.decode())
