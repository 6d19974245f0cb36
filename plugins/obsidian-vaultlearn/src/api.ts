// Client for the vaultlearn daemon's local HTTP API, over Obsidian's requestUrl
// (no CORS limits; with throw: false a 4xx/5xx comes back as a response, not an exception).
import { requestUrl } from "obsidian";
import type { RequestUrlParam, RequestUrlResponse } from "obsidian";
import { errorDetail, parseLearnState, parseQueued, parseStatus, parseSuggestResponse } from "./parse";
import { TimeoutError, withTimeout } from "./timeout";
import type { ApiError, DaemonStatus, Endpoint, LearnState, QueuedResponse, Result, SuggestResponse } from "./types";
import { apiK, endpointUrl, suggestUrl } from "./urls";

export type RequestFn = (request: RequestUrlParam) => Promise<RequestUrlResponse>;

export interface ClientOptions {
	/** Give up after this many ms (default 5000). */
	timeoutMs?: number;
	/** Injected for tests; defaults to Obsidian's requestUrl. */
	request?: RequestFn;
}

export const DEFAULT_TIMEOUT_MS = 5000;

/** Maps an exception from the transport (refused, reset, DNS, timeout) to an ApiError. */
export function errorFromException(err: unknown): ApiError {
	if (err instanceof TimeoutError) {
		return { kind: "not-running", timedOut: true, message: err.message };
	}
	const message = err instanceof Error ? err.message : String(err);
	return { kind: "not-running", timedOut: false, message };
}

/**
 * Maps a non-2xx response to an ApiError. 404 means "note not indexed" only for
 * /suggest; elsewhere it means the server is not the daemon we expect.
 */
export function errorFromStatus(status: number, text: string, notFoundMeansNotIndexed: boolean): ApiError {
	const detail = errorDetail(text);
	const message = detail ?? `HTTP ${status}`;
	if (status === 401 || status === 403) return { kind: "unauthorized", status, message };
	if (status === 404 && notFoundMeansNotIndexed) return { kind: "not-indexed", status, message };
	if (status === 400) return { kind: "bad-request", status, message };
	return { kind: "http", status, message };
}

export class VaultlearnClient {
	private readonly timeoutMs: number;
	private readonly request: RequestFn;

	constructor(
		readonly endpoint: Endpoint,
		options: ClientOptions = {},
	) {
		this.timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
		this.request = options.request ?? ((r) => requestUrl(r));
	}

	status(): Promise<Result<DaemonStatus>> {
		return this.call("GET", endpointUrl(this.endpoint.baseUrl, "/status"), undefined, parseStatus);
	}

	/** Suggestions for a note given by its vault-relative path (with .md). */
	suggest(notePath: string, k: number): Promise<Result<SuggestResponse>> {
		return this.call("GET", suggestUrl(this.endpoint.baseUrl, notePath, k), undefined, parseSuggestResponse, true);
	}

	/** Notes similar to a piece of text. */
	search(text: string, k: number): Promise<Result<SuggestResponse>> {
		return this.call("POST", endpointUrl(this.endpoint.baseUrl, "/search"), { text, k: apiK(k) }, parseSuggestResponse);
	}

	reindex(): Promise<Result<QueuedResponse>> {
		return this.call("POST", endpointUrl(this.endpoint.baseUrl, "/reindex"), {}, parseQueued);
	}

	learn(): Promise<Result<QueuedResponse>> {
		return this.call("POST", endpointUrl(this.endpoint.baseUrl, "/learn"), {}, parseQueued);
	}

	learnState(): Promise<Result<LearnState>> {
		return this.call("GET", endpointUrl(this.endpoint.baseUrl, "/learn"), undefined, parseLearnState);
	}

	private async call<T>(
		method: "GET" | "POST",
		url: string,
		body: object | undefined,
		parse: (json: unknown) => T | null,
		notFoundMeansNotIndexed = false,
	): Promise<Result<T>> {
		const req: RequestUrlParam = {
			url,
			method,
			headers: { Authorization: `Bearer ${this.endpoint.token}`, Accept: "application/json" },
			throw: false,
		};
		if (body !== undefined) {
			req.contentType = "application/json";
			req.body = JSON.stringify(body);
		}
		let res: RequestUrlResponse;
		try {
			res = await withTimeout(this.request(req), this.timeoutMs);
		} catch (err) {
			return { ok: false, error: errorFromException(err) };
		}
		const text = typeof res.text === "string" ? res.text : "";
		if (res.status < 200 || res.status >= 300) {
			return { ok: false, error: errorFromStatus(res.status, text, notFoundMeansNotIndexed) };
		}
		let json: unknown;
		try {
			json = JSON.parse(text);
		} catch {
			return { ok: false, error: { kind: "invalid-response", status: res.status, message: "response is not JSON" } };
		}
		const value = parse(json);
		if (value === null) {
			return {
				ok: false,
				error: { kind: "invalid-response", status: res.status, message: "response does not match the API" },
			};
		}
		return { ok: true, value };
	}
}
