// Loads the ssehub live page in headless Chromium and checks, as a person
// would, that its figures change while events are published.
//
// Usage: SSEHUB_URL=http://127.0.0.1:PORT SSEHUB_ADMIN_TOKEN=... node live-page.test.mjs
// Optional: SCREENSHOT=path.png saves what the page showed at the end.
// Run through ../browser-test.sh, which starts the server for it.

import { chromium } from "playwright-core";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const base = process.env.SSEHUB_URL;
const token = process.env.SSEHUB_ADMIN_TOKEN;
if (!base || !token) {
  console.error("set SSEHUB_URL and SSEHUB_ADMIN_TOKEN");
  process.exit(2);
}

let failures = 0;
function check(ok, what) {
  console.log(`${ok ? "ok  " : "FAIL"} ${what}`);
  if (!ok) failures += 1;
}

async function publish(events) {
  const response = await fetch(`${base}/admin/events`, {
    method: "POST",
    headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
    body: JSON.stringify(events),
  });
  if (response.status !== 200) throw new Error(`publish: HTTP ${response.status} ${await response.text()}`);
  return (await response.json()).ids;
}

const profile = mkdtempSync(join(tmpdir(), "ssehub-chromium-"));
// A fresh profile (--user-data-dir) per run; playwright takes it as the
// persistent context's directory.
const browser = await chromium.launchPersistentContext(profile, {
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  headless: true,
  args: [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
  ],
});

try {
  const page = await browser.newPage();
  page.on("pageerror", (error) => check(false, `no script error (${error.message})`));
  // Every console error (a failed resource such as a missing favicon
  // included) and every failed response fails the test, checked at the end.
  const consoleErrors = [];
  page.on("console", (message) => {
    if (message.type() === "error") consoleErrors.push(message.text());
  });
  page.on("response", (response) => {
    if (response.status() >= 400) consoleErrors.push(`${response.status()} ${response.url()}`);
  });
  page.on("requestfailed", (request) => {
    const failure = request.failure()?.errorText ?? "";
    // A stream the page closes itself (a reset, navigation) is not an error.
    if (!failure.includes("ERR_ABORTED")) consoleErrors.push(`${failure} ${request.url()}`);
  });
  await page.goto(`${base}/`);
  check((await page.title()).includes("ssehub"), "page loads with its title");

  // The stats feed updates the figures.
  await page.waitForFunction(() => Number(document.body.dataset.updates || 0) >= 2, null, { timeout: 10_000 });
  check(true, "figures update from the live stats stream");
  const text = async (id) => (await page.textContent(`#${id}`)).trim();
  const number = async (id) => Number((await text(id)).replace(/,/g, ""));
  check((await text("status")) === "live", "status shows live");

  // The page's own /events subscriber shows up as a subscriber.
  await page.waitForFunction(() => Number(document.getElementById("subscribers").textContent) >= 1, null, { timeout: 10_000 });
  check(true, "subscribers >= 1 (the page itself)");

  const publishedBefore = await number("published");

  // Publish steadily for ~2 s: the rate and the total must move.
  const started = Date.now();
  let sent = 0;
  while (Date.now() - started < 2_000) {
    const batch = Array.from({ length: 20 }, (_, i) => ({ type: "browser-test", n: sent + i }));
    await publish(batch);
    sent += batch.length;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  await page.waitForFunction(
    (want) => Number(document.getElementById("published").textContent.replace(/,/g, "")) >= want,
    publishedBefore + sent,
    { timeout: 10_000 },
  );
  check(true, `published figure rose by ${sent}`);
  const peak = await page.evaluate(() => Number(document.body.dataset.peakRate || 0));
  check(peak > 0, `publish rate rose above 0 (peak ${peak.toFixed(1)}/s in the chart)`);
  const fill = await text("ring-fill");
  check(/^[1-9][\d,]* \/ 4,096$/.test(fill), `ring fill shows retained events (${fill})`);
  const chartDrawn = await page.evaluate(() => {
    const canvas = document.getElementById("chart");
    const pixels = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height).data;
    for (let i = 3; i < pixels.length; i += 4) if (pixels[i] !== 0) return true;
    return false;
  });
  check(chartDrawn, "rate chart is drawn");

  // The latest-events list shows what was published.
  await page.waitForFunction(
    () => document.getElementById("recent").textContent.includes("browser-test"),
    null,
    { timeout: 10_000 },
  );
  check(true, "latest events list shows the published events");

  // A reset shows up as a new generation; the page keeps going.
  const generation = await number("generation");
  const reset = await fetch(`${base}/admin/reset`, { method: "POST", headers: { authorization: `Bearer ${token}` } });
  check(reset.status === 204, "reset answers 204");
  await page.waitForFunction(
    (want) => Number(document.getElementById("generation").textContent) === want,
    generation + 1,
    { timeout: 10_000 },
  );
  check(true, "generation figure follows the reset");
  await publish([{ type: "after-reset", n: 1 }]);
  await page.waitForFunction(
    () => document.getElementById("recent").textContent.includes("after-reset"),
    null,
    { timeout: 15_000 },
  );
  check(true, "the page resubscribes after the reset and shows new events");

  // Let late resource loads (the favicon) land before judging the console.
  await page.waitForTimeout(500);
  check(consoleErrors.length === 0, `no console error (${JSON.stringify(consoleErrors)})`);

  if (process.env.SCREENSHOT) {
    await page.screenshot({ path: process.env.SCREENSHOT, fullPage: true });
    console.log(`screenshot: ${process.env.SCREENSHOT}`);
  }
} catch (error) {
  check(false, `browser test ran to the end (${error.message})`);
} finally {
  await browser.close();
  rmSync(profile, { recursive: true, force: true });
}

console.log(failures === 0 ? "browser test passed" : `browser test: ${failures} failed`);
process.exit(failures === 0 ? 0 : 1);
