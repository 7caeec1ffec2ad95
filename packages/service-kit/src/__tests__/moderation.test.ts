import { createWordFilter } from '../moderation';

describe('createWordFilter', () => {
  const filter = createWordFilter(['微信', 'WeiXin', '  ', '加V']);

  test('finds a banned word through case, full width, spaces, punctuation and zero-width characters', () => {
    expect(filter.find('加我微信领券')).toBe('微信');
    expect(filter.find('加我微 信')).toBe('微信');
    expect(filter.find('ＷＥＩＸＩＮ: abc')).toBe('WeiXin');
    expect(filter.find('we.i\u200bxin')).toBe('WeiXin');
    expect(filter.find('加v')).toBe('加V');
  });

  test('lets clean text through and ignores empty words', () => {
    expect(filter.find('这款面霜真好用')).toBeNull();
    expect(filter.find('')).toBeNull();
    expect(filter.size).toBe(3);
    expect(createWordFilter([]).find('anything')).toBeNull();
  });
});
