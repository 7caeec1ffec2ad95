import type { Connection } from 'mongoose';
import type { FeedService } from '../feed/service';
import type { Models } from '../model';
import type { LiveModule } from '../modules';
import type { LiveService } from '../service';
import { createCommentModels } from './model';
import { commentResolvers } from './resolvers';
import { createCommentService, type CommentService } from './service';

export function createCommentsModule(deps: {
  db: Connection;
  models: Models;
  rooms: LiveService;
  feed: FeedService;
  now: () => Date;
  participated?: (roomId: string, memberId: string) => Promise<void>;
}): LiveModule & { comments: CommentService } {
  const models = createCommentModels(deps.db);
  const comments = createCommentService({
    models,
    core: deps.models,
    rooms: deps.rooms,
    now: deps.now,
    announce: deps.feed.announce,
    participated: deps.participated,
  });
  deps.feed.register('comment', (roomId, id) => comments.feedEvent(roomId, id));
  deps.feed.register('removed', async (roomId, id) => {
    const event = await comments.feedEvent(roomId, id);
    return event ? { __typename: 'LiveCommentRemoved', commentId: id } : null;
  });
  return { name: 'comments', comments, resolvers: commentResolvers(comments) };
}
