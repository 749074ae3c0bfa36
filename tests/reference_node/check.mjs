// The official DatoCMS JavaScript clients against the reference server: their calls work and
// their errors carry the reference server's codes. Started by tests/it/reference/node.rs, which
// passes the URLs and the secret in the environment. Exits non-zero on the first failure.

import assert from 'node:assert/strict';
import { ApiError, buildClient } from '@datocms/cma-client-node';
import { ApiError as CdaApiError, executeQuery } from '@datocms/cda-client';

const { CMA_URL, CDA_URL, TOKEN, LIMITED_CMA_URL, LIMITED_TOKEN } = process.env;
const SITE_QUERY = '{ _site { locales } }';

const client = buildClient({ apiToken: TOKEN, baseUrl: CMA_URL });

async function refusedWith(promise, code) {
  try {
    await promise;
  } catch (error) {
    assert.ok(error instanceof ApiError, `expected an ApiError, got ${error}`);
    assert.ok(error.findError(code), `expected ${code}, got ${JSON.stringify(error.errors)}`);
    return error;
  }
  assert.fail(`expected ${code}, but the call succeeded`);
}

async function cdaRefused(promise, status) {
  try {
    await promise;
  } catch (error) {
    assert.ok(error instanceof CdaApiError, `expected a CDA ApiError, got ${error}`);
    assert.equal(error.response.status, status);
    return error;
  }
  assert.fail(`expected a CDA error ${status}, but the query succeeded`);
}

const step = (name) => console.log(`ok: ${name}`);

// --- CMA ---------------------------------------------------------------------------------------
const site = await client.site.find();
assert.deepEqual(site.locales, ['en']);
step('site.find');

const me = await client.users.findMe();
assert.equal(me.type, 'access_token');
assert.equal(me.token, TOKEN);
step('users.findMe');

const roles = await client.roles.list();
const readOnlyRole = roles.find((r) => r.name === 'Read-only');
assert.ok(readOnlyRole);
const role = await client.roles.create({ name: 'Node editors', can_edit_schema: true });
assert.equal(role.can_edit_schema, true);
assert.equal(role.can_manage_access_tokens, false);
const updatedRole = await client.roles.update(role.id, { can_manage_webhooks: true });
assert.equal(updatedRole.can_manage_webhooks, true);
assert.equal(updatedRole.can_edit_schema, true);
assert.equal((await client.roles.find(role.id)).name, 'Node editors');
step('roles.create/update/find');

const tokens = await client.accessTokens.list();
const factory = tokens.find((t) => t.hardcoded_type === 'readonly');
assert.ok(factory, 'the factory token is listed');

const created = await client.accessTokens.create({
  name: 'Node token',
  can_access_cda: true,
  can_access_cda_preview: false,
  can_access_cma: true,
  role: { type: 'role', id: role.id },
});
assert.equal(created.hardcoded_type, null);
assert.equal(created.last_cma_access, 'never');
assert.match(created.token, /^[0-9a-f]{30}$/);
assert.deepEqual(created.role, { type: 'role', id: role.id });
step('accessTokens.create');

// The client sends only the four attributes: the role is kept.
const updated = await client.accessTokens.update(created.id, {
  name: 'Node token (renamed)',
  can_access_cda: true,
  can_access_cda_preview: true,
  can_access_cma: true,
});
assert.equal(updated.name, 'Node token (renamed)');
assert.equal(updated.can_access_cda_preview, true);
assert.equal(updated.token, created.token);
assert.deepEqual(updated.role, { type: 'role', id: role.id });
step('accessTokens.update keeps the role');

const reassigned = await client.accessTokens.update(created.id, {
  name: 'Node token (renamed)',
  can_access_cda: true,
  can_access_cda_preview: true,
  can_access_cma: true,
  role: { type: 'role', id: readOnlyRole.id },
});
assert.deepEqual(reassigned.role, { type: 'role', id: readOnlyRole.id });
step('accessTokens.update reassigns the role');

// The token itself, as a client of its own: it reads, but its role cannot manage tokens.
const asToken = buildClient({ apiToken: created.token, baseUrl: CMA_URL });
const seenByToken = await asToken.accessTokens.find(created.id);
assert.equal(seenByToken.token, null);
await refusedWith(
  asToken.accessTokens.update(factory.id, {
    name: 'x', can_access_cda: true, can_access_cda_preview: false, can_access_cma: false,
  }),
  'INSUFFICIENT_PERMISSIONS',
);
step('token visibility and INSUFFICIENT_PERMISSIONS');

await refusedWith(
  client.accessTokens.update(factory.id, {
    name: factory.name,
    can_access_cda: factory.can_access_cda,
    can_access_cda_preview: factory.can_access_cda_preview,
    can_access_cma: factory.can_access_cma,
  }),
  'NON_EDITABLE_ACCESS_TOKEN',
);
assert.deepEqual(await client.accessTokens.find(factory.id), factory);
step('a factory token refuses updates');

await refusedWith(client.accessTokens.find('424242'), 'NOT_FOUND');
await refusedWith(
  client.accessTokens.update(created.id, {
    name: 'Node token (renamed)', can_access_cda: 'yes', can_access_cda_preview: true, can_access_cma: true,
  }),
  'INVALID_FORMAT',
);
await refusedWith(
  client.accessTokens.update(created.id, {
    name: factory.name, can_access_cda: true, can_access_cda_preview: true, can_access_cma: true,
  }),
  'INVALID_FIELD',
);
await refusedWith(
  buildClient({ apiToken: 'not-a-token', baseUrl: CMA_URL }).site.find(),
  'INVALID_AUTHORIZATION_HEADER',
);
step('NOT_FOUND, INVALID_FORMAT, INVALID_FIELD, INVALID_AUTHORIZATION_HEADER');

// --- CDA ---------------------------------------------------------------------------------------
const published = await executeQuery(SITE_QUERY, { token: created.token, graphqlEndpointUrl: CDA_URL });
assert.deepEqual(published, { _site: { locales: ['en'] } });
const drafts = await executeQuery(SITE_QUERY, {
  token: created.token, graphqlEndpointUrl: CDA_URL, includeDrafts: true,
});
assert.deepEqual(drafts, { _site: { locales: ['en'] } });
await cdaRefused(
  executeQuery(SITE_QUERY, { token: factory.token, graphqlEndpointUrl: CDA_URL, includeDrafts: true }),
  401,
);
await cdaRefused(executeQuery('{ allThings { id } }', { token: created.token, graphqlEndpointUrl: CDA_URL }), 200);
assert.equal((await client.accessTokens.find(created.id)).last_cda_access, 'today');
step('executeQuery: published, drafts, refusal, GraphQL errors');

// --- Rotation and deletion ---------------------------------------------------------------------
const rotated = await client.accessTokens.regenerateToken(created.id);
assert.notEqual(rotated.token, created.token);
await refusedWith(asToken.site.find(), 'INVALID_AUTHORIZATION_HEADER');
await client.accessTokens.destroy(created.id);
await refusedWith(client.accessTokens.find(created.id), 'NOT_FOUND');
const self = (await client.users.findMe()).id;
await refusedWith(client.accessTokens.destroy(self), 'CANNOT_DESTROY_CURRENT_USER');
await client.roles.destroy(role.id);
step('regenerateToken, destroy, CANNOT_DESTROY_CURRENT_USER, roles.destroy');

// --- Rate limit: the client waits X-RateLimit-Reset and retries ---------------------------------
const limited = buildClient({ apiToken: LIMITED_TOKEN, baseUrl: LIMITED_CMA_URL });
const started = Date.now();
for (let i = 0; i < 4; i += 1) {
  assert.deepEqual((await limited.site.find()).locales, ['en']);
}
assert.ok(Date.now() - started >= 900, 'the 429 made the client wait');
step('429 with X-RateLimit-Reset is retried by the client');

console.log('all checks passed');
