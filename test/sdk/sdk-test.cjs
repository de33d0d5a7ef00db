// Runs the official Appwrite SDKs, unmodified from npm, against the kfn
// REST facade: node-appwrite 8 (server 1.0, format 1.0.0), the newest
// node-appwrite, appwrite (web) 10 (format 1.0.0) and the newest appwrite.
//
// Environment:
//   KFN_ENDPOINT    the facade's base URL, e.g. http://127.0.0.1:8090/v1
//   KFN_PROJECT     a project (namespace) with a Function KFN_FUNCTION that anyone may execute
//   KFN_FUNCTION    that Function; its test double answers "echo:<payload>" (see apiserver/suite_test.go)
//   KFN_API_KEY     an API key with execution.read and execution.write
//   KFN_JWT         a user JWT (user "alice")
//   KFN_JWT_RATE    another user's JWT, spent on the rate limit
//   KFN_RATE_LIMIT  the facade's create limit per minute for formats < 1.4
// Optional (their checks are skipped when unset):
//   KFN_ID_PROJECT, KFN_ID_FUNCTION  the Appwrite IDs (ID labels) of that project and function
//   KFN_TEAM_FUNCTION  a Function of the project only the role team:Ops/admin may execute
//   KFN_JWT_TEAM       a JWT of user carol, a member of team Ops with the role admin
'use strict';

const env = (name) => {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set`);
  return v;
};
const endpoint = env('KFN_ENDPOINT');
const project = env('KFN_PROJECT');
const fn = env('KFN_FUNCTION');
const apiKey = env('KFN_API_KEY');
const jwt = env('KFN_JWT');
const jwtRate = env('KFN_JWT_RATE');
const rateLimit = Number(env('KFN_RATE_LIMIT'));
const idProject = process.env.KFN_ID_PROJECT;
const idFunction = process.env.KFN_ID_FUNCTION;
const teamFunction = process.env.KFN_TEAM_FUNCTION;
const jwtTeam = process.env.KFN_JWT_TEAM;

let failures = 0;
let checks = 0;
function check(sdk, what, cond, detail) {
  checks++;
  if (!cond) {
    failures++;
    console.log(`FAIL ${sdk}: ${what}${detail === undefined ? '' : ' — ' + JSON.stringify(detail)}`);
  }
}

// expectError runs fn and checks it throws an AppwriteException with code and type.
async function expectError(sdk, what, Exception, code, type, f) {
  try {
    const r = await f();
    check(sdk, `${what}: throws ${code} ${type}`, false, r);
  } catch (e) {
    check(sdk, `${what}: AppwriteException`, e instanceof Exception, String(e));
    check(sdk, `${what}: code ${code}`, e.code === code, { code: e.code, type: e.type, message: e.message });
    check(sdk, `${what}: type ${type}`, e.type === type, { code: e.code, type: e.type, message: e.message });
  }
}

async function waitCompleted(get) {
  for (let i = 0; i < 200; i++) {
    const e = await get();
    if (e.status === 'completed' || e.status === 'failed') return e;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error('execution did not finish');
}

// Appwrite 1.0 SDKs: positional arguments, data, statusCode/response/stdout, string queries.
async function legacy(name, sdk, server) {
  const key = new sdk.Client().setEndpoint(endpoint).setProject(project);
  if (server) key.setKey(apiKey); else key.setJWT(jwt);
  const functions = new sdk.Functions(key);
  const { Query, AppwriteException } = sdk;

  const sync = await functions.createExecution(fn, 'hello ' + name);
  check(name, 'sync create completes', sync.status === 'completed' && sync.statusCode === 200, sync);
  check(name, 'sync response', sync.response === 'echo:hello ' + name + (server ? '' : ' user:alice'), sync.response);
  check(name, 'stdout only for API keys', sync.stdout === (server ? 'log:hello ' + name : ''), sync.stdout);
  check(name, '$permissions', JSON.stringify(sync.$permissions) === (server ? '[]' : '["read(\\"user:alice\\")"]'), sync.$permissions);

  const async = await functions.createExecution(fn, 'sleep:200', true);
  check(name, 'async create waits', async.status === 'waiting' && async.statusCode === 0 && async.duration === 0, async);
  const done = await waitCompleted(() => functions.getExecution(fn, async.$id));
  check(name, 'async execution completes', done.status === 'completed' && done.response === 'echo:sleep:200' + (server ? '' : ' user:alice'), done);

  const all = await functions.listExecutions(fn);
  check(name, 'list has both', all.executions.some((e) => e.$id === sync.$id) && all.executions.some((e) => e.$id === async.$id), all.total);
  const filtered = await functions.listExecutions(fn, [Query.equal('status', 'completed'), Query.orderDesc('$createdAt'), Query.limit(1)]);
  check(name, 'queries: newest completed first, limit 1', filtered.executions.length === 1 && filtered.executions[0].$id === async.$id && filtered.total >= 2, filtered);
  const after = await functions.listExecutions(fn, [Query.cursorAfter(sync.$id), Query.limit(100)]);
  check(name, 'cursorAfter', after.executions.length >= 1 && after.executions.every((e) => e.$id !== sync.$id), after.executions.map((e) => e.$id));
  const searched = await functions.listExecutions(fn, [], async.$id);
  check(name, 'search by execution ID', searched.total === 1 && searched.executions[0].$id === async.$id, searched);

  await expectError(name, 'missing execution', AppwriteException, 404, 'execution_not_found', () => functions.getExecution(fn, 'missing'));
  await expectError(name, 'missing function', AppwriteException, 404, 'function_not_found', () => functions.createExecution('missing-fn', 'x'));
  await expectError(name, 'bad query', AppwriteException, 400, 'general_argument_invalid', () => functions.listExecutions(fn, ['nope("x")']));
  const bad = new sdk.Client().setEndpoint(endpoint).setProject(project).setJWT('not.a.jwt');
  await expectError(name, 'invalid JWT', AppwriteException, 401, 'user_jwt_invalid', () => new sdk.Functions(bad).listExecutions(fn));
  const guest = new sdk.Client().setEndpoint(endpoint).setProject(project);
  await expectError(name, 'guest may not list', AppwriteException, 401, 'general_unauthorized_scope', () => new sdk.Functions(guest).listExecutions(fn));

  if (!server && teamFunction) {
    const member = new sdk.Functions(new sdk.Client().setEndpoint(endpoint).setProject(project).setJWT(jwtTeam));
    const run = await member.createExecution(teamFunction, 'team');
    check(name, 'team:Ops/admin role', run.status === 'completed' && run.response === 'echo:team user:carol', run);
    await expectError(name, 'not in the team', AppwriteException, 401, 'user_unauthorized', () => functions.createExecution(teamFunction, 'x'));
  }

  // The 1.0 rate limit is per IP and user: the server SDK spends another
  // user's budget, the web SDK the guests'.
  const spender = new sdk.Functions(server
    ? new sdk.Client().setEndpoint(endpoint).setProject(project).setJWT(jwtRate)
    : new sdk.Client().setEndpoint(endpoint).setProject(project));
  for (let i = 0; i < rateLimit; i++) await spender.createExecution(fn, 'x', true);
  await expectError(name, 'rate limit', AppwriteException, 429, 'general_rate_limit_exceeded', () => spender.createExecution(fn, 'x', true));
}

// Newest SDKs: object parameters, body/method/path/headers, JSON queries.
async function newest(name, sdk, server) {
  const client = new sdk.Client().setEndpoint(endpoint).setProject(project);
  if (server) client.setKey(apiKey); else client.setJWT(jwt);
  const functions = new sdk.Functions(client);
  const { Query, AppwriteException, ExecutionMethod } = sdk;

  const sync = await functions.createExecution({ functionId: fn, body: 'hi ' + name, xpath: '/p?q=1', method: ExecutionMethod.PUT, headers: { 'content-type': 'text/plain' } });
  check(name, 'sync create completes', sync.status === 'completed' && sync.responseStatusCode === 200, sync);
  check(name, 'sync response body', sync.responseBody === 'echo:hi ' + name + (server ? '' : ' user:alice'), sync.responseBody);
  check(name, 'request echoed', sync.requestMethod === 'PUT' && sync.requestPath === '/p?q=1', sync);
  check(name, 'logs only for API keys', sync.logs === (server ? 'log:hi ' + name : '') && sync.errors === (server ? 'warn:hi ' + name : ''), sync);

  const async = await functions.createExecution({ functionId: fn, body: 'sleep:200', async: true });
  check(name, 'async create waits', async.status === 'waiting' && async.responseStatusCode === 0 && async.duration === 0, async);
  const done = await waitCompleted(() => functions.getExecution({ functionId: fn, executionId: async.$id }));
  check(name, 'async execution completes', done.status === 'completed', done);
  check(name, 'responseBody only from a sync create', done.responseBody === '', done.responseBody);

  const filtered = await functions.listExecutions({ functionId: fn, queries: [Query.equal('status', ['completed']), Query.orderDesc('$createdAt'), Query.limit(1)] });
  check(name, 'queries: newest completed first', filtered.executions.length === 1 && filtered.executions[0].$id === async.$id, filtered);
  const page = await functions.listExecutions({ functionId: fn, queries: [Query.cursorBefore(async.$id), Query.limit(1)] });
  check(name, 'cursorBefore', page.executions.length === 1 && page.executions[0].$id === sync.$id, page.executions.map((e) => e.$id));
  const noTotal = await functions.listExecutions({ functionId: fn, total: false });
  check(name, 'total=false', noTotal.total === 0 && noTotal.executions.length >= 2, noTotal.total);
  const or = await functions.listExecutions({ functionId: fn, queries: [Query.or([Query.equal('$id', [sync.$id]), Query.equal('$id', [async.$id])])] });
  check(name, 'or query', or.total === 2, or.total);

  await newestFilters(name, functions, Query, AppwriteException, sync.$id, async.$id);
  await appwriteIDs(name, sdk, server);
  if (!server && teamFunction) {
    const member = new sdk.Functions(new sdk.Client().setEndpoint(endpoint).setProject(project).setJWT(jwtTeam));
    const run = await member.createExecution({ functionId: teamFunction, body: 'team' });
    check(name, 'team:Ops/admin role', run.status === 'completed' && run.responseBody === 'echo:team user:carol', run);
    await expectError(name, 'not in the team', AppwriteException, 401, 'user_unauthorized', () => functions.createExecution({ functionId: teamFunction }));
  }

  await expectError(name, 'missing execution', AppwriteException, 404, 'execution_not_found', () => functions.getExecution({ functionId: fn, executionId: 'missing' }));
  await expectError(name, 'missing function', AppwriteException, 404, 'function_not_found', () => functions.createExecution({ functionId: 'missing-fn' }));
  await expectError(name, 'bad query', AppwriteException, 400, 'general_argument_invalid', () => functions.listExecutions({ functionId: fn, queries: [Query.equal('nope', ['x'])] }));
  const bad = new sdk.Client().setEndpoint(endpoint).setProject(project).setJWT('not.a.jwt');
  await expectError(name, 'invalid JWT', AppwriteException, 401, 'user_jwt_invalid', () => new sdk.Functions(bad).listExecutions({ functionId: fn }));
  if (server) {
    const wrongKey = new sdk.Client().setEndpoint(endpoint).setProject(project).setKey('wrong');
    await expectError(name, 'invalid API key', AppwriteException, 401, 'user_unauthorized', () => new sdk.Functions(wrongKey).listExecutions({ functionId: fn }));
    await functions.deleteExecution({ functionId: fn, executionId: sync.$id });
    await expectError(name, 'deleted execution', AppwriteException, 404, 'execution_not_found', () => functions.getExecution({ functionId: fn, executionId: sync.$id }));
    // Deleting a scheduled execution cancels it (1.6+); Appwrite takes
    // scheduledAt at minute precision only.
    const minute = new Date(Math.ceil((Date.now() + 3600e3) / 60e3) * 60e3).toISOString();
    await expectError(name, 'scheduledAt with seconds', AppwriteException, 400, 'general_bad_request', () => functions.createExecution({ functionId: fn, async: true, scheduledAt: new Date(Date.parse(minute) + 30e3).toISOString() }));
    const later = await functions.createExecution({ functionId: fn, async: true, scheduledAt: minute });
    check(name, 'scheduled create', later.status === 'scheduled', later);
    await functions.deleteExecution({ functionId: fn, executionId: later.$id });
    await expectError(name, 'cancelled execution', AppwriteException, 404, 'execution_not_found', () => functions.getExecution({ functionId: fn, executionId: later.$id }));
  }
}

// Appwrite IDs that are no Kubernetes names reach the project and the
// function through their ID labels; answers show the function's ID.
async function appwriteIDs(name, sdk, server) {
  if (!idProject) return;
  const client = new sdk.Client().setEndpoint(endpoint).setProject(idProject);
  if (server) client.setKey(apiKey); else client.setJWT(jwt);
  const functions = new sdk.Functions(client);
  const run = await functions.createExecution({ functionId: idFunction, body: 'ids' });
  check(name, 'Appwrite IDs: create', run.functionId === idFunction && run.responseBody === 'echo:ids' + (server ? '' : ' user:alice'), run);
  const got = await functions.getExecution({ functionId: idFunction, executionId: run.$id });
  check(name, 'Appwrite IDs: get', got.functionId === idFunction && got.$id === run.$id, got);
  const list = await functions.listExecutions({ functionId: idFunction, queries: [sdk.Query.equal('$id', [run.$id])] });
  check(name, 'Appwrite IDs: list', list.total === 1 && list.executions[0].functionId === idFunction, list);
}

// The newest SDK's filters, on the two executions a and b (a older),
// as Appwrite 1.9 takes them; select and notSearch it refuses.
async function newestFilters(name, functions, Query, AppwriteException, a, b) {
  const list = async (...queries) => (await functions.listExecutions({ functionId: fn, queries: [Query.equal('$id', [a, b]), ...queries] })).executions.map((e) => e.$id);
  const cases = [
    ['contains', [Query.contains('$id', [a.slice(13)])], [a]],
    ['notContains', [Query.notContains('$id', [a.slice(13)])], [b]],
    ['startsWith', [Query.startsWith('$id', a)], [a]],
    ['notStartsWith', [Query.notStartsWith('$id', a)], [b]],
    ['endsWith', [Query.endsWith('$id', b.slice(10))], [b]],
    ['notEndsWith', [Query.notEndsWith('$id', b.slice(10))], [a]],
    ['between', [Query.between('duration', 0, 100)], [a, b]],
    ['notBetween', [Query.notBetween('duration', 0, 100)], []],
    ['isNull', [Query.isNull('status')], []],
    ['isNotNull', [Query.isNotNull('status')], [a, b]],
    ['exists', [Query.exists(['status', 'responseStatusCode'])], [a, b]],
    ['notExists', [Query.notExists(['status'])], []],
    ['orderDesc($sequence)', [Query.orderDesc('$sequence')], [b, a]],
  ];
  for (const [what, queries, want] of cases) {
    const got = await list(...queries);
    check(name, `query ${what}`, JSON.stringify(got) === JSON.stringify(want), { got, want });
  }
  await expectError(name, 'select', AppwriteException, 400, 'general_argument_invalid', () => list(Query.select(['status'])));
  await expectError(name, 'notSearch', AppwriteException, 400, 'general_argument_invalid', () => list(Query.notSearch('status', 'x')));
}

const version = (pkg) => JSON.parse(require('fs').readFileSync(require('path').join(__dirname, 'node_modules', pkg, 'package.json'))).version;

(async () => {
  const runs = [
    ['node-appwrite', 'node-appwrite-8', () => legacy('node-appwrite 8', require('node-appwrite-8'), true)],
    ['appwrite (web)', 'appwrite-10', () => legacy('appwrite 10', require('appwrite-10'), false)],
    ['node-appwrite', 'node-appwrite-latest', () => newest('node-appwrite newest', require('node-appwrite-latest'), true)],
    ['appwrite (web)', 'appwrite-latest', () => newest('appwrite newest', require('appwrite-latest'), false)],
  ];
  for (const [name, pkg, run] of runs) {
    const before = failures;
    try {
      await run();
    } catch (e) {
      failures++;
      console.log(`FAIL ${name}: ${e && e.stack ? e.stack : e}`);
    }
    console.log(`${failures === before ? 'ok  ' : 'FAIL'} ${name} ${version(pkg)}`);
  }
  console.log(`${checks} checks, ${failures} failures`);
  process.exit(failures === 0 ? 0 : 1);
})();
