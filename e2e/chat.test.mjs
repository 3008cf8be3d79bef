// Drives the gochat web page in headless Chromium as two people in two browser contexts:
// register / log in, see each other in the roster, exchange room messages, talk in private,
// log out. Run by scripts/test.sh against a freshly started `gochat` (and the cluster):
//
//   GOCHAT_URL=http://127.0.0.1:7070/ node --test e2e/
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { launch, signIn, say, shown, rosterNames, shots, unique } from "./lib.mjs";

const url = process.env.GOCHAT_URL;

test("two people chat through the web page", { timeout: 120_000 }, async () => {
  assert.ok(url, "set GOCHAT_URL to the page address");
  mkdirSync(shots, { recursive: true });
  const browser = await launch();
  try {
    const alice = await (await browser.newContext()).newPage();
    const demo = await (await browser.newContext()).newPage();

    const user = unique("alice");
    await signIn(alice, url, user, "wonderland", "register");
    await signIn(demo, url, "demo", "111111", "login");
    assert.equal(await alice.textContent("#me"), user);

    // Each sees the other in the roster and an online count of 2.
    await alice.waitForSelector('#roster li:text-is("demo")');
    await demo.waitForSelector(`#roster li:text-is("${user}")`);
    await alice.waitForFunction(() => document.querySelector("#count").textContent === "2");
    assert.deepEqual(await rosterNames(demo), ["demo", user].sort());

    // Room messages both ways, each once, in order on both pages.
    const hello = unique("hello from alice ");
    const hi = unique("hi alice, demo here ");
    await say(alice, hello);
    for (const page of [alice, demo]) await page.waitForSelector(`.msg.room:has-text("${hello}")`);
    await say(demo, hi);
    for (const page of [alice, demo]) await page.waitForSelector(`.msg.room:has-text("${hi}")`);
    for (const page of [alice, demo]) {
      const lines = (await shown(page)).filter((t) => t === hello || t === hi);
      assert.deepEqual(lines, [hello, hi], "once each, in order");
    }

    // A private message to a roster member: a conversation with an unread count for her.
    await demo.click(`#roster li:text-is("${user}")`);
    const secret = unique("a secret for alice ");
    await say(demo, secret);
    await alice.waitForSelector('#conversations li[data-peer] .unread:text-is("1")');
    await alice.click('#conversations li:has-text("demo")');
    await alice.waitForSelector(`.msg.private:has-text("${secret}")`);
    assert.match(await alice.textContent(".msg.private:last-child .who"), /demo → you/);
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
    await signIn(alice, url, user, "wonderland", "login");
    await demo.waitForSelector(`#roster li:text-is("${user}")`);
  } finally {
    await browser.close();
  }
});
