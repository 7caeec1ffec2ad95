// charts/flywheel: real helm (pinned in tools/helm) lints and renders the chart for the default,
// dev and production values; every manifest is validated against the pinned Kubernetes API
// (tools/kube-validate); then the policies the platform relies on are checked on the result.
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SERVICES, streamSubjects } from '@flywheel/events';
import {
  CHART,
  ROOT,
  SUBGRAPHS,
  VALUE_SETS,
  WORKLOADS,
  byKind,
  configVariables,
  find,
  helmTemplate,
  helmTemplateError,
  mustRun,
  podSpecs,
  readYaml,
  run,
  validate,
  type K8sObject,
  type Obj,
} from './support';

const memo = <T>(f: () => T) => {
  let v: { value: T } | undefined;
  return () => (v ??= { value: f() }).value;
};

const selectorOf = (name: string) => ({ 'app.kubernetes.io/name': name, 'app.kubernetes.io/instance': 'flywheel' });
/** The one path of orders the payment provider reaches (values: services.orders.env.PAYMENT_PROVIDER, test by default). */
const CALLBACK_PATH = '/payments/test/callback';
const matches = (selector: Record<string, string>, labels: Record<string, string>) =>
  Object.entries(selector).every(([k, v]) => labels[k] === v);

describe.each(VALUE_SETS)('chart with %s values', (_label, valuesFiles) => {
  const rendered = memo(() => validate(helmTemplate(valuesFiles)));
  const deployments = () => byKind(rendered(), 'Deployment');
  const container = (name: string) => find(rendered(), 'Deployment', name).spec!.template.spec.containers[0] as Obj;
  const env = (name: string): Record<string, Obj> => Object.fromEntries((container(name).env as Obj[]).map((e) => [e.name, e]));

  test('helm lint --strict passes', () => {
    mustRun('helm', ['lint', '--strict', CHART, ...valuesFiles.flatMap((f) => ['-f', f])]);
  });

  test('every rendered manifest is valid for the pinned Kubernetes API (unknown fields and wrong types fail)', () => {
    expect(rendered().length).toBeGreaterThan(40);
  });

  test('every workload has a Deployment, a ClusterIP Service, a ServiceAccount, an HPA and a PDB', () => {
    expect(
      deployments()
        .map((d) => d.metadata.name)
        .sort(),
    ).toEqual([...WORKLOADS].sort());
    for (const name of WORKLOADS) {
      expect(find(rendered(), 'Service', name).spec!.type).toBe('ClusterIP');
      expect(find(rendered(), 'ServiceAccount', name).automountServiceAccountToken).toBe(false);
      const hpa = find(rendered(), 'HorizontalPodAutoscaler', name).spec!;
      expect(hpa.scaleTargetRef).toEqual({ apiVersion: 'apps/v1', kind: 'Deployment', name });
      expect(hpa.metrics.some((m: Obj) => m.type === 'Resource' && m.resource.name === 'cpu')).toBe(true);
      expect(hpa.minReplicas).toBeLessThanOrEqual(hpa.maxReplicas);
      // With an HPA the Deployment must not pin replicas, or every upgrade resets the scale.
      expect(find(rendered(), 'Deployment', name).spec!.replicas).toBeUndefined();
      const pdb = find(rendered(), 'PodDisruptionBudget', name).spec!;
      expect(pdb.selector.matchLabels).toEqual(selectorOf(name));
    }
  });

  test('every selector matches its own pods and no other workload', () => {
    for (const d of deployments()) {
      const own = d.spec!.selector.matchLabels;
      for (const other of deployments()) {
        expect(matches(own, other.spec!.template.metadata.labels)).toBe(other === d);
      }
      expect(find(rendered(), 'Service', d.metadata.name).spec!.selector).toEqual(own);
    }
  });

  test('every container has startup, readiness (/readyz) and liveness (/healthz) probes on its http port', () => {
    for (const name of WORKLOADS) {
      const c = container(name);
      expect(c.ports[0]).toEqual({ name: 'http', containerPort: expect.any(Number), protocol: 'TCP' });
      // Orders alone has a second port: the payment callback listener (never probed, never GraphQL).
      expect(c.ports.slice(1).map((p: Obj) => p.name)).toEqual(name === 'orders' ? ['callback'] : []);
      expect(c.startupProbe.httpGet).toEqual({ path: '/readyz', port: 'http' });
      expect(c.readinessProbe.httpGet).toEqual({ path: '/readyz', port: 'http' });
      expect(c.livenessProbe.httpGet).toEqual({ path: '/healthz', port: 'http' });
      expect(env(name).PORT!.value).toBe(String(c.ports[0].containerPort));
    }
  });

  test('every container has cpu and memory requests and a memory limit', () => {
    for (const { owner, spec } of podSpecs(rendered())) {
      for (const c of spec.containers) {
        expect({ owner, requests: Object.keys(c.resources?.requests ?? {}).sort() }).toEqual({ owner, requests: ['cpu', 'memory'] });
        expect({ owner, memoryLimit: Boolean(c.resources?.limits?.memory) }).toEqual({ owner, memoryLimit: true });
      }
    }
  });

  test('every pod meets the restricted Pod Security profile, with a read-only root and a writable /tmp', () => {
    for (const { owner, spec } of podSpecs(rendered())) {
      expect({ owner, runAsNonRoot: spec.securityContext?.runAsNonRoot }).toEqual({ owner, runAsNonRoot: true });
      expect(spec.securityContext.runAsUser).toBeGreaterThan(0);
      expect(spec.securityContext.seccompProfile).toEqual({ type: 'RuntimeDefault' });
      expect(spec.automountServiceAccountToken).toBe(false);
      expect(spec.hostNetwork ?? false).toBe(false);
      const tmp = spec.volumes.find(
        (v: Obj) => v.emptyDir && spec.containers[0].volumeMounts.some((m: Obj) => m.name === v.name && m.mountPath === '/tmp'),
      );
      expect({ owner, tmpEmptyDir: Boolean(tmp) }).toEqual({ owner, tmpEmptyDir: true });
      for (const c of spec.containers) {
        expect({ owner, securityContext: c.securityContext }).toEqual({
          owner,
          securityContext: {
            allowPrivilegeEscalation: false,
            readOnlyRootFilesystem: true,
            runAsNonRoot: true,
            capabilities: { drop: ['ALL'] },
            seccompProfile: { type: 'RuntimeDefault' },
          },
        });
      }
    }
  });

  test('every Deployment spreads its pods over zones and nodes and drains gracefully', () => {
    for (const d of deployments()) {
      const spec = d.spec!.template.spec;
      const keys = spec.topologySpreadConstraints.map((t: Obj) => t.topologyKey);
      expect(keys).toEqual(expect.arrayContaining(['topology.kubernetes.io/zone', 'kubernetes.io/hostname']));
      for (const t of spec.topologySpreadConstraints) expect(t.labelSelector.matchLabels).toEqual(d.spec!.selector.matchLabels);
      const c = spec.containers[0];
      const preStop = Number(c.lifecycle?.preStop?.exec?.command?.[1] ?? 0);
      const shutdown = Number(env(d.metadata.name).SHUTDOWN_TIMEOUT_MS?.value ?? 10_000) / 1000;
      expect(spec.terminationGracePeriodSeconds).toBeGreaterThan(preStop + shutdown);
      expect(d.spec!.strategy.rollingUpdate.maxUnavailable).toBe(0);
    }
  });

  test('no subgraph is reachable from outside the cluster: ClusterIP only; Ingresses route to the gateway, and to orders only the exact payment callback path on its callback port', () => {
    for (const s of byKind(rendered(), 'Service')) {
      expect({ service: s.metadata.name, type: s.spec!.type }).toEqual({ service: s.metadata.name, type: 'ClusterIP' });
      expect(s.spec!.externalIPs ?? []).toEqual([]);
    }
    const routes = byKind(rendered(), 'Ingress').flatMap((ing) => {
      expect(ing.spec!.defaultBackend).toBeUndefined();
      return ing.spec!.rules.flatMap((r: Obj) =>
        r.http.paths.map((p: Obj) => ({
          path: p.path,
          pathType: p.pathType,
          service: p.backend.service.name,
          port: p.backend.service.port,
        })),
      );
    });
    for (const r of routes.filter((x) => x.service !== 'gateway')) {
      // One exact path, to the listener that serves nothing but the callback — never the http port.
      expect(r).toEqual({ path: CALLBACK_PATH, pathType: 'Exact', service: 'orders', port: { name: 'callback' } });
    }
    expect(routes.filter((x) => x.service !== 'gateway').length).toBe(_label === 'production' ? 1 : 0);
    expect(routes.filter((x) => x.service === 'gateway').map((x) => x.path)).toEqual(_label === 'production' ? ['/graphql'] : []);
    expect(byKind(rendered(), 'Ingress').length).toBe(_label === 'production' ? 2 : 0);
  });

  test("the payment callback route exposes only the callback: orders serves it on a port of its own, which is all its policy opens beyond the gateway's", () => {
    const c = container('orders');
    const callbackPort = c.ports.find((p: Obj) => p.name === 'callback').containerPort;
    const httpPort = c.ports.find((p: Obj) => p.name === 'http').containerPort;
    expect(callbackPort).not.toBe(httpPort);
    // The process serves only the callback there (services/orders: payments listener test).
    expect(env('orders').PAYMENT_CALLBACK_PORT!.value).toBe(String(callbackPort));
    const svc = find(rendered(), 'Service', 'orders').spec!;
    expect(svc.ports.map((p: Obj) => [p.name, p.targetPort])).toEqual([
      ['http', 'http'],
      ['callback', 'callback'],
    ]);
    const policy = find(rendered(), 'NetworkPolicy', 'orders').spec!;
    const rules = policy.ingress.map((r: Obj) => ({ ports: r.ports.map((p: Obj) => p.port), from: r.from }));
    const expectedFrom =
      _label === 'production' ? [{ namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': 'ingress-nginx' } } }] : undefined;
    expect(rules).toEqual([
      { ports: ['http'], from: [{ podSelector: { matchLabels: selectorOf('gateway') } }] },
      { ports: ['callback'], from: expectedFrom },
    ]);
    // No other workload opens anything to anyone but the gateway.
    for (const name of SUBGRAPHS.filter((s) => s !== 'orders')) {
      expect(find(rendered(), 'NetworkPolicy', name).spec!.ingress.map((r: Obj) => r.ports.map((p: Obj) => p.port))).toEqual([['http']]);
    }
  });

  test('network policies: only the gateway reaches subgraphs, only subgraphs reach MongoDB, subgraphs, the gateway and the stream job reach NATS', () => {
    const policies = byKind(rendered(), 'NetworkPolicy');
    const deny = find(rendered(), 'NetworkPolicy', 'flywheel-default-deny').spec!;
    expect(deny.ingress).toBeUndefined();
    expect(deny.policyTypes).toContain('Ingress');
    for (const name of SUBGRAPHS) {
      const labels = find(rendered(), 'Deployment', name).spec!.template.metadata.labels;
      const selecting = policies.filter((p) => matches(p.spec!.podSelector.matchLabels ?? {}, labels));
      // On the GraphQL port: exactly one allowed peer, pods of the gateway. (Orders' callback
      // port is the one exception, checked by the payment callback test.)
      const peers = selecting.flatMap((p) =>
        (p.spec!.ingress ?? [])
          .filter((r: Obj) => (r.ports ?? [{ port: 'any' }]).some((port: Obj) => port.port !== 'callback'))
          .flatMap((r: Obj) => r.from ?? [{ anyone: true }]),
      );
      expect({ subgraph: name, peers }).toEqual({ subgraph: name, peers: [{ podSelector: { matchLabels: selectorOf('gateway') } }] });
    }
    const clientsOf = (dep: 'nats' | 'mongodb') =>
      [...podSpecs(rendered())].filter(({ labels }) => labels[`flywheel.io/${dep}-client`] === 'true').map((p) => p.owner);
    expect(clientsOf('mongodb').sort()).toEqual(SUBGRAPHS.map((s) => `Deployment/${s}`).sort());
    expect(clientsOf('nats').sort()).toEqual(
      [...WORKLOADS.map((s) => `Deployment/${s}`), ...byKind(rendered(), 'Job').map((j) => `Job/${j.metadata.name}`)].sort(),
    );
    // With egress locked down, the gateway reaches the subgraphs and subgraphs reach no workload.
    for (const p of policies.filter((x) => x.spec!.egress && WORKLOADS.includes(x.metadata.name))) {
      const reached = WORKLOADS.filter((w) => {
        const labels = find(rendered(), 'Deployment', w).spec!.template.metadata.labels;
        return p.spec!.egress.some((r: Obj) =>
          (r.to ?? []).some((peer: Obj) => peer.podSelector && !peer.namespaceSelector && matches(peer.podSelector.matchLabels, labels)),
        );
      });
      expect({ from: p.metadata.name, reached }).toEqual({
        from: p.metadata.name,
        reached: p.metadata.name === 'gateway' ? SUBGRAPHS : [],
      });
    }
    for (const dep of ['nats', 'mongodb'] as const) {
      const p = policies.find((x) => x.metadata.name === `flywheel-${dep}`);
      if (!p) continue; // managed elsewhere in this value set
      const [clients] = p.spec!.ingress;
      expect(clients.from).toEqual([
        { podSelector: { matchLabels: { [`flywheel.io/${dep}-client`]: 'true', 'app.kubernetes.io/instance': 'flywheel' } } },
      ]);
    }
  });

  test('each workload gets only the secrets it reads, from the Secret, never as plain values', () => {
    for (const name of WORKLOADS) {
      const e = env(name);
      const fromSecret = Object.values(e)
        .filter((v: Obj) => v.valueFrom?.secretKeyRef)
        .map((v: Obj) => v.name)
        .sort();
      const expected = ['INTERNAL_TOKEN_SECRET', 'NATS_URL'];
      if (name !== 'gateway') expected.push('MONGO_URL');
      if (name === 'gateway' || name === 'membership') expected.push('AUTH_TOKEN_SECRET');
      if (name === 'membership') expected.push('PII_ENCRYPTION_KEY', 'PII_LOOKUP_KEY', 'BOOTSTRAP_STAFF_EMAIL', 'BOOTSTRAP_STAFF_PASSWORD');
      if (name === 'orders') expected.push('PAYMENT_TEST_SECRET', 'PII_ENCRYPTION_KEY');
      if (name === 'catalog') expected.push('REDIS_URL');
      expect({ name, fromSecret }).toEqual({ name, fromSecret: expected.sort() });
      for (const v of Object.values(e) as Obj[]) {
        if (/SECRET|_KEY$|PASSWORD|MONGO_URL|NATS_URL/.test(v.name))
          expect({ name, plain: v.name, value: v.value }).toEqual({ name, plain: v.name, value: undefined });
      }
    }
  });

  test('every variable set in a container is one its process reads', () => {
    for (const name of WORKLOADS) {
      const reads = configVariables(name);
      for (const variable of Object.keys(env(name))) {
        expect({ workload: name, variable, read: reads.has(variable) }).toEqual({ workload: name, variable, read: true });
      }
      expect(env(name).OTEL_SERVICE_NAME!.value).toBe(name);
    }
  });

  test('the gateway knows every subgraph by its Service name and port', () => {
    for (const s of SUBGRAPHS) {
      const port = find(rendered(), 'Service', s).spec!.ports[0].port;
      expect(env('gateway')[`${s.toUpperCase()}_URL`]!.value).toBe(`http://${s}:${port}/graphql`);
    }
  });

  test('the supergraph ConfigMap is gateway/supergraph.graphql, mounted where SUPERGRAPH_PATH points', () => {
    const cm = find(rendered(), 'ConfigMap', 'gateway-supergraph');
    // Compared whole, reported briefly: the file is large.
    const same = `${cm.data!['supergraph.graphql']}\n` === readFileSync(join(ROOT, 'gateway/supergraph.graphql'), 'utf8');
    if (!same) throw new Error('the supergraph ConfigMap differs from gateway/supergraph.graphql: run `npm run k8s:render`');
    const path = env('gateway').SUPERGRAPH_PATH!.value as string;
    const c = container('gateway');
    const mount = c.volumeMounts.find((m: Obj) => path.startsWith(`${m.mountPath}/`));
    const volume = find(rendered(), 'Deployment', 'gateway').spec!.template.spec.volumes.find((v: Obj) => v.name === mount.name);
    expect(volume.configMap.name).toBe('gateway-supergraph');
    expect(volume.configMap.items).toEqual([{ key: 'supergraph.graphql', path: path.slice(mount.mountPath.length + 1) }]);
  });

  test('the JetStream set-up job runs after install and upgrade with a subgraph image and NATS_URL from the Secret', () => {
    const [job] = byKind(rendered(), 'Job');
    expect(job!.metadata.annotations!['helm.sh/hook']).toBe('post-install,post-upgrade');
    const c = job!.spec!.template.spec.containers[0];
    expect(c.command).toEqual(['node', '/etc/flywheel/jetstream/setup.js']);
    expect(c.image).toBe(container('orders').image);
    expect(c.env.find((e: Obj) => e.name === 'NATS_URL').valueFrom.secretKeyRef.key).toBe('NATS_URL');
    const cm = find(rendered(), 'ConfigMap', 'jetstream-setup');
    expect(cm.data!['setup.js']).toBe(readFileSync(join(CHART, 'files/jetstream-setup.js'), 'utf8').trimEnd());
    const config = JSON.parse(cm.data!['streams.json']!);
    expect(config.defaults.replicas).toBe(_label === 'dev' ? 1 : 3);
  });
});

describe('chart values', () => {
  test('values.schema.json refuses typos and wrong types at install', () => {
    expect(helmTemplateError(['services.ordrs.port=4010'])).toMatch(/additional properties 'ordrs' not allowed/);
    expect(helmTemplateError(['serviceDefaults.autoscaling.enabeld=false'])).toMatch(/additional properties 'enabeld' not allowed/);
    expect(helmTemplateError(['image.pullPolicy=Sometimes'])).toMatch(/pullPolicy/);
    expect(helmTemplateError([], ['services.gateway.env.MAX_QUERY_DEPHT=3'])).toMatch(/MAX_QUERY_DEPHT/);
    expect(helmTemplateError(['jetstream.streams.ordrs.replicas=3'])).toMatch(/additional properties 'ordrs' not allowed/);
    expect(helmTemplateError(['jetstream.defaults.maxAge=30days'])).toMatch(/maxAge/);
    expect(helmTemplateError(['services.orders.port=80'])).toMatch(/port/);
    expect(helmTemplateError(['paymentCallback.prot=4013'])).toMatch(/additional properties 'prot' not allowed/);
    expect(helmTemplateError(['paymentCallback.port=80'])).toMatch(/port/);
  });

  test('the payment callback listener cannot share the GraphQL port', () => {
    expect(helmTemplateError(['paymentCallback.port=4003'])).toMatch(
      /paymentCallback\.port \(4003\) must differ from services\.orders\.port/,
    );
  });

  test('with paymentCallback off, orders has no callback port, route or policy rule', () => {
    const objects = validate(helmTemplate([join(CHART, 'values-production.yaml')], ['paymentCallback.enabled=false']));
    const orders = find(objects, 'Deployment', 'orders').spec!.template.spec.containers[0];
    expect(orders.ports.map((p: Obj) => p.name)).toEqual(['http']);
    expect(orders.env.map((e: Obj) => e.name)).not.toContain('PAYMENT_CALLBACK_PORT');
    expect(byKind(objects, 'Ingress').map((i) => i.metadata.name)).toEqual(['gateway']);
    expect(find(objects, 'NetworkPolicy', 'orders').spec!.ingress).toHaveLength(1);
  });

  test('the chart refuses settings that would cut graceful shutdown short', () => {
    expect(helmTemplateError(['services.orders.terminationGracePeriodSeconds=10'])).toMatch(
      /services\.orders: terminationGracePeriodSeconds \(10\) must exceed/,
    );
  });

  test('without an existing Secret the chart creates one, and names any key a workload needs that is missing', () => {
    expect(helmTemplateError(['secrets.existingSecret=', `secrets.values.INTERNAL_TOKEN_SECRET=${'x'.repeat(40)}`])).toMatch(
      /secrets\.values\.\w+ is required/,
    );
    const values = {
      INTERNAL_TOKEN_SECRET: 'i'.repeat(40),
      AUTH_TOKEN_SECRET: 'a'.repeat(40),
      PII_ENCRYPTION_KEY: Buffer.alloc(32, 1).toString('base64'),
      PII_LOOKUP_KEY: Buffer.alloc(32, 2).toString('base64'),
      MONGO_URL: 'mongodb://mongo:27017',
      NATS_URL: 'nats://nats:4222',
      PAYMENT_TEST_SECRET: 'p'.repeat(40),
    };
    const objects = validate(
      helmTemplate([], ['secrets.existingSecret=', ...Object.entries(values).map(([k, v]) => `secrets.values.${k}=${v}`)]),
    );
    const secret = find(objects, 'Secret', 'flywheel-secrets');
    expect(secret.stringData).toEqual(values);
    // A changed Secret rolls the pods.
    expect(find(objects, 'Deployment', 'orders').spec!.template.metadata.annotations['checksum/secrets']).toMatch(/^[0-9a-f]{64}$/);
  });

  test('per-workload overrides win key by key, including false', () => {
    const objects = validate(helmTemplate([], ['services.live.autoscaling.enabled=false', 'services.live.replicas=3']));
    expect(objects.some((o) => o.kind === 'HorizontalPodAutoscaler' && o.metadata.name === 'live')).toBe(false);
    expect(find(objects, 'Deployment', 'live').spec!.replicas).toBe(3);
    expect(find(objects, 'HorizontalPodAutoscaler', 'orders').spec!.minReplicas).toBe(2);
  });

  test('the environment names values.schema.json accepts are exactly what the processes read and the chart does not set itself', () => {
    const schema = JSON.parse(readFileSync(join(CHART, 'values.schema.json'), 'utf8'));
    const accepted = new Set<string>(schema.definitions.workload.properties.env.propertyNames.enum);
    const read = new Set(WORKLOADS.flatMap((w) => [...configVariables(w)]));
    const chartOwned = new Set([
      'PORT',
      'PAYMENT_CALLBACK_PORT',
      'OTEL_SERVICE_NAME',
      'OTEL_EXPORTER_OTLP_ENDPOINT',
      'OTEL_SDK_DISABLED',
      'SUPERGRAPH_PATH',
      ...SUBGRAPHS.map((s) => `${s.toUpperCase()}_URL`),
      // Secrets: secretEnv / optionalSecretEnv.
      'INTERNAL_TOKEN_SECRET',
      'AUTH_TOKEN_SECRET',
      'PII_ENCRYPTION_KEY',
      'PII_LOOKUP_KEY',
      'MONGO_URL',
      'NATS_URL',
      'BOOTSTRAP_STAFF_EMAIL',
      'BOOTSTRAP_STAFF_PASSWORD',
      'PAYMENT_TEST_SECRET',
      'REDIS_URL',
      // The local FerretDB-on-PostgreSQL profile only: a cluster runs a real MongoDB.
      'FERRETDB_PG_URL',
    ]);
    const missing = [...read].filter((v) => !accepted.has(v) && !chartOwned.has(v));
    const stale = [...accepted].filter((v) => !read.has(v));
    if (missing.length || stale.length) {
      throw new Error(
        'charts/flywheel/values.schema.json (definitions.workload.properties.env.propertyNames.enum) is out of step with the ' +
          `config.ts files: add ${JSON.stringify(missing)} (or, for a secret, a secretEnv entry and a secrets.values key), ` +
          `remove ${JSON.stringify(stale)}`,
      );
    }
  });

  test('JetStream settings name services (or the notifications or dead-letter stream), and protect the money streams', () => {
    const values = readYaml('charts/flywheel/values.yaml');
    // Settings may wait for a service that does not publish yet (the job applies them once it does).
    for (const key of Object.keys(values.jetstream.streams)) expect([...SERVICES, 'notifications', 'deadletter']).toContain(key);
    expect(SERVICES.filter((s) => streamSubjects(s).length > 0)).toEqual(expect.arrayContaining(['orders', 'catalog', 'membership']));
    // The money streams are kept forever and protected.
    for (const money of ['orders', 'membership', 'referral', 'catalog']) {
      expect(values.jetstream.streams[money]).toEqual({ maxAge: '0', denyDelete: true, denyPurge: true });
    }
  });

  test('NOTES.txt tells the user the endpoint', () => {
    // helm renders NOTES.txt only on install, which needs a cluster: render it through tpl in a
    // copy of the chart instead.
    const dir = mkdtempSync(join(tmpdir(), 'flywheel-notes-'));
    try {
      cpSync(CHART, join(dir, 'flywheel'), { recursive: true });
      const chart = join(dir, 'flywheel');
      cpSync(join(chart, 'templates/NOTES.txt'), join(chart, 'files/NOTES.txt'));
      writeFileSync(
        join(chart, 'templates/notes-check.yaml'),
        'apiVersion: v1\nkind: ConfigMap\nmetadata: { name: notes }\ndata:\n  notes: |-\n{{ tpl (.Files.Get "files/NOTES.txt") . | indent 4 }}\n',
      );
      const notes = (args: string[]) => {
        const out = mustRun('helm', [
          'template',
          'flywheel',
          chart,
          '--namespace',
          'shop',
          '--show-only',
          'templates/notes-check.yaml',
          ...args,
        ]);
        return validate(out)[0]!.data!.notes!;
      };
      expect(notes([])).toContain('kubectl --namespace shop port-forward service/gateway 4000:4000');
      expect(notes([])).toContain('http://localhost:4000/graphql');
      expect(notes(['-f', join(CHART, 'values-production.yaml')])).toContain('https://api.example.com/graphql');
      expect(notes(['-f', join(CHART, 'values-production.yaml')])).toContain(`https://api.example.com${CALLBACK_PATH}`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test('every value set renders the same kinds of objects for every workload (plus the gateway Ingress)', () => {
    const kindsPerWorkload = (objects: K8sObject[]) =>
      WORKLOADS.map((w) =>
        objects
          .filter((o) => o.metadata.name === w && o.kind !== 'Ingress')
          .map((o) => o.kind)
          .sort()
          .join(','),
      );
    const sets = VALUE_SETS.map(([, files]) => kindsPerWorkload(validate(helmTemplate(files))));
    for (const s of sets) expect(s).toEqual(sets[0]);
  });

  test('the chart needs no network: no dependencies to download', () => {
    const chart = readYaml('charts/flywheel/Chart.yaml');
    expect(chart.dependencies ?? []).toEqual([]);
    expect(run('helm', ['dependency', 'list', CHART]).stdout).toMatch(/WARNING: no dependencies|^$/);
  });
});
