/**
 * A banned-words filter (敏感词): matching ignores case, full-width forms, spaces, punctuation and
 * zero-width characters between the letters, so "微 信", "ＷＥＩＸＩＮ" and "we.ixin" match "微信" and
 * "weixin". One filter per word list; build it again when the list changes.
 */
export interface WordFilter {
  /** The first banned word the text contains, or null. */
  find(text: string): string | null;
  readonly size: number;
}

// Letters and digits of any script survive; everything else (spaces, punctuation, symbols,
// zero-width joiners, emoji) is dropped before matching.
const normalize = (s: string) =>
  s
    .normalize('NFKC')
    .toLowerCase()
    .replace(/[^\p{L}\p{N}]+/gu, '');

export function createWordFilter(words: readonly string[]): WordFilter {
  const list = [...new Set(words.map((w) => ({ word: w, key: normalize(w) })).filter((w) => w.key.length > 0))];
  return {
    size: list.length,
    find(text: string) {
      const key = normalize(text);
      for (const w of list) if (key.includes(w.key)) return w.word;
      return null;
    },
  };
}
