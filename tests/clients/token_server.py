"""A minimal OAuth 2.0 token endpoint (client credentials grant) for the upstream-credentials
tests: it issues `tok-1`, `tok-2`, ... living EXPIRES_IN seconds to client `gw` with secret
`s3cret`, refuses anything else with 401 `invalid_client`, and counts what it issued at
`GET /count`. Prints `LISTENING <port>` once bound.

Usage: token_server.py EXPIRES_IN"""
import json
import sys
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

EXPIRES_IN = int(sys.argv[1])
lock = threading.Lock()
issued = 0


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def reply(self, status, body):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        self.reply(200, {"issued": issued})

    def do_POST(self):
        global issued
        length = int(self.headers.get("Content-Length", "0"))
        form = urllib.parse.parse_qs(self.rfile.read(length).decode())
        one = lambda k: (form.get(k) or [""])[0]
        if one("grant_type") != "client_credentials" or one("client_id") != "gw" or one("client_secret") != "s3cret":
            self.reply(401, {"error": "invalid_client", "error_description": "secret was " + one("client_secret")})
            return
        with lock:
            issued += 1
            token = f"tok-{issued}"
        self.reply(200, {"access_token": token, "token_type": "Bearer", "expires_in": EXPIRES_IN})


server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
print(f"LISTENING {server.server_address[1]}", flush=True)
server.serve_forever()
