// Shapes of the daemon's HTTP API (vaultlearn watch), as the plugin reads them.
// Unknown extra fields are ignored; optional fields that are missing stay undefined.

export type DaemonState = "idle" | "indexing" | "learning" | string;

export interface LearningProgress {
	phase: string | null;
	/** Fraction done, 0..1, or null when unknown. */
	progress: number | null;
}

export interface DaemonStatus {
	state: DaemonState;
	notes?: number;
	links?: number;
	embedded?: number;
	phases?: string[];
	learned_phases?: string[];
	pending_phases?: string[];
	learning?: LearningProgress;
}

export interface Suggestion {
	/** Vault-relative path with extension, e.g. "folder/Other.md". */
	path: string;
	title: string;
	/** null when the daemon sent no usable number. */
	score: number | null;
	reason: string;
}

export interface SuggestResponse {
	note: string | null;
	suggestions: Suggestion[];
}

export interface QueuedResponse {
	queued: boolean;
}

export interface LearnState {
	state: DaemonState;
	phase: string | null;
	progress: number | null;
}

/**
 * Why a request failed, reduced to what the user can act on.
 * - not-running: nothing answered (connection refused, network error or timeout)
 * - unauthorized: 401/403, the token is missing or wrong
 * - not-indexed: 404 from /suggest, the note is not in the index (yet)
 * - bad-request: 400, the daemon refused the input (e.g. a path outside the vault)
 * - http: any other non-2xx status
 * - invalid-response: 2xx but the body is not the JSON the contract promises
 */
export type ApiErrorKind = "not-running" | "unauthorized" | "not-indexed" | "bad-request" | "http" | "invalid-response";

export interface ApiError {
	kind: ApiErrorKind;
	/** HTTP status, when there was a response. */
	status?: number;
	/** For not-running: whether the request timed out rather than failed. */
	timedOut?: boolean;
	/** Human-readable detail: the daemon's {"detail": ...} or the transport error. */
	message: string;
}

export type Result<T> = { ok: true; value: T } | { ok: false; error: ApiError };

export interface Endpoint {
	/** e.g. "http://127.0.0.1:8765", no trailing slash. */
	baseUrl: string;
	token: string;
}
