import { FrameScanner, encodeFrame } from '../../../src/grpc/framing.js';

const frames = (...sizes: number[]) => Buffer.concat(sizes.map((n) => encodeFrame(Buffer.alloc(n, 7))));

describe('FrameScanner', () => {
  it('accepts well-formed messages in any split', () => {
    const bytes = frames(0, 1, 300, 70_000, 5);
    for (const step of [1, 2, 3, 5, 7, 64, 4096, bytes.length]) {
      const s = new FrameScanner(1 << 20);
      for (let i = 0; i < bytes.length; i += step)
        expect(s.feed(bytes.subarray(i, i + step))).toBeUndefined();
      expect(s.end()).toBeUndefined();
      expect(s.messages).toBe(5);
      expect(s.firstLength).toBe(0);
      expect(s.atBoundary).toBe(true);
    }
  });

  it('accepts the compressed flag 1', () => {
    const s = new FrameScanner(100);
    expect(s.feed(encodeFrame(Buffer.from('zz'), true))).toBeUndefined();
    expect(s.end()).toBeUndefined();
  });

  it('refuses a compressed flag other than 0 or 1, and keeps refusing', () => {
    const s = new FrameScanner(100);
    const bad = Buffer.from([2, 0, 0, 0, 1, 9]);
    const err = s.feed(bad);
    expect(err).toEqual({ kind: 'bad-flag', message: expect.stringContaining('compressed flag 2') });
    expect(s.feed(frames(1))).toBe(err);
    expect(s.end()).toBe(err);
  });

  it('refuses a message over the limit as soon as its prefix is read', () => {
    const s = new FrameScanner(1000);
    expect(s.feed(frames(1000))).toBeUndefined();
    const prefix = encodeFrame(Buffer.alloc(1001)).subarray(0, 5);
    expect(s.feed(prefix.subarray(0, 3))).toBeUndefined();
    expect(s.feed(prefix.subarray(3))).toMatchObject({
      kind: 'too-large',
      message: expect.stringContaining('1001 bytes'),
    });
  });

  it('reports a truncated body or prefix at end of stream', () => {
    const s = new FrameScanner(1000);
    s.feed(frames(10).subarray(0, 8));
    expect(s.end()).toMatchObject({ kind: 'truncated', message: expect.stringContaining('7 bytes') });
    const t = new FrameScanner(1000);
    t.feed(Buffer.from([0, 0]));
    expect(t.end()).toMatchObject({ kind: 'truncated', message: expect.stringContaining('prefix') });
  });

  it('records the first message length', () => {
    const s = new FrameScanner(1 << 20);
    s.feed(frames(1234, 5));
    expect(s.firstLength).toBe(1234);
    expect(s.messages).toBe(2);
  });
});
