// `npm run bench` with BENCH_SERVER_CPUS: a list that taskset would refuse, or one that would leave the load
// generator no CPU, stops the bench before it starts Postgres or any server, saying what is wrong.
import { cpus } from 'node:os';
import { fileURLToPath } from 'node:url';
import t from 'tap';
import { run } from '../process.js';

const BENCH = fileURLToPath(new URL('../../dist/bench/token-bench.js', import.meta.url));
const last = cpus().length - 1;

for (const [list, message] of [
  ['one', /expected CPU numbers and ranges/],
  ['1,', /expected CPU numbers and ranges/],
  ['-1', /expected CPU numbers and ranges/],
  ['1-', /expected CPU numbers and ranges/],
  [`${last + 1}`, new RegExp(`this machine has no CPU ${last + 1}`)],
  [`0-${last + 5}`, new RegExp(`this machine has no CPU ${last + 1}`)],
  [`${last}-0`, last > 0 ? /runs backwards/ : /leaves no CPU for the load generator/],
  [`0-${last}`, /leaves no CPU for the load generator/],
] as const) {
  t.test(`BENCH_SERVER_CPUS=${list}`, async (t) => {
    const out = await run([BENCH], { BENCH_SERVER_CPUS: list }, 30_000);
    t.equal(out.code, 1, 'the bench fails');
    t.match(out.stderr, message);
    t.notMatch(out.stdout + out.stderr, /Postgres|listening|seed/i, 'before anything is started');
  });
}
