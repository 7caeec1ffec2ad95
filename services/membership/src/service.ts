import { createHash, randomBytes, randomInt, randomUUID, scrypt as scryptCb, timingSafeEqual } from 'node:crypto';
import { promisify } from 'node:util';
import { Types } from 'mongoose';
import {
  AppError,
  badInput,
  byIdLoader,
  claimOnce,
  decryptPii,
  encryptPii,
  forbidden,
  isDuplicateKey,
  lookupHash,
  outboxRecord,
  paginate,
  requireRole,
  signJwt,
  type BaseContext,
  type PageArgs,
  type PiiKeys,
  type Role,
  type Viewer,
} from '@flywheel/service-kit';
import type { MemberDoc, Models, StaffDoc } from './model';

const scrypt = promisify(scryptCb) as (pw: string, salt: Buffer, len: number) => Promise<Buffer>;

export const ACCESS_TOKEN_ISSUER = 'flywheel-membership';
export const ACCESS_TOKEN_AUDIENCE = 'flywheel-gateway';

/** Sends a login code. The development provider hands it back instead (never in production). */
export interface CodeSender {
  readonly returnsCode: boolean;
  send(phone: string, code: string): Promise<void>;
}
export const devCodeSender: CodeSender = { returnsCode: true, send: async () => undefined };
export const noCodeSender: CodeSender = {
  returnsCode: false,
  send: async () => {
    throw new AppError('UNAVAILABLE', 'No SMS provider is configured');
  },
};

export interface MembershipDeps {
  models: Models;
  pii: PiiKeys;
  codes: CodeSender;
  authSecret: string;
  accessTtlSeconds: number;
  refreshTtlSeconds: number;
  codeTtlSeconds: number;
  codesPerDay: number;
  codeIntervalSeconds: number;
  /** Asks the outbox relay to publish now rather than at its next tick. */
  kick: () => void;
  now?: () => Date;
}

const MAX_CODE_ATTEMPTS = 5;

/** Mainland mobile numbers, with or without +86 / 0086 and separators; null when not one. */
export function normalizePhone(raw: string): string | null {
  const digits = raw.replace(/[\s-]/g, '').replace(/^(\+86|0086)/, '');
  return /^1[3-9]\d{9}$/.test(digits) ? digits : null;
}
/** `MM-DD` or `YYYY-MM-DD` (the year is not kept) → `MM-DD`, a real calendar day. */
export function parseBirthday(raw: string): string {
  const m = /^(?:\d{4}-)?(\d{2})-(\d{2})$/.exec(raw.trim());
  const days = [31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31];
  if (!m || Number(m[1]) < 1 || Number(m[1]) > 12 || Number(m[2]) < 1 || Number(m[2]) > (days[Number(m[1]) - 1] ?? 0)) {
    throw badInput('Birthday is MM-DD (or YYYY-MM-DD), a real calendar day', 'birthday');
  }
  return `${m[1]}-${m[2]}`;
}
export const maskPhone = (phone: string) => `${phone.slice(0, 3)}****${phone.slice(-4)}`;

const sha256 = (s: string) => createHash('sha256').update(s).digest('base64url');

export async function hashPassword(password: string): Promise<string> {
  const salt = randomBytes(16);
  return `${salt.toString('base64url')}.${(await scrypt(password, salt, 32)).toString('base64url')}`;
}
async function verifyPassword(password: string, stored: string): Promise<boolean> {
  const [salt, hash] = stored.split('.');
  if (!salt || !hash) return false;
  const expected = Buffer.from(hash, 'base64url');
  const actual = await scrypt(password, Buffer.from(salt, 'base64url'), expected.length);
  return timingSafeEqual(actual, expected);
}

export interface SessionShape {
  roles: Role[];
  memberId: string | null;
  staffId: string | null;
}

export function createMembershipService(deps: MembershipDeps) {
  const { models, pii } = deps;
  const now = deps.now ?? (() => new Date());
  const invalidCode = () => new AppError('UNAUTHENTICATED', 'Invalid or expired login code');

  function parsePhone(raw: string): string {
    const phone = normalizePhone(raw);
    if (!phone) throw badInput('Enter a valid mainland mobile number (11 digits starting with 1)', 'phone');
    return phone;
  }

  /** Takes the first free slot of `limit` by unique insert: exact under concurrency. */
  async function takeSlot(prefix: string, limit: number): Promise<boolean> {
    for (let n = 1; n <= limit; n++) {
      if (await claimOnce(models.Claim, { _id: `${prefix}:${n}`, at: now() })) return true;
    }
    return false;
  }

  async function issueTokens(
    subjectId: string,
    kind: 'member' | 'staff',
  ): Promise<{ accessToken: string; refreshToken: string; expiresAt: Date; session: SessionShape }> {
    const roles: Role[] = kind === 'staff' ? ['STAFF'] : ['CUSTOMER'];
    const at = now();
    const accessToken = signJwt(
      { iss: ACCESS_TOKEN_ISSUER, aud: ACCESS_TOKEN_AUDIENCE, sub: subjectId, roles, typ: 'access' },
      deps.authSecret,
      deps.accessTtlSeconds,
      at.getTime(),
    );
    const refreshToken = `rt_${randomBytes(32).toString('base64url')}`;
    await models.RefreshToken.create({
      _id: sha256(refreshToken),
      subjectId,
      kind,
      createdAt: at,
      expiresAt: new Date(at.getTime() + deps.refreshTtlSeconds * 1000),
    });
    return {
      accessToken,
      refreshToken,
      expiresAt: new Date(at.getTime() + deps.accessTtlSeconds * 1000),
      session: { roles, memberId: kind === 'member' ? subjectId : null, staffId: kind === 'staff' ? subjectId : null },
    };
  }

  /** Registration is claimed by the unique phone hash; the event rides in the same insert. */
  async function findOrRegister(phone: string, phoneHash: string, inviteCode?: string | null): Promise<MemberDoc> {
    const existing = await models.Member.findOne({ phoneHash }).lean();
    if (existing) return existing;
    const _id = new Types.ObjectId();
    const registeredAt = now();
    const invitedByCode = inviteCode?.trim() || undefined;
    const doc: MemberDoc = {
      _id,
      phoneHash,
      phoneEnc: encryptPii(pii, phone),
      nickname: `会员${phone.slice(-4)}`,
      tier: 'REGULAR',
      registeredAt,
      ...(invitedByCode ? { invitedByCode } : {}),
      outbox: outboxRecord(
        'membership.member.registered',
        { memberId: _id.toHexString(), registeredAt: registeredAt.toISOString(), ...(invitedByCode ? { invitedByCode } : {}) },
        randomUUID(),
        registeredAt,
      ),
    };
    try {
      await models.Member.create(doc);
      deps.kick();
      return doc;
    } catch (err) {
      if (!isDuplicateKey(err)) throw err;
      const winner = await models.Member.findOne({ phoneHash }).lean();
      if (!winner) throw err;
      return winner;
    }
  }

  return {
    async requestLoginCode(rawPhone: string): Promise<{ retryAfterSeconds: number; devCode: string | null }> {
      const phone = parsePhone(rawPhone);
      const phoneHash = lookupHash(pii, phone);
      const at = now();
      const minute = Math.floor(at.getTime() / (deps.codeIntervalSeconds * 1000));
      if (!(await claimOnce(models.Claim, { _id: `code:${phoneHash}:interval:${minute}`, at }))) {
        const retry = deps.codeIntervalSeconds - Math.floor((at.getTime() / 1000) % deps.codeIntervalSeconds);
        throw new AppError('RATE_LIMITED', 'A code was just sent to this number; try again shortly', { retryAfterSeconds: retry });
      }
      const day = at.toISOString().slice(0, 10);
      if (!(await takeSlot(`code:${phoneHash}:day:${day}`, deps.codesPerDay))) {
        throw new AppError('RATE_LIMITED', 'Too many codes requested for this number today');
      }
      const code = String(randomInt(0, 1_000_000)).padStart(6, '0');
      await deps.codes.send(phone, code);
      await models.LoginCode.create({
        phoneHash,
        codeHash: sha256(`${phoneHash}:${code}`),
        createdAt: at,
        expiresAt: new Date(at.getTime() + deps.codeTtlSeconds * 1000),
      });
      return { retryAfterSeconds: deps.codeIntervalSeconds, devCode: deps.codes.returnsCode ? code : null };
    },

    async login(input: { phone: string; code: string; inviteCode?: string | null }) {
      const phone = parsePhone(input.phone);
      if (!/^\d{6}$/.test(input.code)) throw badInput('The login code is 6 digits', 'code');
      const phoneHash = lookupHash(pii, phone);
      const latest = await models.LoginCode.findOne({ phoneHash }).sort({ createdAt: -1 }).lean();
      if (!latest || latest.expiresAt <= now()) throw invalidCode();
      const codeId = latest._id.toHexString();
      const given = Buffer.from(sha256(`${phoneHash}:${input.code}`));
      if (given.length !== latest.codeHash.length || !timingSafeEqual(given, Buffer.from(latest.codeHash))) {
        // Each wrong guess takes one of a fixed number of slots; when none is left the code is dead.
        await takeSlot(`code:${codeId}:fail`, MAX_CODE_ATTEMPTS);
        throw invalidCode();
      }
      if (await models.Claim.exists({ _id: `code:${codeId}:fail:${MAX_CODE_ATTEMPTS}` })) throw invalidCode();
      if (!(await claimOnce(models.Claim, { _id: `code:${codeId}:used`, at: now() }))) throw invalidCode();
      const member = await findOrRegister(phone, phoneHash, input.inviteCode);
      return issueTokens(member._id.toHexString(), 'member');
    },

    async staffLogin(email: string, password: string) {
      const staff = await models.Staff.findOne({ email: email.trim().toLowerCase() }).lean();
      // Same answer and similar work whether the account exists or not.
      const ok = await verifyPassword(
        password,
        staff?.passwordHash ?? 'AAAAAAAAAAAAAAAAAAAAAA.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA',
      );
      if (!staff || !ok) throw new AppError('UNAUTHENTICATED', 'Invalid email or password');
      return issueTokens(staff._id.toHexString(), 'staff');
    },

    async refreshSession(refreshToken: string) {
      const id = sha256(refreshToken);
      const stored = await models.RefreshToken.findById(id).lean();
      if (!stored || stored.expiresAt <= now()) throw new AppError('UNAUTHENTICATED', 'Refresh token is invalid or expired');
      // Single use: the first exchange wins; a replayed token is refused.
      if (!(await claimOnce(models.Claim, { _id: `refresh:${id}:used`, at: now() }))) {
        throw new AppError('UNAUTHENTICATED', 'Refresh token was already used');
      }
      return issueTokens(stored.subjectId, stored.kind);
    },

    async updateProfile(viewer: Viewer | null, input: { nickname?: string | null; birthday?: string | null }) {
      const v = requireRole(viewer, 'CUSTOMER');
      const update: Partial<MemberDoc> = {};
      if (input.birthday !== undefined && input.birthday !== null) {
        const birthday = parseBirthday(input.birthday);
        const current = await models.Member.findById(v.id, { birthday: 1 }).lean();
        // Set once (a product rule: the gift is claimed once per year whatever the date says, but a
        // birthday that moves around would let a member pick the most convenient day).
        if (current?.birthday && current.birthday !== birthday) {
          throw new AppError('CONFLICT', 'The birthday was already set; ask customer service to correct it');
        }
        update.birthday = birthday;
      }
      if (input.nickname !== undefined && input.nickname !== null) {
        const nickname = input.nickname.trim();
        if (nickname.length < 1 || nickname.length > 30) throw badInput('Nickname must be 1 to 30 characters', 'nickname');
        update.nickname = nickname;
      }
      const member = await models.Member.findOneAndUpdate({ _id: v.id }, { $set: update }, { new: true }).lean();
      if (!member) throw new AppError('NOT_FOUND', 'Member not found');
      return member;
    },

    listMembers(viewer: Viewer | null, args: PageArgs) {
      requireRole(viewer, 'STAFF');
      return paginate(models.Member, {}, args);
    },

    /** The phone as the viewer may see it: masked for the member and staff, hidden from others. */
    phoneFor(viewer: Viewer | null, member: MemberDoc): string | null {
      const own = viewer?.roles.includes('CUSTOMER') && viewer.id === member._id.toHexString();
      if (!own && !viewer?.roles.includes('STAFF')) return null;
      return maskPhone(decryptPii(pii, member.phoneEnc));
    },

    sessionOf(viewer: Viewer | null): SessionShape {
      return {
        roles: viewer?.roles ?? [],
        memberId: viewer?.roles.includes('CUSTOMER') ? viewer.id : null,
        staffId: viewer?.roles.includes('STAFF') ? viewer.id : null,
      };
    },

    assertStaff(viewer: Viewer | null) {
      if (!viewer?.roles.includes('STAFF')) throw forbidden('STAFF role required');
    },

    /** Creates a staff account if the email is new (used by seeding and operators' tooling). */
    async ensureStaff(email: string, name: string, password: string): Promise<StaffDoc> {
      const normalized = email.trim().toLowerCase();
      const found = await models.Staff.findOne({ email: normalized }).lean();
      if (found) return found;
      const doc = { _id: new Types.ObjectId(), email: normalized, name, passwordHash: await hashPassword(password), createdAt: now() };
      try {
        await models.Staff.create(doc);
        return doc;
      } catch (err) {
        if (!isDuplicateKey(err)) throw err;
        return (await models.Staff.findOne({ email: normalized }).lean()) as StaffDoc;
      }
    },

    loaders() {
      return {
        member: byIdLoader(models.Member),
        staff: byIdLoader(models.Staff),
      };
    },
  };
}

export type MembershipService = ReturnType<typeof createMembershipService>;

export interface Context extends BaseContext {
  service: MembershipService;
  loaders: ReturnType<MembershipService['loaders']>;
}
