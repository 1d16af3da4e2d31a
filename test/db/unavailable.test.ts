import t from 'tap';
import { asUnavailable, isDatabaseUnavailable } from '../../src/db/unavailable.js';
import { DomainError } from '../../src/lib/errors.js';

const coded = (code: string, message = 'x') => Object.assign(new Error(message), { code });

t.test('connection loss, refusal, shutdown and timeouts mean the database is unavailable', async (t) => {
  for (const err of [
    coded('57P01', 'terminating connection due to administrator command'),
    coded('57P03', 'the database system is starting up'),
    coded('08006'),
    coded('ECONNREFUSED'),
    coded('ECONNRESET'),
    new Error('Connection terminated unexpectedly'),
    new Error('timeout exceeded when trying to connect'),
    new Error('Query read timeout'),
    new AggregateError([coded('ECONNREFUSED'), coded('ECONNREFUSED')]),
  ])
    t.ok(isDatabaseUnavailable(err), err.message || String((err as { code?: string }).code));
});

t.test('a bad statement or a constraint is not an outage', async (t) => {
  for (const err of [coded('23505'), coded('42P01'), coded('0A000'), new Error('boom'), 'text'])
    t.notOk(isDatabaseUnavailable(err));
});

t.test('asUnavailable wraps an outage into DomainError(unavailable) with the cause logged, not sent', async (t) => {
  const cause = coded('57P01', 'terminating connection due to administrator command');
  const wrapped = asUnavailable(cause);
  t.ok(wrapped instanceof DomainError);
  t.equal((wrapped as DomainError).code, 'unavailable');
  t.notMatch((wrapped as DomainError).message, /administrator/);
  t.match((wrapped as DomainError).detail, /administrator command/);
  const other = coded('23505');
  t.equal(asUnavailable(other), other);
});
