/**
 * The RESP listener's node-wide bound on commands in flight (limits.respInflightTotalMax):
 * once the commands running on all connections reach it, a connection that reads more is
 * paused, so later input waits in the kernel rather than in the node's memory; as commands
 * finish, paused connections resume, and every reply still arrives, in order. A real socket
 * and a handler whose commands finish when the test says so; the test polls, never times.
 */
import { connect, type Socket } from 'node:net';
import t from 'tap';
import { silentLogger } from '../lib/base/log.js';
import type { RespReply } from '../lib/protocol/resp-reply.js';
import { RespListener, type RespHandler } from '../lib/transport/resp-listener.js';

async function until(check: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 5000; i++) {
    if (check()) return;
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
  throw new Error(`timed out waiting for ${what}`);
}

/** Each command runs until `finishAll`; it answers its own first argument. */
class HeldHandler implements RespHandler {
  readonly running: { arg: string; finish: () => void }[] = [];
  started = 0;

  execute(_session: unknown, args: Buffer[]): Promise<RespReply> {
    this.started++;
    const arg = args[1]?.toString() ?? '';
    return new Promise((resolve) => this.running.push({ arg, finish: () => resolve({ simple: arg }) }));
  }

  finishAll(): void {
    for (const command of this.running.splice(0)) command.finish();
  }
}

function client(port: number): Promise<{ socket: Socket; received: () => string }> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    let data = '';
    socket.on('data', (chunk) => (data += chunk.toString('latin1')));
    socket.once('connect', () => resolve({ socket, received: () => data }));
    socket.once('error', reject);
  });
}

const command = (arg: string): string => `*2\r\n$4\r\nECHO\r\n$${arg.length}\r\n${arg}\r\n`;

t.test('past the node-wide bound a connection stops being read until commands finish', async (t) => {
  const handler = new HeldHandler();
  const listener = await RespListener.start({ host: '127.0.0.1', port: 0, handler, logger: silentLogger, inflightTotalMax: 4 }, true);
  t.teardown(() => listener.close());
  const a = await client(listener.port);
  const b = await client(listener.port);
  t.teardown(() => (a.socket.destroy(), b.socket.destroy()));

  a.socket.write(['a1', 'a2', 'a3', 'a4', 'a5'].map(command).join(''));
  await until(() => handler.started === 5, 'the first pipeline');
  t.equal(listener.inflightTotal, 5, 'one chunk is dispatched whole, even past the bound');

  b.socket.write(command('b1'));
  await until(() => handler.started === 6, "b's first chunk");
  b.socket.write(command('b2'));
  a.socket.write(command('a6'));
  // Give the node every chance to read more; it must not while 6 commands run.
  await new Promise((resolve) => setTimeout(resolve, 100));
  t.equal(handler.started, 6, 'no connection is read while the total is at the bound');

  handler.finishAll();
  await until(() => handler.started === 8, 'the paused input, once there is room');
  handler.finishAll();
  await until(() => a.received().includes('+a6\r\n') && b.received().includes('+b2\r\n'), 'every reply');
  t.equal(a.received(), '+a1\r\n+a2\r\n+a3\r\n+a4\r\n+a5\r\n+a6\r\n', "a's replies, in order");
  t.equal(b.received(), '+b1\r\n+b2\r\n', "b's replies, in order");
  t.equal(listener.inflightTotal, 0);
});

t.test('a connection that closes with commands in flight gives their room back', async (t) => {
  const handler = new HeldHandler();
  const listener = await RespListener.start({ host: '127.0.0.1', port: 0, handler, logger: silentLogger, inflightTotalMax: 2 }, true);
  t.teardown(() => listener.close());
  const a = await client(listener.port);
  a.socket.write(command('x') + command('y'));
  await until(() => handler.started === 2, 'two commands');
  a.socket.destroy();
  await until(() => listener.sessions().length === 0, 'the close');
  handler.finishAll();
  await until(() => listener.inflightTotal === 0, 'the room');
  const b = await client(listener.port);
  t.teardown(() => b.socket.destroy());
  b.socket.write(command('z'));
  await until(() => handler.started === 3, 'a new connection is served');
  handler.finishAll();
  await until(() => b.received() === '+z\r\n', 'its reply');
  t.pass('served after the closed connection finished');
});
