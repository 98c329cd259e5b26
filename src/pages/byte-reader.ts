import type { Readable } from 'node:stream';

/**
 * Exact-length reads over a byte stream (a decompressor's output): `read(n)` resolves to exactly
 * n bytes or throws when the stream ends first. Memory: what the stream has delivered and not yet
 * been read (one or two of its chunks).
 */
export class ByteReader {
  private readonly it: AsyncIterator<Buffer>;
  private chunks: Buffer[] = [];
  private buffered = 0;
  private ended = false;

  constructor(stream: Readable) {
    this.it = (stream as AsyncIterable<Buffer>)[Symbol.asyncIterator]();
  }

  private async fill(n: number): Promise<void> {
    while (this.buffered < n && !this.ended) {
      const next = await this.it.next();
      if (next.done) this.ended = true;
      else if (next.value.length > 0) {
        this.chunks.push(next.value);
        this.buffered += next.value.length;
      }
    }
  }

  /** Exactly `n` bytes; throws Error('truncated') when the stream ends before. */
  async read(n: number): Promise<Buffer> {
    await this.fill(n);
    if (this.buffered < n) throw new Error(`truncated: wanted ${n} more bytes, the stream had ${this.buffered}`);
    let out: Buffer;
    const first = this.chunks[0]!;
    if (first.length >= n) {
      out = first.subarray(0, n);
      if (first.length === n) this.chunks.shift();
      else this.chunks[0] = first.subarray(n);
    } else {
      out = Buffer.allocUnsafe(n);
      let at = 0;
      while (at < n) {
        const c = this.chunks[0]!;
        const take = Math.min(c.length, n - at);
        c.copy(out, at, 0, take);
        at += take;
        if (take === c.length) this.chunks.shift();
        else this.chunks[0] = c.subarray(take);
      }
    }
    this.buffered -= n;
    return out;
  }

  /** True when every byte of the stream has been read. */
  async atEnd(): Promise<boolean> {
    await this.fill(1);
    return this.buffered === 0;
  }

  /** Stops reading (lets the source be destroyed). */
  async close(): Promise<void> {
    await this.it.return?.();
  }
}
