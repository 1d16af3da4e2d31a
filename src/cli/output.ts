import type { KeyStoreLogger } from '../services/signing-keys/key-store.js';

/** The message of a pino-style call: `(msg)` or `(fields, msg)`. */
function messageOf(args: unknown[]): string {
  const [first, second] = args;
  if (typeof first === 'string') return first;
  if (typeof second === 'string') return second;
  return first instanceof Error ? first.message : '';
}

/**
 * A logger for CLI commands: a person reads the output, so warnings and errors go to stderr as plain
 * `gatehouse: warning: …` lines, never as JSON log lines beside the command's output, and stdout stays
 * the command's alone (parseable with `--json`). Info lines (what the command prints anyway) are dropped.
 */
export function stderrLogger(write: (line: string) => void = (line) => process.stderr.write(line)): KeyStoreLogger {
  const say =
    (label: string) =>
    (...args: unknown[]) => {
      const message = messageOf(args);
      if (message) write(`gatehouse: ${label}: ${message}\n`);
    };
  return {
    info: () => {},
    warn: say('warning'),
    error: say('error'),
  };
}
