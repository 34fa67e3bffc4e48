/**
 * The transport's listener and links on real sockets (127.0.0.1, port 0): /client handshake
 * and token, per-turn batching, frame bounds, hostile frames (B2-B4, B10), handshake, idle and
 * ping deadlines (B6), in-flight and send-buffer bounds (B7), per-address cap (S7), HTTP
 * routing, the loopback rule without a secret, close codes and TLS.
 */

import t, { type Test } from 'tap';
import { execFileSync } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { WebSocket, WebSocketServer } from 'ws';
import { ErrorCode } from '../lib/base/errors.js';
import { ManualClock } from '../lib/base/clock.js';
import { AuthThrottle } from '../lib/transport/auth-throttle.js';
import { createLogger, silentLogger } from '../lib/base/log.js';
import { decodeFrame, encodeMessage, encodeMessages, type WireMessage } from '../lib/protocol/codec.js';
import {
  CloseCode,
  connectClient,
  FrameLink,
  isLoopbackHost,
  nodeUrl,
  startTransportServer,
  wireTuning,
  type Link,
  type TransportServer,
  type TransportServerOptions,
  type WireTuning,
} from '../lib/transport/index.js';

/** A raw ws client that records frames (each an array of messages) and its close. */
class Raw {
  readonly frames: unknown[][] = [];
  readonly closed: Promise<{ code: number; reason: string }>;
  #waiters: Array<() => void> = [];

  constructor(readonly socket: WebSocket) {
    socket.on('error', () => {});
    socket.on('message', (data) => {
      this.frames.push(decodeFrame(data as Buffer));
      for (const wake of this.#waiters.splice(0)) wake();
    });
    this.closed = new Promise((resolve) => socket.on('close', (code, reason) => resolve({ code, reason: reason.toString() })));
  }

  static async open(url: string, options: { autoPong?: boolean } = {}): Promise<Raw> {
    const raw = new Raw(new WebSocket(url, options));
    await once(raw.socket, 'open');
    return raw;
  }

  send(...messages: WireMessage[]): void {
    this.socket.send(encodeMessages(messages));
  }

  /** Waits until `count` messages have arrived in total; returns them all. */
  async messages(count: number): Promise<WireMessage[]> {
    while (this.frames.flat().length < count) await new Promise<void>((resolve) => this.#waiters.push(resolve));
    return this.frames.flat() as WireMessage[];
  }
}

interface Fixture {
  server: TransportServer;
  url: string;
  port: number;
  clients: Link[];
  nextClient(): Promise<Link>;
  close(): Promise<void>;
}

const fast: Partial<WireTuning> = { closeGraceMs: 200 };

async function serve(t: Test, options: Partial<TransportServerOptions> = {}): Promise<Fixture> {
  const clients: Link[] = [];
  let waiters: Array<(link: Link) => void> = [];
  const server = await startTransportServer({
    host: '127.0.0.1',
    port: 0,
    nodeId: 'node-a',
    secret: undefined,
    logger: silentLogger,
    onPeer: (link) => link.close(),
    onClient: (link) => {
      clients.push(link);
      for (const wake of waiters.splice(0)) wake(link);
    },
    onHttp: (_request, response) => response.end('plain http'),
    ...options,
    tuning: { ...fast, ...options.tuning },
  });
  t.teardown(() => server.close());
  return {
    server,
    url: server.url,
    port: server.port,
    clients,
    nextClient: () => new Promise((resolve) => waiters.push(resolve)),
    close: () => server.close(),
  };
}

/** Raw client through the hello/welcome handshake. */
async function rawClient(fixture: Fixture, options: { autoPong?: boolean } = {}): Promise<{ raw: Raw; link: Link }> {
  const raw = await Raw.open(`${fixture.url}/client`, options);
  const linked = fixture.nextClient();
  raw.send({ t: 'hello', v: 1 });
  const [welcome] = await raw.messages(1);
  if (welcome?.t !== 'welcome') throw new Error(`no welcome: ${JSON.stringify(welcome)}`);
  raw.frames.length = 0;
  return { raw, link: await linked };
}

t.test('a client says hello, learns the node id and exchanges messages both ways', async (t) => {
  const fixture = await serve(t);
  const serverSide = fixture.nextClient();
  const link = await connectClient(fixture.url);
  t.equal(link.peerId, 'node-a');
  t.ok(link.isOpen);
  const node = await serverSide;
  t.equal(node.peerId, undefined);
  t.match(node.remoteAddress, /^127\.0\.0\.1:\d+$/);
  const got = new Promise<WireMessage>((resolve) => (node.onMessage = resolve));
  link.send({ t: 'ring', id: 1 });
  t.same(await got, { t: 'ring', id: 1 });
  const back = new Promise<WireMessage>((resolve) => (link.onMessage = resolve));
  node.send({ t: 'ring', id: 1, ring: { partitionBits: 1, replication: 1, members: [] } });
  t.equal((await back).t, 'ring');
  const closed = new Promise<number>((resolve) => (node.onClose = (code) => resolve(code)));
  link.close();
  t.equal(await closed, CloseCode.normal);
  t.notOk(link.isOpen);
  t.throws(() => link.send({ t: 'ring', id: 2 }), { code: ErrorCode.closed });
});

t.test('messages the node sends with its welcome reach a handler set after connectClient resolves, in order', async (t) => {
  const fixture = await serve(t, {
    onClient: (link) => {
      for (let id = 1; id <= 3; id++) link.send({ t: 'ring', id });
    },
  });
  const link = await connectClient(fixture.url);
  const got: WireMessage[] = [];
  link.onMessage = (message) => got.push(message);
  t.same(got, [], 'delivered on a later microtask, not inside the assignment');
  await new Promise((resolve) => setImmediate(resolve));
  t.same(got.map((m) => m.id), [1, 2, 3]);
});

t.test('messages sent in one turn go out as one frame, split only at the per-frame bounds', async (t) => {
  const fixture = await serve(t, { tuning: { messagesPerFrameMax: 10 } });
  const { raw, link } = await rawClient(fixture);
  for (let id = 0; id < 25; id++) link.send({ t: 'ring', id, ring: {} });
  await raw.messages(25);
  t.same(raw.frames.map((frame) => frame.length), [10, 10, 5]);

  const client = await connectClient(fixture.url, { tuning: { messagesPerFrameMax: 10 } });
  const node = fixture.clients.at(-1) as FrameLink;
  const received: WireMessage[] = [];
  node.onMessage = (message) => received.push(message);
  const before = node.framesReceived;
  for (let id = 0; id < 10; id++) client.send({ t: 'get', id, key: new Uint8Array([id]) });
  while (received.length < 10) await new Promise((resolve) => setTimeout(resolve, 5));
  t.equal(node.framesReceived - before, 1, '10 messages of one turn arrived in one frame');
  t.equal((client as FrameLink).framesSent, 2, 'hello, then one batch');
});

t.test('frames are cut at frameBytesMax and a single message over it is KV_TOO_LARGE', async (t) => {
  const fixture = await serve(t, { tuning: { frameBytesMax: 4096 } });
  const { raw, link } = await rawClient(fixture);
  for (let id = 0; id < 3; id++) link.send({ t: 'read', id, values: [new Uint8Array(1500)] });
  await raw.messages(3);
  t.same(raw.frames.map((frame) => frame.length), [2, 1]);
  t.throws(() => link.send({ t: 'read', id: 9, values: [new Uint8Array(5000)] }), { code: ErrorCode.tooLarge });
});

t.test('a frame over maxPayload closes that connection with 1009 and the server keeps serving', async (t) => {
  const fixture = await serve(t, { tuning: { frameBytesMax: 4096 } });
  const { raw } = await rawClient(fixture);
  raw.socket.send(new Uint8Array(5000));
  t.equal((await raw.closed).code, CloseCode.tooBig);
  const again = await connectClient(fixture.url);
  t.ok(again.isOpen, 'the next client is served');
});

for (const [name, send] of [
  ['garbage bytes', (raw: Raw) => raw.socket.send(new Uint8Array([0xc1, 0xff, 0x00]))],
  ['a text frame', (raw: Raw) => raw.socket.send('{"t":"get"}')],
  ['a map instead of an array', (raw: Raw) => raw.socket.send(encodeMessage({ t: 'get', id: 1 }))],
  ['an empty array', (raw: Raw) => raw.socket.send(new Uint8Array([0x90]))],
] as const) {
  t.test(`${name} earn an error reply (id 0, KV_BAD_REQUEST) and a 1007 close, before or after hello`, async (t) => {
    const fixture = await serve(t);
    const { raw } = await rawClient(fixture);
    send(raw);
    const [reply] = await raw.messages(1);
    t.match(reply, { t: 'error', id: 0, code: ErrorCode.badRequest });
    t.equal((await raw.closed).code, CloseCode.badFrame);
    const early = await Raw.open(`${fixture.url}/client`);
    send(early);
    t.equal((await early.closed).code, CloseCode.badFrame);
    t.ok((await connectClient(fixture.url)).isOpen, 'the server is still serving');
  });
}

t.test('a bad message in a decodable client frame gets an error for its id and the link stays open', async (t) => {
  const fixture = await serve(t);
  const { raw, link } = await rawClient(fixture);
  const delivered: WireMessage[] = [];
  link.onMessage = (message) => delivered.push(message);
  raw.socket.send(encodeMessages([{ t: 'ring', id: 1 }, 42 as unknown as WireMessage, { id: 9 } as unknown as WireMessage, { t: 'ring', id: 2 }]));
  const replies = await raw.messages(2);
  t.match(replies, [{ t: 'error', id: 0, code: ErrorCode.badRequest }, { t: 'error', id: 9, code: ErrorCode.badRequest }]);
  t.same(delivered, [{ t: 'ring', id: 1 }, { t: 'ring', id: 2 }]);
  t.ok(link.isOpen);
});

t.test('requests over the in-flight cap get KV_OVERLOADED, duplicates KV_BAD_REQUEST, replies free slots', async (t) => {
  const fixture = await serve(t, { tuning: { inflightMax: 3 } });
  const { raw, link } = await rawClient(fixture);
  const delivered: WireMessage[] = [];
  link.onMessage = (message) => delivered.push(message);
  raw.send(...[1, 2, 3, 4, 5].map((id) => ({ t: 'get', id, key: new Uint8Array() })), { t: 'get', id: 2, key: new Uint8Array() });
  const refusals = await raw.messages(3);
  t.match(refusals, [
    { t: 'error', id: 4, code: ErrorCode.overloaded },
    { t: 'error', id: 5, code: ErrorCode.overloaded },
    { t: 'error', id: 2, code: ErrorCode.badRequest, message: /already in flight/ },
  ]);
  t.same(delivered.map((m) => m.id), [1, 2, 3]);
  link.send({ t: 'written', id: 1, context: new Uint8Array() });
  raw.send({ t: 'get', id: 6, key: new Uint8Array() }, { t: 'hello', v: 1 }, { t: 'get', id: -1 });
  await raw.messages(4);
  while (delivered.length < 6) await new Promise((resolve) => setTimeout(resolve, 5));
  t.same(delivered.map((m) => m.id), [1, 2, 3, 6, undefined, -1], 'a freed slot admits id 6; id-less messages pass to validation');
});

t.test('send() throws KV_OVERLOADED when the send buffer is full', async (t) => {
  const fixture = await serve(t, { tuning: { sendBufferBytesMax: 64 * 1024 } });
  const { link } = await rawClient(fixture);
  let sent = 0;
  t.throws(() => {
    for (; sent < 10; sent++) link.send({ t: 'read', id: sent, values: [new Uint8Array(10_000)] });
  }, { code: ErrorCode.overloaded });
  t.equal(sent, 6);
  t.ok(link.isOpen, 'the caller decides what to do');
});

t.test('a client link that cannot even buffer an error reply is closed with 4429', async (t) => {
  const fixture = await serve(t, { tuning: { sendBufferBytesMax: 150 } });
  const { raw } = await rawClient(fixture);
  raw.socket.send(encodeMessages(Array.from({ length: 10 }, (_, id) => ({ id }) as unknown as WireMessage)));
  t.equal((await raw.closed).code, CloseCode.overloaded);
});

t.test('client tokens: required, refused with KV_AUTH and 4401, accepted when equal', async (t) => {
  const fixture = await serve(t, { clientToken: 'open sesame' });
  await t.rejects(connectClient(fixture.url), { code: ErrorCode.auth });
  await t.rejects(connectClient(fixture.url, { token: 'open sesame!' }), { code: ErrorCode.auth });
  const raw = await Raw.open(`${fixture.url}/client`);
  raw.send({ t: 'hello', v: 1, token: 'nope' });
  t.match(await raw.messages(1), [{ t: 'error', id: 0, code: ErrorCode.auth }]);
  t.equal((await raw.closed).code, CloseCode.auth);
  const link = await connectClient(fixture.url, { token: 'open sesame' });
  t.equal(link.peerId, 'node-a');
});

t.test('an address with too many refused handshakes gets 429 until its window passes; the throttle is bounded', async (t) => {
  const clock = new ManualClock();
  const loopback = await serve(t, { clientToken: 'open sesame', clock, tuning: { authFailuresPerAddressMax: 2, authFailureWindowMs: 60_000 } });
  for (let i = 0; i < 3; i++) await t.rejects(connectClient(loopback.url, { token: `guess ${i}` }), { code: ErrorCode.auth });
  t.ok((await connectClient(loopback.url, { token: 'open sesame' })).isOpen, 'loopback is exempt by default (a dev cluster shares 127.0.0.1)');
  const fixture = await serve(t, { clientToken: 'open sesame', clock, throttleLoopback: true, tuning: { authFailuresPerAddressMax: 2, authFailureWindowMs: 60_000 } });
  for (let i = 0; i < 2; i++) await t.rejects(connectClient(fixture.url, { token: `guess ${i}` }), { code: ErrorCode.auth });
  const throttled = new WebSocket(`${fixture.url}/client`);
  const [error] = (await once(throttled, 'error')) as [Error];
  t.match(error.message, /429/, 'the third attempt is refused at the upgrade, even before its token is seen');
  await t.rejects(connectClient(fixture.url, { token: 'open sesame' }), 'the right token too, within the window');
  clock.advance(60_000);
  t.ok((await connectClient(fixture.url, { token: 'open sesame' })).isOpen, 'after the window the address may try again');

  const throttle = new AuthThrottle({ failuresMax: 2, windowMs: 10, addressesMax: 2 });
  throttle.recordFailure('a', 0);
  throttle.recordFailure('a', 1);
  throttle.recordFailure('a', 2);
  t.ok(throttle.blocked('a', 5), 'two failures within the window block');
  t.notOk(throttle.blocked('b', 5), 'another address is unaffected');
  t.notOk(throttle.blocked('a', 12), 'failures age out of the window');
  throttle.recordFailure('b', 20);
  throttle.recordFailure('c', 21);
  throttle.recordFailure('d', 22);
  t.equal(throttle.tracked, 2, 'at most addressesMax addresses are tracked');
  t.equal(throttle.refused, 1);
  t.throws(() => new AuthThrottle({ failuresMax: 0, windowMs: 1, addressesMax: 1 }), RangeError);
});

t.test('a first message other than a valid hello is refused with 1008', async (t) => {
  const fixture = await serve(t);
  for (const first of [{ t: 'get', id: 3, key: new Uint8Array() }, { t: 'hello', v: 2 }]) {
    const raw = await Raw.open(`${fixture.url}/client`);
    raw.send(first);
    t.match(await raw.messages(1), [{ t: 'error', id: 0 }]);
    t.equal((await raw.closed).code, CloseCode.policy);
  }
  t.equal(fixture.clients.length, 0, 'nothing reached onClient');
});

t.test('connections that never finish their handshake are closed with 4408', async (t) => {
  const fixture = await serve(t, { tuning: { handshakeTimeoutMs: 100 } });
  for (const path of ['/client', '/peer']) {
    const raw = await Raw.open(`${fixture.url}${path}`);
    t.same(await raw.closed, { code: CloseCode.timeout, reason: 'handshake timeout' }, path);
  }
});

t.test('a server-side link that stays silent is closed as idle', async (t) => {
  const fixture = await serve(t, { tuning: { idleTimeoutMs: 100 } });
  const { raw } = await rawClient(fixture);
  t.same(await raw.closed, { code: CloseCode.timeout, reason: 'idle' });
});

t.test('a link whose pong never comes back is terminated; a responsive one stays', async (t) => {
  const fixture = await serve(t, { tuning: { pingIntervalMs: 20, pingTimeoutMs: 1_000, idleTimeoutMs: 0 } });
  const alive = await connectClient(fixture.url, { tuning: { pingIntervalMs: 20, pingTimeoutMs: 1_000 } });
  const dead = await rawClient(fixture, { autoPong: false });
  const serverClosed = new Promise<number>((resolve) => (dead.link.onClose = (code) => resolve(code)));
  t.equal(await serverClosed, 1006, 'terminated without a close handshake');
  await dead.raw.closed;
  t.ok(alive.isOpen, 'the responsive client is still open after many ping rounds');
});

t.test('HTTP requests go to onHttp; upgrades elsewhere get 404', async (t) => {
  const fixture = await serve(t);
  const response = await fetch(`http://127.0.0.1:${fixture.port}/status`);
  t.equal(await response.text(), 'plain http');
  const socket = new WebSocket(`${fixture.url}/elsewhere`);
  const [error] = (await once(socket, 'error')) as [Error];
  t.match(error.message, /404/);
});

t.test('a server without a secret refuses non-loopback hosts and warns that it is loopback-only', async (t) => {
  await t.rejects(
    startTransportServer({
      host: '0.0.0.0', port: 0, nodeId: 'n', secret: undefined, logger: silentLogger,
      onPeer: () => {}, onClient: () => {}, onHttp: () => {},
    }),
    { name: 'RangeError', message: /host 0\.0\.0\.0/ },
  );
  const lines: string[] = [];
  await serve(t, { logger: createLogger({ level: 'warn', destination: { write: (line) => void lines.push(line) } }) });
  t.match(lines.join(''), /loopback only/);
  t.ok(isLoopbackHost('127.0.0.1') && isLoopbackHost('localhost') && isLoopbackHost('[::1]') && isLoopbackHost('127.1.2.3'));
  t.notOk(isLoopbackHost('0.0.0.0') || isLoopbackHost('10.0.0.1') || isLoopbackHost('::'));
});

t.test('connections beyond the per-address cap are refused with 503', async (t) => {
  const fixture = await serve(t, { tuning: { connectionsPerAddressMax: 2 } });
  const first = await rawClient(fixture);
  await rawClient(fixture);
  const third = new WebSocket(`${fixture.url}/client`);
  const [error] = (await once(third, 'error')) as [Error];
  t.match(error.message, /503/);
  first.raw.socket.close();
  await first.raw.closed;
  await new Promise((resolve) => setTimeout(resolve, 20));
  t.ok((await connectClient(fixture.url)).isOpen, 'a freed slot is reusable');
});

t.test('close() says going away (1001) to every link and then stops listening', async (t) => {
  const fixture = await serve(t);
  const { raw } = await rawClient(fixture);
  const handshaking = await Raw.open(`${fixture.url}/client`);
  const link = await connectClient(fixture.url);
  const clientSaw = new Promise<number>((resolve) => (link.onClose = (code) => resolve(code)));
  t.equal(fixture.server.linkCount, 3);
  await fixture.close();
  t.equal(fixture.server.linkCount, 0);
  t.equal((await raw.closed).code, CloseCode.goingAway);
  t.equal((await handshaking.closed).code, CloseCode.goingAway);
  t.equal(await clientSaw, CloseCode.goingAway);
  await t.rejects(connectClient(fixture.url, { timeoutMs: 1_000 }), { code: ErrorCode.unavailable });
  await fixture.close();
});

t.test('connectClient fails with KV_UNAVAILABLE or the node\'s code when no welcome comes', async (t) => {
  const fake = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  await once(fake, 'listening');
  t.teardown(() => new Promise((resolve) => fake.close(resolve)));
  const url = `ws://127.0.0.1:${(fake.address() as { port: number }).port}`;
  const replies: Array<WireMessage | undefined> = [undefined, { t: 'nope' }, { t: 'error', id: 0, code: 'KV_INCOMPATIBLE', message: 'v2 only' }];
  fake.on('connection', (socket) => {
    const reply = replies.shift();
    if (reply !== undefined) socket.send(encodeMessages([reply]));
  });
  await t.rejects(connectClient(url, { timeoutMs: 100 }), { code: ErrorCode.unavailable, message: /no welcome/ });
  await t.rejects(connectClient(url), { code: ErrorCode.unavailable, message: /expected a welcome/ });
  await t.rejects(connectClient(url), { code: ErrorCode.incompatible, message: /v2 only/ });
  await t.rejects(connectClient('ws://127.0.0.1:1'), { code: ErrorCode.unavailable, message: /cannot connect/ });
});

t.test('node URLs are normalized and checked', async (t) => {
  t.equal(nodeUrl('127.0.0.1:7070', '/client'), 'ws://127.0.0.1:7070/client');
  t.equal(nodeUrl('wss://db.example:443/x?y', '/peer'), 'wss://db.example/peer');
  t.equal(nodeUrl('ws://[::1]:7070', '/peer'), 'ws://[::1]:7070/peer');
  t.throws(() => nodeUrl('http://h:1', '/peer'), TypeError);
  t.throws(() => nodeUrl('ws://', '/peer'), TypeError);
  t.throws(() => wireTuning({ pingIntervalMs: 0 }), { name: 'RangeError', message: /tuning\.pingIntervalMs/ });
  t.throws(() => wireTuning({ bogus: 1 } as Partial<WireTuning>), RangeError);
  t.throws(() => wireTuning({ reconnectBaseMs: 10, reconnectMaxMs: 5 }), RangeError);
  t.equal(wireTuning({ idleTimeoutMs: 0, pingIntervalMs: undefined }).idleTimeoutMs, 0);
});

t.test('TLS: a wss round trip with a self-signed certificate, refused without its CA', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'ringkv-tls-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const certFile = join(dir, 'cert.pem');
  const keyFile = join(dir, 'key.pem');
  try {
    execFileSync('openssl', [
      'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-subj', '/CN=localhost', '-days', '1',
      '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost', '-keyout', keyFile, '-out', certFile,
    ], { stdio: 'pipe' });
  } catch (error) {
    throw new Error(`openssl is required for the TLS test and failed or is missing: ${(error as Error).message}`);
  }
  const fixture = await serve(t, { tls: { certFile, keyFile } });
  t.match(fixture.url, /^wss:\/\/127\.0\.0\.1:\d+$/);
  const serverSide = fixture.nextClient();
  const link = await connectClient(fixture.url, { caFile: certFile });
  const node = await serverSide;
  const echoed = new Promise<WireMessage>((resolve) => (link.onMessage = resolve));
  node.onMessage = (message) => node.send({ ...message, t: 'written' });
  link.send({ t: 'put', id: 1, value: new Uint8Array([1, 2, 3]) });
  t.match(await echoed, { t: 'written', id: 1 });
  await t.rejects(connectClient(fixture.url), { code: ErrorCode.unavailable }, 'an unknown CA is refused');
});
