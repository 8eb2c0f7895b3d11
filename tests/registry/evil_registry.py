#!/usr/bin/env python3
"""A small, deliberately dishonest OCI registry for airpack's tests.

usage: evil_registry.py LAYOUT_DIR MODE PORT_FILE

Serves the OCI image layout LAYOUT_DIR (written by `airpack export`) over
the read side of the OCI Distribution API on 127.0.0.1 (a free port,
written to PORT_FILE), lying as MODE says:

  ok            serve faithfully
  token         faithful, but only with a bearer token from /token, which
                needs basic auth user:secret (the token flow)
  redirect      faithful, but every blob GET is a 307 redirect (with a body)
                to /storage/<digest>, as registries on object storage do
  tamper        the largest model blob: one byte changed, same length
  truncated     the largest model blob: half of it, then the connection closes
  long          the largest model blob: 100 bytes more than its size
  extra-layer   the bundle manifest gains a layer the lock does not list
                (index rewritten to match)
  wrong-size    the bundle manifest gives the model layer another size
  wrong-digest  the bundle manifest names another blob for the model layer
  bad-lock      the lock blob changed (the manifest and index rewritten to
                match: only the signature can tell)
  foreign-index an extra entry in the index that is neither bundle nor model

It stops by itself after 120 seconds (a test that dies leaves no server).
"""
import base64
import hashlib
import json
import os
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

LAYOUT, MODE, PORT_FILE = sys.argv[1], sys.argv[2], sys.argv[3]
IDX_MT = "application/vnd.oci.image.index.v1+json"
MAN_MT = "application/vnd.oci.image.manifest.v1+json"
TOKEN = "t0k3n-for-airpack-tests"

blobs = {}  # digest -> bytes (as served)


def blob(d):
    if d in blobs:
        return blobs[d]
    with open(os.path.join(LAYOUT, "blobs", "sha256", d.split(":", 1)[1]), "rb") as f:
        return f.read()


def digest(b):
    return "sha256:" + hashlib.sha256(b).hexdigest()


def put_json(obj):
    b = json.dumps(obj, separators=(",", ":")).encode()
    d = digest(b)
    blobs[d] = b
    return d, len(b)


with open(os.path.join(LAYOUT, "index.json")) as f:
    top = json.load(f)["manifests"][0]
tag_digest = top["digest"]
index = json.loads(blob(tag_digest))
bentry = [m for m in index["manifests"] if m["annotations"]["org.airpack.kind"] == "bundle"][0]
bman = json.loads(blob(bentry["digest"]))
model_layers = [l for l in bman["layers"] if l["mediaType"].startswith("application/vnd.cncf.model.weight")]
big = max(model_layers, key=lambda l: l["size"]) if model_layers else bman["layers"][-1]
SPECIAL = big["digest"]


def republish_bundle():
    global tag_digest
    d, n = put_json(bman)
    bentry["digest"], bentry["size"] = d, n
    tag_digest, _ = put_json(index)


if MODE == "extra-layer":
    extra = dict(bman["layers"][-1])
    extra["annotations"] = {"org.airpack.path": "payload/files/extra.bin"}
    bman["layers"].append(extra)
    republish_bundle()
elif MODE == "wrong-size":
    for l in bman["layers"]:
        if l["digest"] == SPECIAL:
            l["size"] += 1
    republish_bundle()
elif MODE == "wrong-digest":
    other = bman["layers"][2]["digest"]
    for l in bman["layers"]:
        if l["digest"] == SPECIAL:
            l["digest"] = other
    republish_bundle()
elif MODE == "bad-lock":
    lock = blob(bman["config"]["digest"]).replace(b'"sequence": ', b'"sequence": 9', 1)
    d = digest(lock)
    blobs[d] = lock
    bman["config"]["digest"], bman["config"]["size"] = d, len(lock)
    republish_bundle()
elif MODE == "foreign-index":
    index["manifests"].append({"mediaType": MAN_MT, "digest": bentry["digest"],
                               "size": bentry["size"], "annotations": {"org.example": "x"}})
    tag_digest, _ = put_json(index)


class H(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def send(self, code, body=b"", ctype="application/json", extra=None):
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def authorized(self):
        if MODE != "token":
            return True
        if self.headers.get("Authorization") == "Bearer " + TOKEN:
            return True
        host = "127.0.0.1:%d" % self.server.server_address[1]
        self.send(401, b'{"errors":[{"code":"UNAUTHORIZED"}]}', extra={
            "WWW-Authenticate": 'Bearer realm="http://%s/token",service="evil",scope="repository:x:pull"' % host})
        return False

    def do_HEAD(self):
        self.do_GET()

    def do_GET(self):
        p = self.path.split("?", 1)[0]
        if p == "/token":
            want = "Basic " + base64.b64encode(b"user:secret").decode()
            if self.headers.get("Authorization") != want:
                return self.send(401, b"{}")
            return self.send(200, json.dumps({"token": TOKEN}).encode())
        if not self.authorized():
            return
        if p == "/v2/":
            return self.send(200, b"{}")
        if p.startswith("/storage/"):
            return self.send(200, blob(p.split("/")[-1]), "application/octet-stream")
        parts = p.split("/")
        # /v2/<repo...>/manifests/<ref>  or  /v2/<repo...>/blobs/<digest>
        if len(parts) < 5 or parts[1] != "v2":
            return self.send(404, b"{}")
        kind, ref = parts[-2], parts[-1]
        if kind == "manifests":
            d = ref if ref.startswith("sha256:") else tag_digest
            try:
                b = blob(d)
            except OSError:
                return self.send(404, b'{"errors":[{"code":"MANIFEST_UNKNOWN"}]}')
            mt = json.loads(b).get("mediaType", MAN_MT)
            return self.send(200, b, mt, {"Docker-Content-Digest": d})
        if kind == "blobs":
            try:
                b = blob(ref)
            except OSError:
                return self.send(404, b'{"errors":[{"code":"BLOB_UNKNOWN"}]}')
            if MODE == "redirect":
                return self.send(307, b"<a href=\"/storage/%s\">Temporary Redirect</a>" % ref.encode()
                                 + b" " * 70000, "text/html", {"Location": "/storage/" + ref})
            if ref == SPECIAL and MODE == "tamper":
                b = bytes([b[0] ^ 1]) + b[1:]
            elif ref == SPECIAL and MODE == "long":
                b = b + b"\0" * 100
            elif ref == SPECIAL and MODE == "truncated" and self.command == "GET":
                self.send_response(200)
                self.send_header("Content-Type", "application/octet-stream")
                self.send_header("Content-Length", str(len(b)))
                self.end_headers()
                self.wfile.write(b[: len(b) // 2])
                self.wfile.flush()
                self.close_connection = True
                return
            return self.send(200, b, "application/octet-stream")
        return self.send(404, b"{}")


srv = ThreadingHTTPServer(("127.0.0.1", 0), H)
srv.daemon_threads = True
with open(PORT_FILE + ".tmp", "w") as f:
    f.write(str(srv.server_address[1]))
os.rename(PORT_FILE + ".tmp", PORT_FILE)
threading.Timer(120, srv.shutdown).start()
srv.serve_forever()
