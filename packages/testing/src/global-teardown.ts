export default async function globalTeardown(): Promise<void> {
  await Promise.all((globalThis.__flywheelInfra ?? []).map((p) => p.stop()));
}
