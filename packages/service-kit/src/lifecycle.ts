import type { Logger } from './logger';

export interface ShutdownStep {
  name: string;
  run: () => Promise<unknown>;
}

/**
 * Runs shutdown steps in order (stop accepting → finish in-flight → drain NATS → close mongo →
 * flush telemetry), bounded in time, once, on SIGTERM or SIGINT. Returns the trigger for tests.
 */
export function onShutdown(logger: Logger, steps: ShutdownStep[], timeoutMs: number): (signal: string) => Promise<void> {
  let started: Promise<void> | null = null;
  const shutdown = (signal: string) => {
    started ??= (async () => {
      logger.info({ signal }, 'shutting down');
      const deadline = setTimeout(() => {
        logger.error({ timeoutMs }, 'shutdown timed out; exiting');
        process.exit(1);
      }, timeoutMs);
      deadline.unref();
      for (const step of steps) {
        try {
          await step.run();
        } catch (err) {
          logger.warn({ err, step: step.name }, 'shutdown step failed');
        }
      }
      clearTimeout(deadline);
      logger.info('stopped');
    })();
    return started;
  };
  for (const sig of ['SIGTERM', 'SIGINT'] as const) {
    process.once(sig, () => void shutdown(sig).then(() => process.exit(0)));
  }
  return shutdown;
}

/** A process entry point: starts it, and turns a start-up failure into one message and exit 1. */
export function runMain(name: string, start: () => Promise<unknown>): void {
  start().catch((err: unknown) => {
    process.stderr.write(`${name} failed to start: ${(err as Error).stack ?? String(err)}\n`);
    process.exit(1);
  });
}
