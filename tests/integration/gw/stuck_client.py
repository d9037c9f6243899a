# stuck_client.py PORT PATH — an SSE client that connects with a tiny receive
# buffer, sends its request and never reads: the slow consumer of the
# integration tests. Prints "sent" once the request is out, then sleeps
# until it is killed.
import socket
import sys
import time

s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
s.connect(("127.0.0.1", int(sys.argv[1])))
s.sendall(("GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n\r\n" % sys.argv[2]).encode())
print("sent", flush=True)
while True:
    time.sleep(3600)
