import { schemaLeaves } from './config/index.js';

function formatOf(format: unknown): string {
  if (Array.isArray(format)) return format.map((f) => `\`${f}\``).join(', ');
  if (format === String) return 'string';
  return String(format);
}

function defaultOf(value: unknown): string {
  if (value === '') return '(empty)';
  return `\`${String(value)}\``;
}

/** docs/configuration.md, generated from the convict schema so the two cannot drift. */
export function renderConfigurationDoc(): string {
  const rows = schemaLeaves().map(
    (leaf) =>
      `| \`${leaf.env}\` | ${formatOf(leaf.format)} | ${defaultOf(leaf.default)} | ${leaf.doc.replace(/\|/g, '\\|')}${leaf.sensitive ? ` Secret: also read from \`${leaf.env}_FILE\`.` : ''} |`,
  );
  return `# Configuration

<!-- Generated from src/config/schema.ts by \`npm run docs:config\`; edit the schema, not this file. -->

Every setting is an environment variable. Secrets may instead be read from a file named by
\`<NAME>_FILE\` (Docker secrets); setting both is an error. An empty variable means its default.
Configuration is validated at start: every problem is listed by variable name and the process exits
with code 1. \`gatehouse config\` prints the effective values (secrets redacted) and where each came from.

With \`NODE_ENV=production\` Gatehouse also refuses an \`http://\` issuer other than loopback, a
missing, short or placeholder \`KEY_ENCRYPTION_SECRET\`, and any secret published in this repository (the
\`local-only-…\` defaults of \`docker-compose.yml\`, in \`KEY_ENCRYPTION_SECRET\`, \`HANDSHAKE_SECRET\`,
\`ADMIN_TOKEN\`, \`DCR_INITIAL_ACCESS_TOKEN\` or as the \`DATABASE_URL\` password), naming the variable.

| Variable | Format | Default | Description |
|---|---|---|---|
${rows.join('\n')}
`;
}
