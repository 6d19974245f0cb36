// URL building for the daemon's API. Pure.

/** "http://127.0.0.1:8765"; IPv6 literals get brackets ("http://[::1]:8765"). */
export function buildBaseUrl(host: string, port: number): string {
	let h = host.trim();
	if (h.includes(":") && !h.startsWith("[")) h = `[${h}]`;
	return `http://${h}:${port}`;
}

/** Limits k to what the API accepts (1..100). */
export function apiK(k: number): number {
	if (!Number.isFinite(k)) return 10;
	return Math.min(100, Math.max(1, Math.round(k)));
}

/**
 * GET /suggest URL. The note path is encoded with encodeURIComponent, so spaces become %20,
 * "/" %2F, "+" %2B, "&" %26 and non-ASCII characters their UTF-8 percent escapes.
 */
export function suggestUrl(baseUrl: string, notePath: string, k: number): string {
	return `${baseUrl}/suggest?note=${encodeURIComponent(notePath)}&k=${apiK(k)}`;
}

export function endpointUrl(baseUrl: string, path: "/status" | "/search" | "/reindex" | "/learn"): string {
	return `${baseUrl}${path}`;
}
