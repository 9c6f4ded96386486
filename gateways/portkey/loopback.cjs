// Preloaded into Portkey's gateway (node --require): its start-server has a --port but no
// listen address, and @hono/node-server listens on every interface. This makes a listen on a
// bare port listen on 127.0.0.1 only. Nothing else is changed.
const net = require("net");
const listen = net.Server.prototype.listen;
net.Server.prototype.listen = function (...args) {
  if (typeof args[0] === "number" && typeof args[1] !== "string") {
    args.splice(1, 0, "127.0.0.1");
  } else if (args[0] && typeof args[0] === "object" && args[0].port !== undefined && !args[0].host) {
    args[0] = { ...args[0], host: "127.0.0.1" };
  }
  return listen.apply(this, args);
};
