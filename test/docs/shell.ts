/**
 * Just enough of a POSIX shell to read the commands docs print: continuation lines, comments, single and
 * double quotes, `$NAME` / `${NAME}` from an environment, and `$(command)` from a table the test gives.
 * Anything else (pipes, redirections, unknown substitutions) throws, so a doc cannot drift into shell this
 * reader would misunderstand.
 */

/** The commands of a shell block: continuation lines joined, blank lines and comments dropped. */
export function shellCommands(block: string): string[] {
  return block
    .replace(/\\\n\s*/g, ' ')
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line !== '' && !line.startsWith('#'));
}

/** Splits one command into words, expanding variables from `env` and `$(…)` from `substitutions`. */
export function shellWords(
  command: string,
  env: Record<string, string>,
  substitutions: Record<string, string> = {},
): string[] {
  const words: string[] = [];
  let word: string | null = null;
  let i = 0;
  const expand = (): string => {
    // At a `$`: $(cmd), ${NAME} or $NAME.
    if (command[i + 1] === '(') {
      const end = command.indexOf(')', i);
      const inner = command.slice(i + 2, end);
      if (end < 0 || !(inner in substitutions)) throw new Error(`unknown command substitution $(${inner})`);
      i = end + 1;
      return substitutions[inner]!;
    }
    const match = /^\$(?:\{([A-Za-z_][A-Za-z0-9_]*)\}|([A-Za-z_][A-Za-z0-9_]*))/.exec(command.slice(i));
    if (!match) throw new Error(`a bare $ in: ${command}`);
    const name = match[1] ?? match[2]!;
    if (!(name in env)) throw new Error(`$${name} is not set`);
    i += match[0].length;
    return env[name]!;
  };
  while (i < command.length) {
    const c = command[i]!;
    if (c === ' ' || c === '\t') {
      if (word !== null) words.push(word);
      word = null;
      i++;
    } else if (c === "'") {
      const end = command.indexOf("'", i + 1);
      if (end < 0) throw new Error(`unclosed ' in: ${command}`);
      word = (word ?? '') + command.slice(i + 1, end);
      i = end + 1;
    } else if (c === '"') {
      word ??= '';
      i++;
      while (command[i] !== '"') {
        if (i >= command.length) throw new Error(`unclosed " in: ${command}`);
        if (command[i] === '$') word += expand();
        else if (command[i] === '\\' && '$`"\\'.includes(command[i + 1] ?? '')) {
          word += command[i + 1];
          i += 2;
        } else word += command[i++];
      }
      i++;
    } else if (c === '$') {
      word = (word ?? '') + expand();
    } else if ('|&;<>`'.includes(c)) {
      throw new Error(`shell syntax this reader does not support (${c}) in: ${command}`);
    } else {
      word = (word ?? '') + c;
      i++;
    }
  }
  if (word !== null) words.push(word);
  return words;
}

/** A curl command line as the request it sends. */
export interface CurlRequest {
  method: string;
  url: string;
  headers: Record<string, string>;
  body?: string;
}

/** Reads the curl options docs use: -s, -H, -d (joined with & as curl does), -u, -X and one URL. */
export function curlRequest(words: readonly string[]): CurlRequest {
  if (words[0] !== 'curl') throw new Error(`not a curl command: ${words.join(' ')}`);
  const headers: Record<string, string> = {};
  const data: string[] = [];
  let method: string | undefined;
  let url: string | undefined;
  for (let i = 1; i < words.length; i++) {
    const word = words[i]!;
    const value = () => {
      const next = words[++i];
      if (next === undefined) throw new Error(`${word} needs a value`);
      return next;
    };
    if (word === '-s') continue;
    else if (word === '-H') {
      const header = value();
      const colon = header.indexOf(':');
      headers[header.slice(0, colon).trim().toLowerCase()] = header.slice(colon + 1).trim();
    } else if (word === '-d') data.push(value());
    else if (word === '-u') headers.authorization = `Basic ${Buffer.from(value()).toString('base64')}`;
    else if (word === '-X') method = value();
    else if (word.startsWith('-')) throw new Error(`a curl option this reader does not know: ${word}`);
    else if (url === undefined) url = word;
    else throw new Error(`two URLs in one curl command: ${words.join(' ')}`);
  }
  if (url === undefined) throw new Error(`no URL in: ${words.join(' ')}`);
  if (data.length > 0) headers['content-type'] ??= 'application/x-www-form-urlencoded';
  return {
    method: method ?? (data.length > 0 ? 'POST' : 'GET'),
    url,
    headers,
    ...(data.length > 0 ? { body: data.join('&') } : {}),
  };
}
