import { readFileSync } from 'node:fs';
import t from 'tap';
import { schemaLeaves } from '../src/config/index.js';
import { renderConfigurationDoc } from '../src/config-docs.js';

t.test('docs/configuration.md matches the schema (run `npm run docs:config` after changing it)', async (t) => {
  const onDisk = readFileSync(new URL('../docs/configuration.md', import.meta.url), 'utf8');
  t.equal(onDisk, renderConfigurationDoc());
  for (const leaf of schemaLeaves()) t.match(onDisk, `| \`${leaf.env}\` |`, `${leaf.env} is documented`);
});
