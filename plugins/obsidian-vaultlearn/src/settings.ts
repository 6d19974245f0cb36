// The settings tab. Validation lives in settingsModel.ts.
import { PluginSettingTab, Setting } from "obsidian";
import type { App, Plugin } from "obsidian";
import { DAEMON_FILE, TOKEN_FILE } from "./discovery";
import type { VaultlearnSettings } from "./settingsModel";
import { DEFAULT_SETTINGS, K_MAX, K_MIN, parsePort, validateHost } from "./settingsModel";

/** What the tab needs from the plugin. */
export interface SettingsHost extends Plugin {
	settings: VaultlearnSettings;
	saveSettings(): Promise<void>;
	describeConnection(): Promise<string>;
}

export class VaultlearnSettingTab extends PluginSettingTab {
	constructor(
		app: App,
		private readonly host: SettingsHost,
	) {
		super(app, host);
	}

	display(): void {
		const { containerEl } = this;
		containerEl.empty();
		const s = this.host.settings;

		const hostSetting = new Setting(containerEl)
			.setName("Host")
			.setDesc(`Loopback address of the vaultlearn daemon. Blank: the host in ${DAEMON_FILE}.`);
		hostSetting.addText((text) =>
			text
				.setPlaceholder(DEFAULT_SETTINGS.host)
				.setValue(s.host)
				.onChange(async (value) => {
					const problem = validateHost(value);
					hostSetting.descEl.toggleClass("mod-warning", problem !== null);
					hostSetting.setDesc(problem ?? `Loopback address of the vaultlearn daemon. Blank: the host in ${DAEMON_FILE}.`);
					if (problem !== null) return;
					s.host = value.trim();
					await this.host.saveSettings();
				}),
		);

		const portDesc = `Blank: the port in ${DAEMON_FILE}, written by \`vaultlearn watch\`.`;
		const portSetting = new Setting(containerEl).setName("Port").setDesc(portDesc);
		portSetting.addText((text) =>
			text
				.setPlaceholder("from daemon.json")
				.setValue(s.port === null ? "" : String(s.port))
				.onChange(async (value) => {
					const parsed = parsePort(value);
					portSetting.descEl.toggleClass("mod-warning", !parsed.ok);
					portSetting.setDesc(parsed.ok ? portDesc : parsed.message);
					if (!parsed.ok) return;
					s.port = parsed.port;
					await this.host.saveSettings();
				}),
		);

		new Setting(containerEl)
			.setName("Token")
			.setDesc(`Blank: read ${TOKEN_FILE}. A token entered here is stored in this plugin's data.json.`)
			.addText((text) => {
				text.inputEl.type = "password";
				text
					.setPlaceholder("from .vaultlearn/token")
					.setValue(s.token)
					.onChange(async (value) => {
						s.token = value.trim();
						await this.host.saveSettings();
					});
			});

		new Setting(containerEl)
			.setName("Number of suggestions")
			.setDesc(`How many notes to suggest (${K_MIN}–${K_MAX}).`)
			.addSlider((slider) =>
				slider
					.setLimits(K_MIN, K_MAX, 1)
					.setValue(s.k)
					.setDynamicTooltip()
					.onChange(async (value) => {
						s.k = value;
						await this.host.saveSettings();
					}),
			);

		new Setting(containerEl)
			.setName("Refresh automatically")
			.setDesc("Update when the active note changes or is saved, and check again while the daemon is indexing or learning.")
			.addToggle((toggle) =>
				toggle.setValue(s.autoRefresh).onChange(async (value) => {
					s.autoRefresh = value;
					await this.host.saveSettings();
				}),
			);

		const test = new Setting(containerEl).setName("Connection").setDesc("Ask the daemon for its status.");
		test.addButton((button) =>
			button.setButtonText("Test connection").onClick(async () => {
				button.setDisabled(true);
				test.setDesc("Connecting…");
				test.setDesc(await this.host.describeConnection());
				button.setDisabled(false);
			}),
		);
	}
}
