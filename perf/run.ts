/**
 * Benchmark entry: `npm run bench -- <name> [--flag value ...]`.
 * Names: storage, store, scale, mailbox, cluster, handoff, nemesis, failover, resp, sweep (see each file's header for its flags).
 */
import { runStorageBench } from './storage.js';

function flags(argv: string[]): Map<string, string> {
  const out = new Map<string, string>();
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a.startsWith('--')) out.set(a.slice(2), argv[i + 1] ?? '');
  }
  return out;
}

const [name = 'storage', ...rest] = process.argv.slice(2);
const f = flags(rest);
const num = (k: string, d: number): number => (f.has(k) ? Number(f.get(k)) : d);

if (name === 'storage') {
  const valueBytes = num('value', 100);
  const keys = num('keys', valueBytes > 1024 ? 100_000 : 1_000_000);
  await runStorageBench({
    keys,
    valueBytes,
    rounds: num('rounds', 3),
    inFlight: num('inflight', 1000),
    reads: num('reads', Math.min(keys, 200_000)),
    sync: f.get('sync') === 'none' ? 'none' : 'fsync',
    workloads: (f.get('workloads') ?? 'fillseq,fillrandom,overwrite,readrandom,readmissing').split(','),
  });
} else if (name === 'store') {
  const { runStoreBench, storeSubjects } = await import('./store.js');
  const valueBytes = num('value', 100);
  // --subjects s1,s1lww,s2,s2lww,leveldb,lmdb,raw (default s1,s1lww,s2,leveldb,lmdb,raw): s1/s2
  // are the Store with 1 or 2 shards (conflicts: 'siblings'), s1lww/s2lww the same with 'lww'.
  // --conflicts lww: every Store subject uses 'lww'.
  const subjectNames: Record<string, (typeof storeSubjects)[number]> = {
    s1: 'store S=1',
    s1lww: 'store S=1 lww',
    s2: 'store S=2',
    s2lww: 'store S=2 lww',
    leveldb: 'leveldb',
    lmdb: 'lmdb',
    raw: 'raw',
  };
  const lwwOnly = f.get('conflicts') === 'lww';
  if (f.has('conflicts') && !lwwOnly && f.get('conflicts') !== 'siblings') throw new RangeError("--conflicts takes 'siblings' or 'lww'");
  type Named = (typeof storeSubjects)[number];
  const named: Named[] | undefined = f.has('subjects') ? f.get('subjects')!.split(',').map((s) => subjectNames[s] ?? (s as never)) : lwwOnly ? ['store S=1', 'store S=2', 'leveldb', 'lmdb', 'raw'] : undefined;
  const subjects = lwwOnly ? [...new Set(named!.map((s): Named => (s === 'store S=1' || s === 'store S=2' ? `${s} lww` : s)))] : named;
  if (subjects?.some((s) => !storeSubjects.includes(s))) throw new RangeError(`--subjects takes a list of ${Object.keys(subjectNames).join(', ')}`);
  await runStoreBench({
    valueBytes,
    ...(subjects ? { subjects } : {}),
    rounds: num('rounds', 3),
    ...(f.has('keys') ? { keys: num('keys', 0) } : {}),
    ...(f.has('inflight') ? { inFlight: num('inflight', 1000) } : {}),
    ...(f.has('reads') ? { reads: num('reads', 0) } : {}),
    sync: f.get('sync') === 'none' ? 'none' : 'fsync',
  });
} else if (name === 'scale') {
  const { runScaleBench } = await import('./scale.js');
  await runScaleBench({
    keys: (f.get('keys') ?? '1000000,10000000').split(',').map(Number),
    reads: num('reads', 200_000),
    rounds: num('rounds', 1),
    valueBytes: num('value', 100),
    store: f.has('store'),
  });
} else if (name === 'mailbox') {
  const { runMailboxBench } = await import('./mailbox.js');
  await runMailboxBench({});
} else if (name === 'cluster') {
  const { runClusterBench } = await import('./cluster.js');
  await runClusterBench(rest);
} else if (name === 'handoff') {
  const { runHandoffBench } = await import('./handoff.js');
  await runHandoffBench(rest);
} else if (name === 'resp') {
  const { runRespBench } = await import('./resp.js');
  await runRespBench(rest);
} else if (name === 'sweep') {
  const { runSweepBench } = await import('./sweep.js');
  await runSweepBench(rest);
} else if (name === 'nemesis') {
  const { runNemesisBench } = await import('./nemesis.js');
  await runNemesisBench(rest);
} else if (name === 'failover') {
  const { runFailoverBench } = await import('./failover.js');
  await runFailoverBench(rest);
} else {
  console.error(`unknown benchmark ${name}; try: storage, store, scale, mailbox, cluster, handoff, nemesis, failover, resp, sweep`);
  process.exitCode = 2;
}
