"""A webhook receiver for the integration tests: Python's threaded
http.server on loopback that verifies X-Mailgate-Signature the way a user's
receiver would, records every batch it acknowledged, and can be told to
fail (a status such as 500, 429 or 400), to be slow (sleep before
answering), and to recover; with a TLS context it serves HTTPS."""
import hashlib
import hmac
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def verify(secret, timestamp, body, signature):
    """The five lines a receiver needs (README, "Webhooks")."""
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return hmac.compare_digest("sha256=" + mac.hexdigest(), signature)


class Receiver:
    def __init__(self, secret, status=200, delay=0.0, tls_context=None):
        self.secret = secret
        self.status = status  # what the next POSTs get
        self.delay = delay    # seconds before answering
        self.lock = threading.Lock()
        self.batches = []     # acknowledged batches: lists of event dicts, in arrival order
        self.requests = 0     # every POST, answered or not
        self.posted = 0       # events in every correctly signed POST, whatever the answer
        self.started = 0      # POSTs whose handling began (set before any delay)
        self.bad_signatures = 0
        self.headers = []     # (timestamp, signature) of each POST
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive: the gateway reuses connections

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                ts = self.headers.get("X-Mailgate-Timestamp", "")
                sig = self.headers.get("X-Mailgate-Signature", "")
                with receiver.lock:
                    receiver.started += 1
                    status, delay = receiver.status, receiver.delay
                if delay:
                    time.sleep(delay)
                good = verify(receiver.secret, ts, body, sig)
                with receiver.lock:
                    receiver.requests += 1
                    receiver.headers.append((ts, sig))
                    if not good:
                        receiver.bad_signatures += 1
                    else:
                        receiver.posted += len(json.loads(body))
                    if good and 200 <= status < 300:
                        receiver.batches.append(json.loads(body))
                reply = b"{}"
                try:
                    self.send_response(status if good else 401)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(reply)))
                    self.end_headers()
                    self.wfile.write(reply)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the gateway gave up (timeout) or was killed

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        scheme = "http"
        if tls_context:  # HTTPS: the handshake runs in accept (a refused one is dropped)
            self.server.socket = tls_context.wrap_socket(self.server.socket, server_side=True)
            scheme = "https"
        self.url = f"{scheme}://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def set(self, status=None, delay=None):
        with self.lock:
            if status is not None:
                self.status = status
            if delay is not None:
                self.delay = delay

    def events(self):
        with self.lock:
            return [e for b in self.batches for e in b]

    def batch_sizes(self):
        with self.lock:
            return [len(b) for b in self.batches]

    def stop(self):
        self.server.shutdown()
        self.server.server_close()
