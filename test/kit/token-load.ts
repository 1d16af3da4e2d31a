import type { FastifyInstance } from 'fastify';
import { basic } from '../fixtures/clients.js';
import { startRefreshChain } from './chains.js';

/**
 * Token-endpoint load over real HTTP for the reliability tests (issue #10): client_credentials callers, and
 * refresh-token chains whose clients behave as real ones do: keep the newest refresh token, give up on an
 * answer after a client-side timeout, and retry with the token they still hold after a 503 or a timeout.
 */

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** One answer as a caller saw it: `200`, `503 temporarily_unavailable`, `gave up` (client timeout), … */
export interface Answer {
  answer: string;
  ms: number;
  /** performance.now() when the request was sent. */
  at: number;
}

/** A refresh-token chain held by a client. */
export interface Chain {
  token: string;
  /** Why the chain was lost (an invalid_grant answer), or null while it lives. */
  lost: string | null;
  /** Requests abandoned by the client (timeout) and retried with the same token. */
  gaveUp: number;
}

export interface LoadOptions {
  url: string;
  /** The client's Authorization header. */
  authorization: string;
  chains: Chain[];
  clientCredentialsWorkers?: number;
  /** A caller gives up on an answer after this long and retries. */
  clientTimeoutMs: number;
}

interface Posted {
  status: number;
  body: Record<string, unknown>;
}

/** POST /token with the client's credentials; rejects on a client timeout or a refused connection. */
export async function postToken(
  url: string,
  authorization: string,
  params: Record<string, string>,
  timeoutMs = 30_000,
): Promise<Posted> {
  const res = await fetch(`${url}/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', authorization },
    body: new URLSearchParams(params).toString(),
    signal: AbortSignal.timeout(timeoutMs),
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

function describe(result: Posted): string {
  return result.status === 200 ? '200' : `${result.status} ${String(result.body.error)}`;
}

function failure(err: unknown): string {
  return err instanceof DOMException && err.name === 'TimeoutError' ? 'gave up' : `failed ${String(err)}`;
}

/** Runs the load until `stop()`; every answer is recorded. */
export function tokenLoad(options: LoadOptions) {
  let running = true;
  const answers: Answer[] = [];
  const record = async (request: () => Promise<Posted>): Promise<Posted | string> => {
    const at = performance.now();
    let outcome: Posted | string;
    try {
      outcome = await request();
    } catch (err) {
      outcome = failure(err);
    }
    answers.push({ answer: typeof outcome === 'string' ? outcome : describe(outcome), ms: performance.now() - at, at });
    return outcome;
  };
  const chainLoop = async (chain: Chain) => {
    while (running && chain.lost === null) {
      const outcome = await record(() =>
        postToken(
          options.url,
          options.authorization,
          { grant_type: 'refresh_token', refresh_token: chain.token },
          options.clientTimeoutMs,
        ),
      );
      if (typeof outcome === 'string') {
        if (outcome === 'gave up') chain.gaveUp++;
        await sleep(50);
      } else if (outcome.status === 200) {
        chain.token = String(outcome.body.refresh_token);
        await sleep(20);
      } else if (outcome.body.error === 'invalid_grant') {
        chain.lost = String(outcome.body.error_description);
      } else {
        await sleep(100);
      }
    }
  };
  const clientCredentialsLoop = async () => {
    while (running) {
      const outcome = await record(() =>
        postToken(options.url, options.authorization, { grant_type: 'client_credentials' }, options.clientTimeoutMs),
      );
      await sleep(typeof outcome !== 'string' && outcome.status === 200 ? 10 : 50);
    }
  };
  const loops = [
    ...options.chains.map(chainLoop),
    ...Array.from({ length: options.clientCredentialsWorkers ?? 2 }, clientCredentialsLoop),
  ];
  return {
    answers,
    stop: async () => {
      running = false;
      await Promise.all(loops);
    },
  };
}

/**
 * After the load: each chain still held refreshes once more, retrying through 503s and timeouts for up to
 * `withinMs`; a chain that answers invalid_grant (or never answers) is lost. Returns the lost ones.
 */
export async function settleChains(url: string, authorization: string, chains: Chain[], withinMs = 20_000) {
  const deadline = performance.now() + withinMs;
  for (const chain of chains) {
    while (chain.lost === null) {
      if (performance.now() > deadline) {
        chain.lost = 'no answer before the deadline';
        break;
      }
      let outcome: Posted | string;
      try {
        outcome = await postToken(url, authorization, { grant_type: 'refresh_token', refresh_token: chain.token });
      } catch (err) {
        outcome = failure(err);
      }
      if (typeof outcome !== 'string' && outcome.status === 200) {
        chain.token = String(outcome.body.refresh_token);
        break;
      }
      if (typeof outcome !== 'string' && outcome.body.error === 'invalid_grant')
        chain.lost = String(outcome.body.error_description);
      else await sleep(100);
    }
  }
  return chains.filter((chain) => chain.lost !== null);
}

/**
 * A client allowed client_credentials and refresh tokens (scope `read`, resource https://api.example.com must
 * be configured), and `count` refresh-token chains of its (test/kit/chains.ts), for `count` users.
 */
export async function startChains(
  app: FastifyInstance,
  count: number,
): Promise<{ authorization: string; chains: Chain[] }> {
  const { client, secret } = await app.clientAdmin.create({
    name: 'Reliability client',
    grant_types: ['client_credentials', 'authorization_code', 'refresh_token'],
    redirect_uris: ['https://app.example.com/cb'],
  });
  const authorization = basic(client.client_id, secret!);
  const chains: Chain[] = [];
  for (let i = 0; i < count; i++) {
    const token = await startRefreshChain(app, {
      clientId: client.client_id,
      authorization,
      redirectUri: 'https://app.example.com/cb',
      scopes: ['read'],
      resources: ['https://api.example.com'],
      sub: `user-${i}`,
    });
    chains.push({ token, lost: null, gaveUp: 0 });
  }
  return { authorization, chains };
}
