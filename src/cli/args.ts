/**
 * Generated identifiers (client ids, key ids: 43 base64url characters) start with "-" one time in 64, and
 * node:util parseArgs reads such an argument as an unknown option ("Unknown option '-I'") or refuses it as
 * an option's value ("argument is ambiguous"). An operator pasting `gatehouse keys retire -Ix…` or
 * `--client -Ix…` means the identifier, so those arguments are rewritten before parsing: as an option's
 * value they become `--name=value` (`-nvalue`), as positionals they go after a `--` terminator (options that follow
 * them move before it, so the positionals keep their order). Nothing else changes: a typo such as
 * `--imediately` still fails as an unknown option.
 */
const DASHED_IDENTIFIER = /^-[A-Za-z0-9_-]{42}$/;

interface OptionSpec {
  type: 'string' | 'boolean';
  short?: string;
}

export function protectDashedIdentifiers(args: readonly string[], options: Record<string, OptionSpec>): string[] {
  const takesValue = (arg: string): boolean => {
    if (arg.startsWith('--')) return !arg.includes('=') && options[arg.slice(2)]?.type === 'string';
    if (arg.length !== 2 || !arg.startsWith('-')) return false;
    return Object.values(options).some((o) => o.short === arg[1] && o.type === 'string');
  };
  const before: string[] = [];
  const after: string[] = [];
  let terminated = false;
  for (let i = 0; i < args.length; i++) {
    const arg = args[i]!;
    if (arg === '--') {
      // An explicit terminator: everything after it is positional already.
      after.push(...args.slice(i + 1));
      break;
    }
    if (takesValue(arg) && i + 1 < args.length && DASHED_IDENTIFIER.test(args[i + 1]!)) {
      before.push(arg.startsWith('--') ? `${arg}=${args[++i]!}` : `${arg}${args[++i]!}`);
    } else if (DASHED_IDENTIFIER.test(arg)) {
      terminated = true;
      after.push(arg);
    } else if (terminated && arg.startsWith('-') && arg !== '-') {
      before.push(arg);
      // An option's value travels with it.
      if (takesValue(arg) && i + 1 < args.length) before.push(args[++i]!);
    } else if (terminated) {
      after.push(arg);
    } else {
      before.push(arg);
    }
  }
  return after.length > 0 || args.includes('--') ? [...before, '--', ...after] : before;
}
