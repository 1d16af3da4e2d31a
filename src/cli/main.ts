#!/usr/bin/env node
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { ConfigError, type LoadedConfig, describeConfig, loadConfig } from '../config/index.js';
import { protectDashedIdentifiers } from './args.js';
import { CLIENTS_OPTIONS, CLIENTS_USAGE } from './clients-options.js';
import { AUDIT_OPTIONS, AUDIT_USAGE } from './audit-options.js';
import { DomainError } from '../lib/errors.js';
// Everything else is imported by the command that needs it: `--version`, help and `config` load no
// Fastify, PGlite or pg, and `clients list` no Fastify (docs/cli.md has the start-up figures).

/** Each command's help (`gatehouse <command> --help`, `gatehouse help <command>`). */
const COMMAND_HELP: Record<string, string> = {
  serve: `  serve                      start the server (the default); logs what is configured and what a flow
                             still needs (sign-in, scopes, resources, clients), then "Gatehouse ready"`,
  migrate: `  migrate up                 apply every pending migration
  migrate down [--all]       revert the newest migration (or all of them)
  migrate status [--json]    list migrations and when each was applied`,
  keys: `  keys list [--json]         list signing keys and their states
  keys rotate                add the next signing key (published now, signs after KEY_ROTATION_DELAY_SECONDS)
  keys retire <kid> [--immediately]
                             withdraw a pending key or unpublish a retired one; the active key retires
                             after a rotation, or --immediately (compromise: it leaves the JWKS at once)`,
  clients: CLIENTS_USAGE,
  users: `  users grants <sub> [--json]
                             what each client holds for a user (consent, live refresh-token chains)
  users revoke <sub> [--client-id <id>] [--json]
                             revoke a user's refresh tokens, consents, unredeemed codes and sessions
                             (or only one client's grants); issued access tokens run until they expire
  users sign-out <sub> [--json]
                             end a user's Gatehouse sessions everywhere; the apps they signed in to get
                             back-channel logout tokens (delivered by a running server)`,
  audit: AUDIT_USAGE,
  janitor: `  janitor [--json]           delete expired requests, codes, refresh tokens and sessions now (what the
                             server does every JANITOR_INTERVAL_SECONDS; for schedulers when that is 0),
                             paced to JANITOR_DUTY_PERCENT (25) of its time; 100 sweeps a backlog flat out`,
  config: `  config [--json]            print the effective configuration, secrets redacted, with each value's source`,
  help: `  help [command]             show this text, or one command's
  --version, -v              print the version`,
};

const USAGE = `Usage: gatehouse [command] [--help]

Commands:
${Object.values(COMMAND_HELP).join('\n')}

Every setting is an environment variable; see docs/configuration.md. docs/cli.md describes each command.`;

function commandUsage(command: string): string {
  return `Usage: gatehouse ${command} ...\n\n${COMMAND_HELP[command]}\n\nSee docs/cli.md; settings in docs/configuration.md.`;
}

/** The package version, read from the package.json the build sits beside (dist/src/cli → the root). */
function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as {
    version: string;
  };
  return pkg.version;
}

/** A command-line mistake: printed with the usage, exit code 2. */
class UsageError extends DomainError {
  constructor(message: string) {
    super('invalid_input', message);
  }
}

function print(out: unknown, json: boolean): void {
  process.stdout.write(json ? `${JSON.stringify(out, null, 2)}\n` : `${String(out)}\n`);
}

async function migrate(loaded: LoadedConfig, args: string[], json: boolean, all: boolean): Promise<void> {
  const action = args[0] ?? 'status';
  if (!['up', 'down', 'status'].includes(action)) throw new UsageError(`unknown migrate action: ${action}`);
  const { config } = loaded;
  const { openForCommand } = await import('./database.js');
  const { migrateDown, migrateUp, migrationStatus } = await import('../db/migrate.js');
  const handle = await openForCommand(config, `migrate ${action}`);
  try {
    const schema = config.database.schema;
    if (action === 'up') {
      const applied = await migrateUp(handle.migrationRoot ?? handle.root, schema);
      print(
        json ? { applied } : applied.length ? applied.map((n) => `applied ${n}`).join('\n') : 'already up to date',
        json,
      );
    } else if (action === 'down') {
      const reverted = await migrateDown(handle.migrationRoot ?? handle.root, schema, all);
      print(
        json ? { reverted } : reverted.length ? reverted.map((n) => `reverted ${n}`).join('\n') : 'nothing to revert',
        json,
      );
    } else {
      const status = await migrationStatus(handle.root, schema);
      print(
        json
          ? status.map((m) => ({ name: m.name, executed_at: m.executedAt }))
          : status
              .map((m) => `${m.executedAt ? m.executedAt.toISOString() : 'pending'.padEnd(24)}  ${m.name}`)
              .join('\n'),
        json,
      );
    }
  } finally {
    await handle.close();
  }
}

function showConfig(loaded: LoadedConfig, json: boolean): void {
  const rows = describeConfig(loaded);
  if (json) return print(rows, true);
  const width = Math.max(...rows.map((r) => r.env.length));
  print(rows.map((r) => `${r.env.padEnd(width)}  ${JSON.stringify(r.value)}  (${r.source})`).join('\n'), false);
}

const OPTIONS = {
  json: { type: 'boolean', default: false },
  all: { type: 'boolean', default: false },
  immediately: { type: 'boolean', default: false },
  help: { type: 'boolean', short: 'h' },
  version: { type: 'boolean', short: 'v' },
  ...CLIENTS_OPTIONS,
  ...AUDIT_OPTIONS,
} as const;

/** Runs the gatehouse command line; resolves to the exit code (serve keeps running). */
export async function main(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: protectDashedIdentifiers(argv, OPTIONS),
    allowPositionals: true,
    options: OPTIONS,
  });
  const [command = 'serve', ...rest] = positionals;
  if (values.version) {
    print(version(), false);
    return 0;
  }
  if (command === 'help' || values.help) {
    // `gatehouse help clients` and `gatehouse clients --help` print that command's help.
    const topic = command === 'help' ? rest[0] : positionals[0];
    if (topic !== undefined && !(topic in COMMAND_HELP)) throw new UsageError(`unknown command: ${topic}`);
    print(topic === undefined ? USAGE : commandUsage(topic), false);
    return 0;
  }
  const loaded = loadConfig();
  switch (command) {
    case 'serve': {
      const { startServer } = await import('../server.js');
      await startServer(loaded.config);
      return -1;
    }
    case 'migrate':
      await migrate(loaded, rest, values.json ?? false, values.all ?? false);
      return 0;
    case 'config':
      showConfig(loaded, values.json ?? false);
      return 0;
    case 'clients': {
      const { ClientsUsageError, runClientsCommand } = await import('./clients.js');
      try {
        print(await runClientsCommand(loaded.config, rest, values), values.json ?? false);
      } catch (err) {
        throw err instanceof ClientsUsageError ? new UsageError(err.message) : err;
      }
      return 0;
    }
    case 'keys': {
      const { openForCommand } = await import('./database.js');
      const { KeysUsageError, keysCommand } = await import('./keys.js');
      const handle = await openForCommand(loaded.config, `keys ${rest[0] ?? ''}`.trim());
      try {
        const args = values.immediately ? [...rest, '--immediately'] : rest;
        print(
          await keysCommand(args, { config: loaded.config, handle, json: values.json ?? false }),
          values.json ?? false,
        );
      } catch (err) {
        throw err instanceof KeysUsageError ? new UsageError(err.message) : err;
      } finally {
        await handle.close();
      }
      return 0;
    }
    case 'users': {
      const [action, sub, ...extra] = rest;
      if (action !== 'grants' && action !== 'revoke' && action !== 'sign-out')
        throw new UsageError(`unknown users action: ${action ?? '(none)'}`);
      if (!sub || extra.length > 0)
        throw new UsageError(`users ${action} takes exactly one user id (the sub the host app signs in)`);
      const clientId = values['client-id'];
      if (clientId !== undefined && action !== 'revoke') throw new UsageError('--client-id goes with users revoke');
      const json = values.json ?? false;
      const { openForCommand } = await import('./database.js');
      const { systemClock } = await import('../lib/clock.js');
      const { endUserSessions, listUserGrants, revokeUserGrants } = await import('../services/user-grants.js');
      const { commandAudit } = await import('./audit.js');
      const handle = await openForCommand(loaded.config, `users ${action}`);
      const audit = commandAudit(handle);
      try {
        if (action === 'sign-out') {
          const ended = await endUserSessions(handle.db, sub, systemClock, audit.sink);
          print(
            json
              ? { sub, ...ended }
              : `Signed ${sub} out: ${ended.sessions} session(s) ended, ${ended.logout_tokens} back-channel logout token(s) queued (a running server delivers them).`,
            json,
          );
        } else if (action === 'grants') {
          const grants = await listUserGrants(handle.db, sub, systemClock);
          if (json) print({ sub, grants }, true);
          else if (grants.length === 0) print(`no grants for ${sub}`, false);
          else
            print(
              grants
                .map(
                  (g) =>
                    `${g.client_id}  consent: ${g.consent ? g.consent.scopes.join(' ') || '(no scopes)' : '-'}  live refresh chains: ${g.refresh_chains.length}`,
                )
                .join('\n'),
              false,
            );
        } else {
          const revoked = await revokeUserGrants(
            handle.db,
            sub,
            clientId === undefined ? {} : { clientId },
            systemClock,
            audit.sink,
          );
          print(
            json
              ? { sub, ...(clientId === undefined ? {} : { client_id: clientId }), revoked }
              : `Revoked for ${sub}${clientId === undefined ? '' : ` at ${clientId}`}: ${revoked.refresh_tokens} refresh token(s), ${revoked.consents} consent(s), ${revoked.authorization_codes} unredeemed code(s), ${revoked.sessions} session(s). Access tokens already issued stay valid until they expire.`,
            json,
          );
        }
      } finally {
        await audit.close();
        await handle.close();
      }
      return 0;
    }
    case 'audit': {
      const { AuditUsageError, runAuditCommand } = await import('./audit.js');
      try {
        print(await runAuditCommand(loaded.config, rest, values), values.json ?? false);
      } catch (err) {
        throw err instanceof AuditUsageError ? new UsageError(err.message) : err;
      }
      return 0;
    }
    case 'janitor': {
      if (rest.length > 0) throw new UsageError(`janitor takes no arguments: ${rest.join(' ')}`);
      const { config } = loaded;
      const { openForCommand } = await import('./database.js');
      const { sweepOnce, sweepOptions } = await import('../services/janitor.js');
      const handle = await openForCommand(config, 'janitor');
      try {
        // The embedded database's directory is locked to this command: no server shares it, so nothing is
        // gained by pacing the sweep (JANITOR_DUTY_PERCENT is for a database that serves traffic meanwhile).
        const options = sweepOptions(config);
        if (handle.kind === 'pglite') options.dutyPercent = 100;
        const result = await sweepOnce(handle, config.database.schema, options);
        const json = values.json ?? false;
        if (result === null)
          print(json ? { skipped: 'another process is sweeping' } : 'another process is sweeping; nothing done', json);
        else
          print(
            json
              ? { deleted: result }
              : Object.entries(result)
                  .map(([table, n]) => `deleted ${n} from ${table}`)
                  .join('\n'),
            json,
          );
      } finally {
        await handle.close();
      }
      return 0;
    }
    default:
      throw new UsageError(`unknown command: ${command}`);
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    if (code >= 0) process.exitCode = code;
  },
  (err: unknown) => {
    if (err instanceof ConfigError) {
      process.stderr.write(`gatehouse: ${err.message}\n`);
    } else if (err instanceof UsageError || (err as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
      const command = process.argv.slice(2).find((a) => !a.startsWith('-'));
      const usage = command !== undefined && command in COMMAND_HELP ? commandUsage(command) : USAGE;
      process.stderr.write(`gatehouse: ${(err as Error).message}\n\n${usage}\n`);
      process.exitCode = 2;
      return;
    } else {
      process.stderr.write(`gatehouse: ${err instanceof Error ? err.message : String(err)}\n`);
      // The operator is the one reading: what a client would never be shown helps here.
      if (err instanceof DomainError && err.detail !== undefined) process.stderr.write(`  ${err.detail}\n`);
    }
    process.exitCode = 1;
  },
);
