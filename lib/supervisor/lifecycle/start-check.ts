/**
 * The start check: before a node gossips its own record, it asks its seeds and the members it
 * remembers how the cluster sees it (`handoff-hello`, whose reply carries the peer's members and
 * removals), and refuses to start when its data directory does not match that view. This is
 * Cassandra's shadow round (Gossiper.doShadowRound, checkForEndpointCollision): learn the
 * cluster's state without announcing ourselves, so a mistake is refused before it spreads.
 * Owned by the supervisor (main thread); `judgeStart` is pure, `runStartCheck` waits on rpcs.
 *
 * Refusals (KV_INCOMPATIBLE, the message says what to do):
 *  - the node's id was removed (`ringkv removenode`): its old data may not come back;
 *  - a later incarnation of its id exists that it never was: another node replaced it;
 *  - its data directory is new, yet its id, or its address, belongs to a member that owns
 *    partitions: the disk was lost; the message names `--replace`;
 *  - with `--replace`: the member to replace is unknown, removed, or up.
 *
 * Bounded: the check stops after `windowMs` without an answer and the node starts anyway, so a
 * whole cluster restarting at once (nobody answering yet) still comes up; its peers keep
 * removed ids out of the ring in every incarnation, so a late refusal costs nothing.
 */

import { ErrorCode, RingkvError } from '../../base/errors.js';
import type { Clock } from '../../base/clock.js';
import { memberStatuses, type MemberStatus } from '../../membership/index.js';
import { isOwnerStatus } from './membership-file.js';

export interface HelloMember {
  readonly id: string;
  readonly address: string;
  readonly generation: number;
  readonly status: MemberStatus;
  readonly up: boolean;
}

/** What a peer's `handoff-hello-reply` says about the cluster. */
export interface HelloView {
  readonly removals: readonly { readonly id: string; readonly generation: number }[];
  readonly members: readonly HelloMember[];
}

export interface StartFacts {
  readonly selfId: string;
  readonly address: string;
  readonly dir: string;
  /** The data directory had no NODE file before this start. */
  readonly fresh: boolean;
  /** The generation of this directory's previous start (undefined when fresh). */
  readonly previousGeneration: number | undefined;
  /** This start's generation: records of our id from it on, at our address, are ours. */
  readonly generation: number;
  /** Started with --replace (or resuming one). */
  readonly replacing: boolean;
}

function isHelloMember(value: unknown): value is HelloMember {
  const m = value as Record<string, unknown> | null;
  return (
    typeof m === 'object' && m !== null && typeof m.id === 'string' && typeof m.address === 'string' &&
    Number.isSafeInteger(m.generation) && typeof m.up === 'boolean' && (memberStatuses as readonly unknown[]).includes(m.status)
  );
}

/** The view in a hello reply, or undefined when the reply has none (an older node, or no answer). */
export function parseHelloView(reply: unknown): HelloView | undefined {
  const r = reply as { t?: unknown; members?: unknown; removals?: unknown } | undefined;
  if (r?.t !== 'handoff-hello-reply' || !Array.isArray(r.members) || !Array.isArray(r.removals)) return undefined;
  if (!r.members.every(isHelloMember)) return undefined;
  const removals = (r.removals as { id?: unknown; generation?: unknown }[]).filter((x) => typeof x?.id === 'string' && typeof x.generation === 'number');
  return { members: r.members, removals: removals as HelloView['removals'] };
}

const refuse = (message: string, details: Record<string, unknown>): RingkvError => new RingkvError(ErrorCode.incompatible, message, details);

/** Why this node may not start as it is, or undefined when the view agrees with its directory. */
export function judgeStart(facts: StartFacts, view: HelloView): RingkvError | undefined {
  const { selfId: id, dir } = facts;
  if (view.removals.some((r) => r.id === id)) {
    return refuse(
      `node ${id} was removed from the cluster (ringkv removenode) and may not come back with its old data: ` +
        `its partitions were re-replicated without it. Wipe ${dir} and start again to join as a new node.`,
      { id, reason: 'removed' },
    );
  }
  const found = view.members.find((m) => m.id === id && m.status !== 'left');
  // Our own record, already gossiped (a check that goes on after the start): not evidence.
  const me = found !== undefined && found.generation >= facts.generation && found.address === facts.address ? undefined : found;
  if (facts.replacing) return found === me ? judgeReplace(facts, me) : undefined;
  if (!facts.fresh) {
    // Between our last run and this one, or anywhere else: another process ran under our id.
    const foreign = me !== undefined && me.generation > (facts.previousGeneration ?? 0) && (me.generation < facts.generation || me.address !== facts.address);
    if (foreign) {
      return refuse(
        `node ${id} was replaced: the cluster knows it at ${me.address} (generation ${me.generation}), an incarnation this data ` +
          `directory never was (its last was ${facts.previousGeneration}). ${dir} is stale: wipe it to start a new node here.`,
        { id, reason: 'replaced', address: me.address },
      );
    }
    return undefined;
  }
  if (me !== undefined && isOwnerStatus(me.status)) {
    if (me.up) return refuse(`node id ${id} is in use by a running member at ${me.address}`, { id, reason: 'id-in-use' });
    return refuse(
      `${dir} is empty but node ${id} is a member that owns partitions (at ${me.address}, down): its data is lost. ` +
        `Start with --replace ${id} to take its place and stream its partitions from the surviving replicas.`,
      { id, reason: 'lost-disk' },
    );
  }
  const other = view.members.find((m) => m.id !== id && m.address === facts.address && isOwnerStatus(m.status));
  if (other === undefined) return undefined;
  if (other.up) return refuse(`${facts.address} is the address of running member ${other.id}`, { reason: 'address-in-use', member: other.id });
  return refuse(
    `member ${other.id} was at ${facts.address} and is down, and this node starts with an empty data directory (${dir}). ` +
      `To take its place (its partitions, streamed from the surviving replicas) start with --replace ${facts.address} ` +
      `(or --replace ${other.id}); to add a new node instead, remove the dead one first (ringkv removenode ${other.id}) or use another address.`,
    { reason: 'lost-disk', member: other.id },
  );
}

function judgeReplace(facts: StartFacts, me: HelloMember | undefined): RingkvError | undefined {
  const id = facts.selfId;
  if (me === undefined || !isOwnerStatus(me.status)) {
    return refuse(`--replace: ${id} is not a member that owns partitions: nothing to replace`, { id, reason: 'replace-unknown' });
  }
  const resuming = me.status === 'replacing' && me.generation <= (facts.previousGeneration ?? 0);
  if (me.up && !resuming) return refuse(`--replace: ${id} is up at ${me.address}: stop it first (only a dead member can be replaced)`, { id, reason: 'replace-up' });
  return undefined;
}

export interface StartCheckOptions {
  readonly facts: StartFacts;
  /** Addresses to ask (seeds and remembered members, not ourselves). */
  readonly candidates: readonly string[];
  /** One `handoff-hello` rpc to an address; undefined when it could not be sent or timed out. */
  readonly hello: (address: string) => Promise<unknown>;
  readonly clock: Clock;
  /** Infinity: until someone answers (or `stopped`). */
  readonly windowMs: number;
  readonly retryMs: number;
  /** Checked each round: true ends the check unanswered (the node is closing). */
  readonly stopped?: () => boolean;
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Asks the candidates until one answers with a view (then judges it) or `windowMs` passes.
 * Resolves with the view it judged (undefined when nobody answered); rejects with the refusal.
 */
export async function runStartCheck(options: StartCheckOptions): Promise<HelloView | undefined> {
  const { clock, candidates } = options;
  const deadline = clock.monotonicMs() + options.windowMs;
  if (candidates.length === 0) return undefined;
  for (;;) {
    const replies = await Promise.all(candidates.map((address) => options.hello(address).catch(() => undefined)));
    const view = replies.map(parseHelloView).find((v) => v !== undefined);
    if (view !== undefined) {
      const refusal = judgeStart(options.facts, view);
      if (refusal !== undefined) throw refusal;
      return view;
    }
    if (clock.monotonicMs() >= deadline || options.stopped?.() === true) return undefined;
    await sleep(options.retryMs);
  }
}
