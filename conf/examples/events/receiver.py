"""mailgate webhook receiver (README, "Events and feedback"): checks each POST's
signature and freshness, prints its events as JSON lines. Standard library only."""
import hashlib, hmac, json, sys, time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

SECRET = b"s3cr3t"                                   # the target's `secret`

class Hook(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"                    # keep-alive: mailgate reuses the connection
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        ts = self.headers.get("X-Mailgate-Timestamp", "")
        mac = hmac.new(SECRET, ts.encode() + b"." + body, hashlib.sha256).hexdigest()
        good = (ts.isdigit() and abs(time.time() - int(ts)) < 300   # refuse replays of old requests
                and hmac.compare_digest("sha256=" + mac, self.headers.get("X-Mailgate-Signature", "")))
        for event in json.loads(body) if good else []:
            print(json.dumps(event), flush=True)
        self.send_response(204 if good else 401)     # any 2xx acknowledges the batch
        self.send_header("Content-Length", "0")
        self.end_headers()
    def log_message(self, *args): pass

ThreadingHTTPServer(("127.0.0.1", int(sys.argv[1]) if len(sys.argv) > 1 else 8080), Hook).serve_forever()
