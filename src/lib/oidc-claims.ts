/**
 * OpenID Connect Core 1.0 §5.4: the standard scopes and the standard claims (§5.1) each one asks for,
 * with the words the consent page uses for them. Configuration validates CLAIMS against these and the
 * protocol maps scopes to claims with them; nothing here knows Gatehouse.
 */
export const STANDARD_IDENTITY_SCOPES: ReadonlyMap<string, { description: string; claims: readonly string[] }> =
  new Map([
    [
      'profile',
      {
        description: 'your name and basic profile (picture, username, locale)',
        claims: [
          'name',
          'family_name',
          'given_name',
          'middle_name',
          'nickname',
          'preferred_username',
          'profile',
          'picture',
          'website',
          'gender',
          'birthdate',
          'zoneinfo',
          'locale',
          'updated_at',
        ],
      },
    ],
    ['email', { description: 'your email address', claims: ['email', 'email_verified'] }],
    ['address', { description: 'your postal address', claims: ['address'] }],
    ['phone', { description: 'your phone number', claims: ['phone_number', 'phone_number_verified'] }],
  ]);

/** The scope that makes an authorization request an OpenID Connect one (OIDC Core §3.1.2.1). */
export const OPENID_SCOPE = 'openid';

/**
 * Claims Gatehouse itself sets in ID tokens or that RFC 7519 / OIDC Core §2 register: an operator's
 * CLAIMS may not name them, so a host's claim can never stand in for one.
 */
export const RESERVED_CLAIMS: ReadonlySet<string> = new Set([
  'iss',
  'sub',
  'aud',
  'exp',
  'nbf',
  'iat',
  'jti',
  'auth_time',
  'nonce',
  'acr',
  'amr',
  'azp',
  'sid',
  'at_hash',
  'c_hash',
  's_hash',
  'client_id',
  'scope',
  'cnf',
  'events',
  'typ',
]);
