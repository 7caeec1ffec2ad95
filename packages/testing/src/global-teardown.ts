import { rmSync } from 'node:fs';

export default async function globalTeardown(): Promise<void> {
  await Promise.all((globalThis.__flywheelInfra ?? []).map((p) => p.stop()));
  // Data and process logs of the run; FLYWHEEL_KEEP_TEST_DIR=1 keeps them for a post-mortem.
  const dir = process.env.FLYWHEEL_TEST_DIR;
  if (dir && !process.env.FLYWHEEL_KEEP_TEST_DIR) rmSync(dir, { recursive: true, force: true });
}
