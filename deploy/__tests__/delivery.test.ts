// Everything around the chart: k8s/ (rendered from the chart, drift-checked, plus the hand-written
// dev dependencies), skaffold.yaml and the GitHub workflows.
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  CHART,
  ROOT,
  WORKLOADS,
  WORKSPACES,
  byKind,
  find,
  helmTemplate,
  kustomize,
  mustRun,
  podSpecs,
  readYaml,
  renderer,
  validate,
  type K8sObject,
  type Obj,
} from './support';

describe('k8s/', () => {
  let all: K8sObject[];
  beforeAll(() => {
    all = kustomize(join(ROOT, 'k8s'));
  });

  test('k8s/rendered and the chart copy of the supergraph are what the chart renders (npm run k8s:render)', () => {
    expect(renderer.staleFiles()).toEqual([]);
  });

  test('the kustomization builds, and every object is valid for the pinned Kubernetes API, in namespace flywheel', () => {
    expect(all.length).toBeGreaterThan(50);
    for (const o of all) {
      if (o.kind === 'Namespace') continue;
      expect({ object: `${o.kind}/${o.metadata.name}`, namespace: o.metadata.namespace }).toEqual({
        object: `${o.kind}/${o.metadata.name}`,
        namespace: 'flywheel',
      });
    }
    const ns = find(all, 'Namespace', 'flywheel');
    expect(ns.metadata.labels!['pod-security.kubernetes.io/enforce']).toBe('restricted');
  });

  test('the dev NATS and MongoDB meet the restricted Pod Security profile, with probes, resources and storage', () => {
    for (const name of ['nats', 'mongodb']) {
      const sts = find(all, 'StatefulSet', name);
      const [spec] = podSpecs([sts]).map((p) => p.spec);
      expect(spec!.securityContext).toMatchObject({ runAsNonRoot: true, seccompProfile: { type: 'RuntimeDefault' } });
      for (const c of spec!.containers) {
        expect(c.securityContext).toEqual({
          allowPrivilegeEscalation: false,
          readOnlyRootFilesystem: true,
          runAsNonRoot: true,
          capabilities: { drop: ['ALL'] },
          seccompProfile: { type: 'RuntimeDefault' },
        });
        expect(c.startupProbe && c.readinessProbe && c.livenessProbe).toBeTruthy();
        expect(Object.keys(c.resources.requests).sort()).toEqual(['cpu', 'memory']);
        expect(c.resources.limits.memory).toBeTruthy();
      }
      expect(sts.spec!.volumeClaimTemplates.map((v: Obj) => v.metadata.name)).toEqual(['data']);
    }
  });

  test('the dev NATS configuration is valid for the pinned nats-server and fsyncs every write (sync_interval: always)', () => {
    const conf = find(all, 'ConfigMap', 'nats-config').data!['nats.conf']!;
    expect(conf).toMatch(/^\s*sync_interval:\s*always\s*$/m);
    const dir = mkdtempSync(join(tmpdir(), 'flywheel-nats-conf-'));
    try {
      const file = join(dir, 'nats.conf');
      writeFileSync(file, conf);
      mustRun('nats-server', ['-t', '-c', file]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('the chart network policies select the dev NATS and MongoDB pods, and the dev Secret points at their Services', () => {
    const values = readYaml('charts/flywheel/values.yaml');
    for (const dep of ['nats', 'mongodb']) {
      const labels = find(all, 'StatefulSet', dep).spec!.template.metadata.labels;
      for (const [k, v] of Object.entries(values.networkPolicy[dep].podSelector)) expect(labels[k]).toBe(v);
    }
    const secret = find(all, 'Secret', 'flywheel-secrets');
    const decoded = (k: string) => Buffer.from((secret.data as Record<string, string>)[k]!, 'base64').toString();
    const port = (svc: string) => find(all, 'Service', svc).spec!.ports[0].port;
    expect(decoded('MONGO_URL')).toBe(`mongodb://mongodb:${port('mongodb')}`);
    expect(decoded('NATS_URL')).toBe(`nats://nats:${port('nats')}`);
  });

  test('the dev Secret holds every key a rendered workload requires', () => {
    const secret = find(all, 'Secret', 'flywheel-secrets');
    const required = new Set<string>();
    for (const { spec } of podSpecs(all)) {
      for (const c of spec.containers) {
        for (const e of c.env ?? []) {
          const ref = e.valueFrom?.secretKeyRef;
          if (ref && !ref.optional) {
            expect(ref.name).toBe('flywheel-secrets');
            required.add(ref.key);
          }
        }
      }
    }
    expect(Object.keys(secret.data as object).sort()).toEqual(expect.arrayContaining([...required].sort()));
  });

  test('k8s/rendered uses the image names skaffold builds', () => {
    const images = byKind(all, 'Deployment')
      .filter((d) => WORKLOADS.includes(d.metadata.name))
      .map((d) => d.spec!.template.spec.containers[0].image)
      .sort();
    expect(images).toEqual(WORKLOADS.map((w) => `flywheel/${w}:dev`).sort());
  });
});

// Field names per object, from skaffold's published JSON schema for skaffold/v4beta13: a key
// outside these lists is a typo skaffold would refuse.
const SKAFFOLD_FIELDS: Record<string, string[]> = {
  config: [
    'apiVersion',
    'kind',
    'metadata',
    'requires',
    'build',
    'test',
    'manifests',
    'deploy',
    'portForward',
    'resourceSelector',
    'verify',
    'customActions',
    'profiles',
  ],
  metadata: ['name', 'labels', 'annotations'],
  build: ['artifacts', 'insecureRegistries', 'tagPolicy', 'platforms', 'local', 'googleCloudBuild', 'cluster'],
  local: ['push', 'tryImportMissing', 'useDockerCLI', 'useBuildkit', 'concurrency'],
  artifact: ['image', 'context', 'sync', 'requires', 'hooks', 'platforms', 'runtimeType', 'docker'],
  docker: [
    'dockerfile',
    'target',
    'buildArgs',
    'network',
    'addHost',
    'cacheFrom',
    'cacheTo',
    'cliFlags',
    'pullParent',
    'noCache',
    'secrets',
    'ssh',
  ],
  deploy: [
    'helm',
    'kubectl',
    'kpt',
    'docker',
    'cloudrun',
    'kubeContext',
    'statusCheck',
    'statusCheckDeadlineSeconds',
    'tolerateFailuresUntilDeadline',
    'logs',
    'transformableAllowList',
    'transformableDenyList',
  ],
  helm: ['concurrency', 'releases', 'flags', 'hooks'],
  release: [
    'name',
    'chartPath',
    'remoteChart',
    'valuesFiles',
    'namespace',
    'version',
    'setValues',
    'setValueTemplates',
    'setFiles',
    'createNamespace',
    'wait',
    'recreatePods',
    'skipBuildDependencies',
    'skipTests',
    'useHelmSecrets',
    'repo',
    'upgradeOnChange',
    'overrides',
    'packaged',
    'dependsOn',
  ],
  kubectl: ['flags', 'remoteManifests', 'defaultNamespace', 'hooks'],
  manifests: ['rawYaml', 'remoteManifests', 'kustomize', 'helm', 'kpt', 'hooks', 'transform', 'validate', 'output'],
  kustomize: ['paths', 'buildArgs'],
  portForward: ['resourceType', 'resourceName', 'namespace', 'port', 'address', 'localPort'],
  profile: [
    'name',
    'activation',
    'requiresAllActivations',
    'patches',
    'build',
    'test',
    'manifests',
    'deploy',
    'portForward',
    'resourceSelector',
    'verify',
    'customActions',
  ],
  patch: ['op', 'path', 'from', 'value'],
};

function unknownSkaffoldFields(config: Obj): string[] {
  const errors: string[] = [];
  const check = (obj: Obj | undefined, kind: string, where: string) => {
    if (!obj) return;
    for (const k of Object.keys(obj)) if (!SKAFFOLD_FIELDS[kind]!.includes(k)) errors.push(`${where}.${k}`);
  };
  const section = (c: Obj, where: string) => {
    check(c.build, 'build', `${where}.build`);
    check(c.build?.local, 'local', `${where}.build.local`);
    (c.build?.artifacts ?? []).forEach((a: Obj, i: number) => {
      check(a, 'artifact', `${where}.build.artifacts[${i}]`);
      check(a.docker, 'docker', `${where}.build.artifacts[${i}].docker`);
    });
    check(c.deploy, 'deploy', `${where}.deploy`);
    check(c.deploy?.helm, 'helm', `${where}.deploy.helm`);
    (c.deploy?.helm?.releases ?? []).forEach((r: Obj, i: number) => check(r, 'release', `${where}.deploy.helm.releases[${i}]`));
    check(c.deploy?.kubectl, 'kubectl', `${where}.deploy.kubectl`);
    check(c.manifests, 'manifests', `${where}.manifests`);
    check(c.manifests?.kustomize, 'kustomize', `${where}.manifests.kustomize`);
    (c.portForward ?? []).forEach((p: Obj, i: number) => check(p, 'portForward', `${where}.portForward[${i}]`));
  };
  check(config, 'config', '');
  check(config.metadata, 'metadata', '.metadata');
  section(config, '');
  (config.profiles ?? []).forEach((p: Obj, i: number) => {
    check(p, 'profile', `.profiles[${i}]`);
    (p.patches ?? []).forEach((x: Obj, j: number) => check(x, 'patch', `.profiles[${i}].patches[${j}]`));
    section(p, `.profiles[${i}]`);
  });
  return errors;
}

/** Applies a profile's JSON patches (add/replace) the way skaffold does, failing on paths that do not exist. */
function applyPatches(config: Obj, patches: Obj[]): Obj {
  const out = JSON.parse(JSON.stringify(config));
  for (const p of patches) {
    const parts = (p.path as string).split('/').slice(1);
    const last = parts.pop()!;
    let parent: Obj = out;
    for (const part of parts) {
      if (parent[part] === undefined) throw new Error(`patch path ${p.path} does not exist`);
      parent = parent[part];
    }
    if (p.op === 'replace' && parent[last] === undefined) throw new Error(`replace of missing ${p.path}`);
    if (!['add', 'replace'].includes(p.op ?? 'replace')) throw new Error(`unexpected patch op ${p.op}`);
    parent[last] = p.value;
  }
  return out;
}

describe('skaffold.yaml', () => {
  const config = readYaml('skaffold.yaml');
  const sanitize = (image: string) => image.replace(/[/-]/g, '_');

  test('uses only fields of its schema version', () => {
    expect(config.apiVersion).toBe('skaffold/v4beta13');
    expect(config.kind).toBe('Config');
    expect(unknownSkaffoldFields(config)).toEqual([]);
  });

  test('builds every workspace from the one Dockerfile, with the workspace as the build argument', () => {
    const artifacts = config.build.artifacts as Obj[];
    expect(artifacts.map((a) => a.docker.buildArgs.WORKSPACE).sort()).toEqual([...WORKSPACES].sort());
    for (const a of artifacts) {
      expect(a.image).toBe(`flywheel/${a.docker.buildArgs.WORKSPACE.split('/').pop()}`);
      expect(a.context ?? '.').toBe('.');
      expect(a.docker.dockerfile).toBe('Dockerfile');
    }
  });

  test('deploys the chart with the image each artifact became', () => {
    const [release] = config.deploy.helm.releases as Obj[];
    expect(existsSync(join(ROOT, release!.chartPath, 'Chart.yaml'))).toBe(true);
    const expected = Object.fromEntries(
      (config.build.artifacts as Obj[]).map((a) => [
        `services.${a.image.split('/').pop()}.image.ref`,
        `{{.IMAGE_FULLY_QUALIFIED_${sanitize(a.image)}}}`,
      ]),
    );
    expect(release!.setValueTemplates).toEqual(expected);
    // The keys are real chart values: set them, and every workload runs that image.
    const objects = validate(
      helmTemplate(
        [],
        Object.keys(expected).map((k) => `${k}=registry.test/${k.split('.')[1]}:t@sha256:${'0'.repeat(64)}`),
      ),
    );
    for (const w of WORKLOADS) {
      expect(find(objects, 'Deployment', w).spec!.template.spec.containers[0].image).toBe(`registry.test/${w}:t@sha256:${'0'.repeat(64)}`);
    }
  });

  test('forwards the gateway port in every mode', () => {
    const values = readYaml('charts/flywheel/values.yaml');
    const [release] = config.deploy.helm.releases as Obj[];
    expect(config.portForward).toEqual([
      {
        resourceType: 'service',
        resourceName: 'gateway',
        namespace: release!.namespace,
        port: values.services.gateway.port,
        localPort: 4000,
      },
    ]);
  });

  test('the dev profile adds the dev dependencies and values-dev.yaml for a local cluster', () => {
    const dev = (config.profiles as Obj[]).find((p) => p.name === 'dev')!;
    expect(dev.manifests.kustomize.paths).toEqual(['k8s/dev']);
    expect(existsSync(join(ROOT, 'k8s/dev/kustomization.yaml'))).toBe(true);
    expect(dev.deploy.kubectl).toBeDefined();
    const patched = applyPatches(config, dev.patches);
    const files = patched.deploy.helm.releases[0].valuesFiles as string[];
    expect(files).toEqual(['charts/flywheel/values-dev.yaml']);
    for (const f of files) expect(existsSync(join(ROOT, f))).toBe(true);
    const objects = kustomize(join(ROOT, 'k8s/dev'));
    expect(objects.map((o) => `${o.kind}/${o.metadata.name}`).sort()).toEqual(
      [
        'Namespace/flywheel',
        'ConfigMap/nats-config',
        'Service/nats',
        'StatefulSet/nats',
        'Service/mongodb',
        'StatefulSet/mongodb',
        'Secret/flywheel-secrets',
      ].sort(),
    );
  });
});

describe('.github/workflows', () => {
  const dir = join(ROOT, '.github/workflows');
  const files = readdirSync(dir).filter((f) => /\.ya?ml$/.test(f));
  const workflow = (f: string) => readYaml(`.github/workflows/${f}`);

  test('actionlint (pinned) finds nothing', () => {
    mustRun('actionlint', ['-no-color', ...files.map((f) => join(dir, f))]);
  });

  test('every action is pinned to an exact version or commit', () => {
    for (const f of files) {
      for (const job of Object.values(workflow(f).jobs) as Obj[]) {
        for (const step of job.steps ?? []) {
          if (step.uses)
            expect({ f, uses: step.uses, pinned: /@(v\d+\.\d+\.\d+|[0-9a-f]{40})$/.test(step.uses) }).toEqual({
              f,
              uses: step.uses,
              pinned: true,
            });
        }
      }
    }
  });

  test('CI runs the same command as local CI, and the deploy checks on their own', () => {
    const ci = workflow('ci.yml');
    expect(ci.jobs.test.steps.map((s: Obj) => s.run).filter(Boolean)).toEqual(['bash .ci/run']);
    expect(readFileSync(join(ROOT, '.ci/run'), 'utf8')).toMatch(/^npm test$/m);
    const deploySteps = ci.jobs.deploy.steps.map((s: Obj) => s.run).filter(Boolean);
    expect(deploySteps).toContain('npm run deploy:check');
    expect(JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')).scripts['deploy:check']).toMatch(/deploy\/__tests__/);
  });

  test('the image workflow builds every workspace from the one Dockerfile and pushes only from main and tags', () => {
    const images = workflow('images.yml');
    // YAML 1.1 (as the Go YAML reader speaks it) reads the key `on` as the boolean true.
    const on = images.on ?? images.true;
    expect(Object.keys(on).sort()).toEqual(['pull_request', 'push', 'workflow_dispatch']);
    expect(on.push).toEqual({ branches: ['main'], tags: ['v*'] });
    const job = images.jobs.build;
    expect([...job.strategy.matrix.workspace].sort()).toEqual([...WORKSPACES].sort());
    const build = job.steps.find((s: Obj) => String(s.uses).startsWith('docker/build-push-action@'));
    expect(build.with).toMatchObject({ context: '.', file: 'Dockerfile', 'build-args': 'WORKSPACE=${{ matrix.workspace }}' });
    expect(job.env.PUSH).toBe("${{ github.event_name != 'pull_request' }}");
  });
});

describe('chart files', () => {
  test('the chart directory holds only what Helm packages or ignores', () => {
    expect(readdirSync(CHART).sort()).toEqual(
      [
        '.helmignore',
        'Chart.yaml',
        'files',
        'templates',
        'values-dev.yaml',
        'values-production.yaml',
        'values.schema.json',
        'values.yaml',
      ].sort(),
    );
  });
});
