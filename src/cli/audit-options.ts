import type { ParseArgsConfig } from 'node:util';

// The flags and help of `gatehouse audit`, apart from the command itself so the CLI's parser and help
// load without the audit services or a database driver.

/** Flags of `gatehouse audit list`, for the CLI's parseArgs. */
export const AUDIT_OPTIONS = {
  subject: { type: 'string' },
  client: { type: 'string' },
  type: { type: 'string' },
  since: { type: 'string' },
  until: { type: 'string' },
  limit: { type: 'string' },
  cursor: { type: 'string' },
} as const satisfies NonNullable<ParseArgsConfig['options']>;

/** Usage lines of `gatehouse audit`, for the CLI's help text. */
export const AUDIT_USAGE = `  audit list [--subject SUB] [--client ID] [--type T] [--since T] [--until T] [--limit N] [--cursor C] [--json]
                             audit events, newest first (docs/audit.md); --type takes a type or a prefix
                             ending in a dot (consent.); --since/--until an RFC 3339 time, a date, or an
                             age such as 24h or 7d; --limit 1-500 (default 50); --cursor the next_cursor
                             of the previous page`;
