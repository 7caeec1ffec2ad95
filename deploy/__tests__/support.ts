// Shared helpers for the deploy checks: the pinned tools in .tools/bin (built by
// scripts/install-tools.sh), the chart's renderer, and the shapes of what they print.
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { SERVICES } from '@flywheel/events';

export const ROOT = join(__dirname, '../..');
export const CHART = join(ROOT, 'charts/flywheel');
const BIN = join(ROOT, '.tools/bin');

export const renderer = require('../../scripts/render-k8s.js') as {
  template(valuesFiles?: string[], extraArgs?: string[]): string;
  staleFiles(): string[];
  RELEASE: string;
  NAMESPACE: string;
};

/** The value sets every chart check runs with: the defaults, the dev cluster and a production example. */
export const VALUE_SETS: [string, string[]][] = [
  ['default', []],
  ['dev', [join(CHART, 'values-dev.yaml')]],
  ['production', [join(CHART, 'values-production.yaml')]],
];

/** Workspaces that become images and workloads: services/<name> and gateway (registry.test.ts: the registry's). */
export const WORKSPACES: string[] = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')).workspaces as string[]).filter(
  (w) => w === 'gateway' || w.startsWith('services/'),
);
/** The registry (packages/events/src/services.json): the gateway, then every subgraph. */
export const WORKLOADS: string[] = ['gateway', ...SERVICES];
export const SUBGRAPHS: string[] = [...SERVICES];

export interface Run {
  status: number | null;
  stdout: string;
  stderr: string;
}

export function tool(name: string): string {
  const path = join(BIN, name);
  if (!existsSync(path))
    throw new Error(`${path} is missing: run \`npm run tools\` (scripts/install-tools.sh builds the pinned deploy tools)`);
  return path;
}

export function run(name: string, args: string[], input?: string): Run {
  const r = spawnSync(tool(name), args, { cwd: ROOT, input, encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  if (r.error) throw r.error;
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** Runs a tool that must succeed; its stderr becomes the failure message. */
export function mustRun(name: string, args: string[], input?: string): string {
  const r = run(name, args, input);
  if (r.status !== 0) throw new Error(`${name} ${args.join(' ')} failed:\n${r.stderr}${r.stdout}`);
  return r.stdout;
}

export type Obj = Record<string, any>;

export interface K8sObject {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  spec?: Obj;
  data?: Record<string, string>;
  [key: string]: unknown;
}

/** Validates manifests against the pinned Kubernetes API (tools/kube-validate) and returns them parsed. */
export function validate(manifests: string): K8sObject[] {
  return JSON.parse(mustRun('kube-validate', ['-json', '-'], manifests));
}

/** Builds a kustomization in-process, validates the result and returns it parsed. */
export function kustomize(dir: string): K8sObject[] {
  return JSON.parse(mustRun('kube-validate', ['-json', '-kustomize', dir]));
}

/** Any YAML file as JSON (duplicate keys refused). */
export function readYaml(file: string): any {
  return JSON.parse(mustRun('kube-validate', ['-yaml', join(ROOT, file)]));
}

export function helmTemplate(valuesFiles: string[], set: string[] = []): string {
  return renderer.template(
    valuesFiles,
    set.flatMap((s) => ['--set', s]),
  );
}

/** `helm template` that is expected to fail: returns Helm's error text. */
export function helmTemplateError(set: string[], setString: string[] = []): string {
  const r = run('helm', [
    'template',
    'flywheel',
    CHART,
    ...set.flatMap((s) => ['--set', s]),
    ...setString.flatMap((s) => ['--set-string', s]),
  ]);
  if (r.status === 0) throw new Error(`helm template with ${[...set, ...setString].join(' ')} should have failed`);
  return r.stderr;
}

export const byKind = (objects: K8sObject[], kind: string) => objects.filter((o) => o.kind === kind);
export const find = (objects: K8sObject[], kind: string, name: string) => {
  const o = objects.find((x) => x.kind === kind && x.metadata.name === name);
  if (!o) throw new Error(`no ${kind} ${name}`);
  return o;
};

/** Pod specs of everything that runs pods, with where they came from. */
export function podSpecs(objects: K8sObject[]): { owner: string; labels: Record<string, string>; spec: Obj }[] {
  return objects
    .filter((o) => ['Deployment', 'StatefulSet', 'DaemonSet', 'Job'].includes(o.kind))
    .map((o) => ({ owner: `${o.kind}/${o.metadata.name}`, labels: o.spec!.template.metadata?.labels ?? {}, spec: o.spec!.template.spec }));
}

/**
 * Environment variables each process reads: the keys of its zod config shape (its config.ts plus
 * service-kit's shared shapes) and the OTEL_* variables telemetry reads directly.
 */
export function configVariables(workload: string): Set<string> {
  const files = [
    join(ROOT, 'packages/service-kit/src/config.ts'),
    join(ROOT, workload === 'gateway' ? 'gateway/src/config.ts' : `services/${workload}/src/config.ts`),
  ];
  const names = new Set<string>();
  for (const f of files) for (const m of readFileSync(f, 'utf8').matchAll(/^\s+([A-Z][A-Z0-9_]+):/gm)) names.add(m[1]!);
  for (const m of readFileSync(join(ROOT, 'packages/service-kit/src/telemetry.ts'), 'utf8').matchAll(/process\.env\.([A-Z][A-Z0-9_]+)/g))
    names.add(m[1]!);
  if (workload === 'gateway') for (const s of SUBGRAPHS) names.add(`${s.toUpperCase()}_URL`);
  return names;
}

export function listFiles(dir: string): string[] {
  return readdirSync(join(ROOT, dir));
}
