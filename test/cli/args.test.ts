import { parseArgs } from 'node:util';
import t from 'tap';
import { protectDashedIdentifiers } from '../../src/cli/args.js';

// Generated client ids and key ids are 43 base64url characters and start with "-" one time in 64.
const dashed = `-Ix${'a'.repeat(40)}`;
const options = {
  json: { type: 'boolean' },
  immediately: { type: 'boolean' },
  subject: { type: 'string' },
  scope: { type: 'string', multiple: true },
  help: { type: 'boolean', short: 'h' },
  name: { type: 'string', short: 'n' },
} as const;

function parse(args: string[]) {
  const { values, positionals } = parseArgs({
    args: protectDashedIdentifiers(args, options),
    allowPositionals: true,
    options,
  });
  return { values: { ...values }, positionals };
}

t.test('a dashed identifier as a positional is the identifier, in its place', async (t) => {
  t.throws(
    () => parseArgs({ args: ['keys', 'retire', dashed], allowPositionals: true, options }),
    {
      code: 'ERR_PARSE_ARGS_UNKNOWN_OPTION',
    },
    'what parseArgs does on its own',
  );
  t.same(parse(['keys', 'retire', dashed]), { values: {}, positionals: ['keys', 'retire', dashed] });
  t.same(parse(['keys', 'retire', dashed, '--immediately', '--json']), {
    values: { immediately: true, json: true },
    positionals: ['keys', 'retire', dashed],
  });
  t.same(
    parse(['clients', 'update', dashed, '--scope', 'read', 'extra']),
    {
      values: { scope: ['read'] },
      positionals: ['clients', 'update', dashed, 'extra'],
    },
    'a later option keeps its value; later positionals keep their order',
  );
  t.same(parse(['x', dashed, '-n', 'Ann', dashed.replace('I', 'J')]), {
    values: { name: 'Ann' },
    positionals: ['x', dashed, dashed.replace('I', 'J')],
  });
});

t.test("a dashed identifier as an option's value is the value", async (t) => {
  t.throws(
    () => parseArgs({ args: ['audit', '--subject', dashed], allowPositionals: true, options }),
    {
      code: 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE',
    },
    'what parseArgs does on its own',
  );
  t.same(parse(['audit', '--subject', dashed]), { values: { subject: dashed }, positionals: ['audit'] });
  t.same(parse(['audit', '-n', dashed, dashed]), { values: { name: dashed }, positionals: ['audit', dashed] });
  t.same(parse(['--scope', dashed, '--scope', 'b']), { values: { scope: [dashed, 'b'] }, positionals: [] });
});

t.test('everything else is parsed as before', async (t) => {
  t.same(parse(['a', '--json', 'b']), { values: { json: true }, positionals: ['a', 'b'] });
  t.same(parse(['a', '--', '-x', dashed]), { values: {}, positionals: ['a', '-x', dashed] }, 'an explicit terminator');
  t.same(parse(['a', dashed, '--', '--json']), { values: {}, positionals: ['a', dashed, '--json'] });
  t.same(
    parse(['x', dashed, '-', 'y']),
    { values: {}, positionals: ['x', dashed, '-', 'y'] },
    'a lone "-" is a positional and keeps its place',
  );
  t.throws(() => parse(['keys', '--imediately']), { code: 'ERR_PARSE_ARGS_UNKNOWN_OPTION' }, 'a typo is still refused');
  t.throws(() => parse(['keys', '-Ix']), { code: 'ERR_PARSE_ARGS_UNKNOWN_OPTION' }, 'only identifier-shaped arguments');
  t.throws(() => parse(['--subject', '-x']), { code: 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE' });
  t.same(parse(['--subject=-x']), { values: { subject: '-x' }, positionals: [] });
});
