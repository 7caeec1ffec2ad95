import { createCipheriv, createDecipheriv, createHmac, randomBytes } from 'node:crypto';

// PII at rest (docs/architecture.md, privacy): AES-256-GCM with a key from a secret, and a keyed hash
// (HMAC-SHA256 with a separate key) for equality look-ups such as "member by phone".

export interface PiiKeys {
  encryptionKey: Buffer; // 32 bytes
  lookupKey: Buffer;
}

/** Keys are given as base64 (32 bytes each) in configuration. */
export function piiKeys(encryptionKeyB64: string, lookupKeyB64: string): PiiKeys {
  const encryptionKey = Buffer.from(encryptionKeyB64, 'base64');
  const lookupKey = Buffer.from(lookupKeyB64, 'base64');
  if (encryptionKey.length !== 32) throw new Error('PII encryption key must be 32 bytes (base64)');
  if (lookupKey.length < 32) throw new Error('PII lookup key must be at least 32 bytes (base64)');
  return { encryptionKey, lookupKey };
}

/**
 * The encryption key alone, for a service that stores personal data but never looks it up by
 * value (orders keeps an order's shipping address: no keyed hash, so no lookup key to hold).
 */
export type PiiCipherKey = Pick<PiiKeys, 'encryptionKey'>;

export function piiCipherKey(encryptionKeyB64: string): PiiCipherKey {
  const encryptionKey = Buffer.from(encryptionKeyB64, 'base64');
  if (encryptionKey.length !== 32) throw new Error('PII encryption key must be 32 bytes (base64)');
  return { encryptionKey };
}

/** `v1.<iv>.<tag>.<ciphertext>`, base64url parts; the version prefix leaves room for key rotation. */
export function encryptPii(keys: PiiCipherKey, plaintext: string): string {
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', keys.encryptionKey, iv);
  const ct = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
  return ['v1', iv.toString('base64url'), cipher.getAuthTag().toString('base64url'), ct.toString('base64url')].join('.');
}

export function decryptPii(keys: PiiCipherKey, sealed: string): string {
  const [v, iv, tag, ct] = sealed.split('.');
  if (v !== 'v1' || !iv || !tag || ct === undefined) throw new Error('unrecognised PII ciphertext');
  // A full 16-byte tag only: Node would otherwise accept truncated tags, which weakens forgery resistance.
  const decipher = createDecipheriv('aes-256-gcm', keys.encryptionKey, Buffer.from(iv, 'base64url'), { authTagLength: 16 });
  decipher.setAuthTag(Buffer.from(tag, 'base64url'));
  return Buffer.concat([decipher.update(Buffer.from(ct, 'base64url')), decipher.final()]).toString('utf8');
}

export function lookupHash(keys: PiiKeys, value: string): string {
  return createHmac('sha256', keys.lookupKey).update(value).digest('base64url');
}
