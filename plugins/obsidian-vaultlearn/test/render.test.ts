import { describe, expect, it, vi } from "vitest";
import { appendWithCode, renderState } from "../src/render";
import type { ViewState } from "../src/state";
import { deriveState, noNoteState } from "../src/state";

function container(): HTMLElement {
	const el = document.createElement("div");
	document.body.appendChild(el);
	return el;
}

const listState: ViewState = deriveState({
	note: "Projects/Plan.md",
	vaultPath: "/v",
	suggest: {
		ok: true,
		value: {
			note: "Projects/Plan.md",
			suggestions: [
				{ path: "folder/Other.md", title: "Other", score: 0.7312, reason: "similar text (0.71); 2 shared neighbours" },
				{ path: "Linked.md", title: "Linked", score: 0.5, reason: "" },
			],
		},
	},
	status: { ok: true, value: { state: "learning", learning: { phase: "p2", progress: 0.25 } } },
	linked: new Set(["Linked.md"]),
});

describe("renderState", () => {
	it("renders one row per suggestion: title, two-decimal score, reason", () => {
		const el = container();
		renderState(el, listState, { onOpen: vi.fn(), onInsert: vi.fn() });
		const rows = [...el.querySelectorAll("li.vaultlearn-row")] as HTMLElement[];
		expect(rows.map((r) => r.dataset.path)).toEqual(["folder/Other.md", "Linked.md"]);
		expect(rows[0].querySelector(".vaultlearn-title")!.textContent).toBe("Other");
		expect(rows[0].querySelector(".vaultlearn-score")!.textContent).toBe("0.73");
		expect(rows[0].querySelector(".vaultlearn-reason")!.textContent).toBe("similar text (0.71); 2 shared neighbours");
		expect(rows[1].querySelector(".vaultlearn-reason")).toBe(null);
		expect(el.querySelector(".vaultlearn-header-note")!.textContent).toBe("Plan");
		expect(el.querySelector(".vaultlearn-banner")!.textContent).toBe("learning phase p2 (25%)");
		expect(el.querySelector(".vaultlearn-message")).toBe(null);
	});

	it("clicking a title opens it; the button inserts it", () => {
		const el = container();
		const onOpen = vi.fn();
		const onInsert = vi.fn();
		renderState(el, listState, { onOpen, onInsert });
		const first = el.querySelector("li.vaultlearn-row") as HTMLElement;
		(first.querySelector(".vaultlearn-title") as HTMLElement).click();
		expect(onOpen).toHaveBeenCalledTimes(1);
		expect(onOpen.mock.calls[0][0]).toMatchObject({ path: "folder/Other.md" });
		expect(onInsert).not.toHaveBeenCalled();
		const button = first.querySelector("button.vaultlearn-insert") as HTMLButtonElement;
		expect(button.getAttribute("aria-label")).toBe("Insert link to Other");
		expect(button.getAttribute("data-icon")).toBe("link");
		button.click();
		expect(onInsert).toHaveBeenCalledTimes(1);
		expect(onInsert.mock.calls[0][0]).toMatchObject({ path: "folder/Other.md" });
	});

	it("a row already linked has a disabled check button that does nothing", () => {
		const el = container();
		const onInsert = vi.fn();
		renderState(el, listState, { onOpen: vi.fn(), onInsert });
		const linked = el.querySelectorAll("li.vaultlearn-row")[1] as HTMLElement;
		expect(linked.classList.contains("is-linked")).toBe(true);
		const button = linked.querySelector("button") as HTMLButtonElement;
		expect(button.disabled).toBe(true);
		expect(button.getAttribute("data-icon")).toBe("check");
		button.click();
		expect(onInsert).not.toHaveBeenCalled();
	});

	it("renders a state message with the command as <code>, and the detail", () => {
		const el = container();
		const state = deriveState({
			note: "A.md",
			vaultPath: "/home/me/vault",
			suggest: { ok: false, error: { kind: "not-running", timedOut: false, message: "connect ECONNREFUSED 127.0.0.1:8765" } },
		});
		renderState(el, state, { onOpen: vi.fn(), onInsert: vi.fn() });
		const msg = el.querySelector(".vaultlearn-message")!;
		expect(msg.textContent).toBe("daemon not running — start vaultlearn watch /home/me/vault");
		expect(msg.querySelector("code")!.textContent).toBe("vaultlearn watch /home/me/vault");
		expect(el.querySelector(".vaultlearn-detail")!.textContent).toBe("connect ECONNREFUSED 127.0.0.1:8765");
		expect(el.querySelector("ul")).toBe(null);
		expect(el.querySelector(".vaultlearn-pane")!.classList.contains("vaultlearn-state-not-running")).toBe(true);
	});

	it("re-rendering replaces the previous content", () => {
		const el = container();
		renderState(el, listState, { onOpen: vi.fn(), onInsert: vi.fn() });
		renderState(el, noNoteState(), { onOpen: vi.fn(), onInsert: vi.fn() });
		expect(el.querySelectorAll("li").length).toBe(0);
		expect(el.querySelectorAll(".vaultlearn-pane").length).toBe(1);
		expect(el.textContent).toBe("Open a Markdown note to see suggested links.");
		expect(el.querySelector(".vaultlearn-header")).toBe(null);
	});

	it("text from the daemon is inserted as text, never as HTML", () => {
		const el = container();
		const state: ViewState = {
			...listState,
			rows: [{ path: "x.md", title: "<img src=x onerror=alert(1)>", score: "0.10", reason: "<b>bold</b>", linked: false }],
		};
		renderState(el, state, { onOpen: vi.fn(), onInsert: vi.fn() });
		expect(el.querySelector("img")).toBe(null);
		expect(el.querySelector("b")).toBe(null);
		expect(el.querySelector(".vaultlearn-title")!.textContent).toBe("<img src=x onerror=alert(1)>");
	});

	it("appendWithCode alternates text and code on backticks", () => {
		const el = container();
		appendWithCode(el, "run `a` then `b` now");
		expect([...el.childNodes].map((n) => `${n.nodeName}:${n.textContent}`)).toEqual([
			"#text:run ",
			"CODE:a",
			"#text: then ",
			"CODE:b",
			"#text: now",
		]);
	});
});
