import base from "./playwright.config";
import { defineConfig } from "@playwright/test";

// The browser benchmarks (`make bench`): same browser settings as the tests, other folder.
export default defineConfig({ ...base, testDir: "./bench", timeout: 300_000 });
