import type { JetStreamManager, StoredMsg } from 'nats';

/** Every message a stream holds right now, oldest first (read by sequence: exact, no consumer). */
export async function storedMessages(jsm: JetStreamManager, stream: string, subject?: string): Promise<StoredMsg[]> {
  const { state } = await jsm.streams.info(stream);
  const out: StoredMsg[] = [];
  if (!state.messages) return out;
  for (let seq = state.first_seq; seq <= state.last_seq; seq++) {
    const m = await jsm.streams.getMessage(stream, { seq }).catch(() => null); // deleted sequences
    if (m && (!subject || m.subject === subject)) out.push(m);
  }
  return out;
}

/** The envelope ids held by a stream (optionally on one subject), in stream order. */
export async function storedEventIds(jsm: JetStreamManager, stream: string, subject?: string): Promise<string[]> {
  return (await storedMessages(jsm, stream, subject)).map((m) => m.json<{ id: string }>().id);
}

export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
