// A small stand-in for the `obsidian` module (the npm package ships types only).
// It implements just what the plugin's modules touch; behaviour is kept close to Obsidian's.
import http from "node:http";

// ---------------------------------------------------------------- requestUrl (over node:http)

export interface RequestUrlParam {
	url: string;
	method?: string;
	contentType?: string;
	body?: string | ArrayBuffer;
	headers?: Record<string, string>;
	throw?: boolean;
}

export interface RequestUrlResponse {
	status: number;
	headers: Record<string, string>;
	arrayBuffer: ArrayBuffer;
	json: unknown;
	text: string;
}

/** Like Obsidian's requestUrl: rejects on transport errors, and on status >= 400 unless throw is false. */
export function requestUrl(request: RequestUrlParam | string): Promise<RequestUrlResponse> {
	const r = typeof request === "string" ? { url: request } : request;
	return new Promise((resolve, reject) => {
		const headers: Record<string, string> = { ...(r.headers ?? {}) };
		if (r.contentType) headers["Content-Type"] = r.contentType;
		const req = http.request(r.url, { method: r.method ?? "GET", headers }, (res) => {
			const chunks: Buffer[] = [];
			res.on("data", (c: Buffer) => chunks.push(c));
			res.on("end", () => {
				const buf = Buffer.concat(chunks);
				const text = buf.toString("utf8");
				const status = res.statusCode ?? 0;
				const response: RequestUrlResponse = {
					status,
					headers: Object.fromEntries(Object.entries(res.headers).map(([k, v]) => [k, String(v)])),
					arrayBuffer: buf.buffer.slice(buf.byteOffset, buf.byteOffset + buf.byteLength),
					get json() {
						return JSON.parse(text);
					},
					text,
				};
				if (status >= 400 && r.throw !== false) reject(Object.assign(new Error(`Request failed, status ${status}`), { status }));
				else resolve(response);
			});
		});
		req.on("error", reject);
		if (r.body !== undefined) req.write(typeof r.body === "string" ? r.body : Buffer.from(r.body));
		req.end();
	});
}

// ---------------------------------------------------------------- helpers

export function normalizePath(path: string): string {
	return path.replace(/\\/g, "/").replace(/\/+/g, "/").replace(/^\/|\/$/g, "");
}

export function setIcon(parent: HTMLElement, iconId: string): void {
	parent.setAttribute("data-icon", iconId);
}

export interface Debouncer<T extends unknown[], V> {
	(...args: [...T]): this;
	cancel(): this;
	run(): V | void;
}

export function debounce<T extends unknown[], V>(cb: (...args: [...T]) => V, timeout = 0, _resetTimer?: boolean): Debouncer<T, V> {
	let timer: ReturnType<typeof setTimeout> | null = null;
	let last: T | null = null;
	const fn = ((...args: T) => {
		last = args;
		if (timer) clearTimeout(timer);
		timer = setTimeout(() => {
			timer = null;
			cb(...(last as T));
		}, timeout);
		return fn;
	}) as Debouncer<T, V>;
	fn.cancel = () => {
		if (timer) clearTimeout(timer);
		timer = null;
		return fn;
	};
	fn.run = () => {
		if (!timer) return;
		clearTimeout(timer);
		timer = null;
		return cb(...(last as T));
	};
	return fn;
}

export const Keymap = {
	isModEvent(evt?: MouseEvent | KeyboardEvent | null): boolean | "tab" {
		return evt ? (evt.ctrlKey || evt.metaKey ? "tab" : false) : false;
	},
};

export class Notice {
	static messages: string[] = [];
	constructor(readonly message: string) {
		Notice.messages.push(message);
	}
}

// ---------------------------------------------------------------- files

export class TAbstractFile {
	path = "";
	name = "";
}

export class TFile extends TAbstractFile {
	basename: string;
	extension: string;
	constructor(path: string) {
		super();
		this.path = path;
		this.name = path.split("/").pop() ?? path;
		const dot = this.name.lastIndexOf(".");
		this.basename = dot > 0 ? this.name.slice(0, dot) : this.name;
		this.extension = dot > 0 ? this.name.slice(dot + 1) : "";
	}
}

export class FileSystemAdapter {
	constructor(private readonly base: string) {}
	getBasePath(): string {
		return this.base;
	}
}

// ---------------------------------------------------------------- components and views

export class Component {
	private cleanups: (() => void)[] = [];
	register(cb: () => void): void {
		this.cleanups.push(cb);
	}
	registerEvent(_ref: unknown): void {}
	unload(): void {
		this.cleanups.forEach((cb) => cb());
		this.cleanups = [];
	}
}

export class WorkspaceLeaf {
	view: unknown = null;
	constructor(public app: unknown = null) {}
}

export class View extends Component {
	app: any;
	containerEl: HTMLElement;
	constructor(public leaf: WorkspaceLeaf) {
		super();
		this.app = (leaf as { app: unknown }).app;
		this.containerEl = document.createElement("div");
	}
}

export class ItemView extends View {
	contentEl: HTMLElement;
	actions: { icon: string; title: string; callback: (evt: MouseEvent) => unknown }[] = [];
	constructor(leaf: WorkspaceLeaf) {
		super(leaf);
		this.contentEl = document.createElement("div");
		this.containerEl.appendChild(this.contentEl);
	}
	addAction(icon: string, title: string, callback: (evt: MouseEvent) => unknown): HTMLElement {
		this.actions.push({ icon, title, callback });
		return document.createElement("div");
	}
}

export class MarkdownView extends ItemView {
	file: TFile | null = null;
	editor: unknown = null;
	mode: "source" | "preview" = "source";
	getMode(): "source" | "preview" {
		return this.mode;
	}
}

export interface Command {
	id: string;
	name: string;
	callback?: () => unknown;
	editorCallback?: (editor: any, ctx: any) => unknown;
}

/** Records what a plugin registers so tests can inspect and invoke it. */
export class Plugin extends Component {
	data: unknown = null;
	commands: Command[] = [];
	viewFactories: Record<string, (leaf: WorkspaceLeaf) => unknown> = {};
	ribbon: { icon: string; title: string; callback: (evt: MouseEvent) => unknown }[] = [];
	settingTabs: unknown[] = [];
	events: unknown[] = [];
	constructor(
		public app: any,
		public manifest: unknown = { id: "vaultlearn-links" },
	) {
		super();
	}
	async loadData(): Promise<unknown> {
		return this.data;
	}
	async saveData(data: unknown): Promise<void> {
		this.data = JSON.parse(JSON.stringify(data));
	}
	registerView(type: string, creator: (leaf: WorkspaceLeaf) => unknown): void {
		this.viewFactories[type] = creator;
	}
	addRibbonIcon(icon: string, title: string, callback: (evt: MouseEvent) => unknown): HTMLElement {
		this.ribbon.push({ icon, title, callback });
		return document.createElement("div");
	}
	addCommand(command: Command): Command {
		this.commands.push(command);
		return command;
	}
	addSettingTab(tab: unknown): void {
		this.settingTabs.push(tab);
	}
	registerEvent(ref: unknown): void {
		this.events.push(ref);
	}
}

export class PluginSettingTab {
	containerEl: HTMLElement = document.createElement("div");
	constructor(
		public app: unknown,
		public plugin: unknown,
	) {}
}

/** Chainable no-op Setting; enough for the tab to be constructed. */
export class Setting {
	descEl: HTMLElement = document.createElement("div");
	constructor(public containerEl: HTMLElement) {}
	setName(): this {
		return this;
	}
	setDesc(): this {
		return this;
	}
	addText(): this {
		return this;
	}
	addSlider(): this {
		return this;
	}
	addToggle(): this {
		return this;
	}
	addButton(): this {
		return this;
	}
}

export type App = any;
export type Editor = any;
export type TFolder = any;
