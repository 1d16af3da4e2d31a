import { parseArgs } from 'node:util';
import type { Config } from '../config/index.js';
import type { DatabaseHandle } from '../db/connect.js';
import { DomainError } from '../lib/errors.js';
import { protectDashedIdentifiers } from './args.js';
import { commandAudit } from './audit.js';
import { type KeyInfo, KeyStore, type KeyStoreLogger } from '../services/signing-keys/key-store.js';
import { stderrLogger } from './output.js';

/** A mistake in `gatehouse keys` arguments: main prints it with the usage (exit code 2). */
export class KeysUsageError extends DomainError {
  constructor(message: string) {
    super('invalid_input', message);
  }
}

export interface KeysCommandContext {
  config: Readonly<Config>;
  handle: DatabaseHandle;
  json: boolean;
  /** Where the store logs (warnings, as plain text on stderr by default, so stdout stays parseable). */
  logger?: KeyStoreLogger;
}

function when(date: Date | null): string {
  return date ? date.toISOString() : '-';
}

/** A key in `--json` output: snake_case like every other JSON the CLI and the admin API print. */
export function keyJson(key: KeyInfo): Record<string, unknown> {
  return {
    kid: key.kid,
    alg: key.alg,
    state: key.state,
    source: key.source,
    published: key.published,
    created_at: key.createdAt,
    activate_at: key.activateAt,
    activated_at: key.activatedAt,
    retired_at: key.retiredAt,
    expires_at: key.expiresAt,
  };
}

function describeLine(key: KeyInfo): string {
  const since =
    key.state === 'next'
      ? `signs from ${when(key.activateAt)}`
      : key.state === 'active'
        ? `signing since ${when(key.activatedAt)}`
        : '';
  const until =
    key.state === 'retired'
      ? key.published
        ? `published until ${when(key.expiresAt)}`
        : `unpublished since ${when(key.expiresAt)}`
      : '';
  return [key.kid, key.alg.padEnd(5), key.state.padEnd(9), key.source.padEnd(8), since || until].join('  ').trimEnd();
}

async function retire(
  store: KeyStore,
  kid: string | undefined,
  immediately: boolean,
  json: boolean,
): Promise<string | object> {
  if (!kid) throw new KeysUsageError('keys retire needs the kid of the key to retire');
  const result = await store.retire(kid, { immediately });
  if (json) return { retired: keyJson(result.retired), signing: result.signing ? keyJson(result.signing) : null };
  const lines = [
    `retired ${kid}; ${result.retired.published ? `it stays in the JWKS until ${when(result.retired.expiresAt)}` : 'it has left the JWKS'}`,
  ];
  if (result.signing) lines.push(`${result.signing.kid} (${result.signing.alg}) signs now`);
  return lines.join('\n');
}

const KEYS_OPTIONS = { immediately: { type: 'boolean', default: false } } as const;

/** `gatehouse keys list|rotate|retire <kid> [--immediately]`, against the database directly. */
export async function keysCommand(args: string[], ctx: KeysCommandContext): Promise<string | object> {
  const { values, positionals } = parseArgs({
    args: protectDashedIdentifiers(args, KEYS_OPTIONS),
    allowPositionals: true,
    options: KEYS_OPTIONS,
  });
  const [action = 'list', kid, ...extra] = positionals;
  if (!['list', 'rotate', 'retire'].includes(action)) throw new KeysUsageError(`unknown keys action: ${action}`);
  if (extra.length > 0 || (action !== 'retire' && kid !== undefined))
    throw new KeysUsageError(`unexpected argument: ${extra[0] ?? kid}`);
  if (values.immediately && action !== 'retire') throw new KeysUsageError('--immediately only applies to keys retire');

  const logger = ctx.logger ?? stderrLogger();
  const audit = commandAudit(ctx.handle);
  const store = await KeyStore.open(ctx.handle, ctx.config, logger, { background: false, audit: audit.sink });
  try {
    if (action === 'rotate') {
      const key = await store.rotate();
      return ctx.json
        ? keyJson(key)
        : `added ${key.kid} (${key.alg}): published in the JWKS now, signs from ${when(key.activateAt)}`;
    }
    if (action === 'retire') return await retire(store, kid, values.immediately ?? false, ctx.json);
    const keys = await store.list();
    return ctx.json ? keys.map(keyJson) : keys.map(describeLine).join('\n');
  } finally {
    await store.close();
    await audit.close();
  }
}
