// vaultlearn links: shows the notes the local vaultlearn daemon suggests linking from the active note.
import { debounce, FileSystemAdapter, MarkdownView, Notice, Plugin, TFile } from "obsidian";
import type { Editor, TAbstractFile, WorkspaceLeaf } from "obsidian";
import { linkedTargets, firstUnlinked } from "./links";
import { SuggestionService } from "./service";
import { VaultlearnSettingTab } from "./settings";
import type { VaultlearnSettings } from "./settingsModel";
import { normalizeSettings } from "./settingsModel";
import { insertLinkAtCursor, SuggestedLinksView, VIEW_TYPE_SUGGESTIONS } from "./view";

/** Wait this long after the last save of the active note before asking again. */
const MODIFY_DEBOUNCE_MS = 2000;

export default class VaultlearnPlugin extends Plugin {
	settings!: VaultlearnSettings;
	service!: SuggestionService;
	/** The Markdown view that was active last; the pane's buttons take focus away from it. */
	private lastMarkdownView: MarkdownView | null = null;

	async onload(): Promise<void> {
		await this.loadSettings();
		this.service = new SuggestionService({
			reader: this.app.vault.adapter,
			settings: () => this.settings,
			vaultPath: () => {
				const adapter = this.app.vault.adapter;
				return adapter instanceof FileSystemAdapter ? adapter.getBasePath() : this.app.vault.getName();
			},
			linked: (note) => linkedTargets(this.app.metadataCache.resolvedLinks, note),
			readNote: async (note) => {
				const file = this.app.vault.getAbstractFileByPath(note);
				return file instanceof TFile ? this.app.vault.cachedRead(file) : null;
			},
		});

		this.registerView(VIEW_TYPE_SUGGESTIONS, (leaf) => new SuggestedLinksView(leaf, this));

		this.addRibbonIcon("link", "Open suggested links", () => {
			void this.activateView();
		});
		this.addCommand({
			id: "open-suggested-links",
			name: "Open suggested links",
			callback: () => {
				void this.activateView();
			},
		});
		this.addCommand({
			id: "insert-top-suggestion",
			name: "Insert top suggestion as link",
			editorCallback: (editor, ctx) => {
				const file = ctx.file;
				if (file) void this.insertTopSuggestion(editor, file.path);
			},
		});
		this.addCommand({
			id: "refresh-suggestions",
			name: "Refresh suggestions",
			callback: () => {
				this.syncViews(true);
			},
		});

		this.addSettingTab(new VaultlearnSettingTab(this.app, this));

		// Registered once the layout is ready, so start-up file events do not trigger requests.
		this.app.workspace.onLayoutReady(() => {
			const onModify = debounce(() => this.syncViews(true), MODIFY_DEBOUNCE_MS, true);
			this.register(() => onModify.cancel());
			this.registerEvent(this.app.workspace.on("active-leaf-change", (leaf) => this.onActiveLeaf(leaf)));
			this.registerEvent(this.app.workspace.on("file-open", () => this.syncViews(false)));
			this.registerEvent(
				this.app.vault.on("modify", (file: TAbstractFile) => {
					if (this.settings.autoRefresh && this.openViews().some((v) => v.currentNote === file.path)) onModify();
				}),
			);
			this.registerEvent(
				this.app.vault.on("rename", (_file: TAbstractFile, oldPath: string) => {
					if (this.openViews().some((v) => v.currentNote === oldPath)) this.syncViews(true);
				}),
			);
			this.registerEvent(
				this.app.vault.on("delete", (file: TAbstractFile) => {
					if (this.openViews().some((v) => v.currentNote === file.path)) this.syncViews(true);
				}),
			);
			this.onActiveLeaf(this.app.workspace.getMostRecentLeaf());
		});
	}

	onunload(): void {
		this.refreshAfterSettings.cancel();
		this.lastMarkdownView = null;
	}

	async loadSettings(): Promise<void> {
		this.settings = normalizeSettings(await this.loadData());
	}

	async saveSettings(): Promise<void> {
		await this.saveData(this.settings);
		this.refreshAfterSettings();
	}

	/** Settings change per keystroke or slider step; refetch once they settle. */
	private readonly refreshAfterSettings = debounce(() => this.syncViews(true), 500, true);

	describeConnection(): Promise<string> {
		return this.service.describeConnection();
	}

	openViews(): SuggestedLinksView[] {
		return this.app.workspace
			.getLeavesOfType(VIEW_TYPE_SUGGESTIONS)
			.map((leaf) => leaf.view)
			.filter((view): view is SuggestedLinksView => view instanceof SuggestedLinksView);
	}

	/** The Markdown note the user works on: the active file, kept while the side pane has focus. */
	activeNotePath(): string | null {
		const file = this.app.workspace.getActiveFile();
		return file !== null && file.extension === "md" ? file.path : null;
	}

	findEditor(notePath: string): Editor | null {
		const candidates: (MarkdownView | null)[] = [
			this.app.workspace.getActiveViewOfType(MarkdownView),
			this.lastMarkdownView,
			...this.app.workspace.getLeavesOfType("markdown").map((l) => (l.view instanceof MarkdownView ? l.view : null)),
		];
		for (const view of candidates) {
			if (view && view.file?.path === notePath && view.getMode() === "source") return view.editor;
		}
		return null;
	}

	private onActiveLeaf(leaf: WorkspaceLeaf | null): void {
		if (leaf?.view instanceof MarkdownView) this.lastMarkdownView = leaf.view;
		this.syncViews(false);
	}

	/**
	 * Points every open pane at the active note. Without force this only follows the active
	 * note when auto-refresh is on (or the pane shows nothing yet); force also refetches
	 * when the note is unchanged.
	 */
	private syncViews(force: boolean): void {
		const note = this.activeNotePath();
		for (const view of this.openViews()) {
			if (!force && !this.settings.autoRefresh && view.currentNote !== null) continue;
			if (view.currentNote !== note) void view.setNote(note);
			else if (force) void view.refresh();
		}
	}

	async activateView(): Promise<void> {
		const { workspace } = this.app;
		let leaf: WorkspaceLeaf | null = workspace.getLeavesOfType(VIEW_TYPE_SUGGESTIONS)[0] ?? null;
		if (leaf === null) {
			leaf = workspace.getRightLeaf(false);
			if (leaf === null) return;
			await leaf.setViewState({ type: VIEW_TYPE_SUGGESTIONS, active: true });
		}
		await workspace.revealLeaf(leaf);
		const view = leaf.view;
		if (view instanceof SuggestedLinksView) await view.setNote(this.activeNotePath());
	}

	private async insertTopSuggestion(editor: Editor, notePath: string): Promise<void> {
		const state = await this.service.load(notePath);
		const row = firstUnlinked(state.rows);
		if (row === null) {
			new Notice(`vaultlearn: ${state.message ?? "no suggestions"}`);
			return;
		}
		insertLinkAtCursor(this.app, editor, row.path, notePath);
	}
}
