"""Demo backend app: answers with what nginx told it about the verified client, as JSON."""

import json
import socket
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Echo(BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 (http.server's naming)
        body = json.dumps({
            "backend": socket.gethostname(),
            "client_identity": self.headers.get("X-Client-Identity"),
            "forwarded_client_identity": self.headers.get("X-Forwarded-Client-Identity"),
            "client_serial": self.headers.get("X-Client-Serial"),
            "client_verify": self.headers.get("X-Client-Verify"),
            "path": self.path,
        }).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


ThreadingHTTPServer(("127.0.0.1", 8080), Echo).serve_forever()
