/**
 * Gossip membership in a simulated cluster (test/fixtures/gossip-sim.ts: seeded Rng, virtual
 * time, a network that delays, drops and duplicates), plus the gossip state machine's handling
 * of generations and hostile input. Every randomized test prints its seed; rerun one with
 * RINGKV_SEED=<seed>.
 */
import t from 'tap';
import fc from 'fast-check';
import { limits } from '../lib/base/limits.js';
import { SeededRng, seedFromEnvironment } from '../lib/base/rng.js';
import { Gossip, type GossipAction, type MemberState } from '../lib/membership/index.js';
import { GossipSim, type SimNode } from './fixtures/gossip-sim.js';

const seed = seedFromEnvironment();
t.comment(`seed ${seed}`);

const lossy = { dropProbability: 0.05, duplicateProbability: 0.05, delayMsMin: 1, delayMsMax: 80 };

/** Intervals for phi 8 to convict a member heard every interval, with the bootstrap sample, plus slack. */
const convictionIntervalsMax = Math.ceil(8 * Math.LN10 * 2) + 10;

function downs(sim: GossipSim, observer: SimNode, id: string): number {
  return sim.count(observer, 'member-down', id);
}

t.test('5 to 20 nodes starting from the seeds alone converge on full membership within 10·log2(n)+10 rounds', async (t) => {
  for (const [i, n] of [5, 12, 20].entries()) {
    const sim = new GossipSim({ seed: seed + i, nodeCount: n, ...lossy });
    sim.startAll();
    const bound = Math.ceil(10 * Math.log2(n) + 10);
    const rounds = sim.intervalsUntil(() => sim.agreed(), bound);
    t.comment(`n=${n}: converged in ${rounds} rounds (bound ${bound}), ${sim.messagesSent} messages`);
    t.ok(rounds !== undefined, `n=${n} converged within ${bound} rounds`);
    for (const node of sim.nodes) {
      t.equal(node.gossip.members().length, n, `${node.id} knows all ${n} members`);
      t.equal(node.gossip.liveMembers().length, n);
      t.equal(sim.count(node, 'member-down'), 0, `${node.id} convicted nobody`);
    }
  }
});

t.test('a crashed node is marked down by every other node in bounded time, and up again after a restart with a higher generation', async (t) => {
  const sim = new GossipSim({ seed, nodeCount: 8, ...lossy });
  sim.startAll();
  sim.runFor(30_000);
  t.ok(sim.agreed(), 'converged before the crash');
  const victim = sim.nodes[5]!;
  const others = sim.nodes.filter((node) => node !== victim);
  sim.crash(victim);
  const downIntervals = sim.intervalsUntil(() => others.every((node) => !node.gossip.isAlive(victim.id)), convictionIntervalsMax);
  t.comment(`crash detected everywhere after ${downIntervals} intervals (bound ${convictionIntervalsMax})`);
  t.ok(downIntervals !== undefined && downIntervals >= 10, 'every node convicts the crashed node, not too early');
  for (const node of others) t.equal(downs(sim, node, victim.id), 1, `${node.id} marked it down once`);
  for (const node of others) t.equal(sim.count(node, 'member-down') - downs(sim, node, victim.id), 0, 'no one else was convicted');

  const oldGeneration = victim.generation;
  sim.start(victim, oldGeneration + 1);
  const upIntervals = sim.intervalsUntil(() => sim.agreed(), 10);
  t.comment(`restart seen everywhere after ${upIntervals} intervals`);
  t.ok(upIntervals !== undefined, 'the restarted node is up everywhere within 10 intervals');
  for (const node of others) {
    t.equal(node.gossip.member(victim.id)?.generation, oldGeneration + 1, `${node.id} holds the new generation`);
    t.ok(sim.count(node, 'member-up', victim.id) >= 2, `${node.id} saw it come up again`);
  }
});

t.test('a peer relaying a stale copy of a member never gets it marked down while its heartbeats arrive through others', async (t) => {
  const sim = new GossipSim({ seed, nodeCount: 5, ...lossy });
  sim.startAll();
  sim.runFor(20_000);
  t.ok(sim.agreed());
  const [observer, , , subject] = [sim.nodes[0]!, sim.nodes[1], sim.nodes[2], sim.nodes[3]!];
  const stale: MemberState = { ...subject.gossip.self, heartbeat: 1, statusVersion: 0 };
  const staleBefore = observer.gossip.stats().staleEntries;
  for (let i = 0; i < 60; i++) {
    sim.inject('liar.sim:7000', observer, { type: 'gossip-ack2', entries: [stale] });
    sim.inject('liar.sim:7000', observer, { type: 'gossip-syn', digests: [{ id: subject.id, generation: stale.generation, heartbeat: 1 }] });
    const rejected = sim.inject('liar.sim:7000', observer, { type: 'member-down', id: subject.id });
    t.equal(rejected[0]?.type, 'rejected', 'there is no message that reports a member down');
    sim.runFor(1000);
  }
  t.equal(downs(sim, observer, subject.id), 0, 'never marked down');
  t.ok(observer.gossip.isAlive(subject.id));
  t.ok(observer.gossip.member(subject.id)!.heartbeat > 50, 'heartbeats kept advancing');
  t.ok(observer.gossip.stats().staleEntries - staleBefore >= 60, 'the stale copies were counted and ignored');
});

t.test('a node whose own ticks stop for 30 s does not convict everyone when it resumes; the others route around it meanwhile', async (t) => {
  const sim = new GossipSim({ seed, nodeCount: 6, ...lossy });
  sim.startAll();
  sim.runFor(30_000);
  t.ok(sim.agreed());
  const sleeper = sim.nodes[2]!;
  const others = sim.nodes.filter((node) => node !== sleeper);
  sim.pause(sleeper);
  sim.runFor(30_000);
  for (const node of others) t.notOk(node.gossip.isAlive(sleeper.id), `${node.id} routed around the paused node`);
  sim.resume(sleeper);
  t.ok(sleeper.events.some((event) => event.type === 'lagging'), 'the resumed node reported its own pause');
  const intervals = sim.intervalsUntil(() => sim.agreed(), 10);
  t.ok(intervals !== undefined, `rejoined within ${intervals} intervals`);
  sim.runFor(60_000);
  t.equal(sim.count(sleeper, 'member-down'), 0, 'the paused node convicted nobody');
  t.ok(sim.agreed());
  t.equal(sleeper.gossip.stats().pauses, 1);
});

t.test('after a partition heals, all nodes agree within 10 intervals', async (t) => {
  for (const [i, split] of [4, 1].entries()) {
    const sim = new GossipSim({ seed: seed + i, nodeCount: 9, ...lossy });
    sim.startAll();
    sim.runFor(20_000);
    t.ok(sim.agreed());
    sim.blocked = (from, to) => from.index < split !== to.index < split;
    sim.runFor(60_000);
    const [a, b] = [sim.nodes[0]!, sim.nodes[8]!];
    t.notOk(a.gossip.isAlive(b.id), 'each side sees the other down');
    t.ok(sim.agreed(sim.nodes.filter((node) => node.index >= split)), 'the larger side still agrees on itself');
    sim.blocked = () => false;
    const intervals = sim.intervalsUntil(() => sim.agreed(), 10);
    t.comment(`split ${split}/${9 - split}: agreement ${intervals} intervals after healing`);
    t.ok(intervals !== undefined, 'agreement within 10 intervals');
  }
});

t.test('a flapping link does not make the failure detector flap, and the cluster agrees once it stops', async (t) => {
  const sim = new GossipSim({ seed, nodeCount: 6, ...lossy });
  sim.startAll();
  sim.runFor(20_000);
  const flappy = sim.nodes[4]!;
  let cut = false;
  sim.blocked = (from, to) => cut && (from === flappy || to === flappy);
  for (let i = 0; i < 20; i++) {
    cut = !cut;
    sim.runFor(3_000);
  }
  cut = false;
  const transitions = sim.nodes.reduce((sum, node) => sum + sim.count(node, 'member-down') + sim.count(node, 'member-up'), 0);
  const upsAtStart = sim.nodes.length * (sim.nodes.length - 1);
  t.comment(`detector transitions during 60 s of 3 s flaps: ${transitions - upsAtStart}`);
  t.ok(transitions - upsAtStart <= 2, 'state changes stay bounded');
  t.ok(sim.intervalsUntil(() => sim.agreed(), 10) !== undefined, 'agreement after the flapping ends');

  // Longer outages each cost at most one down and one up per observer.
  for (let i = 0; i < 4; i++) {
    cut = true;
    sim.runFor(30_000);
    cut = false;
    sim.runFor(10_000);
  }
  for (const node of sim.nodes) {
    if (node === flappy) continue;
    t.ok(downs(sim, node, flappy.id) <= 4, `${node.id}: at most one down per outage`);
  }
});

t.test('a node that can send but not receive is marked down once and does not disturb the others (no livelock)', async (t) => {
  const sim = new GossipSim({ seed, nodeCount: 6, ...lossy });
  sim.startAll();
  sim.runFor(20_000);
  const deaf = sim.nodes[1]!;
  const others = sim.nodes.filter((node) => node !== deaf);
  const marks = others.map((node) => node.events.length);
  sim.blocked = (_from, to) => to === deaf;
  sim.runFor(120_000);
  for (const [i, node] of others.entries()) {
    const since = node.events.slice(marks[i]);
    t.same(
      since.map((event) => `${event.type}:${'id' in event ? event.id : ''}`),
      [`member-down:${deaf.id}`],
      `${node.id}: one down mark for the deaf node and nothing else`,
    );
  }
  t.ok(sim.agreed(others), 'the others keep agreeing');
  sim.blocked = () => false;
  t.ok(sim.intervalsUntil(() => sim.agreed(), 10) !== undefined, 'agreement once it hears again');
});

t.test('generations: a restart replaces state, older generations are ignored, and a node bumps past a newer copy of itself', async (t) => {
  const sim = new GossipSim({ seed, nodeCount: 5, ...lossy });
  sim.startAll();
  sim.runFor(20_000);
  const node = sim.nodes[3]!;
  const generation = node.generation;
  sim.crash(node);
  sim.runFor(2_000);
  // Restarted with its persisted counter lost: the same generation, heartbeat from 0.
  sim.start(node, generation);
  t.ok(sim.intervalsUntil(() => sim.agreed(), 15) !== undefined, 'rejoined');
  t.ok(node.gossip.self.generation > generation, 'it moved past the copy of its previous incarnation');
  t.ok(node.events.some((event) => event.type === 'self-generation-changed'), 'and asked for the new generation to be persisted');
  const current = node.gossip.self.generation;

  // A copy from an older generation changes nothing.
  const observer = sim.nodes[0]!;
  const older: MemberState = { ...node.gossip.self, generation: current - 1, heartbeat: 10_000, statusVersion: 0 };
  sim.inject('relay.sim:7000', observer, { type: 'gossip-ack2', entries: [older] });
  t.equal(observer.gossip.member(node.id)?.generation, current, 'older generation ignored');

  // A jump far beyond any plausible restart is rejected.
  const absurd: MemberState = { ...node.gossip.self, generation: current + limits.generationJumpMax + 1 };
  const actions = sim.inject('relay.sim:7000', observer, { type: 'gossip-ack2', entries: [absurd] });
  t.match(actions, [{ type: 'rejected', entries: 1 }]);
  t.equal(observer.gossip.member(node.id)?.generation, current);
  t.equal(sim.count(observer, 'member-down', node.id), 0);
});

t.test('a forged status for a member is refuted by that member, and the cluster converges on its true record', async (t) => {
  const sim = new GossipSim({ seed, nodeCount: 5, ...lossy });
  sim.startAll();
  sim.runFor(20_000);
  const victim = sim.nodes[2]!;
  const forged: MemberState = { ...victim.gossip.self, status: 'left', statusVersion: victim.gossip.self.heartbeat + 5, heartbeat: victim.gossip.self.heartbeat + 5 };
  sim.inject('liar.sim:7000', sim.nodes[0]!, { type: 'gossip-ack2', entries: [forged] });
  t.equal(sim.nodes[0]!.gossip.member(victim.id)?.status, 'left', 'the forgery was believed at first');
  t.ok(sim.intervalsUntil(() => sim.agreed(), 15) !== undefined, 'the victim refuted it and everyone agrees again');
  t.equal(victim.gossip.self.status, 'joining');
  t.ok(victim.gossip.self.generation > victim.generation, 'refuted by a new generation');
});

t.test('a node that leaves is kept as a tombstone, never convicted, then forgotten and not resurrected', async (t) => {
  const sim = new GossipSim({ seed, nodeCount: 5, ...lossy, config: { leftMemberRetentionMs: 60_000 } });
  sim.startAll();
  sim.runFor(20_000);
  const leaver = sim.nodes[4]!;
  const others = sim.nodes.filter((node) => node !== leaver);
  for (const node of sim.nodes) node.events.push(...node.gossip.updateSelf({ status: 'normal' }));
  sim.runFor(5_000);
  t.ok(sim.agreed(), 'everyone sees everyone normal');
  t.throws(() => leaver.gossip.updateSelf({ status: 'joining' }), RangeError, 'status cannot go back');
  leaver.events.push(...leaver.gossip.updateSelf({ status: 'leaving' }));
  sim.runFor(5_000);
  for (const node of others) t.equal(node.gossip.member(leaver.id)?.status, 'leaving');
  const leftEvents = leaver.gossip.updateSelf({ status: 'left' });
  t.same(leftEvents.map((event) => event.type), ['member-updated', 'member-left']);
  t.notOk(leaver.gossip.isAlive(leaver.id));
  sim.runFor(5_000);
  const leftCopy = leaver.gossip.self;
  sim.crash(leaver);
  for (const node of others) {
    t.equal(node.gossip.member(leaver.id)?.status, 'left', `${node.id} holds the tombstone`);
    t.equal(sim.count(node, 'member-left', leaver.id), 1);
    t.notOk(node.gossip.liveMembers().some((member) => member.id === leaver.id));
  }
  // A stale copy from before the leave does not undo it.
  const stale: MemberState = { ...leftCopy, status: 'normal', heartbeat: 3, statusVersion: 2 };
  sim.inject('relay.sim:7000', others[0]!, { type: 'gossip-ack2', entries: [stale] });
  t.equal(others[0]!.gossip.member(leaver.id)?.status, 'left');
  sim.runFor(70_000);
  for (const node of others) {
    t.equal(node.gossip.member(leaver.id), undefined, `${node.id} forgot the tombstone`);
    t.equal(sim.count(node, 'member-removed', leaver.id), 1);
    t.equal(downs(sim, node, leaver.id), 0, 'a left member is never convicted');
  }
  sim.inject('relay.sim:7000', others[0]!, { type: 'gossip-ack2', entries: [leftCopy] });
  t.equal(others[0]!.gossip.member(leaver.id), undefined, 'a relayed tombstone is not resurrected');
});

// ------------------------------------------------------------------ one node, driven by hand

function makeNode(id = 'a', options: Partial<ConstructorParameters<typeof Gossip>[0]> = {}): Gossip {
  return new Gossip({ self: { id, address: `${id}.test:7000` }, generation: 100, seeds: [], ...options });
}

function entry(id: string, fields: Partial<MemberState> = {}): MemberState {
  return { id, address: `${id}.test:7000`, generation: 100, heartbeat: 1, status: 'normal', statusVersion: 0, weight: 1, dc: 'dc1', rack: 'rack1', ...fields };
}

function types(actions: GossipAction[]): string[] {
  return actions.map((action) => action.type);
}

t.test('hostile messages are rejected with a reason and a counter, never thrown, and change nothing', async (t) => {
  const node = makeNode();
  node.receive('b.test:7000', { type: 'gossip-ack2', entries: [entry('b')] }, 0);
  const good = entry('c');
  const oversized = Array.from({ length: limits.gossipEntriesMax + 1 }, (_, i) => ({ id: `m${i}`, generation: 1, heartbeat: 1 }));
  const cases: [string, unknown][] = [
    ['null', null],
    ['a string', 'gossip'],
    ['an array', [good]],
    ['an unknown type', { type: 'member-down', id: 'b' }],
    ['syn without digests', { type: 'gossip-syn' }],
    ['digests not an array', { type: 'gossip-syn', digests: { length: 1 } }],
    ['oversized digests', { type: 'gossip-syn', digests: oversized }],
    ['a digest that is not an object', { type: 'gossip-syn', digests: [7] }],
    ['an empty id', { type: 'gossip-syn', digests: [{ id: '', generation: 1, heartbeat: 1 }] }],
    ['a huge id', { type: 'gossip-syn', digests: [{ id: 'x'.repeat(1 << 20), generation: 1, heartbeat: 1 }] }],
    ['an id over its UTF-8 byte limit', { type: 'gossip-syn', digests: [{ id: 'é'.repeat(limits.memberIdBytesMax / 2 + 1), generation: 1, heartbeat: 1 }] }],
    ['a NaN generation', { type: 'gossip-syn', digests: [{ id: 'b', generation: Number.NaN, heartbeat: 1 }] }],
    ['a zero generation in a digest', { type: 'gossip-syn', digests: [{ id: 'b', generation: 0, heartbeat: 1 }] }],
    ['a fractional generation', { type: 'gossip-syn', digests: [{ id: 'b', generation: 1.5, heartbeat: 1 }] }],
    ['a generation above generationMax', { type: 'gossip-syn', digests: [{ id: 'b', generation: limits.generationMax + 1, heartbeat: 1 }] }],
    ['a negative heartbeat', { type: 'gossip-syn', digests: [{ id: 'b', generation: 1, heartbeat: -1 }] }],
    ['a string heartbeat', { type: 'gossip-syn', digests: [{ id: 'b', generation: 1, heartbeat: '1' }] }],
    ['repeated digest ids', { type: 'gossip-syn', digests: [{ id: 'b', generation: 1, heartbeat: 1 }, { id: 'b', generation: 1, heartbeat: 2 }] }],
    ['ack without entries', { type: 'gossip-ack', requests: [] }],
    ['ack with bad requests', { type: 'gossip-ack', entries: [], requests: [{ id: 'b', generation: -1, heartbeat: 0 }] }],
    ['ack2 with oversized entries', { type: 'gossip-ack2', entries: Array.from({ length: limits.gossipEntriesMax + 1 }, (_, i) => entry(`m${i}`)) }],
    ['an entry that is not an object', { type: 'gossip-ack2', entries: [null] }],
    ['an entry without address', { type: 'gossip-ack2', entries: [{ ...good, address: undefined }] }],
    ['an entry with Infinity heartbeat', { type: 'gossip-ack2', entries: [{ ...good, heartbeat: Number.POSITIVE_INFINITY }] }],
    ['an entry with a negative heartbeat', { type: 'gossip-ack2', entries: [{ ...good, heartbeat: -5 }] }],
    ['an entry with statusVersion above heartbeat', { type: 'gossip-ack2', entries: [{ ...good, statusVersion: 2 }] }],
    ['an entry with an unknown status', { type: 'gossip-ack2', entries: [{ ...good, status: 'dead' }] }],
    ['an entry with weight 0', { type: 'gossip-ack2', entries: [{ ...good, weight: 0 }] }],
    ['an entry with NaN weight', { type: 'gossip-ack2', entries: [{ ...good, weight: Number.NaN }] }],
    ['an entry with a huge weight', { type: 'gossip-ack2', entries: [{ ...good, weight: limits.memberWeightMax + 1 }] }],
    ['an entry with a huge dc', { type: 'gossip-ack2', entries: [{ ...good, dc: 'd'.repeat(1 << 20) }] }],
    ['an entry without rack', { type: 'gossip-ack2', entries: [{ ...good, rack: '' }] }],
    ['an entry with generation 0', { type: 'gossip-ack2', entries: [{ ...good, generation: 0 }] }],
    ['repeated entry ids', { type: 'gossip-ack2', entries: [good, good] }],
  ];
  let rejectedBefore = node.stats().rejectedMessages;
  for (const [name, message] of cases) {
    let actions: GossipAction[] = [];
    t.doesNotThrow(() => (actions = node.receive('evil.test:7000', message, 1)), name);
    t.match(actions, [{ type: 'rejected', from: 'evil.test:7000', entries: 0 }], `${name}: rejected`);
    t.equal(actions.length, 1, `${name}: nothing else happens`);
    t.equal(node.stats().rejectedMessages, ++rejectedBefore, `${name}: counted`);
  }
  t.same(node.members().map((member) => member.id).sort(), ['a', 'b'], 'membership unchanged');
  const kept = node.receive('evil.test:7000', { type: 'gossip-ack2', entries: [{ ...good, extra: 'x'.repeat(100), __proto__: { polluted: true } }] }, 1);
  t.same(types(kept), ['member-joined']);
  t.same(Object.keys(node.member('c')!).sort(), Object.keys(good).sort(), 'only known fields are kept');
});

t.test('fuzzed messages never make receive throw', async (t) => {
  const node = makeNode();
  const digest = fc.record({ id: fc.string({ maxLength: 80 }), generation: fc.oneof(fc.integer(), fc.double()), heartbeat: fc.oneof(fc.integer(), fc.double()) });
  const member = fc.record({
    id: fc.constantFrom('a', 'b', 'c'),
    address: fc.string({ maxLength: 10 }),
    generation: fc.oneof(fc.integer({ min: -2, max: 200 }), fc.double()),
    heartbeat: fc.oneof(fc.integer({ min: -2, max: 200 }), fc.double()),
    status: fc.constantFrom('joining', 'normal', 'leaving', 'left', 'zombie'),
    statusVersion: fc.integer({ min: -1, max: 200 }),
    weight: fc.oneof(fc.double(), fc.integer()),
    dc: fc.string({ maxLength: 5 }),
    rack: fc.string({ maxLength: 5 }),
  });
  const message = fc.oneof(
    fc.anything(),
    fc.record({ type: fc.constant('gossip-syn'), digests: fc.array(digest, { maxLength: 5 }) }),
    fc.record({ type: fc.constant('gossip-ack'), entries: fc.array(member, { maxLength: 5 }), requests: fc.array(digest, { maxLength: 5 }) }),
    fc.record({ type: fc.constant('gossip-ack2'), entries: fc.array(member, { maxLength: 5 }) }),
  );
  let nowMs = 0;
  fc.assert(
    fc.property(message, (raw) => {
      const actions = node.receive('fuzz.test:7000', raw, (nowMs += 10));
      node.tick((nowMs += 10), new SeededRng(seed));
      return Array.isArray(actions);
    }),
    { seed, numRuns: 500 },
  );
  t.pass('no throw');
});

t.test('a gossip round bumps the heartbeat and sends a digest of every member to a seed when nothing is live', async (t) => {
  const rng = new SeededRng(seed);
  const alone = makeNode('a', { seeds: ['a.test:7000'] });
  t.same(alone.tick(0, rng), [], 'a lone seed with no one else sends nothing');
  t.equal(alone.self.heartbeat, 1);

  const node = makeNode('a', { seeds: ['s.test:7000', 'a.test:7000'] });
  const actions = node.tick(0, rng);
  t.match(actions, [{ type: 'send', to: 's.test:7000', message: { type: 'gossip-syn', digests: [{ id: 'a', generation: 100, heartbeat: 1 }] } }]);
  t.equal(node.phi('a', 0), 0);
  t.ok(node.isAlive('a'));
  t.same(node.liveMembers().map((member) => member.id), ['a']);
  t.throws(() => node.tick(-1, rng), /monotonic/, 'time never goes back');
});

t.test('a syn is answered with the records the sender lacks and requests for the ones it has newer', async (t) => {
  const node = makeNode();
  node.receive('b.test:7000', { type: 'gossip-ack2', entries: [entry('b', { heartbeat: 5 }), entry('c', { heartbeat: 5 })] }, 0);
  const actions = node.receive(
    'b.test:7000',
    {
      type: 'gossip-syn',
      digests: [
        { id: 'b', generation: 100, heartbeat: 9 },
        { id: 'c', generation: 100, heartbeat: 2 },
        { id: 'd', generation: 7, heartbeat: 1 },
      ],
    },
    1,
  );
  t.equal(actions.length, 1);
  const reply = actions[0]!;
  t.ok(reply.type === 'send' && reply.message.type === 'gossip-ack');
  if (reply.type !== 'send' || reply.message.type !== 'gossip-ack') return;
  t.equal(reply.to, 'b.test:7000');
  t.same(reply.message.requests, [
    { id: 'b', generation: 100, heartbeat: 5 },
    { id: 'd', generation: 0, heartbeat: 0 },
  ]);
  t.same(reply.message.entries.map((member) => member.id).sort(), ['a', 'c']);
  const same = node.receive('b.test:7000', { type: 'gossip-syn', digests: node.members().map((m) => ({ id: m.id, generation: m.generation, heartbeat: m.heartbeat })) }, 2);
  t.same(same, [], 'nothing to say when both sides agree');
  const ack = node.receive('b.test:7000', { type: 'gossip-ack', entries: [], requests: [{ id: 'a', generation: 0, heartbeat: 0 }, { id: 'zz', generation: 0, heartbeat: 0 }, { id: 'b', generation: 100, heartbeat: 99 }] }, 3);
  t.match(ack, [{ type: 'send', message: { type: 'gossip-ack2', entries: [{ id: 'a' }] } }], 'ack2 carries only what we hold newer');
  t.same(node.receive('b.test:7000', { type: 'gossip-ack', entries: [], requests: [] }, 4), []);
});

t.test('liveness: first sight is not proof of life; an advancing heartbeat is; silence convicts', async (t) => {
  const node = makeNode();
  const rng = new SeededRng(seed);
  t.same(types(node.receive('b.test:7000', { type: 'gossip-ack2', entries: [entry('b', { heartbeat: 1 })] }, 0)), ['member-joined']);
  t.notOk(node.isAlive('b'), 'a relayed record alone does not make a member up');
  t.same(types(node.receive('b.test:7000', { type: 'gossip-ack2', entries: [entry('b', { heartbeat: 2 })] }, 1000)), ['member-up']);
  t.ok(node.isAlive('b'));
  let downAtMs: number | undefined;
  for (let nowMs = 1000; nowMs <= 120_000 && downAtMs === undefined; nowMs += 1000) {
    if (node.tick(nowMs, rng).some((action) => action.type === 'member-down')) downAtMs = nowMs;
  }
  t.ok(downAtMs !== undefined && downAtMs > 20_000, `convicted after ${downAtMs} ms of silence`);
  t.notOk(node.isAlive('b'));
  t.same(types(node.receive('b.test:7000', { type: 'gossip-ack2', entries: [entry('b', { heartbeat: 3, weight: 2, statusVersion: 3 })] }, downAtMs! + 1)), ['member-updated', 'member-up']);
});

t.test('our own record is only advanced by us: newer copies of it are refuted by a new generation', async (t) => {
  const node = makeNode('a', { status: 'normal' });
  const me = node.self;
  t.same(node.receive('x.test:7000', { type: 'gossip-ack2', entries: [{ ...me }] }, 0), [], 'our own copy is no news');
  t.same(node.receive('x.test:7000', { type: 'gossip-ack2', entries: [{ ...me, generation: 99, heartbeat: 50 }] }, 0), [], 'an older incarnation is ignored');
  t.equal(node.stats().staleEntries, 1);
  t.same(node.receive('x.test:7000', { type: 'gossip-ack2', entries: [{ ...me, heartbeat: 7 }] }, 0), [{ type: 'self-generation-changed', generation: 101 }]);
  t.same([node.self.generation, node.self.heartbeat, node.self.status], [101, 0, 'normal']);
  const forged = node.receive('x.test:7000', { type: 'gossip-ack2', entries: [{ ...node.self, status: 'leaving' }] }, 0);
  t.same(forged, [{ type: 'self-generation-changed', generation: 102 }], 'a different description at our own version is refuted');
  const absurd = node.receive('x.test:7000', { type: 'gossip-ack2', entries: [{ ...node.self, generation: 102 + limits.generationJumpMax + 1 }] }, 0);
  t.match(absurd, [{ type: 'rejected', entries: 1, reason: /generation-jump/ }]);
  t.equal(node.self.generation, 102);

  const old = makeNode('z', { generation: limits.generationMax - 1 });
  t.match(old.receive('x.test:7000', { type: 'gossip-ack2', entries: [{ ...old.self, generation: limits.generationMax }] }, 0), [{ type: 'rejected' }], 'no bump past generationMax');
});

t.test('within a generation a status never goes back and the member table stays within membersMax', async (t) => {
  const node = makeNode('a', { config: { membersMax: 3, entriesMax: 3 } });
  node.receive('x.test:7000', { type: 'gossip-ack2', entries: [entry('b', { heartbeat: 4, statusVersion: 4, status: 'leaving' }), entry('c')] }, 0);
  const regressed = node.receive('x.test:7000', { type: 'gossip-ack2', entries: [entry('b', { heartbeat: 5, statusVersion: 5, status: 'joining' })] }, 1);
  t.match(regressed, [{ type: 'rejected', reason: /status-regression/ }]);
  t.equal(node.member('b')?.status, 'leaving');
  const full = node.receive('x.test:7000', { type: 'gossip-ack2', entries: [entry('d')] }, 2);
  t.match(full, [{ type: 'rejected', reason: /members-full/ }]);
  t.equal(node.stats().rejectedEntries, 2);
  t.same(types(node.receive('x.test:7000', { type: 'gossip-ack2', entries: [entry('b', { heartbeat: 6, statusVersion: 6, status: 'left' })] }, 3)), ['member-updated', 'member-left']);
  t.same(types(node.receive('x.test:7000', { type: 'gossip-ack2', entries: [entry('b', { heartbeat: 9, statusVersion: 6, status: 'left' })] }, 3)), [], 'a left member heartbeating is no news');
  t.same(types(node.receive('x.test:7000', { type: 'gossip-ack2', entries: [entry('d')] }, 4)), ['member-removed', 'member-joined'], 'the oldest tombstone makes room');
  t.same(types(node.receive('x.test:7000', { type: 'gossip-ack2', entries: [entry('c', { generation: 101, status: 'left' })] }, 5)), ['member-updated', 'member-left'], 'a restart straight into left');
  t.same(types(node.receive('x.test:7000', { type: 'gossip-ack2', entries: [entry('c', { generation: 102, status: 'left' })] }, 5)), ['member-updated']);
  t.throws(() => makeNode('a', { config: { fanout: 0 } }), RangeError);
  t.throws(() => makeNode('a', { config: { membersMax: 10, entriesMax: 5 } }), RangeError);
  t.throws(() => makeNode(''), RangeError);
  t.throws(() => node.updateSelf({ weight: -1 }), RangeError);
});

t.test('the failure detector bootstrap scales with a configured gossip interval unless given', async (t) => {
  const node = (config: Record<string, number>): Gossip => new Gossip({ self: { id: 'a', address: 'a:1' }, generation: 1, seeds: [], config });
  t.equal(node({ intervalMs: 100 }).config.arrivalBootstrapIntervalMs, 200, 'two intervals, as 2000 ms is for 1000 ms');
  t.equal(node({ intervalMs: 100, arrivalBootstrapIntervalMs: 900 }).config.arrivalBootstrapIntervalMs, 900, 'an explicit value wins');
  t.equal(node({}).config.arrivalBootstrapIntervalMs, limits.arrivalBootstrapIntervalMs, 'defaults unchanged');
});
