// Drives the gochat web page in headless Chromium as two people in two browser contexts:
// register / log in, see each other in the roster, exchange room messages, send a private
// message, log out. Run by scripts/test.sh against a freshly started `gochat` binary:
//
//   GOCHAT_URL=http://127.0.0.1:7070/ node --test e2e/
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { chromium } from "playwright-core";

const url = process.env.GOCHAT_URL;
const shots = process.env.GOCHAT_SCREENSHOTS || "target/e2e";
const chromiumPath = process.env.CHROMIUM || "/usr/bin/chromium";

async function signIn(page, name, pass, how) {
  await page.goto(url);
  await page.fill("#login-name", name);
  await page.fill("#login-pass", pass);
  await page.click(how === "register" ? "#register-btn" : "#login-btn");
  await page.waitForSelector("#chat:not([hidden])");
  await page.waitForFunction(() => document.querySelector("#status").textContent === "connected");
}

async function say(page, text) {
  await page.fill("#msg-input", text);
  await page.click("#send-btn");
}

const rosterNames = (page) => page.$$eval("#roster li", (lis) => lis.map((li) => li.textContent).sort());

test("two people chat through the web page", { timeout: 120_000 }, async () => {
  assert.ok(url, "set GOCHAT_URL to the page address");
  mkdirSync(shots, { recursive: true });
  const browser = await chromium.launch({
    executablePath: chromiumPath,
    args: [
      "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync",
    ], // playwright gives every launch a fresh, empty profile directory of its own

  });
  try {
    const alice = await (await browser.newContext()).newPage();
    const demo = await (await browser.newContext()).newPage();

    const user = `alice${Date.now() % 100000}`;
    await signIn(alice, user, "wonderland", "register");
    await signIn(demo, "demo", "111111", "login");
    assert.equal(await alice.textContent("#me"), user);

    // Each sees the other in the roster and an online count of 2.
    await alice.waitForSelector('#roster li:text-is("demo")');
    await demo.waitForSelector(`#roster li:text-is("${user}")`);
    await alice.waitForFunction(() => document.querySelector("#count").textContent === "2");
    assert.deepEqual(await rosterNames(demo), ["demo", user].sort());

    // Room messages both ways; the sender sees its own through the server's echo.
    await say(alice, "hello from alice");
    for (const page of [alice, demo]) {
      await page.waitForSelector('.msg.room:has-text("hello from alice")');
    }
    await say(demo, "hi alice, demo here");
    for (const page of [alice, demo]) {
      await page.waitForSelector('.msg.room:has-text("hi alice, demo here")');
    }
    const lines = await alice.$$eval(".msg.room .text", (els) => els.map((e) => e.textContent));
    assert.deepEqual(lines, ["hello from alice", "hi alice, demo here"], "once each, in order");

    // A private message to a roster member reaches only them.
    await demo.click(`#roster li:text-is("${user}")`);
    await say(demo, "a secret for alice");
    await alice.waitForSelector('.msg.private:has-text("a secret for alice")');
    assert.match(await alice.textContent(".msg.private .who"), /demo → you/);
    await alice.screenshot({ path: join(shots, "alice.png") });
    await demo.screenshot({ path: join(shots, "demo.png") });

    // Log out: alice is back at the form, and demo's roster loses her.
    await alice.click("#logout-btn");
    await alice.waitForSelector("#auth:not([hidden])");
    await demo.waitForFunction(
      (name) => ![...document.querySelectorAll("#roster li")].some((li) => li.textContent === name),
      user,
    );
    assert.deepEqual(await rosterNames(demo), ["demo"]);

    // Her session is gone: logging in again works, with a fresh token.
    await signIn(alice, user, "wonderland", "login");
    await demo.waitForSelector(`#roster li:text-is("${user}")`);
  } finally {
    await browser.close();
  }
});
