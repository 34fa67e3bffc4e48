/**
 * Peer links (/peer): the mutual HMAC handshake as pure functions and on real sockets
 * (127.0.0.1, port 0) — success both ways, a wrong secret refused in both directions, a
 * replayed handshake and a node posing as another refused (S1-S3) — and the dialer's jittered,
 * bounded reconnection across a server restart.
 */

import t, { type Test } from 'tap';
import fc from 'fast-check';
import { once } from 'node:events';
import { WebSocket, WebSocketServer } from 'ws';
import { ErrorCode, type RingkvError } from '../lib/base/errors.js';
import { silentLogger } from '../lib/base/log.js';
import { limits } from '../lib/base/limits.js';
import { SeededRng, seedFromEnvironment } from '../lib/base/rng.js';
import { decodeFrame, encodeMessages, type WireMessage } from '../lib/protocol/codec.js';
import {
  authMessage,
  authOkMessage,
  challengeMessage,
  checkAuth,
  checkAuthOk,
  checkChallenge,
  CloseCode,
  dialPeer,
  isValidNodeId,
  macsEqual,
  newNonce,
  peerClientMac,
  peerServerMac,
  reconnectDelayMs,
  startTransportServer,
  tokensEqual,
  type Link,
  type PeerDialer,
  type TransportServer,
  type WireTuning,
} from '../lib/transport/index.js';

const seed = seedFromEnvironment();
t.comment(`seed ${seed}`);
const secret = new TextEncoder().encode('cluster secret');
const otherSecret = new TextEncoder().encode('another secret');
const tuning: Partial<WireTuning> = { reconnectBaseMs: 10, reconnectMaxMs: 40, closeGraceMs: 200 };

interface Node {
  server: TransportServer;
  peers: Link[];
  nextPeer(): Promise<Link>;
}

async function startNode(t: Test, nodeId: string, options: { secret?: Uint8Array | undefined; port?: number; handshakeTimeoutMs?: number } = {}): Promise<Node> {
  const peers: Link[] = [];
  const waiters: Array<(link: Link) => void> = [];
  const server = await startTransportServer({
    host: '127.0.0.1',
    port: options.port ?? 0,
    nodeId,
    secret: 'secret' in options ? options.secret : secret,
    logger: silentLogger,
    onPeer: (link) => {
      peers.push(link);
      for (const wake of waiters.splice(0)) wake(link);
    },
    onClient: (link) => link.close(),
    onHttp: (_request, response) => response.end(),
    tuning: { ...tuning, ...(options.handshakeTimeoutMs === undefined ? {} : { handshakeTimeoutMs: options.handshakeTimeoutMs }) },
  });
  t.teardown(() => server.close());
  return { server, peers, nextPeer: () => new Promise((resolve) => waiters.push(resolve)) };
}

function dial(t: Test, url: string, options: { nodeId?: string; secret?: Uint8Array | undefined; expectedPeerId?: string } = {}): PeerDialer {
  const dialer = dialPeer({
    url,
    nodeId: options.nodeId ?? 'node-b',
    secret: 'secret' in options ? options.secret : secret,
    expectedPeerId: options.expectedPeerId,
    logger: silentLogger,
    rng: new SeededRng(seed),
    tuning,
  });
  t.teardown(() => dialer.close());
  return dialer;
}

const up = (dialer: PeerDialer): Promise<Link> => new Promise((resolve) => (dialer.onUp = resolve));
const nextError = (dialer: PeerDialer): Promise<RingkvError> => new Promise((resolve) => (dialer.onError = resolve));

/** A raw ws client on /peer that records every message. */
async function rawPeer(url: string): Promise<{ socket: WebSocket; next(): Promise<WireMessage>; closed: Promise<number> }> {
  const socket = new WebSocket(`${url}/peer`);
  socket.on('error', () => {});
  const inbox: WireMessage[] = [];
  const waiters: Array<() => void> = [];
  socket.on('message', (data) => {
    inbox.push(...(decodeFrame(data as Buffer) as WireMessage[]));
    for (const wake of waiters.splice(0)) wake();
  });
  const closed = new Promise<number>((resolve) => socket.on('close', (code) => resolve(code)));
  await once(socket, 'open');
  const next = async (): Promise<WireMessage> => {
    while (inbox.length === 0) await new Promise<void>((resolve) => waiters.push(resolve));
    return inbox.shift()!;
  };
  return { socket, next, closed };
}

t.test('MACs bind both nonces, both ids and the direction; comparisons are constant-time', async (t) => {
  const [sn, cn] = [newNonce(), newNonce()];
  t.equal(sn.length, 32);
  t.notSame(sn, cn, 'fresh nonces');
  const client = peerClientMac(secret, sn, cn, 'b', 'a');
  t.ok(macsEqual(client, peerClientMac(secret, sn, cn, 'b', 'a')), 'deterministic');
  for (const other of [
    peerClientMac(otherSecret, sn, cn, 'b', 'a'),
    peerClientMac(secret, newNonce(), cn, 'b', 'a'),
    peerClientMac(secret, sn, newNonce(), 'b', 'a'),
    peerClientMac(secret, sn, cn, 'c', 'a'),
    peerClientMac(secret, sn, cn, 'b', 'c'),
    peerClientMac(secret, sn, cn, 'b\0', 'a'.slice(1)),
    peerServerMac(secret, sn, cn, 'b', 'a'),
    peerClientMac(undefined, sn, cn, 'b', 'a'),
  ]) {
    t.notOk(macsEqual(client, other));
  }
  t.notOk(macsEqual(client, client.subarray(1)));
  t.notOk(macsEqual(client, 'text'));
  t.ok(tokensEqual('token', 'token'));
  t.notOk(tokensEqual('token', 'token2'));
  t.notOk(tokensEqual('token', undefined));
  t.ok(isValidNodeId('node-1'));
  for (const id of ['', 'a\0b', 'x'.repeat(limits.memberIdBytesMax + 1), 7]) t.notOk(isValidNodeId(id));
});

t.test('handshake checks refuse every malformed step', async (t) => {
  const sn = newNonce();
  const cn = newNonce();
  t.ok(checkChallenge(challengeMessage('a', sn)).ok);
  t.match(checkChallenge({ t: 'auth' }), { ok: false, reason: /expected a challenge/ });
  t.match(checkChallenge({ ...challengeMessage('a', sn), v: 2 }), { ok: false, reason: /version/ });
  t.match(checkChallenge(challengeMessage('', sn)), { ok: false, reason: /node id/ });
  t.match(checkChallenge(challengeMessage('a', sn.subarray(1))), { ok: false, reason: /nonce/ });
  const auth = authMessage('b', cn, peerClientMac(secret, sn, cn, 'b', 'a'));
  t.match(checkAuth(auth, secret, 'a', sn), { ok: true, value: { clientId: 'b' } });
  t.match(checkAuth({ t: 'hello' }, secret, 'a', sn), { ok: false, reason: /expected auth/ });
  t.match(checkAuth({ ...auth, v: 0 }, secret, 'a', sn), { ok: false, reason: /version/ });
  t.match(checkAuth({ ...auth, node: 5 }, secret, 'a', sn), { ok: false, reason: /node id/ });
  t.match(checkAuth({ ...auth, nonce: 'n' }, secret, 'a', sn), { ok: false, reason: /nonce/ });
  t.match(checkAuth(auth, otherSecret, 'a', sn), { ok: false, reason: /bad mac/ });
  t.match(checkAuth(auth, secret, 'a', newNonce()), { ok: false, reason: /bad mac/ }, 'another connection\'s challenge');
  t.match(checkAuth({ ...auth, node: 'c' }, secret, 'a', sn), { ok: false, reason: /bad mac/ }, 'another id');
  const ids = { clientId: 'b', serverId: 'a' };
  const nonces = { clientNonce: cn, serverNonce: sn };
  t.ok(checkAuthOk(authOkMessage(peerServerMac(secret, cn, sn, 'a', 'b')), secret, ids, nonces).ok);
  t.match(checkAuthOk({ t: 'gossip' }, secret, ids, nonces), { ok: false, reason: /expected auth-ok/ });
  t.match(checkAuthOk(authOkMessage(peerClientMac(secret, sn, cn, 'b', 'a')), secret, ids, nonces), { ok: false }, 'a reflected MAC');
});

t.test('reconnect delays are jittered within [c/2, c) and bounded by max', async (t) => {
  fc.assert(
    fc.property(fc.nat({ max: 100 }), fc.integer({ min: 1, max: 1000 }), fc.integer({ min: 0, max: 100_000 }), fc.integer(), (failures, baseMs, extraMs, rngSeed) => {
      const maxMs = baseMs + extraMs;
      const ceilingMs = Math.min(maxMs, baseMs * 2 ** Math.min(failures, 30));
      const delayMs = reconnectDelayMs(failures, baseMs, maxMs, new SeededRng(rngSeed));
      return delayMs >= ceilingMs / 2 && delayMs < ceilingMs + 1e-9 && delayMs <= maxMs;
    }),
    { seed, numRuns: 500 },
  );
  const rng = new SeededRng(seed);
  const delays = Array.from({ length: 20 }, () => reconnectDelayMs(0, 100, 10_000, rng));
  t.ok(new Set(delays).size > 1, 'jittered');
});

t.test('two nodes with the same secret authenticate each other and exchange messages', async (t) => {
  const a = await startNode(t, 'node-a');
  const accepted = a.nextPeer();
  const dialer = dial(t, a.server.url, { expectedPeerId: 'node-a' });
  const link = await up(dialer);
  const serverSide = await accepted;
  t.equal(link.peerId, 'node-a');
  t.equal(serverSide.peerId, 'node-b');
  t.equal(dialer.link, link);
  t.equal(dialer.attempts, 1);
  const got = new Promise<WireMessage>((resolve) => (serverSide.onMessage = resolve));
  link.send({ t: 'gossip', msg: { heartbeat: 1 } });
  t.same(await got, { t: 'gossip', msg: { heartbeat: 1 } });
  const back = new Promise<WireMessage>((resolve) => (link.onMessage = resolve));
  serverSide.send({ t: 'rpc', id: 1, body: new Uint8Array([1]) });
  t.match(await back, { t: 'rpc', id: 1 });
  const down = new Promise<void>((resolve) => (dialer.onDown = resolve));
  const serverSaw = new Promise<number>((resolve) => (serverSide.onClose = (code) => resolve(code)));
  dialer.close();
  await down;
  t.equal(await serverSaw, CloseCode.goingAway);
  t.equal(dialer.link, undefined);
});

t.test('nodes without a secret authenticate with the empty key on loopback', async (t) => {
  const a = await startNode(t, 'node-a', { secret: undefined });
  const link = await up(dial(t, a.server.url, { secret: undefined }));
  t.equal(link.peerId, 'node-a');
  const refused = dial(t, a.server.url, { secret });
  t.equal((await nextError(refused)).code, ErrorCode.auth, 'a secret does not match the empty key');
});

t.test('a dialer with the wrong secret is refused (KV_AUTH) and keeps retrying; nothing reaches onPeer', async (t) => {
  const a = await startNode(t, 'node-a');
  const dialer = dial(t, a.server.url, { secret: otherSecret });
  dialer.onUp = () => t.fail('must not come up');
  const first = await nextError(dialer);
  t.equal(first.code, ErrorCode.auth);
  t.match(first.message, /refused/);
  await nextError(dialer);
  t.ok(dialer.attempts >= 2, 'retried');
  t.equal(a.peers.length, 0);
});

t.test('a fake server that cannot prove the secret is refused by the dialer', async (t) => {
  const fake = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  await once(fake, 'listening');
  t.teardown(() => new Promise((resolve) => fake.close(resolve)));
  const fakeClosed: number[] = [];
  fake.on('connection', (socket) => {
    socket.on('error', () => {});
    socket.on('close', (code) => fakeClosed.push(code));
    const serverNonce = newNonce();
    socket.send(encodeMessages([challengeMessage('node-a', serverNonce)]));
    socket.once('message', (data) => {
      const [auth] = decodeFrame(data as Buffer) as WireMessage[];
      const mac = peerServerMac(otherSecret, auth!.nonce as Uint8Array, serverNonce, 'node-a', 'node-b');
      socket.send(encodeMessages([authOkMessage(mac)]));
    });
  });
  const dialer = dial(t, `ws://127.0.0.1:${(fake.address() as { port: number }).port}`);
  dialer.onUp = () => t.fail('must not come up');
  const error = await nextError(dialer);
  t.equal(error.code, ErrorCode.auth);
  t.match(error.message, /failed to prove/);
  t.equal(dialer.link, undefined);
  t.same(fakeClosed.slice(0, 1), [CloseCode.auth]);
});

t.test('a peer that closes during the handshake fails the attempt with KV_AUTH (4401) or KV_UNAVAILABLE', async (t) => {
  const fake = new WebSocketServer({ host: '127.0.0.1', port: 0 });
  await once(fake, 'listening');
  t.teardown(() => new Promise((resolve) => fake.close(resolve)));
  const closeCodes = [CloseCode.auth, CloseCode.normal];
  fake.on('connection', (socket) => {
    socket.on('error', () => {});
    socket.close(closeCodes.shift() ?? CloseCode.normal, 'bye');
  });
  const dialer = dial(t, `ws://127.0.0.1:${(fake.address() as { port: number }).port}`);
  t.match(await nextError(dialer), { code: ErrorCode.auth, message: /refused authentication: bye/ });
  t.match(await nextError(dialer), { code: ErrorCode.unavailable, message: /closed during the handshake \(1000 bye\)/ });
});

t.test('a recorded handshake replayed on a new connection is refused', async (t) => {
  const a = await startNode(t, 'node-a');
  const first = await rawPeer(a.server.url);
  const challenge = checkChallenge(await first.next());
  if (!challenge.ok) throw new Error(challenge.reason);
  const clientNonce = newNonce();
  const recorded = authMessage('node-b', clientNonce, peerClientMac(secret, challenge.value.serverNonce, clientNonce, 'node-b', 'node-a'));
  first.socket.send(encodeMessages([recorded]));
  t.equal((await first.next()).t, 'auth-ok', 'the genuine handshake succeeds');
  const replay = await rawPeer(a.server.url);
  t.equal((await replay.next()).t, 'challenge');
  replay.socket.send(encodeMessages([recorded]));
  t.match(await replay.next(), { t: 'error', id: 0, code: ErrorCode.auth });
  t.equal(await replay.closed, CloseCode.auth);
  t.equal(a.peers.length, 1);
});

t.test('a node cannot pose as another: id swaps break the MAC and expectedPeerId is enforced', async (t) => {
  const a = await startNode(t, 'node-a');
  const raw = await rawPeer(a.server.url);
  const challenge = checkChallenge(await raw.next());
  if (!challenge.ok) throw new Error(challenge.reason);
  const clientNonce = newNonce();
  const mac = peerClientMac(secret, challenge.value.serverNonce, clientNonce, 'node-b', 'node-a');
  raw.socket.send(encodeMessages([authMessage('node-c', clientNonce, mac)]));
  t.match(await raw.next(), { t: 'error', code: ErrorCode.auth });
  t.equal(await raw.closed, CloseCode.auth);

  const dialer = dial(t, a.server.url, { expectedPeerId: 'node-z' });
  dialer.onUp = () => t.fail('must not come up');
  const error = await nextError(dialer);
  t.equal(error.code, ErrorCode.auth);
  t.match(error.message, /expected node node-z, found node-a/);
  t.equal(a.peers.length, 0);
});

t.test('a silent peer connection is cut at the handshake deadline', async (t) => {
  const a = await startNode(t, 'node-a', { handshakeTimeoutMs: 100 });
  const raw = await rawPeer(a.server.url);
  t.equal((await raw.next()).t, 'challenge');
  t.equal(await raw.closed, CloseCode.timeout);
});

/** A raw /peer client through a genuine handshake as node-b. */
async function authenticatedRawPeer(url: string): Promise<Awaited<ReturnType<typeof rawPeer>>> {
  const raw = await rawPeer(url);
  const challenge = checkChallenge(await raw.next());
  if (!challenge.ok) throw new Error(challenge.reason);
  const clientNonce = newNonce();
  const mac = peerClientMac(secret, challenge.value.serverNonce, clientNonce, 'node-b', 'node-a');
  raw.socket.send(encodeMessages([authMessage('node-b', clientNonce, mac)]));
  const ok = await raw.next();
  if (ok.t !== 'auth-ok') throw new Error(`no auth-ok: ${ok.t}`);
  return raw;
}

t.test('bad frames or items on an authenticated peer link close it with 1007', async (t) => {
  const a = await startNode(t, 'node-a');
  for (const bad of [new Uint8Array([0xc1]), encodeMessages([{ t: 'gossip' }, [1, 2] as unknown as WireMessage])]) {
    const accepted = a.nextPeer();
    const raw = await authenticatedRawPeer(a.server.url);
    const serverSide = await accepted;
    const delivered: WireMessage[] = [];
    serverSide.onMessage = (message) => delivered.push(message);
    raw.socket.send(bad);
    t.match(await raw.next(), { t: 'error', id: 0, code: ErrorCode.badRequest });
    t.equal(await raw.closed, CloseCode.badFrame);
    t.ok(delivered.length <= 1, 'at most the valid message before the bad one');
  }
});

t.test('a dialer redials with backoff while the server is down and comes back up after a restart', async (t) => {
  const first = await startNode(t, 'node-a');
  const port = first.server.port;
  const dialer = dial(t, first.server.url);
  await up(dialer);
  const down = new Promise<void>((resolve) => (dialer.onDown = resolve));
  await first.server.close();
  await down;
  const errors: RingkvError[] = [];
  await new Promise<void>((resolve) => {
    dialer.onError = (error) => {
      errors.push(error);
      if (errors.length === 3) resolve();
    };
  });
  t.ok(errors.every((error) => error.code === ErrorCode.unavailable), 'connection refused while down');
  const attemptsWhileDown = dialer.attempts;
  const again = await startNode(t, 'node-a', { port });
  const relinked = await up(dialer);
  t.equal(relinked.peerId, 'node-a');
  t.ok(dialer.attempts > attemptsWhileDown, 'came back by a new attempt');
  t.ok(again.peers.length >= 1);
});
