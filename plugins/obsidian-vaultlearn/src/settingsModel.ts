// Plugin settings and their validation. Pure: no Obsidian imports.

export interface VaultlearnSettings {
	/** Daemon host; blank means "from .vaultlearn/daemon.json", else 127.0.0.1. Loopback only. */
	host: string;
	/** Daemon port; null means "from .vaultlearn/daemon.json". */
	port: number | null;
	/** Bearer token; blank means "from .vaultlearn/token". */
	token: string;
	/** How many suggestions to ask for, 1..50. */
	k: number;
	/** Refresh when the active note changes or is saved, and poll while the daemon is busy. */
	autoRefresh: boolean;
}

export const K_MIN = 1;
export const K_MAX = 50;

export const DEFAULT_SETTINGS: VaultlearnSettings = {
	host: "127.0.0.1",
	port: null,
	token: "",
	k: 10,
	autoRefresh: true,
};

/** Strips the brackets of an IPv6 literal ("[::1]" -> "::1"). */
function bareHost(host: string): string {
	const h = host.trim().toLowerCase();
	return h.startsWith("[") && h.endsWith("]") ? h.slice(1, -1) : h;
}

/**
 * The token travels in clear text over plain HTTP, so only loopback addresses are accepted:
 * localhost, 127.0.0.0/8 and ::1.
 */
export function isLoopbackHost(host: string): boolean {
	const h = bareHost(host);
	if (h === "localhost" || h === "::1" || h === "0:0:0:0:0:0:0:1") return true;
	const m = /^127\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(h);
	return m !== null && m.slice(1).every((part) => Number(part) <= 255);
}

/** null when the host is acceptable (blank included), else the reason. */
export function validateHost(input: string): string | null {
	const h = input.trim();
	if (h === "") return null;
	if (/[\s/?#@]/.test(h) || h.includes("://")) return "Enter a host name or address only, e.g. 127.0.0.1";
	if (!isLoopbackHost(h)) return "Only loopback hosts (127.0.0.1, localhost, ::1) are allowed: the token is sent unencrypted";
	return null;
}

export type PortParse = { ok: true; port: number | null } | { ok: false; message: string };

/** Blank -> null (use daemon.json); otherwise a whole number 1..65535. */
export function parsePort(input: string): PortParse {
	const s = input.trim();
	if (s === "") return { ok: true, port: null };
	if (!/^\d+$/.test(s)) return { ok: false, message: "Port must be a whole number" };
	const port = Number(s);
	if (port < 1 || port > 65535) return { ok: false, message: "Port must be between 1 and 65535" };
	return { ok: true, port };
}

/** Rounds and clamps k into K_MIN..K_MAX; anything non-numeric gives the default. */
export function clampK(value: unknown): number {
	const n = typeof value === "string" && value.trim() !== "" ? Number(value) : value;
	if (typeof n !== "number" || !Number.isFinite(n)) return DEFAULT_SETTINGS.k;
	return Math.min(K_MAX, Math.max(K_MIN, Math.round(n)));
}

/** Turns whatever loadData() returned (null, an older or hand-edited data.json) into valid settings. */
export function normalizeSettings(raw: unknown): VaultlearnSettings {
	const r = raw !== null && typeof raw === "object" ? (raw as Record<string, unknown>) : {};
	const s: VaultlearnSettings = { ...DEFAULT_SETTINGS };
	if (typeof r.host === "string" && validateHost(r.host) === null) s.host = r.host.trim();
	if (typeof r.port === "number" || typeof r.port === "string") {
		const p = parsePort(String(r.port));
		if (p.ok) s.port = p.port;
	}
	if (typeof r.token === "string") s.token = r.token.trim();
	if ("k" in r) s.k = clampK(r.k);
	if (typeof r.autoRefresh === "boolean") s.autoRefresh = r.autoRefresh;
	return s;
}
