import type { Config } from '../config/index.js';
import type { DatabaseHandle } from '../db/connect.js';
import { DomainError } from '../lib/errors.js';
import { systemClock } from '../lib/clock.js';
import { AuditLog, type AuditSink, through } from '../services/audit/audit-log.js';
import { type AuditEventView, type AuditQuery, auditFilter, queryAuditEvents } from '../services/audit/audit-query.js';
import { openForCommand } from './database.js';
import { AUDIT_OPTIONS } from './audit-options.js';

/** A mistake in how `gatehouse audit` was called (main prints it with the usage, exit code 2). */
export class AuditUsageError extends DomainError {
  constructor(message: string) {
    super('invalid_input', message);
  }
}

/**
 * The audit log of one CLI command: rows only (the command's output is its own record on the terminal),
 * every event marked `via: cli` and made by the operator. Close it before the database handle.
 */
export function commandAudit(handle: DatabaseHandle): { sink: AuditSink; close(): Promise<void> } {
  const log = new AuditLog({ db: () => handle.db, clock: systemClock });
  return { sink: through(log, 'cli'), close: () => log.close() };
}

function line(event: AuditEventView): string {
  const who = [
    event.subject === null ? null : `sub=${event.subject}`,
    event.client_id === null ? null : `client=${event.client_id}`,
    event.address === null ? null : `from ${event.address}`,
  ].filter((part) => part !== null);
  return [event.occurred_at, event.type.padEnd(28), event.actor.padEnd(6), ...who, JSON.stringify(event.details)].join(
    '  ',
  );
}

/** `gatehouse audit list [filters]`: one page of audit events; what to print. */
export async function runAuditCommand(
  config: Readonly<Config>,
  args: string[],
  values: Record<string, unknown>,
): Promise<string | object> {
  const [action = 'list', ...extra] = args;
  if (action !== 'list') throw new AuditUsageError(`unknown audit action: ${action}`);
  if (extra.length > 0) throw new AuditUsageError(`unexpected argument: ${extra[0]}`);
  const flag = (name: keyof typeof AUDIT_OPTIONS): string | undefined =>
    typeof values[name] === 'string' ? values[name] : undefined;
  const query: AuditQuery = {
    subject: flag('subject'),
    client_id: flag('client'),
    type: flag('type'),
    since: flag('since'),
    until: flag('until'),
    limit: flag('limit'),
    cursor: flag('cursor'),
  };
  try {
    // Checked before the database is opened, so a mistyped flag is answered at once.
    auditFilter(query, systemClock());
  } catch (err) {
    // The query's messages name the API parameter; on the command line it is the flag.
    if (err instanceof DomainError && err.code === 'invalid_input')
      throw new AuditUsageError(`--${err.message.replace(/^client_id:/, 'client:')}`);
    throw err;
  }
  const handle = await openForCommand(config, 'audit list');
  try {
    const page = await queryAuditEvents(handle.db, query, systemClock);
    if (values.json === true) return page;
    const lines = page.events.map(line);
    if (lines.length === 0) lines.push('no audit events');
    if (page.next_cursor !== null) lines.push(`more: --cursor ${page.next_cursor}`);
    return lines.join('\n');
  } finally {
    await handle.close();
  }
}
