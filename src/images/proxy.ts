/**
 * The proxy a download goes through, from the environment as curl and wget read it
 * (proxy-from-env: HTTPS_PROXY / HTTP_PROXY / ALL_PROXY, lower case too, and NO_PROXY's hosts,
 * domains, ports and `*`). An https URL is tunnelled with CONNECT (https-proxy-agent); an http
 * URL is asked of the proxy by its full address (http-proxy-agent). No proxy: node's default agent.
 */
import type { Agent } from 'node:http';
import { HttpProxyAgent } from 'http-proxy-agent';
import { HttpsProxyAgent } from 'https-proxy-agent';
import { getProxyForUrl } from 'proxy-from-env';

const agents = new Map<string, Agent>();

/** The proxy URL for `url` from the environment, or null for a direct connection. */
export function proxyFor(url: string, env: NodeJS.ProcessEnv = process.env): string | null {
  // proxy-from-env reads process.env; tests and callers pass their own
  const saved = process.env;
  if (env !== process.env) process.env = env;
  try {
    return getProxyForUrl(url) || null;
  } finally {
    process.env = saved;
  }
}

/** The agent that reaches `url` through `proxy` (one per proxy and scheme, kept). */
export function proxyAgent(url: URL, proxy: string): Agent {
  const key = `${url.protocol}${proxy}`;
  const have = agents.get(key);
  if (have) return have;
  const agent = url.protocol === 'https:' ? new HttpsProxyAgent(proxy) : new HttpProxyAgent(proxy);
  agents.set(key, agent);
  return agent;
}
