/**
 * Gatehouse's layer rules (docs/architecture.md), checked by `npm run lint:deps` in CI: an import that
 * points the wrong way fails the build. Layers, top to bottom; a layer may import only layers below it.
 *
 *   edge      src/server.ts, app.ts, admin-app.ts, logging.ts, routes/, plugins/, http/, cli/
 *   services  src/services/          application: one unit per flow, plain inputs in, outcomes out
 *   domain    src/oauth/, handshake/, keys/   protocol and key rules, no I/O of their own
 *   storage   src/repositories/, db/
 *   config    src/config/, config-docs.ts
 *   lib       src/lib/               plain helpers that know nothing of Gatehouse
 */
const EDGE = '^src/(server|app|admin-app|logging)\\.ts$|^src/(routes|plugins|http|cli)/';
const SERVICES = '^src/services/';
const DOMAIN = '^src/(oauth|handshake|keys)/';
const STORAGE = '^src/(repositories|db)/';
const REPOSITORIES = '^src/repositories/';
const DB = '^src/db/';
const CONFIG = '^src/(config/|config(-docs)?\\.ts$)';
const LIB = '^src/lib/';
const HTTP_PACKAGES = '(^|/)node_modules/(fastify|@fastify/|fastify-plugin|close-with-grace|light-my-request)/';

module.exports = {
  forbidden: [
    {
      name: 'no-circular',
      severity: 'error',
      comment: 'A cycle makes two units one; split what they share into a lower layer.',
      from: { path: '^src/' },
      to: { circular: true },
    },
    {
      name: 'lib-is-a-leaf',
      severity: 'error',
      comment: 'src/lib knows nothing of Gatehouse: it imports only other lib files and packages.',
      from: { path: LIB },
      to: { path: '^src/', pathNot: LIB },
    },
    {
      name: 'config-imports-only-lib',
      severity: 'error',
      comment: 'Configuration is read before anything runs; it may use lib and nothing else of src.',
      from: { path: CONFIG },
      to: { path: '^src/', pathNot: `${CONFIG}|${LIB}` },
    },
    {
      name: 'storage-stays-below-the-protocol',
      severity: 'error',
      comment: 'Tables and repositories store rows: they never import protocol, services or the edge.',
      from: { path: STORAGE },
      to: { path: `${EDGE}|${SERVICES}|${DOMAIN}` },
    },
    {
      name: 'domain-does-no-io',
      severity: 'error',
      comment:
        'Protocol and key rules (oauth/, handshake/, keys/) never query: no repositories, no database ' +
        'handle. They may name a table row type (type-only) to describe what a service hands them.',
      from: { path: DOMAIN },
      to: { path: `${REPOSITORIES}|^src/db/(?!tables/)` },
    },
    {
      name: 'domain-imports-row-types-only',
      severity: 'error',
      comment: 'A row type, yes; a value from src/db, no.',
      from: { path: DOMAIN },
      to: { path: '^src/db/tables/', dependencyTypesNot: ['type-only'] },
    },
    {
      name: 'domain-below-services-and-edge',
      severity: 'error',
      from: { path: DOMAIN },
      to: { path: `${SERVICES}|${EDGE}` },
    },
    {
      name: 'services-below-the-edge',
      severity: 'error',
      comment: 'Services take plain inputs and return outcomes; routes turn outcomes into replies.',
      from: { path: SERVICES },
      to: { path: EDGE },
    },
    {
      name: 'http-only-at-the-edge',
      severity: 'error',
      comment: 'Only the edge speaks HTTP: Fastify and its plugins are imported nowhere else.',
      from: { path: '^src/', pathNot: EDGE },
      to: { path: HTTP_PACKAGES },
    },
    {
      name: 'routes-go-through-services',
      severity: 'error',
      comment: 'Routes and HTTP plugins call services; they never reach repositories, tables or Kysely.',
      from: { path: '^src/(routes|http)/' },
      to: { path: `${REPOSITORIES}|${DB}|(^|/)node_modules/kysely/` },
    },
    {
      name: 'edge-opens-the-database-only',
      severity: 'error',
      comment:
        'The composition root and the CLI may open, migrate and close the database (db/connect, ' +
        "db/migrate), and the metrics may read the batched statements' counts (db/batch); queries " +
        'belong to repositories called by services.',
      from: { path: EDGE },
      to: { path: `${REPOSITORIES}|^src/db/(?!connect\\.ts$|migrate\\.ts$|batch\\.ts$)` },
    },
    {
      name: 'src-never-imports-tests-or-tools',
      severity: 'error',
      from: { path: '^src/' },
      to: { path: '^(test|bench|scripts|examples)/' },
    },
    {
      name: 'examples-stand-alone',
      severity: 'error',
      comment: 'The examples are what a team copies: they use published packages, never Gatehouse source.',
      from: { path: '^examples/' },
      to: { path: '^(src|test)/' },
    },
    {
      name: 'no-unresolvable',
      severity: 'error',
      from: {},
      to: { couldNotResolve: true },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '^(dist|coverage|\\.tap)/' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.test.json' },
    enhancedResolveOptions: {
      exportsFields: ['exports'],
      conditionNames: ['import', 'require', 'node', 'default', 'types'],
      extensions: ['.ts', '.js', '.mjs', '.json'],
    },
  },
};
