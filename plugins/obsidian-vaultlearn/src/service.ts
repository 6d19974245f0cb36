// One refresh: discover the daemon, ask for suggestions and status, derive the pane's state.
// Obsidian-free (the adapter and app lookups come in as functions), so it is tested directly.
import { VaultlearnClient } from "./api";
import type { FileReader } from "./discovery";
import { discover } from "./discovery";
import type { VaultlearnSettings } from "./settingsModel";
import type { ViewState } from "./state";
import { deriveState, learningMessage } from "./state";
import type { DaemonStatus, Endpoint, Result, SuggestResponse } from "./types";

/** At most this many characters of a note's text go to POST /search. */
export const SEARCH_TEXT_LIMIT = 8000;

/** The first `limit` UTF-16 units of text, never ending in half of a surrogate pair. */
export function truncateText(text: string, limit: number): string {
	if (text.length <= limit) return text;
	const cut = text.slice(0, limit);
	const last = cut.charCodeAt(cut.length - 1);
	return last >= 0xd800 && last <= 0xdbff ? cut.slice(0, -1) : cut;
}

export interface DaemonClient {
	status(): Promise<Result<DaemonStatus>>;
	suggest(notePath: string, k: number): Promise<Result<SuggestResponse>>;
	search(text: string, k: number): Promise<Result<SuggestResponse>>;
}

export interface ServiceDeps {
	reader: FileReader;
	settings(): VaultlearnSettings;
	/** Absolute vault folder (or the vault's name) for the "start the daemon" hint. */
	vaultPath(): string;
	/** Paths the note already links to. */
	linked(notePath: string): ReadonlySet<string>;
	/** The note's current text, for the text-search fallback; null when unavailable. */
	readNote(notePath: string): Promise<string | null>;
	createClient?(endpoint: Endpoint): DaemonClient;
}

export class SuggestionService {
	constructor(private readonly deps: ServiceDeps) {}

	private client(endpoint: Endpoint): DaemonClient {
		return this.deps.createClient ? this.deps.createClient(endpoint) : new VaultlearnClient(endpoint);
	}

	async load(note: string): Promise<ViewState> {
		const vaultPath = this.deps.vaultPath();
		const settings = this.deps.settings();
		const found = await discover(this.deps.reader, settings);
		if (!found.ok) return deriveState({ note, vaultPath, discovery: found });

		const client = this.client(found.endpoint);
		const [suggest, status] = await Promise.all([client.suggest(note, settings.k), client.status()]);
		let fallback: Result<SuggestResponse> | undefined;
		if (!suggest.ok && suggest.error.kind === "not-indexed") {
			const text = await this.deps.readNote(note).catch(() => null);
			if (text !== null && text.trim() !== "") {
				fallback = await client.search(truncateText(text, SEARCH_TEXT_LIMIT), settings.k);
			}
		}
		return deriveState({ note, vaultPath, suggest, status, fallback, linked: this.deps.linked(note) });
	}

	/** One line for the settings tab's "Test connection" button. */
	async describeConnection(): Promise<string> {
		const found = await discover(this.deps.reader, this.deps.settings());
		if (!found.ok) {
			return deriveState({ note: "", vaultPath: this.deps.vaultPath(), discovery: found }).message ?? found.message;
		}
		const res = await this.client(found.endpoint).status();
		if (!res.ok) {
			const s = deriveState({ note: "", vaultPath: this.deps.vaultPath(), suggest: { ok: false, error: res.error } });
			return [s.message, s.detail].filter(Boolean).join(": ");
		}
		const st = res.value;
		const state = st.state === "learning" ? learningMessage(st.learning) : st.state;
		const counts = [
			st.notes !== undefined ? `${st.notes} notes` : null,
			st.links !== undefined ? `${st.links} links` : null,
			st.embedded !== undefined ? `${st.embedded} embedded` : null,
		].filter(Boolean);
		return `Connected to ${found.endpoint.baseUrl}: ${state}${counts.length ? `, ${counts.join(", ")}` : ""}`;
	}
}
