import { execFile } from 'node:child_process';
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import t, { type Test } from 'tap';

// The layer rules of docs/architecture.md are .dependency-cruiser.cjs, run by `npm run lint:deps` in CI.
// These tests show the checker is real: the tree passes it, and a wrong-way import fails it.
const run = promisify(execFile);
const root = fileURLToPath(new URL('../', import.meta.url));
const depcruise = join(root, 'node_modules', '.bin', 'depcruise');

interface Outcome {
  code: number;
  output: string;
}

async function cruise(cwd: string, paths: string[]): Promise<Outcome> {
  try {
    const { stdout } = await run(depcruise, [...paths, '--config', '.dependency-cruiser.cjs', '--output-type', 'err'], {
      cwd,
      timeout: 60_000,
    });
    return { code: 0, output: stdout };
  } catch (err) {
    const failed = err as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof failed.code === 'number' ? failed.code : 1, output: `${failed.stdout}${failed.stderr}` };
  }
}

/** A scratch project with Gatehouse's rules, tsconfig and packages, holding only the given files. */
function scratch(t: Test, files: Record<string, string>): string {
  const dir = mkdtempSync(join(tmpdir(), 'gatehouse-layers-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  for (const name of ['.dependency-cruiser.cjs', 'tsconfig.json', 'tsconfig.test.json', 'package.json']) {
    copyFileSync(join(root, name), join(dir, name));
  }
  symlinkSync(join(root, 'node_modules'), join(dir, 'node_modules'));
  for (const [path, text] of Object.entries(files)) {
    mkdirSync(dirname(join(dir, path)), { recursive: true });
    writeFileSync(join(dir, path), text);
  }
  return dir;
}

t.test('the tree keeps its layers', async (t) => {
  const { code, output } = await cruise(root, ['src', 'examples']);
  t.equal(code, 0, output);
});

const wrongWay: Array<[rule: string, files: Record<string, string>]> = [
  [
    'domain-does-no-io',
    {
      'src/repositories/thing.repository.ts': 'export const findThing = () => 1;\n',
      'src/oauth/probe.ts':
        "import { findThing } from '../repositories/thing.repository.js';\nexport const x = findThing();\n",
    },
  ],
  [
    'routes-go-through-services',
    {
      'src/repositories/thing.repository.ts': 'export const findThing = () => 1;\n',
      'src/routes/probe.ts':
        "import { findThing } from '../repositories/thing.repository.js';\nexport const x = findThing();\n",
    },
  ],
  [
    'http-only-at-the-edge',
    {
      'src/services/probe.ts': "import type { FastifyReply } from 'fastify';\nexport type X = FastifyReply;\n",
    },
  ],
  [
    'services-below-the-edge',
    {
      'src/routes/thing.ts': 'export const route = 1;\n',
      'src/services/probe.ts': "import { route } from '../routes/thing.js';\nexport const x = route;\n",
    },
  ],
  [
    'config-imports-only-lib',
    {
      'src/oauth/rule.ts': 'export const rule = 1;\n',
      'src/config/probe.ts': "import { rule } from '../oauth/rule.js';\nexport const x = rule;\n",
    },
  ],
  [
    'no-circular',
    {
      'src/lib/a.ts': "import { b } from './b.js';\nexport const a = () => b;\n",
      'src/lib/b.ts': "import { a } from './a.js';\nexport const b = () => a;\n",
    },
  ],
];

for (const [rule, files] of wrongWay) {
  t.test(`a wrong-way import fails the build: ${rule}`, async (t) => {
    const dir = scratch(t, files);
    const { code, output } = await cruise(dir, ['src']);
    t.not(code, 0, 'depcruise exits non-zero');
    t.match(output, new RegExp(`error ${rule}:`), output);
  });
}

t.test('the same files pointing the right way pass', async (t) => {
  const dir = scratch(t, {
    'src/repositories/thing.repository.ts': 'export const findThing = () => 1;\n',
    'src/services/thing.service.ts':
      "import { findThing } from '../repositories/thing.repository.js';\nexport const thing = () => findThing();\n",
    'src/routes/thing.ts':
      "import type { FastifyReply } from 'fastify';\nimport { thing } from '../services/thing.service.js';\nexport const x = (r: FastifyReply) => r.send(thing());\n",
  });
  const { code, output } = await cruise(dir, ['src']);
  t.equal(code, 0, output);
});
