// Reads the raw TAP of a whole run (tap's --output-file: the runner's own stream, one subtest per test
// file) and prints "<passed> <failed>": assertions that passed and failed, skips and todos counted as
// neither. A file whose result is `not ok` without a failing assertion inside (a crash, a timeout, a
// missing plan) counts as one failure, and so does a stream that ends before the runner's plan is met.
import { readFileSync } from 'node:fs';
import { Parser } from 'tap-parser';

const file = process.argv[2];
let text = '';
try {
  text = readFileSync(file, 'utf8');
} catch {
  // No report at all: the runner never got going.
}

let passed = 0;
let failed = 0;

/** Counts one parser's assertions (and, through their own parsers, its subtests'). */
function watch(parser) {
  /** Failures counted beneath this parser, and the states of its subtests awaiting their closing point. */
  const state = { failures: 0, children: [] };
  parser.on('child', (child) => state.children.push(watch(child)));
  parser.on('assert', (result) => {
    // The point that closes a subtest follows the subtest's own stream: its children were counted there.
    const child = state.children.shift();
    if (result.skip || result.todo) return;
    if (child) {
      if (!result.ok && child.failures === 0) {
        failed += 1;
        state.failures += 1;
      }
      state.failures += child.failures;
      return;
    }
    if (result.ok) passed += 1;
    else {
      failed += 1;
      state.failures += 1;
    }
  });
  return state;
}

const root = new Parser();
const top = watch(root);
let complete;
root.on('complete', (results) => (complete = results));
root.end(text);
if (!text.trim() || !complete || !complete.plan || complete.plan.end === null || complete.count < complete.plan.end) {
  // Files the runner never started (or a run cut short) are failures the stream cannot itemise.
  failed += 1;
} else if (!complete.ok && top.failures === 0) failed += 1;
console.log(`${passed} ${failed}`);
