/**
 * What every API request must show before it is routed, against forged requests from browsers
 * on the node (issue 17): a web page can make the browser send a "simple" cross-origin POST
 * (form content types, no custom header, no preflight) to 127.0.0.1, and a DNS-rebinding page
 * can make it read answers from a name that resolves to 127.0.0.1.
 *
 * - `Host` must name the listener by address: an IP literal (or `localhost`) with the
 *   listener's port. A rebinding page's requests carry its own domain name; they are refused.
 * - A request with an `Origin` other than the API's own is refused (browsers send `Origin` on
 *   cross-origin requests; the CLI and curl send none).
 * - State-changing requests (POST, PUT, DELETE) must carry the `X-Lashup-Request` header or a
 *   JSON content type: neither is possible in a simple request, and the API answers no CORS
 *   preflight, so a browser never sends such a request cross-origin. The CLI sends the header.
 *
 * Pure: takes the method and headers, returns the refusal or undefined.
 */
import { isIp } from '../common/index.js';
import { ForbiddenError } from './api-errors.js';

/** The header that marks a request as coming from a non-browser client (the CLI sends it). */
export const CLIENT_HEADER = 'x-lashup-request';

const STATE_CHANGING = new Set(['POST', 'PUT', 'DELETE', 'PATCH']);

export interface GuardedRequest {
  method: string;
  headers: Readonly<Record<string, string | string[] | undefined>>;
}

function single(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

/** Splits a Host header into host name (brackets removed) and port; undefined when malformed. */
function parseHost(host: string): { name: string; port: number | undefined } | undefined {
  const m = /^(\[[0-9A-Fa-f:.]+\]|[^:[\]]+)(?::(\d{1,5}))?$/.exec(host);
  if (m === null) return undefined;
  return { name: (m[1] as string).replace(/^\[|\]$/g, '').toLowerCase(), port: m[2] === undefined ? undefined : Number(m[2]) };
}

/** The refusal for `request` on a listener at `port`, or undefined when it may proceed. */
export function checkRequest(request: GuardedRequest, port: number): ForbiddenError | undefined {
  const hostText = single(request.headers['host']);
  if (hostText === undefined) return new ForbiddenError('LASHUP_ERR_FORBIDDEN_HOST', 'the request has no Host header; expected the API address, e.g. 127.0.0.1:62080');
  const host = parseHost(hostText);
  const byAddress = host !== undefined && (host.name === 'localhost' || isIp(host.name)) && (host.port ?? 80) === port;
  if (!byAddress) {
    return new ForbiddenError('LASHUP_ERR_FORBIDDEN_HOST', `Host ${JSON.stringify(hostText.slice(0, 80))} is not this API; expected an IP address (or localhost) with port ${port}`, {
      host: hostText.slice(0, 80),
    });
  }
  const origin = single(request.headers['origin']);
  if (origin !== undefined && origin !== `http://${hostText}`) {
    return new ForbiddenError('LASHUP_ERR_FORBIDDEN_ORIGIN', `a request from ${JSON.stringify(origin.slice(0, 80))} (a web page) is refused; the API serves local clients only`, {
      origin: origin.slice(0, 80),
    });
  }
  if (STATE_CHANGING.has(request.method)) {
    const contentType = single(request.headers['content-type']) ?? '';
    if (single(request.headers[CLIENT_HEADER]) === undefined && !/^application\/json\b/i.test(contentType)) {
      return new ForbiddenError(
        'LASHUP_ERR_FORBIDDEN_SIMPLE_REQUEST',
        `${request.method} needs the ${CLIENT_HEADER} header or a JSON content type (a browser cannot forge either); the lashup CLI sends it`,
      );
    }
  }
  return undefined;
}
