// What the side pane shows, derived from the outcome of one refresh. Pure.
import type { DiscoveryFailure } from "./discovery";
import type { ApiError, DaemonStatus, LearningProgress, Result, Suggestion, SuggestResponse } from "./types";

export type StateCode =
	| "no-note"
	| "loading"
	| "not-running"
	| "unauthorized"
	| "not-indexed"
	| "indexing"
	| "bad-request"
	| "error"
	| "empty"
	| "ok";

export interface Row {
	path: string;
	title: string;
	/** Two decimals, or "–" when the daemon gave no score. */
	score: string;
	reason: string;
	/** The note already links to this target. */
	linked: boolean;
}

export interface ViewState {
	code: StateCode;
	/** Vault-relative path of the note the state is about. */
	note: string | null;
	/** Shown when there are no rows. */
	message: string | null;
	/** Secondary line under the message (an error's detail). */
	detail: string | null;
	/** Shown above the rows: the daemon is indexing or learning, or rows come from a text search. */
	banner: string | null;
	rows: Row[];
	/** The daemon is indexing or learning: results may change soon. */
	busy: boolean;
}

export interface Outcome {
	note: string;
	/** Absolute vault path (or vault name) for the "start the daemon" hint. */
	vaultPath: string;
	discovery?: DiscoveryFailure;
	suggest?: Result<SuggestResponse>;
	status?: Result<DaemonStatus>;
	/** POST /search with the note's text, tried when /suggest says the note is not indexed. */
	fallback?: Result<SuggestResponse>;
	/** Paths the note already links to. */
	linked?: ReadonlySet<string>;
}

export const MESSAGES = {
	noNote: "Open a Markdown note to see suggested links.",
	loading: "Loading suggestions…",
	indexing: "indexing…",
	notIndexed: "note not indexed yet",
	notIndexedFallback: "note not indexed yet — showing notes with similar text",
	noSuggestions: "no suggestions",
	unauthorized: "token rejected (401) — check the token in the plugin settings or .vaultlearn/token",
	noToken: "no token — .vaultlearn/token is missing; start the daemon or set a token in the plugin settings",
	badRequest: "the daemon refused this note's path",
	error: "the daemon answered with an error",
	invalidConfig: "cannot use .vaultlearn/daemon.json",
} as const;

export function formatScore(score: number | null): string {
	return score === null || !Number.isFinite(score) ? "–" : score.toFixed(2);
}

/** Quotes a path for a shell command line when it has characters a shell would split on. */
export function shellQuote(path: string): string {
	return /^[\w@%+=:,./\\-]+$/.test(path) ? path : `"${path.replace(/(["\\$`])/g, "\\$1")}"`;
}

export function notRunningMessage(vaultPath: string): string {
	return `daemon not running — start \`vaultlearn watch ${shellQuote(vaultPath)}\``;
}

/** "learning phase 2024-Q1 (42%)"; progress is a fraction 0..1. */
export function learningMessage(learning: LearningProgress | undefined): string {
	const phase = learning?.phase ?? null;
	const progress = learning?.progress ?? null;
	let text = phase !== null ? `learning phase ${phase}` : "learning";
	if (progress !== null && Number.isFinite(progress)) {
		const pct = Math.round(Math.min(1, Math.max(0, progress)) * 100);
		text += ` (${pct}%)`;
	} else if (phase === null) {
		text += "…";
	}
	return text;
}

export function toRows(suggestions: Suggestion[], note: string, linked?: ReadonlySet<string>): Row[] {
	return suggestions
		.filter((s) => s.path !== note)
		.map((s) => ({
			path: s.path,
			title: s.title,
			score: formatScore(s.score),
			reason: s.reason,
			linked: linked?.has(s.path) ?? false,
		}));
}

function base(code: StateCode, note: string | null, message: string | null): ViewState {
	return { code, note, message, detail: null, banner: null, rows: [], busy: false };
}

export function noNoteState(): ViewState {
	return base("no-note", null, MESSAGES.noNote);
}

export function loadingState(note: string): ViewState {
	return base("loading", note, MESSAGES.loading);
}

function errorState(err: ApiError, outcome: Outcome): ViewState {
	const { note, vaultPath } = outcome;
	switch (err.kind) {
		case "not-running": {
			const s = base("not-running", note, notRunningMessage(vaultPath));
			s.detail = err.timedOut ? `no answer: ${err.message}` : err.message || null;
			return s;
		}
		case "unauthorized":
			return base("unauthorized", note, MESSAGES.unauthorized);
		case "bad-request": {
			const s = base("bad-request", note, MESSAGES.badRequest);
			s.detail = err.message;
			return s;
		}
		default: {
			const s = base("error", note, MESSAGES.error);
			s.detail = err.status !== undefined ? `${err.status}: ${err.message}` : err.message;
			return s;
		}
	}
}

export function deriveState(outcome: Outcome): ViewState {
	const { note } = outcome;
	if (outcome.discovery) {
		const d = outcome.discovery;
		if (d.reason === "not-running") return base("not-running", note, notRunningMessage(outcome.vaultPath));
		if (d.reason === "no-token") return base("unauthorized", note, MESSAGES.noToken);
		const s = base("error", note, MESSAGES.invalidConfig);
		s.detail = d.message;
		return s;
	}

	const status = outcome.status?.ok ? outcome.status.value : null;
	const indexing = status?.state === "indexing";
	const learning = status?.state === "learning";
	const busyBanner = indexing ? MESSAGES.indexing : learning ? learningMessage(status?.learning) : null;

	const suggest = outcome.suggest;
	if (!suggest) return loadingState(note);

	if (!suggest.ok) {
		if (suggest.error.kind !== "not-indexed") return errorState(suggest.error, outcome);
		const fb = outcome.fallback;
		if (fb?.ok) {
			const rows = toRows(fb.value.suggestions, note, outcome.linked);
			if (rows.length > 0) {
				return { ...base("not-indexed", note, MESSAGES.notIndexed), banner: MESSAGES.notIndexedFallback, rows, busy: indexing || learning };
			}
		}
		if (indexing) return { ...base("indexing", note, MESSAGES.indexing), busy: true };
		return { ...base("not-indexed", note, MESSAGES.notIndexed), busy: learning, banner: learning ? busyBanner : null };
	}

	const rows = toRows(suggest.value.suggestions, note, outcome.linked);
	if (rows.length === 0) {
		if (indexing) return { ...base("indexing", note, MESSAGES.indexing), busy: true };
		return { ...base("empty", note, MESSAGES.noSuggestions), banner: busyBanner, busy: learning };
	}
	return { ...base("ok", note, null), rows, banner: busyBanner, busy: indexing || learning };
}

/** How long to wait before checking again on its own, or null to wait for the next event. */
export function pollDelayMs(state: ViewState): number | null {
	if (state.code === "not-running") return 15000;
	if (state.code === "indexing" || state.code === "not-indexed" || state.busy) return 5000;
	return null;
}

/** Equal states need no re-render (keeps hover and focus while polling). */
export function sameState(a: ViewState | null, b: ViewState): boolean {
	return a !== null && JSON.stringify(a) === JSON.stringify(b);
}
