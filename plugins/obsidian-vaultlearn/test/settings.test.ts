import { describe, expect, it } from "vitest";
import { clampK, DEFAULT_SETTINGS, isLoopbackHost, normalizeSettings, parsePort, validateHost } from "../src/settingsModel";

describe("settings validation", () => {
	it("defaults: host 127.0.0.1, port and token from the daemon's files, k 10, auto-refresh on", () => {
		expect(DEFAULT_SETTINGS).toEqual({ host: "127.0.0.1", port: null, token: "", k: 10, autoRefresh: true });
	});

	it.each(["127.0.0.1", "127.1.2.3", "localhost", "LOCALHOST", "::1", "[::1]", " 127.0.0.1 "])("accepts loopback host %j", (h) => {
		expect(isLoopbackHost(h)).toBe(true);
		expect(validateHost(h)).toBe(null);
	});

	it.each(["192.168.0.10", "0.0.0.0", "example.com", "127.0.0.256", "128.0.0.1", "::"])("rejects non-loopback host %j", (h) => {
		expect(isLoopbackHost(h)).toBe(false);
		expect(validateHost(h)).toMatch(/loopback/);
	});

	it("rejects URLs and paths in the host field, accepts blank", () => {
		expect(validateHost("http://127.0.0.1")).toMatch(/host name or address only/);
		expect(validateHost("127.0.0.1/x")).toMatch(/host name or address only/);
		expect(validateHost("")).toBe(null);
		expect(validateHost("   ")).toBe(null);
	});

	it("parsePort: blank means daemon.json, else 1..65535 whole numbers", () => {
		expect(parsePort("")).toEqual({ ok: true, port: null });
		expect(parsePort(" 8765 ")).toEqual({ ok: true, port: 8765 });
		expect(parsePort("65535")).toEqual({ ok: true, port: 65535 });
		expect(parsePort("0")).toEqual({ ok: false, message: "Port must be between 1 and 65535" });
		expect(parsePort("65536")).toEqual({ ok: false, message: "Port must be between 1 and 65535" });
		expect(parsePort("87.5")).toEqual({ ok: false, message: "Port must be a whole number" });
		expect(parsePort("-1")).toEqual({ ok: false, message: "Port must be a whole number" });
		expect(parsePort("abc")).toEqual({ ok: false, message: "Port must be a whole number" });
	});

	it("clampK rounds and clamps to 1..50; junk gives the default", () => {
		expect(clampK(0)).toBe(1);
		expect(clampK(-3)).toBe(1);
		expect(clampK(51)).toBe(50);
		expect(clampK(12.6)).toBe(13);
		expect(clampK("20")).toBe(20);
		expect(clampK("x")).toBe(10);
		expect(clampK(NaN)).toBe(10);
		expect(clampK(null)).toBe(10);
	});

	it("normalizeSettings fills defaults for missing data", () => {
		expect(normalizeSettings(null)).toEqual(DEFAULT_SETTINGS);
		expect(normalizeSettings(undefined)).toEqual(DEFAULT_SETTINGS);
		expect(normalizeSettings("junk")).toEqual(DEFAULT_SETTINGS);
	});

	it("normalizeSettings keeps valid values and drops invalid ones", () => {
		expect(normalizeSettings({ host: "localhost", port: "9000", token: " abc ", k: 99, autoRefresh: false, extra: 1 })).toEqual({
			host: "localhost",
			port: 9000,
			token: "abc",
			k: 50,
			autoRefresh: false,
		});
		expect(normalizeSettings({ host: "10.0.0.1", port: 0, token: 5, k: "x", autoRefresh: "no" })).toEqual(DEFAULT_SETTINGS);
		expect(normalizeSettings({ host: "", port: null })).toEqual({ ...DEFAULT_SETTINGS, host: "", port: null });
	});

	it("normalizeSettings returns a fresh object (defaults are never mutated)", () => {
		const s = normalizeSettings({});
		s.k = 42;
		expect(DEFAULT_SETTINGS.k).toBe(10);
	});
});
