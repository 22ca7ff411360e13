// Headless Chromium over HTTPS (a self-signed certificate made by the
// calling script): a page on the server's origin opens 20 EventSources to
// that same origin, and all 20 receive every event — possible only because
// they share one HTTP/2 connection (over HTTP/1.1 Chromium opens at most 6
// connections per origin, so 14 would wait forever). A control run with
// HTTP/2 disabled in Chromium shows exactly that limit. Any console error or
// page error fails the test.
//
// Usage: SSEHUB_URL=https://localhost:PORT SSEHUB_ADMIN_TOKEN=... node https-eventsource.test.mjs
// Run through ../browser-https-test.sh, which makes the certificate and
// starts the server for it.

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
const STREAMS = 20;
const EVENTS = 5;

let failures = 0;
function check(ok, what) {
  console.log(`${ok ? "ok  " : "FAIL"} ${what}`);
  if (!ok) failures += 1;
}

async function launch(extraArgs) {
  const profile = mkdtempSync(join(tmpdir(), "ssehub-chromium-"));
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    headless: true,
    // The certificate is self-signed by the test script.
    ignoreHTTPSErrors: true,
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      "--ignore-certificate-errors",
      ...extraArgs,
    ],
  });
  return { context, profile };
}

// Opens the server's /healthz (any page of the origin) and, from it, STREAMS
// EventSources to /events; returns the page.
async function openStreams(context, errors) {
  const page = await context.newPage();
  page.on("console", (message) => {
    if (message.type() === "error") errors.push(`console: ${message.text()}`);
  });
  page.on("pageerror", (error) => errors.push(`page: ${error.message}`));
  page.on("response", (response) => {
    if (response.status() >= 400) errors.push(`HTTP ${response.status()} for ${response.url()}`);
  });
  // The page is /healthz (plain text, so the browser asks for
  // /favicon.ico, which only the live page declares); the live page itself
  // would hold a stream and a connection of its own and skew the counts.
  // The icon request is answered here so that every other console error
  // still fails the test.
  await page.route("**/favicon.ico", (route) => route.fulfill({ status: 204, body: "" }));
  const response = await page.goto(`${base}/healthz`);
  check(response.status() === 200, `the page loads over HTTPS (${response.status()})`);
  await page.evaluate((count) => {
    window.received = Array(count).fill(0);
    window.sources = [];
    for (let i = 0; i < count; i += 1) {
      const source = new EventSource(`/events?event_type=browser&stream=${i}`);
      source.addEventListener("browser", () => {
        window.received[i] += 1;
      });
      window.sources.push(source);
    }
  }, STREAMS);
  return page;
}

async function publishFrom(page, events) {
  return page.evaluate(
    async ({ events, token }) => {
      const response = await fetch("/admin/events", {
        method: "POST",
        headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
        body: JSON.stringify(events),
      });
      return response.status;
    },
    { events, token },
  );
}

// HTTP/2: all 20 open on one connection and receive every event.
{
  const { context, profile } = await launch([]);
  const errors = [];
  try {
    const page = await openStreams(context, errors);
    await page.waitForFunction(
      () => window.sources.every((source) => source.readyState === EventSource.OPEN),
      null,
      { timeout: 15_000 },
    );
    check(true, `${STREAMS} EventSources open on the same origin`);
    const protocol = await page.evaluate(() => performance.getEntriesByType("navigation")[0].nextHopProtocol);
    check(protocol === "h2", `the origin is served over HTTP/2 (${protocol})`);
    const events = Array.from({ length: EVENTS }, (_, n) => ({ type: "browser", n }));
    check((await publishFrom(page, events)) === 200, "publish from the page answers 200");
    await page.waitForFunction(
      (want) => window.received.every((count) => count >= want),
      EVENTS,
      { timeout: 15_000 },
    );
    const received = await page.evaluate(() => window.received);
    check(
      received.every((count) => count === EVENTS),
      `every EventSource received all ${EVENTS} events (${received.join(",")})`,
    );
    const stats = await page.evaluate(async (token) => {
      const response = await fetch("/admin/stats", { headers: { authorization: `Bearer ${token}` } });
      return response.json();
    }, token);
    check(stats.active_subscribers === STREAMS, `the server counts ${STREAMS} subscribers (${stats.active_subscribers})`);
    await page.evaluate(() => window.sources.forEach((source) => source.close()));
  } catch (error) {
    check(false, `HTTP/2 run reached its end (${error.message})`);
  } finally {
    await context.close();
    rmSync(profile, { recursive: true, force: true });
  }
  check(errors.length === 0, `no console or page errors${errors.length ? `: ${errors.join(" | ")}` : ""}`);
}

// Control: with HTTP/2 disabled, Chromium holds at most 6 connections per
// origin, so only 6 of the 20 EventSources open.
{
  const { context, profile } = await launch(["--disable-http2"]);
  const errors = [];
  try {
    const page = await openStreams(context, errors);
    const protocol = await page.evaluate(() => performance.getEntriesByType("navigation")[0].nextHopProtocol);
    check(protocol === "http/1.1", `control run is HTTP/1.1 (${protocol})`);
    await page.waitForFunction(
      () => window.sources.filter((source) => source.readyState === EventSource.OPEN).length >= 6,
      null,
      { timeout: 15_000 },
    );
    await new Promise((resolve) => setTimeout(resolve, 1_500));
    const open = await page.evaluate(
      () => window.sources.filter((source) => source.readyState === EventSource.OPEN).length,
    );
    check(open === 6, `over HTTP/1.1 only 6 of ${STREAMS} EventSources open (${open})`);
    await page.evaluate(() => window.sources.forEach((source) => source.close()));
  } catch (error) {
    check(false, `HTTP/1.1 control run reached its end (${error.message})`);
  } finally {
    await context.close();
    rmSync(profile, { recursive: true, force: true });
  }
}

console.log(failures === 0 ? "HTTPS browser test passed" : `HTTPS browser test: ${failures} failed`);
process.exit(failures === 0 ? 0 : 1);
