import { DEFAULT_SETTINGS, type ServiceSettings, type SettingsPatch } from './model.js';
import { Slots } from './slots.js';

/** The backend's mutable state: settings changed at run time, its slots, and the pause gate. */
export class BackendState {
  settings: ServiceSettings;
  readonly slots: Slots;
  private resumers: Array<() => void> = [];

  constructor(settings: Partial<ServiceSettings> = {}, concurrency = 0) {
    this.settings = { ...DEFAULT_SETTINGS, ...settings };
    this.slots = new Slots(concurrency);
  }

  /** Applies a validated patch; lifting a pause lets every held call go on. */
  update(patch: SettingsPatch): ServiceSettings {
    this.settings = { ...this.settings, ...patch };
    if (!this.settings.pause) {
      const r = this.resumers;
      this.resumers = [];
      for (const resume of r) resume();
    }
    return this.settings;
  }

  /** Resolves at once when not paused, else when the pause is lifted; rejects if `signal` aborts. */
  whenRunning(signal?: AbortSignal): Promise<void> {
    if (!this.settings.pause) return Promise.resolve();
    if (signal?.aborted) return Promise.reject(signal.reason);
    return new Promise((resolve, reject) => {
      const onAbort = () => {
        this.resumers = this.resumers.filter((r) => r !== resume);
        reject(signal?.reason);
      };
      const resume = () => {
        signal?.removeEventListener('abort', onAbort);
        resolve();
      };
      signal?.addEventListener('abort', onAbort, { once: true });
      this.resumers.push(resume);
    });
  }
}
