import { writeFileSync } from 'node:fs';
import { renderConfigurationDoc } from '../src/config-docs.js';

// Writes docs/configuration.md from the schema (run from the repository root).
writeFileSync('docs/configuration.md', renderConfigurationDoc());
process.stdout.write('wrote docs/configuration.md\n');
