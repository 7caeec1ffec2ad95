#!/usr/bin/env node
// Writes docs/events.md, the catalogue of everything services say to each other over NATS:
// events (subjects, streams, payloads) and request/reply subjects from packages/events/src, and who
// publishes, consumes, requests and replies, found by scanning every file under services/*/src.
// `--check` fails (exit 1) when docs/events.md differs from what this would write.
//
// Runs before anything is built: packages/events/src/index.ts is transpiled in memory with the
// TypeScript compiler and evaluated (it needs only zod), and its comments are read from the AST.
const { existsSync, readFileSync, readdirSync, writeFileSync } = require('node:fs');
const { dirname, join, relative } = require('node:path');
const Module = require('node:module');
const ts = require('typescript');
const prettier = require('prettier');

const ROOT = join(__dirname, '..');
const EVENTS_SRC = join(ROOT, 'packages/events/src/index.ts');
const OUT = join(ROOT, 'docs/events.md');

/** The events package as a module, from its TypeScript source. */
function loadEventsPackage() {
  const source = readFileSync(EVENTS_SRC, 'utf8');
  const transpile = (text, fileName) =>
    ts.transpileModule(text, {
      fileName,
      compilerOptions: { module: ts.ModuleKind.CommonJS, target: ts.ScriptTarget.ES2022, esModuleInterop: true, resolveJsonModule: true },
    }).outputText;
  // The package's other modules (`export * from './feed'`) are TypeScript too: load them the same way.
  Module._extensions['.ts'] ??= (mod, fileName) => mod._compile(transpile(readFileSync(fileName, 'utf8'), fileName), fileName);
  const outputText = transpile(source, EVENTS_SRC);
  const m = new Module(EVENTS_SRC, module);
  m.filename = EVENTS_SRC;
  m.paths = Module._nodeModulePaths(dirname(EVENTS_SRC));
  m._compile(outputText, EVENTS_SRC);
  return { pkg: m.exports, source, zod: Module.createRequire(EVENTS_SRC)('zod') };
}

/** The text of a node's own doc comment (`/** … *\/`), joined into one line. */
function docOf(node, source) {
  const ranges = ts.getLeadingCommentRanges(source, node.pos) ?? [];
  const docs = ranges.map((r) => source.slice(r.pos, r.end)).filter((c) => c.startsWith('/**'));
  if (!docs.length) return '';
  return docs
    .at(-1)
    .replace(/^\/\*\*|\*\/$/g, '')
    .split('\n')
    .map((l) => l.replace(/^\s*\*\s?/, '').trim())
    .filter(Boolean)
    .join(' ');
}

/**
 * For each entry of the object literals `events` and `requests`: its doc comment, and the doc
 * comments of the fields written inside its call (`field name → text`).
 */
function commentsOf(source) {
  const file = ts.createSourceFile(EVENTS_SRC, source, ts.ScriptTarget.ES2022, true);
  const out = { events: {}, requests: {} };
  const fieldDocs = (node) => {
    const fields = {};
    const visit = (n) => {
      if (ts.isPropertyAssignment(n) && (ts.isIdentifier(n.name) || ts.isStringLiteral(n.name))) {
        const text = docOf(n, source);
        if (text && !(n.name.text in fields)) fields[n.name.text] = text;
      }
      ts.forEachChild(n, visit);
    };
    visit(node);
    return fields;
  };
  ts.forEachChild(file, function visit(n) {
    if (ts.isVariableDeclaration(n) && ts.isIdentifier(n.name) && n.name.text in out && n.initializer) {
      let init = n.initializer;
      while (ts.isAsExpression(init) || ts.isSatisfiesExpression?.(init) || ts.isParenthesizedExpression(init)) init = init.expression;
      if (ts.isObjectLiteralExpression(init)) {
        for (const p of init.properties) {
          if (!ts.isPropertyAssignment(p)) continue;
          const name = ts.isStringLiteral(p.name) || ts.isIdentifier(p.name) ? p.name.text : p.name.getText(file);
          out[n.name.text][name] = { doc: docOf(p, source), fields: fieldDocs(p.initializer) };
        }
      }
    }
    ts.forEachChild(n, visit);
  });
  return out;
}

/** A JSON schema (from zod) as a short TypeScript-like type. */
function typeText(s, defs) {
  if (!s || Object.keys(s).length === 0) return 'unknown';
  if (s.$ref) return typeText(defs[s.$ref.replace(/^#\/(\$defs|definitions)\//, '')], defs);
  const alts = s.anyOf ?? s.oneOf;
  if (alts) return alts.map((a) => typeText(a, defs)).join(' | ');
  if (s.const !== undefined) return JSON.stringify(s.const).replace(/"/g, "'");
  if (s.enum) return s.enum.map((v) => JSON.stringify(v).replace(/"/g, "'")).join(' | ');
  switch (s.type) {
    case 'string':
      return s.format === 'date-time' ? 'DateTime' : 'string';
    case 'integer':
      return 'int';
    case 'number':
      return 'number';
    case 'boolean':
      return 'boolean';
    case 'null':
      return 'null';
    case 'array': {
      const item = typeText(s.items, defs);
      return /[ |]/.test(item) && !item.startsWith('{') ? `(${item})[]` : `${item}[]`;
    }
    case 'object': {
      const req = new Set(s.required ?? []);
      const fields = Object.entries(s.properties ?? {}).map(([k, v]) => `${k}${req.has(k) ? '' : '?'}: ${typeText(v, defs)}`);
      return `{ ${fields.join('; ')} }`;
    }
    default:
      return 'unknown';
  }
}

/** One line per top-level field of an object schema. */
function fieldLines(zod, schema, docs) {
  const json = zod.toJSONSchema(schema, { unrepresentable: 'any', io: 'input' });
  const defs = json.$defs ?? json.definitions ?? {};
  const req = new Set(json.required ?? []);
  return Object.entries(json.properties ?? {}).map(([k, v]) => {
    const type = typeText(v, defs).replace(/\|/g, '\\|');
    const doc = docs[k] ? ` — ${docs[k]}` : '';
    return `| \`${k}\` | \`${type}\` | ${req.has(k) ? 'yes' : 'no'} | ${doc.replace(/^ — /, '').replace(/\|/g, '\\|')} |`;
  });
}

/** Every TypeScript source under services/<name>/src, tests and generated files left out. */
function serviceSources() {
  const out = [];
  const walk = (dir) => {
    for (const d of readdirSync(dir, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
      if (d.isDirectory()) {
        if (!['__tests__', '__generated__', 'node_modules'].includes(d.name)) walk(join(dir, d.name));
      } else if (d.name.endsWith('.ts') && !d.name.endsWith('.d.ts') && !d.name.endsWith('.test.ts')) out.push(join(dir, d.name));
    }
  };
  for (const svc of readdirSync(join(ROOT, 'services')).sort()) {
    const src = join(ROOT, 'services', svc, 'src');
    if (existsSync(src)) walk(src);
  }
  return out;
}

/**
 * Where each subject is used, by what the code does with it:
 *   publish  `outboxRecord('s', …)` (the outbox) or `bus.publish('s', …)`
 *   consume  `bus.consume('s', …)`, or `'s': handler` in a module's `on: { … }` map
 *   request  `bus.request('s', …)`;  reply  `bus.reply('s', …)`
 * Mentions in types (`EventData<'s'>`) are none of these and are left out.
 */
function scanUses(subjects) {
  const uses = [];
  const internal = [];
  const quoted = /'([a-z]+(?:\.[a-z-]+){2,})'/g;
  for (const file of serviceSources()) {
    const text = readFileSync(file, 'utf8');
    const rel = relative(ROOT, file);
    const service = rel.split('/')[1];
    for (const m of text.matchAll(quoted)) {
      const subject = m[1];
      const before = text.slice(Math.max(0, m.index - 200), m.index).replace(/\s+/g, '');
      const after = text.slice(m.index + m[0].length, m.index + m[0].length + 20);
      if (!subjects.has(subject)) {
        // A subject of the service's own replicas (plain NATS, outside the catalogue).
        if (/[A-Z_]+SUBJECT=$/.test(before)) internal.push({ subject, service, file: rel });
        continue;
      }
      let role = null;
      if (/(outboxRecord|\.publish)\($/.test(before)) role = 'publish';
      else if (/\.consume\($/.test(before)) role = 'consume';
      else if (/\.request\($/.test(before)) role = 'request';
      else if (/\.reply\($/.test(before)) role = 'reply';
      else if (/^\s*:/.test(after) && /[{,]$/.test(before)) role = 'consume';
      if (role) uses.push({ subject, role, service, file: rel });
    }
  }
  return { uses, internal };
}

function who(uses, subject, role) {
  const byService = new Map();
  for (const u of uses.filter((x) => x.subject === subject && x.role === role)) {
    if (!byService.has(u.service)) byService.set(u.service, new Set());
    byService.get(u.service).add(u.file.split('/').slice(3).join('/'));
  }
  return [...byService.entries()]
    .sort(([a], [b]) => a.localeCompare(b))
    .map(
      ([svc, files]) =>
        `${svc} (${[...files]
          .sort()
          .map((f) => `\`${f}\``)
          .join(', ')})`,
    );
}

function render() {
  const { pkg, source, zod } = loadEventsPackage();
  // The catalogue (`events`) is in index.ts, the request/reply contracts (`requests`) in requests.ts.
  const fromRequests = commentsOf(readFileSync(join(dirname(EVENTS_SRC), 'requests.ts'), 'utf8'));
  const comments = commentsOf(source);
  Object.assign(comments.requests, fromRequests.requests);
  const eventSubjects = Object.keys(pkg.events).sort();
  const requestSubjects = Object.keys(pkg.requests).sort();
  const { uses, internal } = scanUses(new Set([...eventSubjects, ...requestSubjects]));
  const list = (items, none) => (items.length ? items.join('; ') : none);
  const L = [];
  L.push(
    '<!-- Generated by scripts/events-doc.js from packages/events/src and services/*/src. Do not edit: run `node scripts/events-doc.js`. -->',
  );
  L.push('', '# Events and request/reply catalogue', '');
  L.push(
    'Everything the services say to each other goes over NATS, and every subject, payload and reply is declared in',
    '`packages/events` with a zod schema (events in `src/index.ts`, requests in `src/requests.ts`): a publisher builds its',
    'envelope through it, a consumer parses it on arrival, and a message that breaks the contract never reaches a handler. This page lists what that package declares,',
    'and who uses each subject, found by reading the code of `services/*/src` (outbox records, `bus.publish`, `bus.consume`,',
    'a module’s `on: { … }` handlers, `bus.request`, `bus.reply`). See [architecture.md](architecture.md) for when an event',
    'is used and when a request, and [concurrency.md](concurrency.md) for why consumers are idempotent.',
    '',
  );
  L.push('## Conventions', '');
  L.push(
    '- **Subjects** are `<service>.<entity>.<verb>`, events in the past tense. The first word is the publishing service,',
    '  except for notifications to members: `notifications.<publisher>.<kind>`, a family of their own.',
    '- **Envelope**: `{ id, type, version, occurredAt, source, data }`; `type` is the subject, `data` the payload below.',
    '  Payloads carry ids and facts, never whole documents. Money is integer fen.',
    '- **Streams**: one JetStream stream per publishing service holding exactly its event subjects, one `NOTIFICATIONS`',
    '  stream holding every notification whoever publishes it (a delivery channel consumes `notifications.>`), plus a',
    '  dead-letter stream. The message id (`Nats-Msg-Id`) is the event id, so a re-publish within the duplicate window is',
    '  dropped.',
    '- **Consumers** are durable per consuming service and subject (`<service>_<subject with dashes>`; a channel taking',
    '  every notification: `<service>_notifications-all`), ack explicitly, retry with back-off and dead-letter after the',
    "  last attempt (under the message's own subject). A processed event id is recorded, and every handler is idempotent on",
    '  the event id on its own.',
    '- **Versions**: a consumer refuses an event whose version is newer than the one it knows.',
    '- **Request/reply** subjects never overlap event subjects; repliers listen in a queue group named after their service.',
    '  A refusal comes back as `{ ok: false, error: { code, message } }` with the same codes as GraphQL errors.',
    '',
  );

  L.push('## Streams', '');
  L.push('| stream | publisher | subjects |', '| --- | --- | --- |');
  for (const svc of [...pkg.SERVICES].sort()) {
    const subs = pkg.streamSubjects(svc);
    if (subs.length) L.push(`| \`${pkg.streamName(svc)}\` | ${svc} | ${subs.map((s) => `\`${s}\``).join(', ')} |`);
  }
  const notifiers = [...pkg.SERVICES].filter((svc) => pkg.publisherStreams(svc).some((st) => st.name === pkg.NOTIFICATIONS_STREAM));
  L.push(`| \`${pkg.NOTIFICATIONS_STREAM}\` | ${notifiers.sort().join(', ')} | \`${pkg.NOTIFICATIONS_FILTER}\` |`);
  L.push(`| \`${pkg.DEAD_LETTER_STREAM}\` | every consumer | \`${pkg.DEAD_LETTER_PREFIX}.<durable consumer>\` |`, '');
  const silent = [...pkg.SERVICES].filter((s) => !pkg.streamSubjects(s).length).sort();
  if (silent.length) L.push(`Services that publish no events yet: ${silent.join(', ')}.`, '');

  L.push('## Events at a glance', '');
  L.push('| subject | v | published by | consumed by |', '| --- | --- | --- | --- |');
  for (const s of eventSubjects) {
    const pub = [...new Set(uses.filter((u) => u.subject === s && u.role === 'publish').map((u) => u.service))].sort();
    const con = [...new Set(uses.filter((u) => u.subject === s && u.role === 'consume').map((u) => u.service))].sort();
    L.push(
      `| [\`${s}\`](#${s.replace(/\./g, '')}) | ${pkg.events[s].version} | ${pub.join(', ') || `(${pkg.events[s].source}: not yet)`} | ${con.join(', ') || '—'} |`,
    );
  }
  L.push('');

  L.push('## Events', '');
  for (const s of eventSubjects) {
    const def = pkg.events[s];
    const c = comments.events[s] ?? { doc: '', fields: {} };
    L.push(`### ${s}`, '');
    if (c.doc) L.push(c.doc, '');
    L.push(`- Version ${def.version}, stream \`${pkg.streamOf(s).name}\`.`);
    L.push(`- Published by: ${list(who(uses, s, 'publish'), `nothing yet (declared for ${def.source})`)}.`);
    L.push(`- Consumed by: ${list(who(uses, s, 'consume'), 'no service yet')}.`);
    const strays = uses.filter((u) => u.subject === s && u.role === 'publish' && u.service !== def.source);
    if (strays.length) L.push(`- **Warning**: published outside its owner ${def.source} (${strays.map((u) => u.file).join(', ')}).`);
    L.push('', '| field | type | required | note |', '| --- | --- | --- | --- |', ...fieldLines(zod, def.schema, c.fields), '');
  }

  L.push('## Request/reply', '');
  L.push(
    'Commands that need an answer now. The requester waits (a few seconds at most); no responder or no answer in time is',
    '`UNAVAILABLE`, which callers turn into a GraphQL error with `fromBusError`.',
    '',
  );
  L.push('| subject | replied by | requested by |', '| --- | --- | --- |');
  for (const s of requestSubjects) {
    const rep = [...new Set(uses.filter((u) => u.subject === s && u.role === 'reply').map((u) => u.service))].sort();
    const req = [...new Set(uses.filter((u) => u.subject === s && u.role === 'request').map((u) => u.service))].sort();
    L.push(
      `| [\`${s}\`](#${s.replace(/\./g, '')}) | ${rep.join(', ') || `(${pkg.requests[s].service}: not yet)`} | ${req.join(', ') || '—'} |`,
    );
  }
  L.push('');
  for (const s of requestSubjects) {
    const def = pkg.requests[s];
    const c = comments.requests[s] ?? { doc: '', fields: {} };
    L.push(`### ${s}`, '');
    if (c.doc) L.push(c.doc, '');
    L.push(`- Replied by: ${list(who(uses, s, 'reply'), `nothing yet (declared for ${def.service})`)}.`);
    L.push(`- Requested by: ${list(who(uses, s, 'request'), 'no service yet')}.`);
    L.push('', '**Request**', '', '| field | type | required | note |', '| --- | --- | --- | --- |');
    L.push(...fieldLines(zod, def.request, c.fields), '');
    L.push('**Reply**', '', '| field | type | required | note |', '| --- | --- | --- | --- |');
    L.push(...fieldLines(zod, def.reply, c.fields), '');
  }

  if (internal.length) {
    L.push('## Subjects outside the catalogue', '');
    L.push(
      'Plain NATS subjects (no JetStream, no contract in `packages/events`) that only the replicas of one service use',
      'among themselves, to keep in-process state in step. Nothing else may listen to them.',
      '',
    );
    const seen = new Set();
    for (const i of internal.sort((a, b) => a.subject.localeCompare(b.subject))) {
      if (seen.has(i.subject)) continue;
      seen.add(i.subject);
      L.push(`- \`${i.subject}\`: ${i.service} (\`${i.file.split('/').slice(3).join('/')}\`)`);
    }
    L.push('');
  }
  return L.join('\n');
}

async function main() {
  const options = (await prettier.resolveConfig(OUT)) ?? {};
  const text = await prettier.format(render(), { ...options, filepath: OUT });
  if (process.argv.includes('--check')) {
    if (!existsSync(OUT) || readFileSync(OUT, 'utf8') !== text) {
      console.error('docs/events.md is stale: run `node scripts/events-doc.js` and commit the result');
      process.exit(1);
    }
    console.info('events catalogue: docs/events.md is current');
  } else {
    writeFileSync(OUT, text);
    console.info(`events catalogue: wrote ${relative(ROOT, OUT)}`);
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
