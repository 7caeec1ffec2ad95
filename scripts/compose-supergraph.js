#!/usr/bin/env node
// Composes every subgraph's SDL into gateway/supergraph.graphql with @apollo/composition.
// `--check` fails (exit 1) when composition fails or the checked-in file is stale.
const { readFileSync, writeFileSync, existsSync } = require('node:fs');
const { join } = require('node:path');
const { parse } = require('graphql');
const { composeServices } = require('@apollo/composition');
const { schemaFiles } = require('./schema-files');

const ROOT = join(__dirname, '..');
const { subgraphs } = require('../packages/events/src/services.json');
const OUT = join(ROOT, 'gateway/supergraph.graphql');

const result = composeServices(
  Object.entries(subgraphs).map(([name, { port }]) => ({
    name,
    // In-cluster default; the gateway overrides each URL from its own configuration.
    url: `http://${name}:${port}/graphql`,
    typeDefs: parse(
      schemaFiles(name)
        .map((f) => readFileSync(join(ROOT, f), 'utf8'))
        .join('\n'),
    ),
  })),
);
if (result.errors?.length) {
  console.error('supergraph composition failed:');
  for (const e of result.errors) console.error(`  - ${e.message}`);
  process.exit(1);
}
for (const hint of result.hints ?? []) if (process.env.COMPOSE_HINTS) console.warn(`hint: ${hint.message}`);
const sdl = `# Composed by scripts/compose-supergraph.js from services/*/src/**/schema.graphql. Do not edit.\n${result.supergraphSdl}\n`;
if (process.argv.includes('--check')) {
  if (!existsSync(OUT) || readFileSync(OUT, 'utf8') !== sdl) {
    console.error('gateway/supergraph.graphql is stale: run `npm run compose` and commit the result');
    process.exit(1);
  }
  console.info('supergraph: composes, and the checked-in file is current');
} else {
  writeFileSync(OUT, sdl);
  console.info(`supergraph: wrote ${OUT}`);
}
