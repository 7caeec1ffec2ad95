import { createHash, randomBytes, randomInt, randomUUID, scrypt as scryptCb, timingSafeEqual } from 'node:crypto';
import { promisify } from 'node:util';
import { Types } from 'mongoose';
import {
  AppError,
  appendToLedger,
  badInput,
  byIdLoader,
  claimOnce,
  decryptPii,
  encryptPii,
  findByIds,
  forbidden,
  isDuplicateKey,
  isSelfOrStaff,
  isStaff,
  ledgerHead,
  lookupHash,
  outboxRecord,
  paginate,
  requireRole,
  signJwt,
  text,
  type BaseContext,
  type PageArgs,
  type PiiKeys,
  type Role,
  type Viewer,
} from '@flywheel/service-kit';
import type { LoginCodeDoc, MemberDoc, Models, StaffDoc, StaffRole } from './model';

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
  /** Codes per phone per UTC day at the base interval; later ones wait longer and longer (never refused for the day). */
  codesPerDay: number;
  codeIntervalSeconds: number;
  /** The longest wait between two codes for one phone: what bounds a member's wait for a fresh code. */
  codeMaxIntervalSeconds: number;
  /** Wrong passwords per staff account per window before the account answers RATE_LIMITED until the window ends. */
  staffLoginMaxFailures: number;
  staffLoginWindowSeconds: number;
  /** Asks the outbox relay to publish now rather than at its next tick. */
  kick: () => void;
  now?: () => Date;
}

/** Comparisons a login code ever gets: its chance of falling to guessing is at most 5 in 10^6. */
const MAX_CODE_ATTEMPTS = 5;
/**
 * Live codes a guess is compared with, newest first. Production issues at most TTL / interval
 * (5) in a code's lifetime; the cap keeps a guess's work bounded when the interval is set short.
 */
const MAX_LIVE_CODES = 5;

/**
 * A member's nickname until they choose one: derived from the member id, never from the phone
 * (a nickname is public: whoever holds a member's invite code sees the inviter's). Letters only
 * (no I or O), so not even a digit of it can coincide with the phone's.
 */
export function defaultNickname(memberId: string): string {
  const letters = 'ABCDEFGHJKLMNPQRSTUVWXYZ';
  const h = createHash('sha256').update(`nickname:${memberId}`).digest();
  return `会员${Array.from(h.subarray(0, 6), (b) => letters[b % letters.length]).join('')}`;
}
/** The default nickname of members registered before it stopped carrying the phone's last four digits. */
const PHONE_NICKNAME = '^会员[0-9]{4}$';

/** The per-phone, per-UTC-day ledger of login codes a code belongs to. */
const codeDay = (phoneHash: string, t: Date) => `${phoneHash}:${t.toISOString().slice(0, 10)}`;

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
  // Told apart so an app can say "request a new code" rather than "check the digits".
  const deadCode = () =>
    new AppError('UNAUTHENTICATED', 'Too many wrong attempts at this login code; request a new one', {
      reason: 'ATTEMPTS_EXHAUSTED',
    });

  function parsePhone(raw: string): string {
    const phone = normalizePhone(raw);
    if (!phone) throw badInput('Enter a valid mainland mobile number (11 digits starting with 1)', 'phone');
    return phone;
  }

  /** Takes the first free slot of `limit` by unique insert (exact under concurrency); its id, or null when none is left. */
  async function takeSlot(prefix: string, limit: number): Promise<string | null> {
    for (let n = 1; n <= limit; n++) {
      const _id = `${prefix}:${n}`;
      if (await claimOnce(models.Claim, { _id, at: now() })) return _id;
    }
    return null;
  }

  /**
   * How long a phone waits after its `issued`-th code of a UTC day before the next: the base
   * interval for the first `codesPerDay`, then doubling up to the maximum. There is no daily
   * refusal: a hard cap is a lock-out anyone can trigger by requesting codes for a stranger's
   * phone, while doubling bounds the SMS a phone can be sent (about codesPerDay + 24 h / max a
   * day) and keeps the member's wait for a fresh code at most `codeMaxIntervalSeconds`.
   */
  function waitAfter(issued: number): number {
    const extra = issued - deps.codesPerDay + 1;
    if (extra <= 0) return deps.codeIntervalSeconds;
    return Math.min(deps.codeMaxIntervalSeconds, deps.codeIntervalSeconds * 2 ** Math.min(extra, 30));
  }

  /** A staff account's token carries its role (STAFF or HOST), read at every sign-in and refresh. */
  async function issueTokens(
    subjectId: string,
    kind: 'member' | 'staff',
    staffRole: StaffRole = 'STAFF',
  ): Promise<{ accessToken: string; refreshToken: string; expiresAt: Date; session: SessionShape }> {
    const roles: Role[] = kind === 'staff' ? [staffRole] : ['CUSTOMER'];
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
      nickname: defaultNickname(_id.toHexString()),
      tier: 'REGULAR',
      registeredAt,
      ...(invitedByCode ? { invitedByCode } : {}),
      outbox: outboxRecord(
        'membership.member.registered',
        {
          memberId: _id.toHexString(),
          registeredAt: registeredAt.toISOString(),
          ...(invitedByCode ? { invitedByCode } : {}),
          // Referral's same-phone fraud rule: a keyed hash under its own label, never the phone
          // and never `phoneHash` (the members' index), so the two cannot be joined without the key.
          phoneHash: lookupHash(pii, `referral-fraud\0${phone}`),
        },
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

  /**
   * The phone's unexpired codes, newest first, at most MAX_LIVE_CODES: read by `_id` down from the
   * head of today's code ledger (and yesterday's, for a code sent just before midnight), never by
   * a filter on `phoneHash` — the collection keeps every code ever sent, and FerretDB would scan it.
   */
  async function liveCodes(phoneHash: string, at: Date): Promise<LoginCodeDoc[]> {
    const live: LoginCodeDoc[] = [];
    // Today, and yesterday only while a code sent before midnight can still be live.
    const days = new Set([at, new Date(at.getTime() - deps.codeTtlSeconds * 1000)].map((t) => codeDay(phoneHash, t)));
    for (const accountId of days) {
      const head = await ledgerHead(models.LoginCode, accountId);
      const seqs: number[] = [];
      for (let seq = head?.seq ?? 0; seq >= 1 && seqs.length < MAX_LIVE_CODES - live.length; seq--) seqs.push(seq);
      const entries = await findByIds<LoginCodeDoc>(
        models.LoginCode,
        seqs.map((n) => `${accountId}:${n}`),
      );
      // Newest first; a code is live until it expires, and codes of one day expire in order.
      for (const e of entries.sort((a, b) => b.seq - a.seq)) {
        if (e.expiresAt <= at) break;
        live.push(e);
      }
    }
    return live;
  }

  /** Inserts a staff account unless the email has one: the account with that email, and whether this call created it. */
  async function insertStaff(email: string, name: string, password: string, role: StaffRole): Promise<{ doc: StaffDoc; created: boolean }> {
    const normalized = email.trim().toLowerCase();
    const found = await models.Staff.findOne({ email: normalized }).lean();
    if (found) return { doc: found, created: false };
    const passwordHash = await hashPassword(password);
    const doc: StaffDoc = { _id: new Types.ObjectId(), email: normalized, name, passwordHash, role, createdAt: now() };
    try {
      await models.Staff.create(doc);
      return { doc, created: true };
    } catch (err) {
      if (!isDuplicateKey(err)) throw err;
      return { doc: (await models.Staff.findOne({ email: normalized }).lean()) as StaffDoc, created: false };
    }
  }

  return {
    /**
     * Sends a code to the phone. Anyone may ask for any phone, so nothing a request does may
     * lock the phone's owner out: every code sent stays valid until it expires (a stranger's
     * request sends the member one more working code instead of replacing theirs), and the
     * per-phone limit only spaces codes out (see `waitAfter`) instead of refusing them for the
     * rest of the day.
     */
    async requestLoginCode(rawPhone: string): Promise<{ retryAfterSeconds: number; devCode: string | null }> {
      const phone = parsePhone(rawPhone);
      const phoneHash = lookupHash(pii, phone);
      const at = now();
      const accountId = codeDay(phoneHash, at);
      // Just after midnight the wait runs from yesterday's last code (at the base interval), so
      // the day boundary is not a free extra code.
      const previous =
        (await ledgerHead(models.LoginCode, accountId)) ??
        (await ledgerHead(models.LoginCode, codeDay(phoneHash, new Date(at.getTime() - 86_400_000))));
      const code = String(randomInt(0, 1_000_000)).padStart(6, '0');
      let waitMs = 0;
      // The code entry is the claim: of concurrent requests one inserts `seq + 1`, the others
      // re-read the head it wrote and are refused against it.
      const entry = await appendToLedger(models.LoginCode, accountId, (head) => {
        const last = head ?? previous;
        const wait = head ? waitAfter(head.seq) : deps.codeIntervalSeconds;
        waitMs = last ? last.createdAt.getTime() + wait * 1000 - at.getTime() : 0;
        if (waitMs > 0) return null;
        return {
          phoneHash,
          codeHash: sha256(`${phoneHash}:${code}`),
          createdAt: at,
          expiresAt: new Date(at.getTime() + deps.codeTtlSeconds * 1000),
        };
      });
      if (!entry) {
        throw new AppError('RATE_LIMITED', 'A code was sent to this number recently; try again shortly', {
          retryAfterSeconds: Math.ceil(waitMs / 1000),
        });
      }
      await deps.codes.send(phone, code);
      return { retryAfterSeconds: waitAfter(entry.seq), devCode: deps.codes.returnsCode ? code : null };
    },

    /**
     * A guess is a claim before it is compared: it takes one of a code's MAX_CODE_ATTEMPTS slots
     * by unique insert, and only a guess holding a slot is compared, so however many guesses
     * arrive at once a code is compared at most MAX_CODE_ATTEMPTS times (the right one needs a
     * slot too). A code with no slot left is dead. Every live code of the phone is tried, newest
     * first, because a stranger's request must not invalidate the code the member is typing.
     */
    async login(input: { phone: string; code: string; inviteCode?: string | null }) {
      const phone = parsePhone(input.phone);
      if (!/^\d{6}$/.test(input.code)) throw badInput('The login code is 6 digits', 'code');
      const phoneHash = lookupHash(pii, phone);
      const live = await liveCodes(phoneHash, now());
      const given = Buffer.from(sha256(`${phoneHash}:${input.code}`));
      let compared = false;
      for (const candidate of live) {
        const codeId = String(candidate._id);
        if (!(await takeSlot(`code:${codeId}:try`, MAX_CODE_ATTEMPTS))) continue;
        compared = true;
        const stored = Buffer.from(candidate.codeHash);
        if (given.length !== stored.length || !timingSafeEqual(given, stored)) continue;
        if (!(await claimOnce(models.Claim, { _id: `code:${codeId}:used`, at: now() }))) throw invalidCode();
        const member = await findOrRegister(phone, phoneHash, input.inviteCode);
        return issueTokens(member._id.toHexString(), 'member');
      }
      throw live.length > 0 && !compared ? deadCode() : invalidCode();
    },

    /**
     * Throttled per account (the normalised email, whether or not an account has it, so the
     * answer says nothing about which emails exist): an attempt takes one of
     * `staffLoginMaxFailures` slots of the current window by unique insert before the password
     * is checked, so concurrent wrong passwords are counted exactly; a right password gives its
     * slot back. With no slot left the account answers RATE_LIMITED until the window ends: a
     * stranger can hold an account off for a window at a time, never permanently, and gets at
     * most that many guesses per window.
     */
    async staffLogin(email: string, password: string) {
      const normalized = email.trim().toLowerCase();
      const at = now();
      const windowMs = deps.staffLoginWindowSeconds * 1000;
      const window = Math.floor(at.getTime() / windowMs);
      const slot = await takeSlot(`staff:${lookupHash(pii, normalized)}:${window}:try`, deps.staffLoginMaxFailures);
      if (!slot) {
        throw new AppError('RATE_LIMITED', 'Too many failed sign-ins for this account; try again later', {
          retryAfterSeconds: Math.ceil(((window + 1) * windowMs - at.getTime()) / 1000),
        });
      }
      const staff = await models.Staff.findOne({ email: normalized }).lean();
      // Same answer and similar work whether the account exists or not.
      const ok = await verifyPassword(
        password,
        staff?.passwordHash ?? 'AAAAAAAAAAAAAAAAAAAAAA.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA',
      );
      if (!staff || !ok) throw new AppError('UNAUTHENTICATED', 'Invalid email or password');
      await models.Claim.deleteOne({ _id: slot });
      return issueTokens(staff._id.toHexString(), 'staff', staff.role ?? 'STAFF');
    },

    async refreshSession(refreshToken: string) {
      const id = sha256(refreshToken);
      const stored = await models.RefreshToken.findById(id).lean();
      if (!stored || stored.expiresAt <= now()) throw new AppError('UNAUTHENTICATED', 'Refresh token is invalid or expired');
      // Single use: the first exchange wins; a replayed token is refused.
      if (!(await claimOnce(models.Claim, { _id: `refresh:${id}:used`, at: now() }))) {
        throw new AppError('UNAUTHENTICATED', 'Refresh token was already used');
      }
      if (stored.kind === 'member') return issueTokens(stored.subjectId, 'member');
      const staff = await models.Staff.findById(stored.subjectId, { role: 1 }).lean();
      if (!staff) throw new AppError('UNAUTHENTICATED', 'The staff account no longer exists');
      return issueTokens(stored.subjectId, 'staff', staff.role ?? 'STAFF');
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
      if (!isSelfOrStaff(viewer, member._id.toHexString())) return null;
      return maskPhone(decryptPii(pii, member.phoneEnc));
    },

    sessionOf(viewer: Viewer | null): SessionShape {
      return {
        roles: viewer?.roles ?? [],
        memberId: viewer?.roles.includes('CUSTOMER') ? viewer.id : null,
        staffId: viewer?.roles.includes('STAFF') || viewer?.roles.includes('HOST') ? viewer.id : null,
      };
    },

    assertStaff(viewer: Viewer | null) {
      if (!isStaff(viewer)) throw forbidden('STAFF role required');
    },

    /**
     * Renames members still carrying the old default nickname (`会员` + the phone's last four
     * digits) to the id-derived one. Run at every start-up before the server listens: a read
     * finding nothing once done, and it also catches members registered by an old replica while
     * a rolling deploy was under way. Exact: only a nickname equal to the old default for that
     * member's own phone changes, so a chosen `会员2024` stays. One write by `_id` per member.
     */
    async renamePhoneNicknames(): Promise<number> {
      let renamed = 0;
      const cursor = models.Member.find({ nickname: { $regex: PHONE_NICKNAME } }, { _id: 1, nickname: 1, phoneEnc: 1 })
        .lean()
        .cursor();
      for await (const m of cursor) {
        if (m.nickname !== `会员${decryptPii(pii, m.phoneEnc).slice(-4)}`) continue;
        await models.Member.updateOne({ _id: m._id, nickname: m.nickname }, { $set: { nickname: defaultNickname(m._id.toHexString()) } });
        renamed++;
      }
      return renamed;
    },

    /** Creates a staff account if the email is new (used by seeding and operators' tooling). */
    async ensureStaff(email: string, name: string, password: string, role: StaffRole = 'STAFF'): Promise<StaffDoc> {
      return (await insertStaff(email, name, password, role)).doc;
    },

    /** Staff only: a new STAFF or HOST (主播) account; an email in use is CONFLICT (the unique email is the claim). */
    async createStaffAccount(
      viewer: Viewer | null,
      input: { email: string; password: string; name: string; role?: StaffRole | null },
    ): Promise<StaffDoc> {
      requireRole(viewer, 'STAFF');
      const email = text(input.email, 'email', 254).toLowerCase();
      if (!/^[^\s@]+@[^\s@]+\.[^\s@]+$/.test(email)) throw badInput('Enter a valid email address', 'email');
      const name = text(input.name, 'name', 50);
      if ([...input.password].length < 12 || input.password.length > 200)
        throw badInput('The password is 12 to 200 characters', 'password');
      const role = input.role ?? 'STAFF';
      if (role !== 'STAFF' && role !== 'HOST') throw badInput('The role is STAFF or HOST', 'role');
      const { doc, created } = await insertStaff(email, name, input.password, role);
      if (!created) throw new AppError('CONFLICT', 'A staff account with this email already exists');
      return doc;
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
