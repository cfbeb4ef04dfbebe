import { describe, expect, it } from 'vitest';
import { gifFrames, isMedia, sniff } from '../../src/discord/attachments.ts';
import { gif, pdf, png } from '../fixtures/media.ts';

describe('reading attachments', () => {
  it('tells images and PDFs by their first bytes, whatever their name says', () => {
    expect(sniff(png([1, 2, 3]))).toEqual({ kind: 'image', mime: 'image/png' });
    expect(sniff(Buffer.from([0xff, 0xd8, 0xff, 0xe0]))).toEqual({ kind: 'image', mime: 'image/jpeg' });
    expect(sniff(Buffer.from('RIFF\0\0\0\0WEBPVP8 '))).toEqual({ kind: 'image', mime: 'image/webp' });
    expect(sniff(gif(1))).toEqual({ kind: 'image', mime: 'image/gif' });
    expect(sniff(pdf('x'))).toEqual({ kind: 'file', mime: 'application/pdf' });
    expect(sniff(Buffer.from('just text'))).toBeUndefined();
  });

  it('counts the frames of a GIF, so an animated one is not sent', () => {
    expect(gifFrames(gif(1))).toBe(1);
    expect(gifFrames(gif(3))).toBe(3);
  });

  it('downloads as media only what says it is an image or a PDF', () => {
    expect(isMedia({ name: 'a.PNG', contentType: null })).toBe(true);
    expect(isMedia({ name: 'scan', contentType: 'application/pdf' })).toBe(true);
    expect(isMedia({ name: 'notes.txt', contentType: 'text/plain' })).toBe(false);
  });
});
