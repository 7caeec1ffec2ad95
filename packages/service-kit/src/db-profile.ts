import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Connection } from 'mongoose';

/**
 * Development aid: with `DB_PROFILE_DIR` set, every database command's duration is summed by
 * collection, command and filter shape (field names only, never values) and written to
 * `<dir>/<db>.json` every few seconds — how a bench finds which query the time goes to.
 */
export function profileCommands(conn: Connection, dbName: string, dir: string | undefined): void {
  if (!dir) return;
  const stats = new Map<string, { n: number; ms: number; max: number }>();
  const started = new Map<number, { key: string; at: number }>();
  const client = conn.getClient();
  client.on('commandStarted', (e) => {
    const cmd = e.command as Record<string, unknown>;
    const collection = String(cmd[e.commandName] ?? '');
    const filter = (cmd.filter ??
      cmd.query ??
      (Array.isArray(cmd.updates) ? (cmd.updates[0] as { q?: unknown })?.q : undefined) ??
      (Array.isArray(cmd.deletes) ? (cmd.deletes[0] as { q?: unknown })?.q : undefined)) as Record<string, unknown> | undefined;
    const shape = filter ? Object.keys(filter).sort().join(',') : '';
    started.set(e.requestId, { key: `${collection} ${e.commandName} {${shape}}`, at: performance.now() });
  });
  const done = (e: { requestId: number }) => {
    const s = started.get(e.requestId);
    if (!s) return;
    started.delete(e.requestId);
    const ms = performance.now() - s.at;
    const row = stats.get(s.key) ?? { n: 0, ms: 0, max: 0 };
    row.n++;
    row.ms += ms;
    row.max = Math.max(row.max, ms);
    stats.set(s.key, row);
  };
  client.on('commandSucceeded', done);
  client.on('commandFailed', done);
  const flush = () => {
    const rows = [...stats.entries()]
      .map(([key, r]) => ({ key, n: r.n, totalMs: Math.round(r.ms), avgMs: +(r.ms / r.n).toFixed(2), maxMs: Math.round(r.max) }))
      .sort((a, b) => b.totalMs - a.totalMs);
    writeFileSync(join(dir, `${dbName}.json`), JSON.stringify(rows, null, 1));
  };
  setInterval(flush, 3_000).unref();
}
