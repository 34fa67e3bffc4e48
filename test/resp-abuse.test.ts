/**
 * Hostile input on a node's RESP port: truncated frames, a huge bulk length, an endless
 * array, binary garbage and a deep pipeline whose replies are never read. The node stays up,
 * a well-behaved connection keeps being served meanwhile, and memory stays bounded.
 */

import { connect, type Socket } from 'node:net';
import { randomBytes } from 'node:crypto';
import t from 'tap';
import { Redis } from 'ioredis';
import { startRespNode } from './fixtures/resp-node.js';

function rawConnection(port: number): Promise<{ socket: Socket; received: () => string; closed: Promise<void> }> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    let data = '';
    socket.on('data', (chunk) => (data += chunk.toString('latin1')));
    socket.on('error', () => undefined);
    const closed = new Promise<void>((done) => socket.on('close', () => done()));
    socket.once('connect', () => resolve({ socket, received: () => data, closed }));
    socket.once('error', reject);
  });
}

function drainedOrLater(socket: Socket): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      clearTimeout(timer);
      socket.off('drain', done);
      resolve();
    };
    const timer = setTimeout(done, 200);
    socket.on('drain', done);
  });
}

async function until(check: () => boolean, what: string, timeoutMs = 20_000): Promise<void> {
  const start = Date.now();
  while (!check()) {
    if (Date.now() - start > timeoutMs) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

t.test('bad input never takes the node down or disturbs other connections', { timeout: 180_000 }, async (t) => {
  const { port, close } = await startRespNode();
  t.teardown(close);
  const good = new Redis({ port, lazyConnect: true, maxRetriesPerRequest: 0 });
  t.teardown(() => good.disconnect());
  await good.connect();
  await good.set('steady', 'yes');

  // A truncated frame: nothing is answered for it, and the connection is still usable.
  const truncated = await rawConnection(port);
  truncated.socket.write('*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$5\r\nab');
  await new Promise((resolve) => setTimeout(resolve, 100));
  t.equal(truncated.received(), '', 'no reply to half a command');
  truncated.socket.write('cde\r\n*1\r\n$4\r\nPING\r\n');
  await until(() => truncated.received() === '+OK\r\n+PONG\r\n', 'the completed command');
  truncated.socket.destroy();

  // Binary garbage: -ERR Protocol error and close.
  const garbage = await rawConnection(port);
  garbage.socket.write(Buffer.concat([Buffer.from([0x00, 0xff, 0x13]), randomBytes(4096)]));
  await garbage.closed;
  t.match(garbage.received(), /^-ERR Protocol error/, 'garbage: protocol error');

  // An argument over the bulk bound: refused as soon as its length is read in full.
  const hugeBulk = await rawConnection(port);
  hugeBulk.socket.write('*2\r\n$3\r\nGET\r\n$99999999999\r\n');
  hugeBulk.socket.write(Buffer.alloc(70 * 1024 * 1024, 0x61));
  await hugeBulk.closed;
  t.match(hugeBulk.received(), /^-ERR Protocol error/, 'a huge bulk is a protocol error, not a 100 GB buffer');

  // An array that never ends: refused past the input bound.
  const endless = await rawConnection(port);
  const element = Buffer.from('$1\r\nx\r\n');
  endless.socket.write('*2147483647\r\n');
  const elements = Buffer.concat(Array.from({ length: 64 * 1024 }, () => element));
  for (let i = 0; i < 200 && !endless.socket.destroyed; i++) if (!endless.socket.write(elements)) await drainedOrLater(endless.socket);
  await endless.closed;
  t.match(endless.received(), /^-ERR Protocol error/, 'an endless array is refused');

  // Inline commands are refused like garbage.
  const inline = await rawConnection(port);
  inline.socket.write('PING\r\n');
  await inline.closed;
  t.match(inline.received(), /^-ERR Protocol error/);

  t.equal(await good.get('steady'), 'yes', 'the well-behaved connection is still served');
});

t.test('a deep pipeline without reading replies is paused, not buffered without bound', { timeout: 180_000 }, async (t) => {
  const { port, close } = await startRespNode();
  t.teardown(close);
  const good = new Redis({ port, lazyConnect: true, maxRetriesPerRequest: 0 });
  t.teardown(() => good.disconnect());
  await good.connect();
  const flood = await rawConnection(port);
  flood.socket.pause(); // never read a reply
  const command = Buffer.from('*2\r\n$4\r\nECHO\r\n$1024\r\n' + 'e'.repeat(1024) + '\r\n');
  const batch = Buffer.concat(Array.from({ length: 1024 }, () => command));
  const rssBefore = process.memoryUsage().rss;
  let written = 0;
  // Write up to a million commands (1 GiB of replies) as fast as the socket takes them.
  const started = Date.now();
  while (written < 1_000_000 && Date.now() - started < 10_000) {
    if (!flood.socket.write(batch)) await drainedOrLater(flood.socket);
    written += 1024;
  }
  const rssDuring = process.memoryUsage().rss;
  t.ok(rssDuring - rssBefore < 512 * 1024 * 1024, `memory stayed bounded: +${Math.round((rssDuring - rssBefore) / 1024 / 1024)} MiB`);
  t.equal(await good.echo('still here'), 'still here', 'another connection is served meanwhile');
  flood.socket.destroy();
  await good.set('after', 'ok');
  t.equal(await good.get('after'), 'ok');
});
