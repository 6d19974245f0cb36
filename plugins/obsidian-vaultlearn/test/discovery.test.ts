import { describe, expect, it } from "vitest";
import { DAEMON_FILE, discover, parseDaemonInfo, parseToken, TOKEN_FILE } from "../src/discovery";
import { DEFAULT_SETTINGS } from "../src/settingsModel";
import { memoryReader } from "./helpers/memoryReader";

const DAEMON_JSON = JSON.stringify({ host: "127.0.0.1", port: 8765, pid: 123, started: "2026-11-23T10:00:00+00:00" });
const defaults = { host: DEFAULT_SETTINGS.host, port: DEFAULT_SETTINGS.port, token: DEFAULT_SETTINGS.token };

describe("parseDaemonInfo", () => {
	it("reads host, port, pid and started", () => {
		expect(parseDaemonInfo(DAEMON_JSON)).toEqual({
			ok: true,
			value: { host: "127.0.0.1", port: 8765, pid: 123, started: "2026-11-23T10:00:00+00:00" },
		});
	});

	it("accepts a file with only a port and ignores extra fields", () => {
		expect(parseDaemonInfo('{"port": 9000, "version": "0.1"}')).toEqual({
			ok: true,
			value: { host: null, port: 9000, pid: null, started: null },
		});
	});

	it.each([
		["", "is not valid JSON"],
		['{"host": "127.0.0.1", "port": 87', "is not valid JSON"],
		["[8765]", "is not a JSON object"],
		["null", "is not a JSON object"],
		['{"host": "127.0.0.1"}', 'has no valid "port"'],
		['{"port": "8765"}', 'has no valid "port"'],
		['{"port": 0}', 'has no valid "port"'],
		['{"port": 70000}', 'has no valid "port"'],
		['{"port": 87.5}', 'has no valid "port"'],
	])("rejects %j", (text, why) => {
		const r = parseDaemonInfo(text);
		expect(r.ok).toBe(false);
		expect(!r.ok && r.message).toBe(`${DAEMON_FILE} ${why}`);
	});
});

describe("parseToken", () => {
	it("takes the first line, trimmed", () => {
		expect(parseToken("abc123\n")).toBe("abc123");
		expect(parseToken("  abc123  \r\nsecond line")).toBe("abc123");
	});
	it("is null for an empty file", () => {
		expect(parseToken("")).toBe(null);
		expect(parseToken("\n\n")).toBe(null);
	});
});

describe("discover", () => {
	it("builds the endpoint from daemon.json and the token file", async () => {
		const reader = memoryReader({ [DAEMON_FILE]: DAEMON_JSON, [TOKEN_FILE]: "tok-1\n" });
		const r = await discover(reader, defaults);
		expect(r).toEqual({
			ok: true,
			endpoint: { baseUrl: "http://127.0.0.1:8765", token: "tok-1" },
			info: { host: "127.0.0.1", port: 8765, pid: 123, started: "2026-11-23T10:00:00+00:00" },
		});
		expect(reader.reads).toEqual([".vaultlearn/daemon.json", ".vaultlearn/token"]);
	});

	it("reports not-running when daemon.json is absent", async () => {
		const r = await discover(memoryReader({ [TOKEN_FILE]: "tok" }), defaults);
		expect(r).toEqual({ ok: false, reason: "not-running", message: ".vaultlearn/daemon.json not found" });
	});

	it("treats a daemon.json that vanishes between exists() and read() as absent", async () => {
		const r = await discover(memoryReader({ [DAEMON_FILE]: DAEMON_JSON }, { failRead: true }), defaults);
		expect(r.ok === false && r.reason).toBe("not-running");
	});

	it("reports invalid for a malformed daemon.json", async () => {
		const r = await discover(memoryReader({ [DAEMON_FILE]: "{not json", [TOKEN_FILE]: "tok" }), defaults);
		expect(r).toEqual({ ok: false, reason: "invalid", message: ".vaultlearn/daemon.json is not valid JSON" });
	});

	it("reports no-token when daemon.json exists but the token file does not", async () => {
		const r = await discover(memoryReader({ [DAEMON_FILE]: DAEMON_JSON }), defaults);
		expect(r.ok === false && r.reason).toBe("no-token");
	});

	it("reports no-token for an empty token file", async () => {
		const r = await discover(memoryReader({ [DAEMON_FILE]: DAEMON_JSON, [TOKEN_FILE]: "\n" }), defaults);
		expect(r.ok === false && r.reason).toBe("no-token");
	});

	it("lets the settings override port and token (and skips the token file)", async () => {
		const reader = memoryReader({ [DAEMON_FILE]: DAEMON_JSON, [TOKEN_FILE]: "file-token" });
		const r = await discover(reader, { host: "localhost", port: 9999, token: " my-token " });
		expect(r.ok && r.endpoint).toEqual({ baseUrl: "http://localhost:9999", token: "my-token" });
		expect(reader.reads).toEqual([".vaultlearn/daemon.json"]);
	});

	it("works without daemon.json when port and token are both in the settings", async () => {
		const r = await discover(memoryReader({}), { host: "127.0.0.1", port: 8000, token: "t" });
		expect(r.ok && r.endpoint).toEqual({ baseUrl: "http://127.0.0.1:8000", token: "t" });
		expect(r.ok && r.info).toBe(null);
	});

	it("a port in the settings rescues a malformed daemon.json", async () => {
		const r = await discover(memoryReader({ [DAEMON_FILE]: "garbage", [TOKEN_FILE]: "tok" }), { host: "", port: 8100, token: "" });
		expect(r.ok && r.endpoint).toEqual({ baseUrl: "http://127.0.0.1:8100", token: "tok" });
	});

	it("a blank host setting takes the host from daemon.json, IPv6 bracketed", async () => {
		const json = JSON.stringify({ host: "::1", port: 8765 });
		const r = await discover(memoryReader({ [DAEMON_FILE]: json, [TOKEN_FILE]: "tok" }), { host: "", port: null, token: "" });
		expect(r.ok && r.endpoint.baseUrl).toBe("http://[::1]:8765");
	});

	it("refuses a non-loopback host from daemon.json", async () => {
		const json = JSON.stringify({ host: "192.168.1.20", port: 8765 });
		const r = await discover(memoryReader({ [DAEMON_FILE]: json, [TOKEN_FILE]: "tok" }), { host: "", port: null, token: "" });
		expect(r).toEqual({ ok: false, reason: "invalid", message: 'refusing non-loopback host "192.168.1.20"' });
	});
});
