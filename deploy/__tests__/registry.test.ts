// packages/events/src/services.json is the one list of services and their ports; code reads it.
// What cannot read it (the chart's values and schema, npm workspaces, tsconfig references,
// services/ itself) is checked against it here, so adding a subgraph anywhere else fails until
// the registry has it, and the other way round.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { DEFAULT_PORTS, SERVICES } from '@flywheel/events';
import { CHART, ROOT, WORKSPACES, readYaml } from './support';

const registry = require('../../packages/events/src/services.json') as {
  gateway: { port: number };
  subgraphs: Record<string, { port: number }>;
};
const NAMES = ['gateway', ...Object.keys(registry.subgraphs)];
const json = (file: string) => JSON.parse(readFileSync(join(ROOT, file), 'utf8'));

test('the registry names each process once, lowercase, on a port of its own; SERVICES and DEFAULT_PORTS are derived from it', () => {
  for (const name of NAMES) expect(name).toMatch(/^[a-z]+$/);
  const ports = [registry.gateway.port, ...Object.values(registry.subgraphs).map((s) => s.port)];
  expect(new Set(ports).size).toBe(ports.length);
  expect([...SERVICES]).toEqual(Object.keys(registry.subgraphs));
  expect(Object.entries(DEFAULT_PORTS)).toEqual(NAMES.map((n, i) => [n, ports[i]]));
});

test("the chart's services (values.yaml) are the registry's, on the registry's ports", () => {
  // readYaml goes through Go maps: the keys come back sorted, so compare name → port.
  const services = readYaml('charts/flywheel/values.yaml').services as Record<string, { port: number }>;
  expect(Object.fromEntries(Object.entries(services).map(([name, s]) => [name, s.port]))).toEqual(DEFAULT_PORTS);
});

test("the chart's values schema lists exactly the registry's services", () => {
  const schema = JSON.parse(readFileSync(join(CHART, 'values.schema.json'), 'utf8')).properties;
  expect(Object.keys(schema.services.properties)).toEqual(NAMES);
  expect(schema.services.required).toEqual(NAMES);
  expect(schema.jetstream.properties.setup.properties.imageFrom.enum).toEqual([...SERVICES]);
  expect(Object.keys(schema.jetstream.properties.streams.properties)).toEqual([...SERVICES, 'notifications', 'deadletter']);
});

test('every registered service is a directory under services/, an npm workspace and a TypeScript project, and nothing else is', () => {
  const dirs = readdirSync(join(ROOT, 'services'), { withFileTypes: true }).filter((d) => d.isDirectory());
  expect(dirs.map((d) => d.name).sort()).toEqual([...SERVICES].sort());
  // Dockerfile, skaffold.yaml and the image workflow are checked against these workspaces (image, delivery tests).
  expect([...WORKSPACES].sort()).toEqual(['gateway', ...SERVICES.map((s) => `services/${s}`)].sort());
  const projects = (json('tsconfig.json').references as { path: string }[]).map((r) => r.path);
  expect(projects.filter((p) => p === 'gateway' || p.startsWith('services/')).sort()).toEqual([...WORKSPACES].sort());
});

test("each process listens on its registry port by default, and the gateway's subgraph URLs default to theirs", () => {
  const gateway = require('../../gateway/src/config').configSchema.shape;
  expect(gateway.PORT.parse(undefined)).toBe(DEFAULT_PORTS.gateway);
  for (const s of SERVICES) {
    expect(gateway[`${s.toUpperCase()}_URL`].parse(undefined)).toBe(`http://127.0.0.1:${DEFAULT_PORTS[s]}/graphql`);
    const { configSchema } = require(`../../services/${s}/src/config`);
    expect({ service: s, port: configSchema.shape.PORT.parse(undefined) }).toEqual({ service: s, port: DEFAULT_PORTS[s] });
  }
});
