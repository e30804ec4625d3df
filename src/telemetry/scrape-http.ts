import { request as httpRequest } from 'node:http';
import { loopbackAwareLookup } from '../util/net.js';

const MAX_BODY_BYTES = 8 << 20;

/** Fetches an exposition; rejects on a non-2xx status, a timeout or an oversized body. */
export type Scraper = (url: string, timeoutMs: number, signal: AbortSignal) => Promise<string>;

/** A plain node:http GET asking for the text format, with *.localhost dialled on loopback. */
export const httpScrape: Scraper = (url, timeoutMs, signal) =>
  new Promise<string>((resolve, reject) => {
    const deadline = AbortSignal.timeout(timeoutMs);
    const req = httpRequest(
      url,
      {
        method: 'GET',
        headers: {
          accept: 'text/plain;version=0.0.4;q=1,*/*;q=0.1',
          'user-agent': 'sibyl-operator',
        },
        lookup: loopbackAwareLookup,
        signal: AbortSignal.any([signal, deadline]),
        agent: false,
      },
      (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (c: Buffer) => {
          size += c.length;
          if (size > MAX_BODY_BYTES) req.destroy(new Error(`exposition larger than ${MAX_BODY_BYTES} bytes`));
          else chunks.push(c);
        });
        res.on('error', reject);
        res.on('end', () => {
          const code = res.statusCode ?? 0;
          if (code < 200 || code > 299) reject(new Error(`HTTP ${code}`));
          else resolve(Buffer.concat(chunks).toString('utf8'));
        });
      },
    );
    req.on('error', (e) => reject(deadline.aborted ? new Error(`no answer within ${timeoutMs} ms`) : e));
    req.end();
  });
