/**
 * Hostile clients against a real node process (issue 4 §6): garbage bytes, text frames,
 * malformed and unknown messages, oversized keys and values get error replies (the connection
 * stays open where the protocol allows) and never crash the node; a well-behaved client on
 * another connection is unaffected throughout.
 */

import t from 'tap';
import WebSocket from 'ws';
import { connect } from '../lib/client/index.js';
import { decodeFrame, encodeMessages } from '../lib/protocol/codec.js';
import { Cluster } from './fixtures/cluster.js';

interface Raw {
  socket: WebSocket;
  next(): Promise<Record<string, unknown>[]>;
  closed: Promise<number>;
}

async function rawClient(url: string): Promise<Raw> {
  const socket = new WebSocket(`${url}/client`);
  const frames: Record<string, unknown>[][] = [];
  const waiters: ((messages: Record<string, unknown>[]) => void)[] = [];
  socket.on('message', (data: Buffer) => {
    const messages = decodeFrame(new Uint8Array(data)) as Record<string, unknown>[];
    const waiter = waiters.shift();
    if (waiter) waiter(messages);
    else frames.push(messages);
  });
  socket.on('error', () => undefined);
  const closed = new Promise<number>((resolve) => socket.on('close', (code) => resolve(code)));
  await new Promise((resolve, reject) => {
    socket.once('open', resolve);
    socket.once('error', reject);
  });
  const next = (): Promise<Record<string, unknown>[]> => {
    const ready = frames.shift();
    if (ready) return Promise.resolve(ready);
    return new Promise((resolve) => waiters.push(resolve));
  };
  socket.send(encodeMessages([{ t: 'hello', v: 1 }]));
  const welcome = await next();
  if (welcome[0]?.t !== 'welcome') throw new Error(`no welcome: ${JSON.stringify(welcome)}`);
  return { socket, next, closed };
}

t.test('malformed input gets errors and never crashes the node', async (t) => {
  const cluster = new Cluster({ nodes: 1 });
  t.teardown(() => cluster.stop());
  await cluster.start();
  const url = cluster.urls[0]!;
  const good = await connect([url]);
  t.teardown(() => good.close());
  await good.put('steady', 'value');

  const raw = await rawClient(url);
  raw.socket.send(encodeMessages([{ t: 'bogus', id: 5 }]));
  let [reply] = await raw.next();
  t.match(reply, { t: 'error', id: 5, code: 'KV_BAD_REQUEST' }, 'unknown message type: error reply with its id');

  raw.socket.send(encodeMessages([{ t: 'get', id: 6 }]));
  [reply] = await raw.next();
  t.match(reply, { t: 'error', id: 6, code: 'KV_BAD_REQUEST' }, 'missing key: error naming the request');

  raw.socket.send(encodeMessages([{ t: 'get', id: 7, key: new Uint8Array(70_000) }]));
  [reply] = await raw.next();
  t.match(reply, { t: 'error', id: 7, code: 'KV_TOO_LARGE' }, 'oversized key: KV_TOO_LARGE');

  raw.socket.send(encodeMessages([{ t: 'put', id: 8, rid: new Uint8Array(16), key: new Uint8Array([1]), value: new Uint8Array(2 * 1024 * 1024) }]));
  [reply] = await raw.next();
  t.match(reply, { t: 'error', id: 8, code: 'KV_TOO_LARGE' }, 'oversized value: KV_TOO_LARGE');

  raw.socket.send(encodeMessages([{ t: 'put', id: 9, rid: new Uint8Array(16), key: new Uint8Array([1]), value: new Uint8Array([2]), context: new Uint8Array([9, 9, 9]) }]));
  [reply] = await raw.next();
  t.match(reply, { t: 'error', id: 9, code: 'KV_BAD_CONTEXT' }, 'garbage context: KV_BAD_CONTEXT');

  raw.socket.send(encodeMessages([{ t: 'get', id: 10, key: new Uint8Array([1]) }]));
  [reply] = await raw.next();
  t.match(reply, { t: 'read', id: 10 }, 'the same connection still serves requests');

  const garbage = await rawClient(url);
  garbage.socket.send(Buffer.from([0xc1, 0xff, 0x00, 0x13]));
  t.ok((await garbage.closed) >= 1000, 'undecodable bytes close that connection');
  const text = await rawClient(url);
  text.socket.send('hello as text');
  t.ok((await text.closed) >= 1000, 'a text frame closes that connection');

  t.same(Buffer.from((await good.get('steady')).values[0]!).toString(), 'value', 'a well-behaved client is unaffected');
  const status = await cluster.status(0);
  t.equal(status.members.length, 1, 'the node is still up and answering /status');
  raw.socket.close();
});
