"""Identity providers that misbehave on purpose, for the gateway's bad-provider tests. One
server; each provider is an issuer under its own path: http://127.0.0.1:PORT/<mode>.

Usage: bad_idp.py PORT   (prints READY when listening)
  other_issuer  discovery names another issuer
  redirect      discovery redirects to another host
  huge          discovery is 10 MB of JSON
  slow          discovery answers after 30 s
  not_json      discovery is not JSON
  bad_keys      discovery is fine; the key set holds only keys to refuse (RSA 1024, a secret
                published as a key, alg none, an EC key on the wrong curve, two keys with one kid)
  http_jwks     discovery names a plain-http key set on another host
"""

import base64
import json
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PORT = int(sys.argv[1])
BASE = f"http://127.0.0.1:{PORT}"


def b64(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def rsa(kid, bits):
    return {"kty": "RSA", "kid": kid, "alg": "RS256", "use": "sig", "n": b64(b"\xc1" + b"\x55" * (bits // 8 - 1)), "e": "AQAB"}


BAD_KEYS = {"keys": [
    rsa("small", 1024),
    {"kty": "oct", "kid": "secret", "k": b64(b"a shared secret published as a key")},
    {"kty": "RSA", "kid": "none", "alg": "none", "n": "AQAB", "e": "AQAB"},
    {"kty": "EC", "kid": "curve", "alg": "ES256", "crv": "P-384", "x": b64(b"x" * 48), "y": b64(b"y" * 48)},
    rsa("dup", 2048),
    rsa("dup", 2048),
]}


class Handler(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def send(self, status, body, ctype="application/json", headers=()):
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(data)))
        for k, v in headers:
            self.send_header(k, v)
        self.end_headers()
        try:
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass

    def do_GET(self):
        parts = self.path.strip("/").split("/", 1)
        mode, rest = parts[0], parts[1] if len(parts) > 1 else ""
        issuer = f"{BASE}/{mode}"
        if rest == "jwks":
            return self.send(200, BAD_KEYS)
        if rest != ".well-known/openid-configuration":
            return self.send(404, {"error": "not found"})
        doc = {"issuer": issuer, "jwks_uri": f"{issuer}/jwks"}
        if mode == "other_issuer":
            return self.send(200, {**doc, "issuer": "https://evil.example"})
        if mode == "redirect":
            return self.send(302, b"", headers=[("Location", "https://evil.example/.well-known/openid-configuration")])
        if mode == "huge":
            return self.send(200, b'{"issuer": "' + b"x" * (10 << 20) + b'"}')
        if mode == "slow":
            time.sleep(30)
            return self.send(200, doc)
        if mode == "not_json":
            return self.send(200, b"<html>hello</html>", "text/html")
        if mode == "http_jwks":
            return self.send(200, {**doc, "jwks_uri": "http://evil.example/jwks"})
        return self.send(200, doc)


server = ThreadingHTTPServer(("127.0.0.1", PORT), Handler)
server.daemon_threads = True
print("READY", flush=True)
server.serve_forever()
