// The real authorization server for scopegate's integration tests: oidc-provider (OpenID
// certified), configured for RFC 9068 JWT access tokens (client credentials + resource
// indicator), opaque tokens, introspection and revocation.
//
// Started by the Rust test harness (tests/support/mod.rs): `PORT=<free port> node server.mjs`.
// It prints `READY <port>` once listening.
//
// Test-only control endpoints (never part of a real provider):
//   POST /control/rotate          publish key k2 next to k1 and sign new tokens with k2
//   POST /control/user-token      {sub, client_id, scope, resource, orgs?}: a user access
//                                 token minted through the provider's own token model
//   GET  /control/introspections  how many introspection requests were served
//   POST /control/claims          {who, claims}: extra claims in every token issued from now
//                                 on to `who` (a subject, or a client for its own tokens),
//                                 as a provider's claim mappings would add them
import Provider from 'oidc-provider';
import { generateKeyPairSync } from 'node:crypto';
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const port = Number(process.env.PORT);
if (!port) {
  console.error('PORT must be set: the issuer URL names the port');
  process.exit(2);
}
const host = '127.0.0.1';

function rsaKey(kid) {
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  return { ...privateKey.export({ format: 'jwk' }), kid, alg: 'RS256', use: 'sig' };
}
// RSA key generation is the slowest part of a start; dozens of servers start at once in a
// parallel test run, so the (throwaway) keys are made once and shared through a temp file.
function testKeys() {
  const file = join(tmpdir(), 'scopegate-test-authz-keys.json');
  if (existsSync(file)) {
    try {
      return JSON.parse(readFileSync(file, 'utf8'));
    } catch { /* a half-written file from a crash: make new keys */ }
  }
  const keys = [rsaKey('k1'), rsaKey('k2')];
  const partial = `${file}.${process.pid}`;
  writeFileSync(partial, JSON.stringify(keys));
  renameSync(partial, file);
  return keys;
}
const [k1, k2] = testKeys();
let active = 'k1';
let published = new Set(['k1']);
let introspections = 0;

const OPAQUE_API = 'https://opaque.scopegate.test';
// Google's scopes are URLs.
const GOOGLE = 'https://www.googleapis.com/auth/';
const ALL_SCOPES = [
  'repo', 'repo:status', 'public_repo', 'read:org', 'write:org', 'admin:org', 'read:audit_log',
  // Short names, for the tests' own configurations.
  'chat.bot', 'chat.spaces', 'chat.spaces.readonly',
  ...['chat.bot', 'chat.spaces', 'chat.spaces.readonly', 'chat.messages', 'chat.messages.create',
    'chat.messages.readonly', 'chat.import', 'chat.delete', 'chat.app.delete', 'chat.app.spaces',
    'chat.admin.spaces.readonly'].map((s) => `${GOOGLE}${s}`),
  'ZohoCRM.modules.ALL', 'ZohoCRM.modules.READ',
  // Gmail's, for the routes imported from its OpenAPI description (tests/openapi.rs).
  'https://mail.google.com/', `${GOOGLE}gmail.readonly`, `${GOOGLE}gmail.send`,
  'metrics_read', 'dashboards_read', 'timeseries_query',
  // The identity-provider recipes' (config/examples/okta, entra-id, auth0, keycloak).
  'payments.read', 'payments.write', 'payments.settle', 'Payments.Read', 'Payments.ReadWrite',
  'read:payments', 'refund:payments', 'settle:payments',
];
// Organizations each subject (user or client) belongs to, as an extra claim.
const ORGS = { alice: ['acme', 'widgets'], bob: ['widgets'], carol: ['secure'], dave: ['secure'] };
// Organizations with an active SSO session, per subject.
const SSO_ORGS = { dave: ['secure'] };
// Claims of a provider's own shape, per subject or client (set through /control/claims).
const EXTRA = {};

const clients = [
  // name: allowed scopes
  ['full', ALL_SCOPES.join(' ')],
  ['reader', 'read:org'],
  ['bot', 'chat.bot'],
  ['short', 'repo'], // tokens live 1 s
  ['gateway', ''],   // introspection client of the gateway
  // Clients named after the shipped recipes (config/examples/).
  ['ci-dashboard', 'repo read:org admin:org'],        // approved by the restricting organization
  ['random-app', 'repo read:org'],                    // a third-party app nobody approved
  ['chat-web', ''],                                   // user tokens only
  // an app (service account)
  ['chat-bot', ['chat.bot', 'chat.app.delete', 'chat.app.spaces', 'chat.spaces.readonly'].map((s) => `${GOOGLE}${s}`).join(' ')],
  ['zoho-crm-client', 'ZohoCRM.modules.ALL ZohoCRM.modules.READ'],
  ['dd-integration', 'metrics_read dashboards_read timeseries_query'], // a marketplace integration
  // The identity-provider recipes' daemons and web apps.
  ['payments-batch', 'payments.read payments.settle read:payments settle:payments'],
  ['payments-web', ''],
].map(([id, scope]) => ({
  client_id: id,
  client_secret: `${id}-secret`,
  grant_types: ['client_credentials'],
  redirect_uris: [],
  response_types: [],
  ...(scope ? { scope } : {}),
}));

const provider = new Provider(`http://${host}:${port}`, {
  ttl: {
    AccessToken: (ctx, token) => token.resourceServer?.accessTokenTTL || 3600,
    ClientCredentials: (ctx, token) => token.resourceServer?.accessTokenTTL || 3600,
    Grant: 3600,
  },
  clients,
  jwks: { keys: [k1, k2] },
  scopes: ALL_SCOPES,
  features: {
    devInteractions: { enabled: false },
    clientCredentials: { enabled: true },
    introspection: { enabled: true },
    revocation: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: () => undefined,
      useGrantedResource: () => true,
      getResourceServerInfo: (ctx, resource, client) => ({
        scope: ALL_SCOPES.join(' '),
        audience: resource,
        accessTokenTTL: client?.clientId === 'short' ? 1 : 3600,
        accessTokenFormat: resource === OPAQUE_API ? 'opaque' : 'jwt',
        jwt: { sign: { alg: 'RS256', kid: active } },
      }),
    },
  },
  extraTokenClaims: (ctx, token) => {
    const who = token.accountId || token.clientId;
    return { orgs: ORGS[who] || [], sso_orgs: SSO_ORGS[who] || [], ...(EXTRA[who] || {}) };
  },
});
provider.proxy = false;

// Test-only middleware: key publication filter and control endpoints.
provider.use(async (ctx, next) => {
  if (ctx.path === '/control/rotate' && ctx.method === 'POST') {
    published.add('k2');
    active = 'k2';
    ctx.body = { active, published: [...published] };
    return;
  }
  if (ctx.path === '/control/claims' && ctx.method === 'POST') {
    const body = await new Promise((resolve) => {
      let data = '';
      ctx.req.on('data', (c) => { data += c; });
      ctx.req.on('end', () => resolve(JSON.parse(data || '{}')));
    });
    EXTRA[body.who] = body.claims;
    ctx.body = { who: body.who };
    return;
  }
  if (ctx.path === '/control/introspections') {
    ctx.body = { count: introspections };
    return;
  }
  if (ctx.path === '/control/user-token' && ctx.method === 'POST') {
    const body = await new Promise((resolve) => {
      let data = '';
      ctx.req.on('data', (c) => { data += c; });
      ctx.req.on('end', () => resolve(JSON.parse(data || '{}')));
    });
    const client = await provider.Client.find(body.client_id);
    const grant = new provider.Grant({ accountId: body.sub, clientId: client.clientId });
    grant.addResourceScope(body.resource, body.scope);
    const grantId = await grant.save();
    const opaque = body.resource === OPAQUE_API || body.format === 'opaque';
    const info = {
      scope: body.scope, audience: body.resource, accessTokenTTL: 3600,
      accessTokenFormat: opaque ? 'opaque' : 'jwt',
      jwt: { sign: { alg: 'RS256', kid: active } },
    };
    // `value`: an opaque token in a provider's own shape (its id is the token).
    const token = new provider.AccessToken({
      accountId: body.sub, client, grantId, scope: body.scope,
      resourceServer: new provider.ResourceServer(body.resource, info),
      ...(body.value ? { jti: body.value } : {}),
    });
    // A given id skips the provider's id generation, which is where the format is set.
    if (body.value) token.format = 'opaque';
    ctx.body = { access_token: await token.save() };
    return;
  }
  if (ctx.path === '/token/introspection') introspections += 1;
  await next();
  if (ctx.path === '/jwks' && ctx.body && Array.isArray(ctx.body.keys)) {
    ctx.body = { keys: ctx.body.keys.filter((k) => published.has(k.kid)) };
  }
});

const server = provider.listen(port, host, () => console.log(`READY ${port}`));
// A port taken since the harness chose it must end the process, not leave it idle.
server.on('error', (e) => {
  console.error(e);
  process.exit(1);
});
