#!/usr/bin/env python3
"""HTTPS stand-in for PuppetDB's resource query and a k3s server's /ping, for the collection script's tests.

usage: fake-puppetdb.py PORT CERT KEY STATE_DIR
  GET /ping                                   -> "pong" (a reachable k3s server)
  GET /pdb/query/v4/resources/K3s_cluster_info -> STATE_DIR/answer.json once present, else []
Each query's URL is appended to STATE_DIR/queries.log.
"""
import http.server
import os
import ssl
import sys

port, cert, key, state = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        if self.path == "/ping":
            return self.reply(200, b"pong")
        if self.path.startswith("/pdb/query/v4/resources/K3s_cluster_info"):
            with open(os.path.join(state, "queries.log"), "a") as log:
                log.write(self.path + "\n")
            answer = os.path.join(state, "answer.json")
            body = open(answer, "rb").read() if os.path.exists(answer) else b"[]"
            return self.reply(200, body)
        self.reply(404, b"not found")

    def reply(self, status, body):
        self.send_response(status)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


server = http.server.HTTPServer(("127.0.0.1", port), Handler)
context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
context.load_cert_chain(cert, key)
server.socket = context.wrap_socket(server.socket, server_side=True)
server.serve_forever()
