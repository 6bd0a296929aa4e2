// The HTTP hop of the SDK benchmark (bench/sdk.ts), run as its own process because the SDK's
// hooks are process-wide: an upstream server plus a hop server that, per request, calls the
// upstream over node:http (keep-alive) and returns its body. SDK=on instruments the hop with the
// compiled meshfork/sdk (inbound handler + outbound hook); SDK=off runs the identical code bare;
// SDK=manual copies the three W3C headers from the request to the outbound call by hand (the
// cheapest possible propagation, no context tracking: the cost of the extra headers alone);
// SDK=als runs the bare hop inside an AsyncLocalStorage.run() and nothing else: the cost of
// AsyncLocalStorage context tracking itself, the floor for any context-propagating SDK.
// Plain JavaScript on the compiled lib/ so a process starts in ~0.1 s (the benchmark restarts
// hops often). GET /__cpu reports CPU time used and requests served. Prints `READY <port>`.
import { AsyncLocalStorage } from 'node:async_hooks';
import http from 'node:http';

const ON = process.env.SDK === 'on';
const MANUAL = process.env.SDK === 'manual';
const ALS = process.env.SDK === 'als' ? new AsyncLocalStorage() : undefined;
const sdk = ON ? await import('../lib/sdk/index.js') : undefined;
sdk?.install();

const upstream = http.createServer((req, res) => res.end(req.headers.baggage ?? '-'));
const agent = new http.Agent({ keepAlive: true, maxSockets: 64 });
let served = 0;

function hop(req, res) {
  if (req.url === '/__cpu') {
    const u = process.cpuUsage();
    res.end(JSON.stringify({ cpuUs: u.user + u.system, served }));
    return;
  }
  served++;
  let headers;
  if (MANUAL) {
    headers = {};
    for (const h of ['traceparent', 'tracestate', 'baggage']) if (req.headers[h] !== undefined) headers[h] = req.headers[h];
  }
  http
    .get({ host: '127.0.0.1', port: upstream.address().port, path: '/', agent, headers }, (up) => {
      let body = '';
      up.setEncoding('utf8');
      up.on('data', (c) => (body += c));
      up.on('end', () => res.end(body));
    })
    .on('error', () => res.writeHead(502).end());
}

const handler = sdk ? sdk.httpHandler(hop) : ALS ? (req, res) => ALS.run(req.headers, hop, req, res) : hop;
const server = http.createServer({ keepAliveTimeout: 60_000 }, handler);
upstream.listen(0, '127.0.0.1', () => {
  server.listen(0, '127.0.0.1', () => process.stdout.write(`READY ${server.address().port}\n`));
});
