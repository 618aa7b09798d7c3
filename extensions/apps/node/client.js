// mtls-ref-node-client: a Node https client that picks up a rotated identity without a restart
// (a reference client for docs/applications.md, tested in tests/unit/test_reference_apps.py).
//
//   node client.js URL SECONDS
//
// Before each request it compares the identity and bundle files (MTLS_CERT_FILE, MTLS_KEY_FILE,
// MTLS_CA_FILE) with what it loaded; when they changed and load as a pair, it makes a new
// https.Agent (its keep-alive connections use the new identity) and destroys the old one.
// Files that do not load yet (half-written during an install) leave the current agent in use.
// Prints {"sent", "failed", "client_serials"}: the serials the server reported seeing, in order.
"use strict";
const fs = require("fs");
const https = require("https");
const tls = require("tls");

const files = [process.env.MTLS_CERT_FILE, process.env.MTLS_KEY_FILE, process.env.MTLS_CA_FILE];
let agent = null;
let stamp = null;

function currentAgent() {
  const now = files.map((path) => { const st = fs.statSync(path); return `${path}:${st.mtimeMs}:${st.size}`; }).join(";");
  if (now !== stamp) {
    try {
      const [cert, key, ca] = files.map((path) => fs.readFileSync(path));
      tls.createSecureContext({ cert, key, ca });   // throws unless the pair and bundle load
      const next = new https.Agent({ cert, key, ca, keepAlive: true, minVersion: "TLSv1.2" });
      if (agent) agent.destroy();
      agent = next;
      stamp = now;
    } catch (error) {
      if (!agent) throw error;
    }
  }
  return agent;
}

function get(url) {
  return new Promise((resolve, reject) => {
    https.get(url, { agent: currentAgent(), timeout: 5000 }, (res) => {
      let body = "";
      res.on("data", (chunk) => { body += chunk; });
      res.on("end", () => (res.statusCode === 200 ? resolve(JSON.parse(body)) : reject(new Error(`HTTP ${res.statusCode}`))));
    }).on("error", reject).on("timeout", function onTimeout() { this.destroy(new Error("timeout")); });
  });
}

async function main() {
  const [url, seconds] = process.argv.slice(2);
  const deadline = Date.now() + Number(seconds) * 1000;
  const result = { sent: 0, failed: 0, client_serials: [] };
  while (Date.now() < deadline) {
    result.sent += 1;
    try {
      const reply = await get(url);
      if (result.client_serials[result.client_serials.length - 1] !== reply.client_serial) result.client_serials.push(reply.client_serial);
    } catch (error) {
      result.failed += 1;
      console.error(error.message);
    }
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  if (agent) agent.destroy();
  console.log(JSON.stringify(result));
}

main();
