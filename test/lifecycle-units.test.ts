/**
 * The node lifecycle's parts in one process (issue 10): the persisted membership view, the
 * start check's judgement, the `--replace` lookup, founding and the quiet start in the
 * membership driver, and how placement treats a `replacing` member.
 */

import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { ManualClock } from '../lib/base/clock.js';
import { silentLogger } from '../lib/base/log.js';
import { SeededRng } from '../lib/base/rng.js';
import { Gossip, type MemberState } from '../lib/membership/index.js';
import { computeRing } from '../lib/ring/index.js';
import { MembershipDriver } from '../lib/supervisor/membership-driver.js';
import { ReplicaPlacement } from '../lib/supervisor/replica-placement.js';
import { MEMBERS_FILE_NAME, MembershipRecorder, readMembershipFile, type MembershipView } from '../lib/supervisor/lifecycle/membership-file.js';
import { judgeStart, parseHelloView, runStartCheck, type HelloMember, type StartFacts } from '../lib/supervisor/lifecycle/start-check.js';
import { resolveReplaceTarget } from '../lib/supervisor/lifecycle/replace-target.js';
import { StartGate } from '../lib/supervisor/lifecycle/start-gate.js';
import type { RingkvError } from '../lib/base/errors.js';

const member = (id: string, status: MemberState['status'] = 'normal', generation = 10): MemberState => ({
  id, address: `10.0.0.${id.charCodeAt(0) % 200}:7070`, generation, heartbeat: 0, statusVersion: 0, status, weight: 1, dc: 'dc1', rack: 'rack1',
});

function tempDir(t: Tap): string {
  const dir = mkdtempSync(join(tmpdir(), 'ringkv-lifecycle-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}
type Tap = { teardown(fn: () => void): void };

t.test('the membership file keeps owners and removals, rewrites only on change, and refuses corruption', async (t) => {
  const dir = tempDir(t);
  t.equal(readMembershipFile(dir), undefined, 'a new directory has no view');
  const recorder = new MembershipRecorder(dir);
  const view: MembershipView = { self: 'normal', members: [member('b'), member('a', 'joining'), member('c', 'replacing'), member('d', 'left')], removals: [{ id: 'e', generation: 3 }] };
  t.ok(recorder.record(view), 'written the first time');
  t.notOk(recorder.record({ ...view, members: [...view.members].reverse() }), 'the same view in another order is not rewritten');
  const read = readMembershipFile(dir)!;
  t.equal(read.self, 'normal');
  t.same(read.members.map((m) => [m.id, m.status]), [['b', 'normal'], ['c', 'replacing']], 'only owners are kept, in id order');
  t.same(read.removals, [{ id: 'e', generation: 3 }]);
  t.ok(recorder.record({ ...view, self: 'leaving' }), 'a status change is written');
  t.equal(readMembershipFile(dir)!.self, 'leaving');

  const bad = (text: string): unknown => {
    writeFileSync(join(dir, MEMBERS_FILE_NAME), text);
    try {
      readMembershipFile(dir);
      return undefined;
    } catch (error) {
      return error;
    }
  };
  const file = (fields: object): string => JSON.stringify({ format: 'ringkv-members', formatVersion: 1, self: 'normal', members: [], removals: [], ...fields });
  t.match(bad('{not json'), { code: 'KV_CORRUPTION' }, 'garbage');
  t.match(bad(file({ self: 'asleep' })), { code: 'KV_CORRUPTION', message: /self status/ }, 'an unknown self status');
  t.match(bad(file({ members: [{ id: 'x' }] })), { code: 'KV_CORRUPTION', message: /member address/ }, 'a member that does not validate');
  t.match(bad(file({ members: 'all' })), { code: 'KV_CORRUPTION', message: /members/ }, 'members that are not a list');
  t.match(bad(file({ removals: {} })), { code: 'KV_CORRUPTION', message: /removals/ }, 'removals that are not a list');
  t.match(bad(file({ removals: [{ id: 'x' }] })), { code: 'KV_CORRUPTION', message: /removal/ }, 'a removal without a generation');
  t.match(bad(file({ formatVersion: 2 })), { code: 'KV_INCOMPATIBLE' }, 'another format version');
});

const facts = (fields: Partial<StartFacts> = {}): StartFacts => ({ selfId: 'me', address: '10.0.0.9:7070', dir: '/data', fresh: false, previousGeneration: 20, generation: 30, replacing: false, ...fields });
const hello = (id: string, fields: Partial<HelloMember> = {}): HelloMember => ({ id, address: `${id}:7070`, generation: 10, status: 'normal', up: false, ...fields });

t.test('the start check refuses removed, replaced and wiped nodes, and judges --replace', async (t) => {
  const view = (members: HelloMember[], removals: { id: string; generation: number }[] = []) => ({ members, removals });
  t.equal(judgeStart(facts(), view([hello('me', { generation: 20 }), hello('a', { up: true })])), undefined, 'a restart of the same incarnation passes');
  t.equal(judgeStart(facts({ fresh: true, previousGeneration: undefined }), view([hello('a', { up: true })])), undefined, 'a new node at a new address passes');
  t.match(judgeStart(facts(), view([], [{ id: 'me', generation: 20 }])), { code: 'KV_INCOMPATIBLE', message: /was removed/ }, 'removed');
  t.match(judgeStart(facts(), view([hello('me', { generation: 25, address: 'x:1' })])), { message: /was replaced.*x:1/ }, 'a later incarnation it never was: replaced');
  t.match(judgeStart(facts(), view([hello('me', { generation: 25, address: '10.0.0.9:7070' })])), { message: /was replaced/ }, 'one between its last run and this one, even at its address');
  t.match(judgeStart(facts(), view([hello('me', { generation: 31, address: 'x:1' })])), { message: /was replaced/ }, 'one at another address, whatever its generation');
  t.equal(judgeStart(facts(), view([hello('me', { generation: 30, address: '10.0.0.9:7070' })])), undefined, 'its own current incarnation, already gossiped: not a replacement');
  t.equal(judgeStart(facts(), view([hello('me', { generation: 32, address: '10.0.0.9:7070' })])), undefined, 'or one it moved to by refuting a stale claim');
  t.equal(judgeStart(facts({ generation: 25 }), view([hello('me', { generation: 25, up: true, address: '10.0.0.9:7070' })])), undefined, 'a late answer that carries our own current record is us, not a replacement');
  t.equal(judgeStart(facts({ replacing: true, generation: 25 }), view([hello('me', { generation: 25, up: true, status: 'replacing', address: '10.0.0.9:7070' })])), undefined, 'a replacement already announced (a late answer) is not judged again');
  t.match(judgeStart(facts({ fresh: true }), view([hello('me')])), { message: /--replace me/ }, 'an empty directory under an owner\'s id names --replace');
  t.match(judgeStart(facts({ fresh: true }), view([hello('me', { up: true })])), { message: /in use/ }, 'the id of a running member');
  t.match(judgeStart(facts({ fresh: true }), view([hello('old', { address: '10.0.0.9:7070' })])), { message: /--replace 10\.0\.0\.9:7070.*--replace old/s }, 'an empty directory at a down owner\'s address names --replace');
  t.match(judgeStart(facts({ fresh: true }), view([hello('old', { address: '10.0.0.9:7070', up: true })])), { message: /address of running member old/ }, 'the address of a running member');
  t.equal(judgeStart(facts({ fresh: true }), view([hello('old', { address: '10.0.0.9:7070', status: 'left' })])), undefined, 'a left member\'s address is free');
  const replace = facts({ replacing: true, fresh: true, previousGeneration: undefined });
  t.equal(judgeStart(replace, view([hello('me')])), undefined, 'replacing a down owner passes');
  t.match(judgeStart(replace, view([])), { message: /nothing to replace/ }, 'replacing an unknown member');
  t.match(judgeStart(replace, view([hello('me', { up: true })])), { message: /stop it first/ }, 'replacing a member that is up');
  t.equal(judgeStart(facts({ replacing: true }), view([hello('me', { status: 'replacing', up: true, generation: 20 })])), undefined, 'resuming an interrupted replace passes');
  t.equal(judgeStart({ ...replace, generation: 30 }, view([hello('me', { status: 'replacing', up: true, generation: 30, address: '10.0.0.9:7070' })])), undefined, 'its own replacing record, seen by a late check, passes');
  t.equal(judgeStart(facts({ fresh: true, previousGeneration: undefined }), view([hello('me', { up: true, generation: 30, address: '10.0.0.9:7070' })])), undefined, 'a founder\'s own record, seen by a late check, passes');
});

t.test('hello replies are parsed defensively', async (t) => {
  t.equal(parseHelloView(undefined), undefined);
  t.equal(parseHelloView({ t: 'handoff-hello-reply', owner: true, removals: [] }), undefined, 'an older node without members');
  t.equal(parseHelloView({ t: 'handoff-hello-reply', removals: [], members: [{ id: 'a' }] }), undefined, 'a malformed member');
  const view = parseHelloView({ t: 'handoff-hello-reply', removals: [{ id: 'x', generation: 1 }, { id: 3 }], members: [hello('a')] });
  t.same(view, { members: [hello('a')], removals: [{ id: 'x', generation: 1 }] }, 'malformed removals are dropped');
});

t.test('the start check asks until someone answers, judges the first view, and gives up after its window', async (t) => {
  const clock = new ManualClock();
  const reply = { t: 'handoff-hello-reply', removals: [], members: [hello('a', { up: true })] };
  let round = 0;
  const answering = await runStartCheck({
    facts: facts(), candidates: ['a:7070', 'b:7070'], clock, windowMs: 1_000, retryMs: 1,
    hello: async (address) => (++round > 2 && address === 'a:7070' ? reply : undefined),
  });
  t.same(answering?.members.map((m) => m.id), ['a'], 'the view of the first peer that answered');
  await t.rejects(
    runStartCheck({ facts: facts(), candidates: ['a:7070'], clock, windowMs: 1_000, retryMs: 1, hello: async () => ({ ...reply, removals: [{ id: 'me', generation: 1 }] }) }),
    { code: 'KV_INCOMPATIBLE' },
    'a refusal rejects',
  );
  t.equal(await runStartCheck({ facts: facts(), candidates: [], clock, windowMs: 1_000, retryMs: 1, hello: async () => reply }), undefined, 'nobody to ask');
  const silent = runStartCheck({ facts: facts(), candidates: ['a:7070'], clock, windowMs: 50, retryMs: 1, hello: async () => { clock.advance(10); throw new Error('down'); } });
  t.equal(await silent, undefined, 'nobody answering: undefined once the window passed');
});

t.test('--replace names a node id as is, and looks an address up in a seed\'s status', async (t) => {
  t.equal(await resolveReplaceTarget({ target: 'n-1234', seeds: [], scheme: 'ws', timeoutMs: 10 }), 'n-1234');
  const server = createServer((_request, response) => {
    response.end(JSON.stringify({ members: [{ id: 'n-dead', address: '127.0.0.1:7071', status: 'normal' }, { id: 'n-gone', address: '127.0.0.1:7072', status: 'left' }] }));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.teardown(() => server.close());
  const seed = `127.0.0.1:${(server.address() as { port: number }).port}`;
  t.equal(await resolveReplaceTarget({ target: '127.0.0.1:7071', seeds: [seed], scheme: 'ws', timeoutMs: 5_000 }), 'n-dead', 'found by address');
  await t.rejects(resolveReplaceTarget({ target: '127.0.0.1:7072', seeds: [seed], scheme: 'ws', timeoutMs: 5_000 }), { code: 'KV_UNAVAILABLE', message: /no seed/ }, 'a left member is not replaceable');
  await t.rejects(resolveReplaceTarget({ target: '127.0.0.1:7071', seeds: ['127.0.0.1:1'], scheme: 'ws', timeoutMs: 10 }), { code: 'KV_UNAVAILABLE' }, 'no seed answers in time');
});

/** Two membership drivers whose gossip is delivered by `pump()`. */
function pair(clock: ManualClock, options: { quiet?: boolean; foundingWaitMs?: number } = {}) {
  const queue: { to: string; from: string; msg: unknown }[] = [];
  const views: MembershipView[] = [];
  const make = (id: string, address: string, seeds: string[], founder: boolean): MembershipDriver => {
    const gossip = new Gossip({ self: { id, address }, generation: 100, seeds, config: { intervalMs: 100 } });
    return new MembershipDriver({
      gossip, clock, rng: new SeededRng(1), logger: silentLogger, partitionBits: 4, replication: 2, hasSeeds: true,
      send: (to, message) => queue.push({ to, from: message.from, msg: message.msg }),
      persistGeneration: () => undefined, onChange: () => undefined, onForget: () => undefined,
      onJoinable: () => undefined, // the handoff would stream; here joiners just stay joining
      founder, seeds, ...(options.foundingWaitMs !== undefined ? { foundingWaitMs: options.foundingWaitMs } : {}),
      ...(options.quiet ? { quiet: true } : {}),
      persist: (view) => views.push(view),
    });
  };
  const a = make('a', 'a:1', ['b:1'], true);
  const b = make('b', 'b:1', ['a:1'], true);
  const pump = (): void => {
    for (let i = 0; i < 20 && queue.length > 0; i++) {
      for (const m of queue.splice(0)) (m.to === 'a:1' ? a : b).receive(m.from, m.msg);
    }
  };
  const round = (who: MembershipDriver[] = [a, b]): void => {
    clock.advance(100);
    for (const d of who) d.tick();
    pump();
  };
  return { a, b, round, views };
}

t.test('founders found once they met every seed, and refuse clients until every met seed founded', async (t) => {
  const clock = new ManualClock();
  const { a, b, round } = pair(clock, { foundingWaitMs: 60_000 });
  t.equal(a.gossip.self.status, 'joining', 'a founder starts joining');
  round([a]);
  t.equal(a.gossip.self.status, 'joining', 'it waits for the seed it has not met');
  for (let i = 0; i < 5 && a.gossip.liveMembers().length < 2; i++) round([b]);
  t.equal(a.gossip.liveMembers().length, 2, 'a has met b (only b gossiped so far)');
  t.equal(b.gossip.self.status, 'joining', 'b has not met a live a: it waits');
  round([a]);
  t.equal(a.gossip.self.status, 'normal', 'having met every seed, a founds');
  t.ok(a.founding(), 'b, met and still joining: a refuses clients meanwhile');
  round([b]);
  t.ok(b.ring !== undefined, 'b sees the owner a and joins it instead of founding');
  t.same(a.ring!.owners.map((m) => m.id), ['a'], 'a owns everything until b has joined');
  t.ok(a.founding(), 'still refusing while b is joining');
  clock.advance(60_000);
  t.notOk(a.founding(), 'the wait is over: clients are served');
  t.notOk(a.founding(), 'and stay served');
});

t.test('a founder that has met nobody founds alone after the wait, and the gate opens after the wait', async (t) => {
  const clock = new ManualClock();
  const { a, b, round } = pair(clock, { foundingWaitMs: 1_000 });
  for (let i = 0; i < 5; i++) round([a]);
  t.equal(a.gossip.self.status, 'joining', 'within the wait it does not found');
  for (let i = 0; i < 6; i++) round([a]);
  t.equal(a.gossip.self.status, 'normal', 'after the wait it founds alone');
  t.notOk(a.founding(), 'no met seed is joining: clients are served');
  // b shows up, still joining in a's view for a moment: a refuses clients until b turns normal.
  round([a, b]);
  round([a, b]);
  t.ok(b.ring !== undefined, 'b sees a ring and will join it, not found');
  t.equal(b.gossip.self.status, 'joining', 'b did not found: an owner existed');
});

t.test('a quiet driver ignores gossip until released, and restore brings back the ring and removals', async (t) => {
  const clock = new ManualClock();
  const { a, b, round, views } = pair(clock, { quiet: true });
  round();
  t.equal(a.members().length, 1, 'quiet: nothing exchanged');
  t.equal(views.length, 0, 'quiet: nothing persisted');
  a.restore({ self: 'normal', members: [member('c'), member('d')], removals: [{ id: 'd', generation: 10 }] });
  t.same(a.ring?.owners.map((m) => m.id), ['c'], 'restored owners make a ring; the removed one is left out');
  t.equal(a.members().find((m) => m.id === 'd')?.status, 'left', 'a removed member shows left');
  t.equal(a.removeMember('d', 99), undefined, 'a removed id stays removed, whatever the generation');
  a.release();
  b.release();
  a.release();
  t.ok(views.length > 0, 'released: the view is persisted');
  for (let i = 0; i < 5; i++) round();
  t.ok(a.members().some((m) => m.id === 'b'), 'released: gossip flows');
});

t.test('placement lists a replacing member as down for quorums and as a pending replica', async (t) => {
  const clock = new ManualClock();
  const gossip = new Gossip({ self: { id: 'a', address: 'a:1' }, generation: 5, status: 'normal', seeds: [] });
  const membership = new MembershipDriver({
    gossip, clock, rng: new SeededRng(2), logger: silentLogger, partitionBits: 4, replication: 3, hasSeeds: false,
    send: () => undefined, persistGeneration: () => undefined, onChange: () => undefined, onForget: () => undefined,
  });
  membership.restore({ self: 'normal', members: [member('b'), member('r', 'replacing')], removals: [] });
  const placement = new ReplicaPlacement({ membership, partitionBits: 4, replication: 3, hinted: false });
  const key = new TextEncoder().encode('k');
  const result = placement.placementOf(key);
  t.same(result.replicas.map((r) => r.id).sort(), ['a', 'b', 'r'], 'the replacing member keeps its place in the preference list');
  t.equal(result.replicas.find((r) => r.id === 'r')?.up, false, 'counted as down');
  t.same(result.pending?.map((p) => p.id), ['r'], 'and sent every write as a pending replica');
  const ring = computeRing([{ id: 'a' }, { id: 'b', status: 'replacing' }], { partitionBits: 4, replication: 2 });
  t.same(ring.replicaPartitionsOf('b').length, 16, 'a replacing member owns partitions in the ring');
});

t.test('the start gate releases when answered, holds new nodes until a peer answers, and stops nodes refused late', async (t) => {
  let nowMs = 0;
  const clock = { wallMs: () => 0, monotonicMs: () => (nowMs += 1_000) }; // every look at the clock: a second later
  const ok = { t: 'handoff-hello-reply', removals: [], members: [hello('a', { up: true })] };
  const gate = (factsFields: Partial<StartFacts>, reply: () => unknown, founder = false) => {
    const state = { released: 0, refused: undefined as RingkvError | undefined };
    const g = new StartGate({
      facts: facts(factsFields), founder, candidates: ['a:7070'], hello: async () => reply(), clock, logger: silentLogger,
      release: () => state.released++, onRefused: (error) => (state.refused = error),
    });
    return { g, state };
  };
  const answered = gate({}, () => ok);
  await answered.g.check();
  t.equal(answered.state.released, 1, 'answered: released at once');

  let answer: unknown;
  const owner = gate({}, () => answer);
  await owner.g.check();
  t.equal(owner.state.released, 1, 'an owner nobody answered starts anyway');
  answer = { ...ok, removals: [{ id: 'me', generation: 1 }] };
  await until(() => owner.state.refused !== undefined);
  t.match(owner.state.refused, { code: 'KV_INCOMPATIBLE', message: /was removed/ }, 'and is refused once a peer answers');

  let later: unknown;
  const fresh = gate({ fresh: true, previousGeneration: undefined }, () => later);
  await fresh.g.check();
  t.equal(fresh.state.released, 0, 'a new node nobody answered does not join yet');
  later = ok;
  await until(() => fresh.state.released === 1);
  t.pass('it joins once a peer answered');

  const founder = gate({ fresh: true, previousGeneration: undefined }, () => undefined, true);
  await founder.g.check();
  t.equal(founder.state.released, 1, 'a founder nobody answered starts (it may found alone)');
  founder.g.close();
  const closed = gate({ fresh: true }, () => undefined);
  closed.g.close();
  await closed.g.check();
  t.equal(closed.state.released, 0, 'a closed gate releases nothing');
});

async function until(check: () => boolean): Promise<void> {
  for (let i = 0; i < 100 && !check(); i++) await new Promise((resolve) => setTimeout(resolve, 50));
  if (!check()) throw new Error('condition not reached');
}
