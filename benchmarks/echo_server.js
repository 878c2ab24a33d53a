// The echo server of the client benchmark: Node's `ws`, permessage-deflate
// available when the client offers it, messages up to 256 MiB.
// Usage: node echo_server.js  -> prints "PORT <n>" once listening on 127.0.0.1.
const { WebSocketServer } = require("ws");

const server = new WebSocketServer({
  host: "127.0.0.1",
  port: 0,
  maxPayload: 256 * 1024 * 1024,
  perMessageDeflate: { threshold: 0 },
});
server.on("connection", (ws) => {
  ws.on("message", (data, isBinary) => ws.send(data, { binary: isBinary }));
});
server.on("listening", () => {
  process.stdout.write(`PORT ${server.address().port}\n`);
});
process.on("SIGTERM", () => process.exit(0));
