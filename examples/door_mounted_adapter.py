"""An adapter mounted for https:// (here with its own SSL context) serves wss://.

The server writes its test CA to CA_FILE (default: requests-ws-examples-ca.pem
in the temporary directory).

Run: python examples/door_mounted_adapter.py
     (with ``python examples/server.py`` running in another terminal)
"""

import os
import ssl
import tempfile

import requests.adapters

import requests_ws

URI = os.environ.get("WS_URI", "wss://localhost:8766/")
CA_FILE = os.environ.get(
    "CA_FILE", os.path.join(tempfile.gettempdir(), "requests-ws-examples-ca.pem")
)


class CorporateAdapter(requests.adapters.HTTPAdapter):
    def init_poolmanager(self, *args, **kwargs):
        kwargs["ssl_context"] = ssl.create_default_context(cafile=CA_FILE)
        super().init_poolmanager(*args, **kwargs)


session = requests_ws.Session()
session.mount("https://", CorporateAdapter())
with session.ws_connect(URI) as ws:
    ws.send("hello through a mounted adapter")
    print(ws.recv())
