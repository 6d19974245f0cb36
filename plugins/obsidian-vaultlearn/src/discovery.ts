// Finds the running daemon: VAULT/.vaultlearn/daemon.json (host, port, pid, started) and
// VAULT/.vaultlearn/token (one line), read through the vault adapter, which also reads
// dot-folders that the vault index skips. Settings override each value.
import type { VaultlearnSettings } from "./settingsModel";
import { isLoopbackHost } from "./settingsModel";
import type { Endpoint } from "./types";
import { buildBaseUrl } from "./urls";

export const STATE_DIR = ".vaultlearn";
export const DAEMON_FILE = `${STATE_DIR}/daemon.json`;
export const TOKEN_FILE = `${STATE_DIR}/token`;
export const DEFAULT_HOST = "127.0.0.1";

export interface DaemonInfo {
	host: string | null;
	port: number;
	pid: number | null;
	started: string | null;
}

/** The subset of Obsidian's DataAdapter that discovery needs. */
export interface FileReader {
	exists(path: string): Promise<boolean>;
	read(path: string): Promise<string>;
}

export type ParseResult<T> = { ok: true; value: T } | { ok: false; message: string };

export function parseDaemonInfo(text: string): ParseResult<DaemonInfo> {
	let body: unknown;
	try {
		body = JSON.parse(text);
	} catch {
		return { ok: false, message: `${DAEMON_FILE} is not valid JSON` };
	}
	if (body === null || typeof body !== "object" || Array.isArray(body)) {
		return { ok: false, message: `${DAEMON_FILE} is not a JSON object` };
	}
	const b = body as Record<string, unknown>;
	const port = b.port;
	if (typeof port !== "number" || !Number.isInteger(port) || port < 1 || port > 65535) {
		return { ok: false, message: `${DAEMON_FILE} has no valid "port"` };
	}
	const host = typeof b.host === "string" && b.host.trim() !== "" ? b.host.trim() : null;
	return {
		ok: true,
		value: {
			host,
			port,
			pid: typeof b.pid === "number" ? b.pid : null,
			started: typeof b.started === "string" ? b.started : null,
		},
	};
}

/** First line of the token file, trimmed; null when empty. */
export function parseToken(text: string): string | null {
	const first = text.split(/\r?\n/, 1)[0]?.trim() ?? "";
	return first === "" ? null : first;
}

export type DiscoveryFailure = {
	ok: false;
	/**
	 * not-running: no daemon.json and no port in the settings;
	 * no-token: a daemon is configured but there is no token file and none in the settings;
	 * invalid: daemon.json is unreadable or names a host that is not loopback.
	 */
	reason: "not-running" | "no-token" | "invalid";
	message: string;
};

export type DiscoveryResult = { ok: true; endpoint: Endpoint; info: DaemonInfo | null } | DiscoveryFailure;

type FileRead = { state: "absent" } | { state: "present"; text: string };

async function readOptional(reader: FileReader, path: string): Promise<FileRead> {
	try {
		if (!(await reader.exists(path))) return { state: "absent" };
		return { state: "present", text: await reader.read(path) };
	} catch {
		// Deleted between exists() and read(), e.g. while the daemon shuts down.
		return { state: "absent" };
	}
}

export async function discover(
	reader: FileReader,
	settings: Pick<VaultlearnSettings, "host" | "port" | "token">,
): Promise<DiscoveryResult> {
	const daemonFile = await readOptional(reader, DAEMON_FILE);
	let info: DaemonInfo | null = null;
	let infoError: string | null = null;
	if (daemonFile.state === "present") {
		const parsed = parseDaemonInfo(daemonFile.text);
		if (parsed.ok) info = parsed.value;
		else infoError = parsed.message;
	}

	const port = settings.port ?? info?.port ?? null;
	if (port === null) {
		if (infoError !== null) return { ok: false, reason: "invalid", message: infoError };
		return { ok: false, reason: "not-running", message: `${DAEMON_FILE} not found` };
	}

	const host = settings.host.trim() || info?.host || DEFAULT_HOST;
	if (!isLoopbackHost(host)) {
		return { ok: false, reason: "invalid", message: `refusing non-loopback host "${host}"` };
	}

	let token = settings.token.trim() || null;
	if (token === null) {
		const tokenFile = await readOptional(reader, TOKEN_FILE);
		if (tokenFile.state === "present") token = parseToken(tokenFile.text);
	}
	if (token === null) {
		return { ok: false, reason: "no-token", message: `${TOKEN_FILE} not found and no token in the settings` };
	}

	return { ok: true, endpoint: { baseUrl: buildBaseUrl(host, port), token }, info };
}
