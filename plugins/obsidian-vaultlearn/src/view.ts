// The "Suggested links" side pane for the active note.
import { ItemView, Keymap, Notice, TFile } from "obsidian";
import type { App, Editor, WorkspaceLeaf } from "obsidian";
import { buildLinkText } from "./links";
import { renderState } from "./render";
import type { SuggestionService } from "./service";
import type { VaultlearnSettings } from "./settingsModel";
import type { Row, ViewState } from "./state";
import { loadingState, noNoteState, pollDelayMs, sameState } from "./state";

export const VIEW_TYPE_SUGGESTIONS = "vaultlearn-suggestions";

/** What the view needs from the plugin. */
export interface ViewHost {
	readonly settings: VaultlearnSettings;
	readonly service: Pick<SuggestionService, "load">;
	/** The Markdown note the user works on, or null. */
	activeNotePath(): string | null;
	/** The editor showing this note in editing mode, or null. */
	findEditor(notePath: string): Editor | null;
}

/** Link text from sourcePath to targetPath, in the user's link format. */
export function linkTextFor(app: App, targetPath: string, sourcePath: string): string {
	return buildLinkText(
		{
			getFile: (path) => {
				const f = app.vault.getAbstractFileByPath(path);
				return f instanceof TFile ? f : null;
			},
			generateMarkdownLink: (file, source) => app.fileManager.generateMarkdownLink(file, source),
		},
		targetPath,
		sourcePath,
	);
}

/** Inserts a link to targetPath at the editor's cursor (replacing any selection); returns the text. */
export function insertLinkAtCursor(app: App, editor: Editor, targetPath: string, sourcePath: string): string {
	const text = linkTextFor(app, targetPath, sourcePath);
	editor.replaceSelection(text);
	return text;
}

export class SuggestedLinksView extends ItemView {
	private note: string | null = null;
	private state: ViewState | null = null;
	private seq = 0;
	private pollTimer: number | null = null;
	/** Targets inserted from this pane since the note was opened (the daemon has not seen them yet). */
	private readonly inserted = new Set<string>();

	constructor(
		leaf: WorkspaceLeaf,
		private readonly host: ViewHost,
	) {
		super(leaf);
	}

	getViewType(): string {
		return VIEW_TYPE_SUGGESTIONS;
	}

	getDisplayText(): string {
		return "Suggested links";
	}

	getIcon(): string {
		return "link";
	}

	get currentNote(): string | null {
		return this.note;
	}

	get currentState(): ViewState | null {
		return this.state;
	}

	async onOpen(): Promise<void> {
		this.contentEl.classList.add("vaultlearn-view");
		this.addAction("refresh-cw", "Refresh suggestions", () => {
			void this.refresh();
		});
		// Also runs when a pane restored at start-up is first shown: pick up the active note then.
		const note = this.note ?? this.host.activeNotePath();
		if (note === null) this.show(noNoteState());
		else if (this.note === null) void this.setNote(note);
		else void this.refresh();
	}

	async onClose(): Promise<void> {
		this.cancelPoll();
		this.seq++;
	}

	/** Shows suggestions for another note; null when no Markdown note is active. */
	async setNote(path: string | null): Promise<void> {
		if (path === this.note) return;
		this.note = path;
		this.inserted.clear();
		await this.refresh();
	}

	/** Fetches again for the current note. Results of older, slower requests are dropped. */
	async refresh(): Promise<void> {
		this.cancelPoll();
		const seq = ++this.seq;
		const note = this.note;
		if (note === null) {
			this.show(noNoteState());
			return;
		}
		if (this.state === null || this.state.note !== note) this.show(loadingState(note));
		let state: ViewState;
		try {
			state = await this.host.service.load(note);
		} catch (err) {
			state = { ...loadingState(note), code: "error", message: "could not load suggestions", detail: String(err) };
		}
		if (seq !== this.seq) return;
		this.show(state);
		this.schedulePoll(state);
	}

	/** Inserts a link to the row's note at the cursor of the editor showing the current note. */
	insert(row: Row): boolean {
		const note = this.note;
		if (note === null) return false;
		const editor = this.host.findEditor(note);
		if (editor === null) {
			new Notice("Open the note in editing mode to insert links.");
			return false;
		}
		insertLinkAtCursor(this.app, editor, row.path, note);
		editor.focus();
		this.inserted.add(row.path);
		if (this.state) this.show(this.state);
		return true;
	}

	open(row: Row, evt: MouseEvent): void {
		void this.app.workspace.openLinkText(row.path, this.note ?? "", Keymap.isModEvent(evt));
	}

	private show(state: ViewState): void {
		const marked: ViewState =
			this.inserted.size === 0
				? state
				: { ...state, rows: state.rows.map((r) => (this.inserted.has(r.path) ? { ...r, linked: true } : r)) };
		if (sameState(this.state, marked)) return;
		this.state = marked;
		renderState(this.contentEl, marked, {
			onOpen: (row, evt) => this.open(row, evt),
			onInsert: (row) => {
				this.insert(row);
			},
		});
	}

	private schedulePoll(state: ViewState): void {
		if (!this.host.settings.autoRefresh) return;
		const delay = pollDelayMs(state);
		if (delay === null) return;
		this.pollTimer = window.setTimeout(() => {
			this.pollTimer = null;
			void this.refresh();
		}, delay);
	}

	private cancelPoll(): void {
		if (this.pollTimer !== null) {
			window.clearTimeout(this.pollTimer);
			this.pollTimer = null;
		}
	}
}
