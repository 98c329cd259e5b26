/**
 * https for github.localhost, which git needs: `gh auth git-credential` only answers for https.
 *
 * git (libcurl) reaches the emulator through HTTPS_PROXY and opens a tunnel with
 * `CONNECT github.localhost:443`. The emulator answers 200 itself and terminates TLS on that socket
 * with a self-signed certificate for github.localhost, made at start with the openssl CLI in the
 * emulator's temp dir (the key never leaves it). The decrypted requests go to the same HTTP server
 * as every other request.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import type http from 'node:http';
import type { Duplex } from 'node:stream';
import path from 'node:path';
import tls from 'node:tls';
import { promisify } from 'node:util';
import { WEB_HOST } from './hosts.js';

const run = promisify(execFile);

export interface Certificate {
  certFile: string;
  keyFile: string;
  context: tls.SecureContext;
}

/** A fresh self-signed EC certificate for WEB_HOST, valid two days, in `dir`. */
export async function makeCertificate(dir: string): Promise<Certificate> {
  fs.mkdirSync(dir, { recursive: true, mode: 0o700 });
  const certFile = path.join(dir, 'github.localhost.crt');
  const keyFile = path.join(dir, 'github.localhost.key');
  await run(
    'openssl',
    [
      'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
      '-keyout', keyFile, '-out', certFile, '-days', '2',
      '-subj', `/CN=${WEB_HOST}`, '-addext', `subjectAltName=DNS:${WEB_HOST}`,
    ],
    { env: { PATH: process.env.PATH ?? '/usr/bin:/bin' }, timeout: 30_000 },
  );
  const context = tls.createSecureContext({ cert: fs.readFileSync(certFile), key: fs.readFileSync(keyFile) });
  return { certFile, keyFile, context };
}

/** The only CONNECT target the emulator tunnels. */
export function isTunnelTarget(authority: string | undefined): boolean {
  return (authority ?? '').toLowerCase() === `${WEB_HOST}:443`;
}

/**
 * Answers a CONNECT with 200, then speaks TLS on the socket and hands the decrypted stream to
 * `server` as a new connection (so requests on it go through the server's usual handler).
 */
export function terminateTunnel(server: http.Server, socket: Duplex, head: Buffer, cert: Certificate): void {
  socket.write('HTTP/1.1 200 Connection Established\r\n\r\n');
  if (head.length) socket.unshift(head);
  // No ALPN h2: git's libcurl then speaks HTTP/1.1, which node's http server understands.
  const secure = new tls.TLSSocket(socket, { isServer: true, secureContext: cert.context, ALPNProtocols: ['http/1.1'] });
  // A client that rejects the certificate aborts the handshake: nothing to answer.
  secure.on('error', () => socket.destroy());
  server.emit('connection', secure);
}
