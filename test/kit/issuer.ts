/** The issuer every in-process test app has (BASE_ENV in test/helper.ts): the one literal of it. */
export const ISSUER = 'http://127.0.0.1:4000';
