import { Types } from 'mongoose';
import DataLoader from 'dataloader';
import {
  badInput,
  byIdLoader,
  charCount,
  claimOnce,
  forbidden,
  isDuplicateKey,
  isSelfOrStaff,
  paginate,
  requireRole,
  requireViewer,
  text,
  type BaseContext,
  type PageArgs,
  type Viewer,
  findByIds,
} from '@flywheel/service-kit';
import type { GroupDoc, Models } from './model';

export interface CommunityDeps {
  models: Models;
  now?: () => Date;
}

export const LIMITS = { name: 40, description: 500, tags: 10, tag: 20 } as const;

/** Created on the first registration when staff have not set up a welcome group yet. */
export const DEFAULT_WELCOME_GROUP = {
  _id: 'welcome',
  name: '新人福利群',
  description: '新会员专享福利、活动预告和入门指南',
  tags: ['新人'],
  welcome: true,
  type: 'NEW_MEMBERS',
} as const;

export interface CreateGroupInput {
  name: string;
  description?: string | null;
  tags?: readonly string[] | null;
  welcome?: boolean | null;
}

export function createCommunityService(deps: CommunityDeps) {
  const { models } = deps;
  const now = deps.now ?? (() => new Date());

  async function welcomeGroups(): Promise<GroupDoc[]> {
    const found = await models.Group.find({ welcome: true }).sort({ _id: 1 }).lean<GroupDoc[]>();
    if (found.length) return found;
    // The fixed id is the claim: concurrent first registrations create one default group.
    try {
      await models.Group.create({ ...DEFAULT_WELCOME_GROUP, tags: [...DEFAULT_WELCOME_GROUP.tags], createdAt: now() });
    } catch (err) {
      if (!isDuplicateKey(err)) throw err;
    }
    return models.Group.find({ _id: DEFAULT_WELCOME_GROUP._id }).lean<GroupDoc[]>();
  }

  /** Idempotent: the membership id is the claim, so a repeat is a no-op that returns false. */
  function addMember(groupId: string, memberId: string, eventId?: string): Promise<boolean> {
    return claimOnce(models.GroupMembership, {
      _id: `${groupId}:${memberId}`,
      groupId,
      memberId,
      joinedAt: now(),
      ...(eventId ? { eventId } : {}),
    });
  }

  return {
    listGroups(_viewer: Viewer | null, args: PageArgs) {
      return paginate(models.Group, {}, args);
    },

    async createGroup(viewer: Viewer | null, input: CreateGroupInput): Promise<GroupDoc> {
      requireRole(viewer, 'STAFF');
      const name = text(input.name, 'name', LIMITS.name);
      const description = text(input.description, 'description', LIMITS.description, { min: 0 });
      const tags = [...new Set((input.tags ?? []).map((t) => t.trim()))];
      if (tags.length > LIMITS.tags) throw badInput(`At most ${LIMITS.tags} tags`, 'tags');
      if (tags.some((t) => charCount(t) < 1 || charCount(t) > LIMITS.tag))
        throw badInput(`Tags must be 1 to ${LIMITS.tag} characters`, 'tags');
      const doc: GroupDoc = {
        _id: new Types.ObjectId().toHexString(),
        name,
        description,
        tags,
        welcome: input.welcome ?? false,
        createdAt: now(),
      };
      await models.Group.create(doc);
      return doc;
    },

    addMember,

    /** A newly registered member joins every welcome group (the default one if there is none). */
    async welcomeMember(memberId: string, eventId?: string): Promise<GroupDoc[]> {
      const groups = await welcomeGroups();
      for (const g of groups) await addMember(g._id, memberId, eventId);
      return groups;
    },

    /** A member's groups are theirs and staff's to see. */
    assertMayReadMember(viewer: Viewer | null, memberId: string): void {
      if (isSelfOrStaff(requireViewer(viewer), memberId)) return;
      throw forbidden("Only the member and staff can see a member's groups");
    },

    loaders() {
      return {
        group: byIdLoader(models.Group),
        /** Counted from membership rows, never kept as a counter. */
        memberCount: new DataLoader<string, number>(async (groupIds) => {
          const rows = await models.GroupMembership.aggregate<{ _id: string; n: number }>([
            { $match: { groupId: { $in: [...groupIds] } } },
            { $group: { _id: '$groupId', n: { $sum: 1 } } },
          ]);
          const byId = new Map(rows.map((r) => [r._id, r.n]));
          return groupIds.map((id) => byId.get(id) ?? 0);
        }),
        groupsOfMember: new DataLoader<string, GroupDoc[]>(async (memberIds) => {
          const rows = await models.GroupMembership.find({ memberId: { $in: [...memberIds] } })
            .sort({ joinedAt: 1, _id: 1 })
            .lean();
          const groups = rows.length
            ? await findByIds<GroupDoc>(
                models.Group,
                rows.map((r) => r.groupId),
              )
            : [];
          const byId = new Map(groups.map((g) => [g._id, g]));
          return memberIds.map((m) =>
            rows.filter((r) => r.memberId === m).flatMap((r) => (byId.has(r.groupId) ? [byId.get(r.groupId)!] : [])),
          );
        }),
      };
    },
  };
}

export type CommunityService = ReturnType<typeof createCommunityService>;

/** A member as this service knows one: by key only (membership owns the rest). */
export interface MemberRef {
  id: string;
}

export interface Context extends BaseContext {
  service: CommunityService;
  loaders: ReturnType<CommunityService['loaders']>;
}
