import { Types } from 'mongoose';
import { MemberSegment, MemberTier, type EventData } from '@flywheel/events';
import {
  AppError,
  appendOnce,
  appendToLedger,
  badInput,
  httpUrl,
  isObjectId,
  ledgerHead,
  optionalText,
  replaceById,
  requireObjectId,
  requireRole,
  text,
  wholeNumber,
  type Viewer,
} from '@flywheel/service-kit';
import type {
  ActivityDoc,
  ActivityEntry,
  ActivityFields,
  AudienceDoc,
  BannerDoc,
  LinkDoc,
  LinkKind,
  LiveRoomEntry,
  LiveTeaserDoc,
  MenuItemDoc,
  MerchandisingModels,
  MerchVersionEntry,
} from './model';
import type { MemberAudience } from '../audience/service';

// Navigation, home banners and the activity center (docs/concurrency.md): every save of a menu,
// of the banner set or of an activity is the next entry of its ledger, refused unless the editor
// saw the current head (`expectedVersion`), so two staff saving at once cannot interleave and the
// later one gets CONFLICT. Public reads take the head by `_id`. Live's room events land in a
// per-room op ledger (a redelivery is the same op: a no-op), whose head is copied to the teaser.

export const MERCH_LIMITS = {
  menuItems: 30,
  banners: 20,
  label: 40,
  title: 60,
  summary: 300,
  url: 2000,
  ids: 50,
  menuName: /^[A-Z][A-Z0-9_]{0,31}$/,
  activities: 100,
  upcoming: 50,
  /** An activity window may not span more than this. */
  windowDays: 366,
} as const;

const LINK_KINDS: readonly LinkKind[] = ['ARTICLE', 'PAGE', 'PRODUCT', 'LIVE_ROOM', 'ACTIVITY', 'EXTERNAL'];
const HOME = 'banners:HOME';

export interface LinkInput {
  kind: LinkKind;
  refId?: string | null;
  url?: string | null;
}
export interface MenuInput {
  name: string;
  expectedVersion: number;
  items: { label: string; link: LinkInput }[];
}
export interface BannerInput {
  id?: string | null;
  title: string;
  imageUrl: string;
  link: LinkInput;
  startsAt?: Date | string | null;
  endsAt?: Date | string | null;
  audience?: { kind: AudienceDoc['kind']; segment?: string | null; tier?: string | null } | null;
}
export interface ActivityInput {
  title: string;
  summary?: string | null;
  bannerUrl?: string | null;
  startsAt: Date | string;
  endsAt: Date | string;
  articleIds?: string[] | null;
  productIds?: string[] | null;
  couponTemplateIds?: string[] | null;
  liveRoomIds?: string[] | null;
}

export interface MenuShape {
  name: string;
  version: number;
  items: MenuItemDoc[];
  savedAt: Date | null;
}
export interface BannerSetShape {
  version: number;
  banners: BannerDoc[];
  savedAt: Date | null;
}
export type ActivityStatus = 'UPCOMING' | 'ONGOING' | 'ENDED';
export interface ActivityShape extends ActivityDoc {
  status: ActivityStatus;
  countdown: number;
}
export interface UpcomingLiveRoomShape {
  roomId: string;
  scheduledAt: Date;
  announcedAt: Date;
}

/** An https address (the kit's `httpUrl`, then https only). */
function httpsUrl(raw: string | null | undefined, field: string): string {
  const url = httpUrl(raw, field, MERCH_LIMITS.url);
  if (!url.startsWith('https://')) throw badInput('Only https URLs', field);
  return url;
}

function instant(raw: Date | string | null | undefined, field: string): Date | null {
  if (raw === null || raw === undefined) return null;
  const at = raw instanceof Date ? raw : new Date(raw);
  if (Number.isNaN(at.getTime())) throw badInput('Not a date-time', field);
  return at;
}

/** A window whose end is after its start (either may be open when `open`). */
function window(startsRaw: Date | string | null | undefined, endsRaw: Date | string | null | undefined, field: string) {
  const startsAt = instant(startsRaw, `${field}.startsAt`);
  const endsAt = instant(endsRaw, `${field}.endsAt`);
  if (startsAt && endsAt && endsAt.getTime() <= startsAt.getTime()) throw badInput('The window ends before it starts', `${field}.endsAt`);
  return { startsAt, endsAt };
}

export function checkLink(input: LinkInput | null | undefined, field: string): LinkDoc {
  if (!input || !LINK_KINDS.includes(input.kind)) throw badInput('Unknown link kind', `${field}.kind`);
  if (input.kind === 'EXTERNAL') {
    if (input.refId) throw badInput('An external link has no refId', `${field}.refId`);
    return { kind: 'EXTERNAL', refId: null, url: httpsUrl(input.url, `${field}.url`) };
  }
  if (input.url) throw badInput('Only an EXTERNAL link has a url', `${field}.url`);
  return { kind: input.kind, refId: requireObjectId(input.refId, `${field}.refId`), url: null };
}

function checkIds(ids: string[] | null | undefined, field: string): string[] {
  const list = ids ?? [];
  if (list.length > MERCH_LIMITS.ids) throw badInput(`At most ${MERCH_LIMITS.ids}`, field);
  return [...new Set(list.map((id, i) => requireObjectId(id, `${field}[${i}]`)))];
}

function checkAudience(input: BannerInput['audience'], field: string): AudienceDoc {
  if (!input || input.kind === 'ALL') {
    if (input?.segment || input?.tier) throw badInput('ALL takes no segment or tier', field);
    return { kind: 'ALL', segment: null, tier: null };
  }
  if (input.kind === 'SEGMENT') {
    if (!MemberSegment.safeParse(input.segment).success) throw badInput('Unknown member segment', `${field}.segment`);
    if (input.tier) throw badInput('A SEGMENT audience takes no tier', `${field}.tier`);
    return { kind: 'SEGMENT', segment: input.segment as string, tier: null };
  }
  if (input.kind === 'TIER') {
    if (!MemberTier.safeParse(input.tier).success) throw badInput('Unknown member tier', `${field}.tier`);
    if (input.segment) throw badInput('A TIER audience takes no segment', `${field}.segment`);
    return { kind: 'TIER', segment: null, tier: input.tier as string };
  }
  throw badInput('Unknown audience kind', `${field}.kind`);
}

export function checkActivity(input: ActivityInput): ActivityFields {
  const { startsAt, endsAt } = window(input.startsAt, input.endsAt, 'activity');
  if (!startsAt) throw badInput('Required', 'activity.startsAt');
  if (!endsAt) throw badInput('Required', 'activity.endsAt');
  if (endsAt.getTime() - startsAt.getTime() > MERCH_LIMITS.windowDays * 86_400_000) {
    throw badInput(`A window spans at most ${MERCH_LIMITS.windowDays} days`, 'activity.endsAt');
  }
  return {
    title: text(input.title, 'activity.title', MERCH_LIMITS.title),
    summary: optionalText(input.summary, 'activity.summary', MERCH_LIMITS.summary) ?? '',
    bannerUrl: input.bannerUrl ? httpsUrl(input.bannerUrl, 'activity.bannerUrl') : null,
    startsAt,
    endsAt,
    articleIds: checkIds(input.articleIds, 'activity.articleIds'),
    productIds: checkIds(input.productIds, 'activity.productIds'),
    couponTemplateIds: checkIds(input.couponTemplateIds, 'activity.couponTemplateIds'),
    liveRoomIds: checkIds(input.liveRoomIds, 'activity.liveRoomIds'),
  };
}

export function activityStatus(doc: Pick<ActivityFields, 'startsAt' | 'endsAt'>, at: Date): { status: ActivityStatus; countdown: number } {
  const t = at.getTime();
  if (t < doc.startsAt.getTime()) return { status: 'UPCOMING', countdown: Math.ceil((doc.startsAt.getTime() - t) / 1000) };
  if (t < doc.endsAt.getTime()) return { status: 'ONGOING', countdown: Math.ceil((doc.endsAt.getTime() - t) / 1000) };
  return { status: 'ENDED', countdown: 0 };
}

/** Whether a banner is in its window at `at`. */
export const bannerInWindow = (b: BannerDoc, at: Date) =>
  (!b.startsAt || b.startsAt.getTime() <= at.getTime()) && (!b.endsAt || at.getTime() < b.endsAt.getTime());

/** Whether a banner's audience takes in a viewer: ALL anyone; TIER / SEGMENT a member of that tier or segment. */
export function bannerFor(b: BannerDoc, member: MemberAudience | null): boolean {
  if (b.audience.kind === 'ALL') return true;
  if (!member) return false;
  return b.audience.kind === 'TIER' ? b.audience.tier === member.tier : b.audience.segment === member.segment;
}

/** Whether a banner is shown now to a viewer: an anonymous one (null) or a member as content knows them. */
export const bannerLive = (b: BannerDoc, at: Date, member: MemberAudience | null = null) => bannerInWindow(b, at) && bannerFor(b, member);

const conflict = (version: number) =>
  new AppError('CONFLICT', `Saved against version ${version}, which is no longer the current one`, { field: 'expectedVersion' });

const STATUS_RANK = { SCHEDULED: 0, LIVE: 1, ENDED: 2 } as const;

export interface MerchandisingDeps {
  models: MerchandisingModels;
  /** A member's tier and segment as content learnt them (the audience module). */
  audienceOf: (memberId: string) => Promise<MemberAudience>;
  now: () => Date;
}

export function createMerchandisingService(deps: MerchandisingDeps) {
  const { models, audienceOf, now } = deps;

  /** Appends the next version of `accountId` against `expected`, or CONFLICT. */
  async function saveVersion(
    model: typeof models.MerchVersion | typeof models.ActivityEntry,
    accountId: string,
    expected: number,
    body: Record<string, unknown>,
  ) {
    wholeNumber(expected, 'expectedVersion', 0, 1_000_000_000);
    const entry = await appendToLedger(model as typeof models.MerchVersion, accountId, (head) =>
      (head?.seq ?? 0) === expected ? (body as Omit<MerchVersionEntry, '_id' | 'accountId' | 'seq'>) : null,
    );
    if (!entry) throw conflict(expected);
    return entry;
  }

  const menuShape = (name: string, head: MerchVersionEntry | null): MenuShape => ({
    name,
    version: head?.seq ?? 0,
    items: head?.items ?? [],
    savedAt: head?.at ?? null,
  });
  const bannerShape = (head: MerchVersionEntry | null): BannerSetShape => ({
    version: head?.seq ?? 0,
    banners: head?.banners ?? [],
    savedAt: head?.at ?? null,
  });
  const activityShape = (doc: ActivityDoc, at: Date): ActivityShape => ({ ...doc, ...activityStatus(doc, at) });

  async function syncTeaser(roomId: string): Promise<void> {
    const head = await ledgerHead(models.LiveRoomEntry, `room:${roomId}`);
    if (head) {
      await replaceById(models.LiveTeaser, {
        _id: roomId,
        status: head.status,
        scheduledAt: head.scheduledAt,
        announcedAt: head.announcedAt,
      } satisfies LiveTeaserDoc);
    }
  }

  /** Applies one room event at most once (op ledger), merging it with what was known. */
  async function roomEvent(roomId: string, op: string, status: LiveRoomEntry['status'], scheduledAt: Date, at: Date): Promise<void> {
    await appendOnce(models.LiveRoomEntry, `room:${roomId}`, `${roomId}|${op}`, (head) => {
      const keep = head && STATUS_RANK[head.status] > STATUS_RANK[status];
      return {
        status: keep ? head.status : status,
        // A reschedule moves the time; a start or end keeps what was announced.
        scheduledAt: status === 'SCHEDULED' || !head ? scheduledAt : head.scheduledAt,
        announcedAt: status === 'SCHEDULED' || !head ? at : head.announcedAt,
        at,
      };
    });
    // Also after a repeat (a crash between the append and the copy): the copy is idempotent.
    await syncTeaser(roomId);
  }

  return {
    async menu(name: string): Promise<MenuShape> {
      if (!MERCH_LIMITS.menuName.test(name)) throw badInput('A menu name is uppercase letters, digits and _', 'menu');
      return menuShape(name, await ledgerHead(models.MerchVersion, `menu:${name}`));
    },

    async saveMenu(viewer: Viewer | null, input: MenuInput): Promise<MenuShape> {
      const staff = requireRole(viewer, 'STAFF');
      if (!MERCH_LIMITS.menuName.test(input.name)) throw badInput('A menu name is uppercase letters, digits and _', 'name');
      if (input.items.length > MERCH_LIMITS.menuItems) throw badInput(`At most ${MERCH_LIMITS.menuItems} items`, 'items');
      const items = input.items.map((item, i) => ({
        label: text(item.label, `items[${i}].label`, MERCH_LIMITS.label),
        link: checkLink(item.link, `items[${i}].link`),
      }));
      const entry = await saveVersion(models.MerchVersion, `menu:${input.name}`, input.expectedVersion, {
        items,
        savedBy: staff.id,
        at: now(),
      });
      return menuShape(input.name, entry as MerchVersionEntry);
    },

    async bannerSet(viewer: Viewer | null): Promise<BannerSetShape> {
      requireRole(viewer, 'STAFF');
      return bannerShape(await ledgerHead(models.MerchVersion, HOME));
    },

    /**
     * The banners in their window now, for the viewer: ALL ones for anyone, plus, for a signed-in
     * member, those targeted at their tier or segment; with `allAudiences` (staff only, a preview)
     * every audience's.
     */
    async homeBanners(viewer: Viewer | null, allAudiences?: boolean | null): Promise<BannerDoc[]> {
      if (allAudiences) requireRole(viewer, 'STAFF');
      const [head, member] = await Promise.all([
        ledgerHead(models.MerchVersion, HOME),
        viewer?.roles.includes('CUSTOMER') && !allAudiences ? audienceOf(viewer.id) : null,
      ]);
      const at = now();
      return bannerShape(head).banners.filter((b) => bannerInWindow(b, at) && (allAudiences || bannerFor(b, member)));
    },

    async saveBanners(viewer: Viewer | null, input: { expectedVersion: number; banners: BannerInput[] }): Promise<BannerSetShape> {
      const staff = requireRole(viewer, 'STAFF');
      if (input.banners.length > MERCH_LIMITS.banners) throw badInput(`At most ${MERCH_LIMITS.banners} banners`, 'banners');
      const seen = new Set<string>();
      const banners: BannerDoc[] = input.banners.map((b, i) => {
        const field = `banners[${i}]`;
        const id = b.id ? requireObjectId(b.id, `${field}.id`) : new Types.ObjectId().toHexString();
        if (seen.has(id)) throw badInput('Duplicate banner id', `${field}.id`);
        seen.add(id);
        return {
          id,
          title: text(b.title, `${field}.title`, MERCH_LIMITS.title),
          imageUrl: httpsUrl(b.imageUrl, `${field}.imageUrl`),
          link: checkLink(b.link, `${field}.link`),
          ...window(b.startsAt, b.endsAt, field),
          audience: checkAudience(b.audience, `${field}.audience`),
        };
      });
      const entry = await saveVersion(models.MerchVersion, HOME, input.expectedVersion, { banners, savedBy: staff.id, at: now() });
      return bannerShape(entry as MerchVersionEntry);
    },

    async activity(id: string): Promise<ActivityShape | null> {
      if (!isObjectId(id)) return null;
      const head = await ledgerHead(models.ActivityEntry, `activity:${id}`);
      return head && activityShape(toActivityDoc(id, head), now());
    },

    async activities(status: ActivityStatus | null | undefined): Promise<ActivityShape[]> {
      const at = now();
      const filter =
        status === 'UPCOMING'
          ? { startsAt: { $gt: at } }
          : status === 'ONGOING'
            ? { startsAt: { $lte: at }, endsAt: { $gt: at } }
            : status === 'ENDED'
              ? { endsAt: { $lte: at } }
              : {};
      const docs = await models.Activity.find(filter)
        .sort({ startsAt: status === 'ENDED' ? -1 : 1, _id: 1 })
        .limit(MERCH_LIMITS.activities)
        .lean<ActivityDoc[]>();
      return docs.map((d) => activityShape(d, at));
    },

    async createActivity(viewer: Viewer | null, input: ActivityInput): Promise<ActivityShape> {
      const staff = requireRole(viewer, 'STAFF');
      const fields = checkActivity(input);
      const id = new Types.ObjectId().toHexString();
      const entry = await saveVersion(models.ActivityEntry, `activity:${id}`, 0, { ...fields, savedBy: staff.id, at: now() });
      return this.syncActivity(id, entry as unknown as ActivityEntry);
    },

    async updateActivity(viewer: Viewer | null, id: string, expectedVersion: number, input: ActivityInput): Promise<ActivityShape> {
      const staff = requireRole(viewer, 'STAFF');
      requireObjectId(id, 'activityId');
      const fields = checkActivity(input);
      if (!(await ledgerHead(models.ActivityEntry, `activity:${id}`))) throw new AppError('NOT_FOUND', 'Activity not found');
      const entry = await saveVersion(models.ActivityEntry, `activity:${id}`, expectedVersion, { ...fields, savedBy: staff.id, at: now() });
      return this.syncActivity(id, entry as unknown as ActivityEntry);
    },

    /** Copies the activity's ledger head to the list's read model (the head, re-read: a later save wins). */
    async syncActivity(id: string, written: ActivityEntry): Promise<ActivityShape> {
      const head = (await ledgerHead(models.ActivityEntry, `activity:${id}`)) ?? written;
      await replaceById(models.Activity, toActivityDoc(id, head));
      return activityShape(toActivityDoc(id, written), now());
    },

    async upcomingLiveRooms(first: number | null | undefined): Promise<UpcomingLiveRoomShape[]> {
      const n = wholeNumber(first ?? 10, 'first', 1, MERCH_LIMITS.upcoming);
      const docs = await models.LiveTeaser.find({ status: 'SCHEDULED', scheduledAt: { $gt: now() } })
        .sort({ announcedAt: -1, _id: -1 })
        .limit(n)
        .lean<LiveTeaserDoc[]>();
      return docs.map((d) => ({ roomId: d._id, scheduledAt: d.scheduledAt, announcedAt: d.announcedAt }));
    },

    roomScheduled: (d: EventData<'live.room.scheduled'>, occurredAt: Date) =>
      roomEvent(d.roomId, `scheduled|${d.scheduledAt}`, 'SCHEDULED', new Date(d.scheduledAt), occurredAt),
    roomStarted: (d: EventData<'live.room.started'>, occurredAt: Date) =>
      roomEvent(d.roomId, 'started', 'LIVE', new Date(d.scheduledAt), occurredAt),
    roomEnded: (d: EventData<'live.room.ended'>, occurredAt: Date) =>
      roomEvent(d.roomId, 'ended', 'ENDED', new Date(d.startedAt), occurredAt),
  };
}
export type MerchandisingService = ReturnType<typeof createMerchandisingService>;

function toActivityDoc(id: string, e: ActivityEntry): ActivityDoc {
  return {
    _id: id,
    title: e.title,
    summary: e.summary,
    bannerUrl: e.bannerUrl ?? null,
    startsAt: new Date(e.startsAt),
    endsAt: new Date(e.endsAt),
    articleIds: e.articleIds ?? [],
    productIds: e.productIds ?? [],
    couponTemplateIds: e.couponTemplateIds ?? [],
    liveRoomIds: e.liveRoomIds ?? [],
    version: e.seq,
  };
}
