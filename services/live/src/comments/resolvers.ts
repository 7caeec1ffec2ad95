import type { Resolvers } from '../__generated__/resolvers';
import type { CommentService } from './service';

export function commentResolvers(comments: CommentService): Resolvers {
  return {
    Query: {
      liveBannedWords: (_, __, { viewer }) => comments.bannedWords.list(viewer),
    },
    Mutation: {
      postLiveComment: (_, { roomId, body }, { viewer }) => comments.post(viewer, roomId, body),
      removeLiveComment: async (_, { id, reason }, { viewer }) => ({ commentId: (await comments.remove(viewer, id, reason))._id }),
      setLiveBannedWords: (_, { words, expectedVersion }, { viewer }) => comments.bannedWords.save(viewer, words, expectedVersion),
    },
    LiveRoom: {
      comments: (r, { first, after }) => comments.list(r._id.toHexString(), { first, after }),
    },
    LiveComment: {
      id: (c) => c._id,
      author: (c) => ({ id: c.memberId }),
    },
  };
}
