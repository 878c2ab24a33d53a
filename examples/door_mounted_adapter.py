"""An adapter mounted for https:// (here with its own SSL context) serves wss://."""

import os
import ssl

import requests.adapters

import requests_ws

URI = os.environ.get("WS_URI", "wss://localhost:8765/")
CA_FILE = os.environ.get("CA_FILE", "/etc/ssl/certs/ca-certificates.crt")


class CorporateAdapter(requests.adapters.HTTPAdapter):
    def init_poolmanager(self, *args, **kwargs):
        kwargs["ssl_context"] = ssl.create_default_context(cafile=CA_FILE)
        super().init_poolmanager(*args, **kwargs)


session = requests_ws.Session()
session.mount("https://", CorporateAdapter())
with session.ws_connect(URI) as ws:
    ws.send("hello through a mounted adapter")
    print(ws.recv())
