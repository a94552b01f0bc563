#!/usr/bin/env node
// An ordinary, uninstrumented Node.js HTTP service for watching sonde at work:
// no dependencies and no OpenTelemetry, so every span comes from eBPF.
//
//   GET /                        plain text
//   GET /checkout?user=&token=   calls prices (GET /price?item=book), answers JSON
//   GET /slow                    answers after 200 ms
//   GET /error                   500
//
// Environment: PORT (8080), HOST (127.0.0.1), PRICES_HOST (127.0.0.1), PRICES_PORT (8081).
'use strict';

const http = require('node:http');

const PORT = Number(process.env.PORT || 8080);
const HOST = process.env.HOST || '127.0.0.1';
const PRICES_HOST = process.env.PRICES_HOST || '127.0.0.1';
const PRICES_PORT = Number(process.env.PRICES_PORT || 8081);

// Reusing the downstream connection is what real services do, and it is the
// harder case for a tracer: several requests share one socket.
const pricesAgent = new http.Agent({ keepAlive: true, maxSockets: 16 });

function send(res, status, contentType, body) {
  res.writeHead(status, { 'content-type': contentType, 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

const sendJson = (res, status, value) => send(res, status, 'application/json', JSON.stringify(value) + '\n');

function fetchPrice(item) {
  return new Promise((resolve, reject) => {
    const url = `http://${PRICES_HOST}:${PRICES_PORT}/price?item=${encodeURIComponent(item)}`;
    const req = http.get(url, { agent: pricesAgent, timeout: 2000 }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => {
        if (res.statusCode !== 200) return reject(new Error(`prices answered ${res.statusCode}`));
        try {
          resolve(JSON.parse(Buffer.concat(chunks).toString('utf8')));
        } catch (err) {
          reject(err);
        }
      });
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error('prices timed out')));
    req.on('error', reject);
  });
}

const server = http.createServer((req, res) => {
  const url = new URL(req.url || '/', 'http://frontend');
  if (req.method !== 'GET') return send(res, 405, 'text/plain', 'method not allowed\n');

  switch (url.pathname) {
    case '/':
      return send(res, 200, 'text/plain', 'frontend: try /checkout?user=ada&token=s3cret, /slow or /error\n');
    case '/checkout': {
      const user = url.searchParams.get('user') || 'anonymous';
      fetchPrice('book').then(
        (quote) => sendJson(res, 200, { user, item: quote.item, price: quote.price }),
        (err) => sendJson(res, 502, { error: `prices unavailable: ${err.message}` }),
      );
      return;
    }
    case '/slow':
      setTimeout(() => send(res, 200, 'text/plain', 'slow response\n'), 200);
      return;
    case '/error':
      return send(res, 500, 'text/plain', 'something went wrong (on purpose)\n');
    default:
      return send(res, 404, 'text/plain', 'not found\n');
  }
});

server.listen(PORT, HOST, () => {
  console.log(`frontend (prices at ${PRICES_HOST}:${PRICES_PORT}) listening on http://${HOST}:${server.address().port}`);
});

// As PID 1 in a container, default signal dispositions are ignored by the
// kernel, so without handlers `docker stop` would wait for its SIGKILL timeout.
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, () => process.exit(0));
}
