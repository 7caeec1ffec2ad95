// A subgraph's SDL: `services/<name>/src/schema.graphql` plus one `schema.graphql` per module
// folder (`src/<module>/schema.graphql`, extending the core types), in name order.
const { existsSync, readdirSync } = require('node:fs');
const { join } = require('node:path');

const ROOT = join(__dirname, '..');

function schemaFiles(service) {
  const src = join('services', service, 'src');
  const modules = readdirSync(join(ROOT, src), { withFileTypes: true })
    .filter((d) => d.isDirectory() && !d.name.startsWith('_') && existsSync(join(ROOT, src, d.name, 'schema.graphql')))
    .map((d) => join(src, d.name, 'schema.graphql'))
    .sort();
  return [join(src, 'schema.graphql'), ...modules];
}

/** Codegen mappers a module adds for its own types (`src/<module>/mappers.json`), paths relative to `__generated__`. */
function moduleMappers(service) {
  const src = join(ROOT, 'services', service, 'src');
  const out = {};
  for (const d of readdirSync(src, { withFileTypes: true })) {
    const file = join(src, d.name, 'mappers.json');
    if (d.isDirectory() && existsSync(file)) Object.assign(out, require(file));
  }
  return out;
}

module.exports = { schemaFiles, moduleMappers };
