// Renders a ViewState into the pane with plain DOM calls (no innerHTML), so it runs the same
// in Obsidian, in pop-out windows (ownerDocument) and under happy-dom in tests.
import { setIcon } from "obsidian";
import type { Row, ViewState } from "./state";

export interface RowHandlers {
	onOpen(row: Row, evt: MouseEvent): void;
	onInsert(row: Row): void;
}

function el<K extends keyof HTMLElementTagNameMap>(
	parent: HTMLElement,
	tag: K,
	cls?: string,
	text?: string,
): HTMLElementTagNameMap[K] {
	const node = parent.ownerDocument.createElement(tag);
	if (cls) node.className = cls;
	if (text !== undefined) node.textContent = text;
	parent.appendChild(node);
	return node;
}

/** Writes text into parent, turning `backtick` spans into <code> elements. */
export function appendWithCode(parent: HTMLElement, text: string): void {
	text.split("`").forEach((part, i) => {
		if (part === "") return;
		if (i % 2 === 1) el(parent, "code", undefined, part);
		else parent.appendChild(parent.ownerDocument.createTextNode(part));
	});
}

function noteTitle(path: string): string {
	return (path.split("/").pop() ?? path).replace(/\.md$/i, "");
}

export function renderRow(list: HTMLElement, row: Row, handlers: RowHandlers): HTMLLIElement {
	const li = el(list, "li", row.linked ? "vaultlearn-row is-linked" : "vaultlearn-row");
	li.dataset.path = row.path;

	const main = el(li, "div", "vaultlearn-row-main");
	const title = el(main, "a", "vaultlearn-title", row.title);
	title.href = "#";
	title.title = row.path;
	title.addEventListener("click", (evt) => {
		evt.preventDefault();
		handlers.onOpen(row, evt);
	});
	title.addEventListener("auxclick", (evt) => {
		if (evt.button !== 1) return;
		evt.preventDefault();
		handlers.onOpen(row, evt);
	});
	el(main, "span", "vaultlearn-score", row.score);

	const button = el(main, "button", "vaultlearn-insert clickable-icon");
	button.type = "button";
	if (row.linked) {
		button.disabled = true;
		button.setAttribute("aria-label", `Already linked to ${row.title}`);
		setIcon(button, "check");
	} else {
		button.setAttribute("aria-label", `Insert link to ${row.title}`);
		setIcon(button, "link");
		button.addEventListener("click", (evt) => {
			evt.preventDefault();
			handlers.onInsert(row);
		});
	}

	if (row.reason !== "") el(li, "div", "vaultlearn-reason", row.reason);
	return li;
}

export function renderState(container: HTMLElement, state: ViewState, handlers: RowHandlers): void {
	while (container.firstChild) container.removeChild(container.firstChild);
	const root = el(container, "div", `vaultlearn-pane vaultlearn-state-${state.code}`);

	if (state.note !== null && state.note !== "") {
		const header = el(root, "div", "vaultlearn-header");
		el(header, "span", "vaultlearn-header-label", "Links for ");
		el(header, "span", "vaultlearn-header-note", noteTitle(state.note));
	}
	if (state.banner !== null) {
		appendWithCode(el(root, "div", "vaultlearn-banner"), state.banner);
	}
	if (state.rows.length === 0) {
		if (state.message !== null) appendWithCode(el(root, "div", "vaultlearn-message"), state.message);
		if (state.detail !== null) el(root, "div", "vaultlearn-detail", state.detail);
		return;
	}
	const list = el(root, "ul", "vaultlearn-list");
	for (const row of state.rows) renderRow(list, row, handlers);
}
