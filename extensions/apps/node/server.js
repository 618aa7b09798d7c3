// mtls-ref-node: a Node https server that terminates mutual TLS itself, the way mtls.fleet
// expects an app to (a reference app for docs/applications.md and the molecule scenarios).
//
// - Files come from the environment mtls_app writes: MTLS_CERT_FILE, MTLS_KEY_FILE,
//   MTLS_CA_FILE and MTLS_CRL_FILE (optional).
// - SIGHUP re-reads all four and calls server.setSecureContext(): new handshakes use the new
//   files, open connections carry on, and files that fail to load are logged and the previous
//   ones kept.
// - Node's `crl` option makes OpenSSL check the CRL of every CA in the client's chain; it reads
//   one CRL per entry, so the file (one CRL per CA) is split.
// - At each reload, open connections of clients the new CRLs revoke are closed: a keep-alive
//   connection would otherwise go on serving a client no new handshake accepts. Node cannot read
//   a CRL, so revokedSerials walks its DER for the serials.
// - SIGTERM stops accepting, closes idle keep-alive connections and exits when in-flight
//   requests are done.
"use strict";
const fs = require("fs");
const https = require("https");
const os = require("os");

function secureContextOptions() {
  const options = {
    cert: fs.readFileSync(process.env.MTLS_CERT_FILE),
    key: fs.readFileSync(process.env.MTLS_KEY_FILE),
    ca: fs.readFileSync(process.env.MTLS_CA_FILE),
  };
  if (process.env.MTLS_CRL_FILE) {
    options.crl = fs.readFileSync(process.env.MTLS_CRL_FILE, "utf8")
      .split(/(?<=-----END X509 CRL-----)/).map((pem) => pem.trim()).filter(Boolean);
  }
  return options;
}

// The serials a PEM CRL lists, upper-case hex without leading zeros (as serialNumber is compared).
function revokedSerials(pem) {
  const der = Buffer.from(pem.replace(/-----[A-Z0-9 ]+-----/g, "").replace(/\s+/g, ""), "base64");
  const tlv = (at) => {             // [tag, start of content, end]
    let length = der[at + 1], start = at + 2;
    if (length & 0x80) {
      const count = length & 0x7f;
      length = der.readUIntBE(start, count);
      start += count;
    }
    return [der[at], start, start + length];
  };
  const children = (start, end) => {
    const found = [];
    for (let at = start; at < end; at = tlv(at)[2]) found.push(tlv(at));
    return found;
  };
  const [, listStart] = tlv(0);                            // CertificateList
  const [, tbsStart, tbsEnd] = tlv(listStart);             // TBSCertList
  const sequences = children(tbsStart, tbsEnd).filter(([tag]) => tag === 0x30);
  const revoked = sequences[2];                            // after signature and issuer, when any
  if (!revoked) return [];
  return children(revoked[1], revoked[2]).map(([, start]) => {
    const [, serialStart, serialEnd] = tlv(start);
    return normalSerial(der.subarray(serialStart, serialEnd).toString("hex"));
  });
}

function normalSerial(hex) {
  return hex.toUpperCase().replace(/^0+/, "");
}

function describe(options) {
  const serial = new (require("crypto").X509Certificate)(options.cert).serialNumber;
  return `serving certificate serial ${serial}, ${(options.crl || []).length} CRL(s)`;
}

const initial = secureContextOptions();
const server = https.createServer({
  ...initial,
  requestCert: true,
  rejectUnauthorized: true,      // refuse clients without a valid certificate from the fleet's CA
  minVersion: "TLSv1.2",
}, (req, res) => {
  const peer = req.socket.getPeerCertificate();
  res.setHeader("Content-Type", "application/json");
  res.end(`{"client_identity": ${JSON.stringify(peer.subject.CN)}, "client_serial": "${peer.serialNumber}", "app": "node", `
    + `"host": ${JSON.stringify(os.hostname())}}\n`);
});
console.log(describe(initial));

const open = new Set();   // open connections, so a reload can close those of revoked clients
server.on("secureConnection", (socket) => {
  open.add(socket);
  socket.on("close", () => open.delete(socket));
});

function closeRevoked(crls) {
  const revoked = new Set((crls || []).flatMap(revokedSerials));
  for (const socket of open) {
    const peer = socket.getPeerCertificate();
    if (peer && peer.serialNumber && revoked.has(normalSerial(peer.serialNumber))) {
      console.log(`closing the connection of revoked client ${peer.serialNumber}`);
      socket.destroy();
    }
  }
}

process.on("SIGHUP", () => {
  try {
    const options = secureContextOptions();
    server.setSecureContext(options);
    console.log(describe(options));
    closeRevoked(options.crl);
  } catch (error) {
    console.error(`reload failed, still serving the previous files: ${error.message}`);
  }
});

process.on("SIGTERM", () => {
  server.close(() => process.exit(0));
  server.closeIdleConnections();
  setTimeout(() => process.exit(0), 10000).unref();
});

server.listen(Number(process.env.PORT || 9443), () => console.log(`listening on ${server.address().port}`));
