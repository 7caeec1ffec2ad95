// The one Dockerfile: BuildKit's own checks (tools/dockerfile-lint, the rules of
// `docker build --check`, run offline) for every workspace, then what the images must be: small,
// non-root, tini as PID 1, telemetry preloaded, only production dependencies. No image is built
// here (no container engine): the README says how to build and push.
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT, WORKSPACES, mustRun } from './support';

interface Instruction {
  line: number;
  instruction: string;
  flags: string[];
  args: string[];
  json: boolean;
  original: string;
}

interface Stage {
  name: string;
  base: string;
  instructions: Instruction[];
}

const DOCKERFILE = join(ROOT, 'Dockerfile');
const text = readFileSync(DOCKERFILE, 'utf8');
const rootPackage = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8'));

function parse(): { args: Instruction[]; stages: Stage[] } {
  const ast: Instruction[] = JSON.parse(mustRun('dockerfile-lint', ['-build-arg', 'WORKSPACE=gateway', '-ast', DOCKERFILE]));
  const args: Instruction[] = [];
  const stages: Stage[] = [];
  for (const i of ast) {
    if (i.instruction === 'FROM') {
      const as = i.args.findIndex((a) => a.toUpperCase() === 'AS');
      stages.push({ name: as >= 0 ? i.args[as + 1]! : String(stages.length), base: i.args[0]!, instructions: [] });
    } else if (stages.length === 0) {
      args.push(i);
    } else {
      stages.at(-1)!.instructions.push(i);
    }
  }
  return { args, stages };
}

const { args: globalArgs, stages } = parse();
const stage = (name: string) => stages.find((s) => s.name === name)!;
const runtime = stages.at(-1)!;
const runs = (s: Stage) => s.instructions.filter((i) => i.instruction === 'RUN').map((i) => i.args.join(' '));

/** @flywheel packages a workspace loads at runtime: declared dependencies and imports, transitively. */
function runtimePackages(workspace: string): Set<string> {
  const dirOf = (pkg: string) => (pkg === 'events' || pkg === 'service-kit' || pkg === 'testing' ? `packages/${pkg}` : null);
  const seen = new Set<string>();
  const visit = (dir: string) => {
    const manifest = JSON.parse(readFileSync(join(ROOT, dir, 'package.json'), 'utf8'));
    const names = new Set<string>(Object.keys(manifest.dependencies ?? {}).filter((d) => d.startsWith('@flywheel/')));
    const walk = (d: string) => {
      for (const entry of readdirSync(d, { withFileTypes: true })) {
        const p = join(d, entry.name);
        if (entry.isDirectory()) {
          if (entry.name !== '__tests__' && entry.name !== '__generated__') walk(p);
        } else if (p.endsWith('.ts')) {
          for (const m of readFileSync(p, 'utf8').matchAll(/from '(@flywheel\/[a-z-]+)/g)) names.add(m[1]!);
        }
      }
    };
    walk(join(ROOT, dir, 'src'));
    for (const n of names) {
      const pkg = n.slice('@flywheel/'.length);
      const sub = dirOf(pkg);
      if (sub && !seen.has(sub)) {
        seen.add(sub);
        visit(sub);
      }
    }
  };
  visit(workspace);
  return seen;
}

/** Minimal semver range check for `engines.node` (>=, ^, ~, x-ranges, || and spaces). */
function satisfies(version: string, range: string): boolean {
  const v = version.split('.').map(Number);
  const cmp = (a: number[], b: number[]) => {
    for (let i = 0; i < 3; i++) if ((a[i] ?? 0) !== (b[i] ?? 0)) return (a[i] ?? 0) - (b[i] ?? 0);
    return 0;
  };
  const parts = (s: string) =>
    s
      .replace(/^v/, '')
      .split('.')
      .map((x) => (x === 'x' || x === '*' ? 0 : Number(x)));
  const one = (c: string): boolean => {
    const m = /^(>=|<=|>|<|\^|~|=)?\s*v?([\dx*]+(?:\.[\dx*]+){0,2})$/.exec(c.trim());
    if (!m) return true; // something exotic: do not guess
    const [, op = '', ver] = m;
    const b = parts(ver!);
    const d = cmp(v, b);
    switch (op) {
      case '>=':
        return d >= 0;
      case '>':
        return d > 0;
      case '<=':
        return d <= 0;
      case '<':
        return d < 0;
      case '^':
        return d >= 0 && v[0] === b[0];
      case '~':
        return d >= 0 && v[0] === b[0] && v[1] === b[1];
      default:
        return ver!.split('.').length < 3 ? v[0] === b[0] : d === 0;
    }
  };
  return range.split('||').some((alt) => {
    const a = alt
      .trim()
      .replace(/^([\dx.*]+)\s+-\s+([\dx.*]+)$/, '>=$1 <=$2')
      .replace(/(>=|<=|>|<|=|\^|~)\s+/g, '$1');
    return a === '' || a === '*' || a.split(/\s+/).every(one);
  });
}

describe('Dockerfile', () => {
  test.each(WORKSPACES)("BuildKit's checks pass for WORKSPACE=%s, and every COPY source is in the build context", (workspace) => {
    mustRun('dockerfile-lint', ['-build-arg', `WORKSPACE=${workspace}`, '-context', ROOT, DOCKERFILE]);
  });

  test('pins its frontend and turns every check warning into a build error', () => {
    expect(text).toMatch(/^# syntax=docker\/dockerfile:1\.\d+\n/);
    expect(text).toMatch(/^# check=error=true$/m);
  });

  test('every base image is pinned to an exact release (no latest, no floating major)', () => {
    const defaults = Object.fromEntries(globalArgs.map((a) => a.args[0]!.split('=')));
    for (const s of stages) {
      if (stages.some((o) => o.name === s.base)) continue; // built on an earlier stage
      const image = s.base.replace(/^\$\{(\w+)\}$/, (_, n) => defaults[n] ?? '');
      expect({ stage: s.name, image }).toEqual({ stage: s.name, image: expect.stringMatching(/^[\w./-]+:\d+\.\d+\.\d+-[\w.-]+$/) });
    }
  });

  test("the image's Node satisfies the engines of every production dependency", () => {
    const image = Object.fromEntries(globalArgs.map((a) => a.args[0]!.split('='))).NODE_IMAGE as string;
    const nodeVersion = /^node:(\d+\.\d+\.\d+)/.exec(image)![1]!;
    const seen = new Map<string, string>();
    const visit = (name: string) => {
      if (seen.has(name)) return;
      const file = join(ROOT, 'node_modules', name, 'package.json');
      if (!existsSync(file)) return;
      const manifest = JSON.parse(readFileSync(file, 'utf8'));
      seen.set(name, manifest.engines?.node ?? '');
      for (const dep of Object.keys({ ...manifest.dependencies, ...manifest.optionalDependencies })) visit(dep);
    };
    for (const w of WORKSPACES) {
      const manifest = JSON.parse(readFileSync(join(ROOT, w, 'package.json'), 'utf8'));
      for (const dep of Object.keys(manifest.dependencies ?? {})) visit(dep);
    }
    const unmet = [...seen].filter(([, range]) => range && !satisfies(nodeVersion, range)).map(([n, r]) => `${n} needs node ${r}`);
    expect({ nodeVersion, unmet }).toEqual({ nodeVersion, unmet: [] });
    expect(seen.size).toBeGreaterThan(50);
  });

  test('installs from the lockfile manifests of every workspace, before any source is copied', () => {
    const copied = stage('manifests')
      .instructions.filter((i) => i.instruction === 'COPY')
      .flatMap((i) => i.args.slice(0, -1));
    expect(copied).toEqual(['package.json', 'package-lock.json', ...(rootPackage.workspaces as string[]).map((w) => `${w}/package.json`)]);
  });

  test('the runtime holds only production dependencies of one workspace, and the packages it loads', () => {
    const deps = runs(stage('deps')).join('\n');
    expect(deps).toMatch(/npm install --omit=dev --workspace="\$\{WORKSPACE\}" --ignore-scripts/);
    const assemble = runs(stage('build')).find((r) => r.includes('/out'))!;
    const shipped = /for ws in ([^;]+);/
      .exec(assemble)![1]!
      .split(/\s+/)
      .filter((w) => w.startsWith('packages/'));
    for (const w of WORKSPACES) {
      const needed = [...runtimePackages(w)];
      expect({ workspace: w, missing: needed.filter((p) => !shipped.includes(p)) }).toEqual({ workspace: w, missing: [] });
    }
    expect(shipped).not.toContain('packages/testing');
    // Subgraphs read ../src/schema.graphql from dist; the gateway has a default supergraph.
    expect(assemble).toContain('src/schema.graphql');
    expect(assemble).toContain('supergraph.graphql');
    for (const w of WORKSPACES.filter((x) => x.startsWith('services/'))) {
      expect(readFileSync(join(ROOT, w, 'src/main.ts'), 'utf8')).toContain("join(__dirname, '../src/schema.graphql')");
    }
  });

  test('the runtime stage copies nothing from the build context: only built output from earlier stages', () => {
    for (const i of runtime.instructions.filter((x) => ['COPY', 'ADD'].includes(x.instruction))) {
      expect({ line: i.line, from: i.flags.find((f) => f.startsWith('--from=')) }).toEqual({ line: i.line, from: expect.any(String) });
    }
  });

  test('runs as a numeric non-root user with tini as PID 1 and telemetry preloaded, listening on every interface of the pod', () => {
    const last = (name: string) => runtime.instructions.filter((i) => i.instruction === name).at(-1)!;
    const [uid, gid] = last('USER').args[0]!.split(':').map(Number);
    expect(uid).toBeGreaterThan(0);
    expect(gid).toBeGreaterThan(0);
    expect(last('ENTRYPOINT')).toMatchObject({ json: true, args: ['/usr/bin/tini', '--'] });
    const cmd = last('CMD');
    expect(cmd.json).toBe(true);
    expect(cmd.args[0]).toBe('node');
    expect(cmd.args.join(' ')).toContain('--require @flywheel/service-kit/telemetry');
    expect(cmd.args.at(-1)).toBe('dist/main.js');
    expect(
      runtime.instructions.some(
        (i) => i.instruction === 'ENV' && i.args.join(' ').includes('NODE_ENV') && i.args.join(' ').includes('production'),
      ),
    ).toBe(true);
    // The processes listen on loopback by default (laptops); a container must listen on every interface.
    expect(runtime.instructions.some((i) => i.instruction === 'ENV' && /\bHOST=0\.0\.0\.0(\s|$)/.test(i.original))).toBe(true);
    // The telemetry entry the CMD preloads exists and is what main.ts imports first.
    const kit = JSON.parse(readFileSync(join(ROOT, 'packages/service-kit/package.json'), 'utf8'));
    expect(kit.exports['./telemetry']).toBeDefined();
    for (const w of WORKSPACES) {
      const main = readFileSync(join(ROOT, w, 'src/main.ts'), 'utf8');
      expect({ w, first: main.split('\n').find((l) => l.startsWith('import')) }).toEqual({
        w,
        first: "import '@flywheel/service-kit/telemetry';",
      });
    }
  });

  test('system packages are pinned, without recommends, and the package lists do not stay in the image', () => {
    for (const s of stages) {
      for (const r of runs(s).filter((x) => x.includes('apt-get install'))) {
        expect(r).toContain('--no-install-recommends');
        expect(r).toMatch(/apt-get install[^&]*\s[a-z0-9.+-]+=[\w.+~:-]+/);
        expect(r).toContain('rm -rf /var/lib/apt/lists/*');
      }
    }
  });

  test('.dockerignore is an allow-list that keeps host builds, data, tools and secrets out', () => {
    const lines = readFileSync(join(ROOT, '.dockerignore'), 'utf8')
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l && !l.startsWith('#'));
    expect(lines[0]).toBe('*');
    for (const p of ['**/node_modules', '**/dist', '**/*.tsbuildinfo', '**/.env*']) expect(lines).toContain(p);
    const allowed = lines.filter((l) => l.startsWith('!')).map((l) => l.slice(1).replace(/\/$/, ''));
    for (const p of allowed)
      expect(['package.json', 'package-lock.json', 'tsconfig.json', 'tsconfig.base.json', 'packages', 'services', 'gateway']).toContain(p);
  });
});
