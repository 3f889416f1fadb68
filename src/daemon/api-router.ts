/**
 * The API's route table: declarative patterns matched against decoded path segments.
 *
 *   /v1/status                 literal segments
 *   /v1/allocations/:agent     `:name` matches one segment
 *   /v1/kv/*key                `*name` (last) matches one or more segments, joined with "/"
 *
 * Segments are percent-decoded one by one, so `/v1/kv/overlay/dcos` and `/v1/kv/overlay%2Fdcos`
 * name the same key. (The old positional router knew only one segment after `/v1/kv/`: store
 * keys hold "/", and `GET /v1/kv/overlay/dcos` was a 404.)
 */
import { BadRequestError, MethodNotAllowedError } from './api-errors.js';

export interface Route<H> {
  method: 'GET' | 'POST' | 'PUT' | 'DELETE';
  pattern: string;
  handler: H;
}

export type RouteMatch<H> = { route: Route<H>; params: Record<string, string> };

/** Splits and percent-decodes a URL path; throws BadRequestError for a malformed escape. */
export function pathSegments(pathname: string): string[] {
  try {
    return pathname
      .split('/')
      .filter((s) => s.length > 0)
      .map(decodeURIComponent);
  } catch {
    // A malformed percent-escape is bad input, not a server error: it once answered 500 and
    // logged a stack trace per request (megabytes per second from one local client).
    throw new BadRequestError(`the path ${JSON.stringify(pathname.slice(0, 80))} has a malformed percent-escape; escape "%" as %25`);
  }
}

function matchPattern(pattern: string, segments: readonly string[]): Record<string, string> | undefined {
  const parts = pattern.split('/').filter((s) => s.length > 0);
  const params: Record<string, string> = {};
  for (let i = 0; i < parts.length; i++) {
    const part = parts[i] as string;
    if (part.startsWith('*')) {
      if (i !== parts.length - 1) throw new TypeError(`route ${pattern}: a wildcard must come last`);
      if (segments.length <= i) return undefined;
      params[part.slice(1)] = segments.slice(i).join('/');
      return params;
    }
    const segment = segments[i];
    if (segment === undefined) return undefined;
    if (part.startsWith(':')) params[part.slice(1)] = segment;
    else if (part !== segment) return undefined;
  }
  return segments.length === parts.length ? params : undefined;
}

/**
 * The first route whose pattern and method match; undefined when no pattern matches. A path that
 * matches only with other methods throws MethodNotAllowedError naming them.
 */
export function matchRoute<H>(routes: readonly Route<H>[], method: string, segments: readonly string[]): RouteMatch<H> | undefined {
  const allowed: string[] = [];
  for (const route of routes) {
    const params = matchPattern(route.pattern, segments);
    if (params === undefined) continue;
    if (route.method === method) return { route, params };
    allowed.push(route.method);
  }
  if (allowed.length > 0) throw new MethodNotAllowedError(`${method} /${segments.join('/')} is not allowed; use ${[...new Set(allowed)].join(' or ')}`, allowed);
  return undefined;
}
