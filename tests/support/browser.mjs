// Headless Chromium (Debian's /usr/bin/chromium) driven by playwright-core.
// Never downloads a browser. The flags keep it off the network except for
// what the test asks for (this machine has no route out).
import { chromium } from 'playwright-core';

export const CHROMIUM_ARGS = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync'];

/** Launches headless Chromium; close it with `await browser.close()`. */
export function launchChromium() {
  return chromium.launch({ executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium', args: CHROMIUM_ARGS });
}

/** Opens `url` in a new page, failing the test on uncaught page errors. */
export async function openPage(browser, url) {
  const page = await browser.newPage();
  page.pageErrors = [];
  page.on('pageerror', (e) => page.pageErrors.push(e));
  await page.goto(url);
  return page;
}
