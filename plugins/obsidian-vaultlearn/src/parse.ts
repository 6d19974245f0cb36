// Validation of the daemon's JSON bodies. Pure. Each parser returns null when the body
// does not have the shape the API contract promises.
import type { DaemonStatus, LearnState, LearningProgress, QueuedResponse, Suggestion, SuggestResponse } from "./types";

type Obj = Record<string, unknown>;

function isObj(v: unknown): v is Obj {
	return v !== null && typeof v === "object" && !Array.isArray(v);
}

function optNumber(v: unknown): number | undefined {
	return typeof v === "number" && Number.isFinite(v) ? v : undefined;
}

function numberOrNull(v: unknown): number | null {
	return typeof v === "number" && Number.isFinite(v) ? v : null;
}

function stringOrNull(v: unknown): string | null {
	return typeof v === "string" ? v : null;
}

function optStrings(v: unknown): string[] | undefined {
	return Array.isArray(v) ? v.filter((x): x is string => typeof x === "string") : undefined;
}

/** "folder/Other note.md" -> "Other note". */
export function titleFromPath(path: string): string {
	const base = path.split("/").pop() ?? path;
	return base.replace(/\.md$/i, "");
}

export function parseStatus(body: unknown): DaemonStatus | null {
	if (!isObj(body) || typeof body.state !== "string") return null;
	const status: DaemonStatus = { state: body.state };
	const notes = optNumber(body.notes);
	if (notes !== undefined) status.notes = notes;
	const links = optNumber(body.links);
	if (links !== undefined) status.links = links;
	const embedded = optNumber(body.embedded);
	if (embedded !== undefined) status.embedded = embedded;
	const phases = optStrings(body.phases);
	if (phases) status.phases = phases;
	const learned = optStrings(body.learned_phases);
	if (learned) status.learned_phases = learned;
	const pending = optStrings(body.pending_phases);
	if (pending) status.pending_phases = pending;
	if (isObj(body.learning)) {
		const learning: LearningProgress = {
			phase: stringOrNull(body.learning.phase),
			progress: numberOrNull(body.learning.progress),
		};
		status.learning = learning;
	}
	return status;
}

/**
 * The contract says reason is a string; anything else is shown as text rather than dropped
 * (a list as "a; b", an object as JSON, null as nothing).
 */
export function reasonText(reason: unknown): string {
	if (typeof reason === "string") return reason;
	if (reason === null || reason === undefined) return "";
	if (typeof reason === "number" || typeof reason === "boolean") return String(reason);
	if (Array.isArray(reason)) return reason.map(reasonText).filter((r) => r !== "").join("; ");
	return JSON.stringify(reason);
}

/** One suggestion; items without a usable path are dropped (null). */
export function parseSuggestion(item: unknown): Suggestion | null {
	if (!isObj(item) || typeof item.path !== "string" || item.path.trim() === "") return null;
	const path = item.path;
	const title = typeof item.title === "string" && item.title.trim() !== "" ? item.title : titleFromPath(path);
	return {
		path,
		title,
		score: numberOrNull(item.score),
		reason: reasonText(item.reason),
	};
}

export function parseSuggestResponse(body: unknown): SuggestResponse | null {
	if (!isObj(body) || !Array.isArray(body.suggestions)) return null;
	const suggestions = body.suggestions.map(parseSuggestion).filter((s): s is Suggestion => s !== null);
	return { note: stringOrNull(body.note), suggestions };
}

export function parseQueued(body: unknown): QueuedResponse | null {
	if (!isObj(body) || typeof body.queued !== "boolean") return null;
	return { queued: body.queued };
}

/**
 * GET /learn: {"state", "phase", "progress"}. A body with a boolean "running" instead of "state"
 * is read as state "learning" or "idle".
 */
export function parseLearnState(body: unknown): LearnState | null {
	if (!isObj(body)) return null;
	const state = typeof body.state === "string" ? body.state : typeof body.running === "boolean" ? (body.running ? "learning" : "idle") : null;
	if (state === null) return null;
	return { state, phase: stringOrNull(body.phase), progress: numberOrNull(body.progress) };
}

/** The daemon's error body is {"detail": "..."}; detail may also be a list (validation errors). */
export function errorDetail(text: string): string | null {
	let body: unknown;
	try {
		body = JSON.parse(text);
	} catch {
		const t = text.trim();
		return t === "" ? null : t.slice(0, 300);
	}
	if (isObj(body) && "detail" in body) {
		const d = body.detail;
		return typeof d === "string" ? d : JSON.stringify(d).slice(0, 300);
	}
	return null;
}
