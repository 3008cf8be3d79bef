// The web page across a server crash: the standalone gochat (GOCHAT_BIN) is killed with
// SIGKILL and restarted on the same ports while two pages are open. Bob's page is held
// offline until alice, reconnected by herself, has sent more; then it reconnects by itself —
// no reload — and shows every message once, in order; what bob typed during the outage
// reaches alice once.
//
//   GOCHAT_BIN=target/debug/gochat node --test e2e/recovery.test.mjs
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync, openSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { launch, signIn, say, shown, connected, unique } from "./lib.mjs";

const bin = process.env.GOCHAT_BIN;

const freePort = () => new Promise((resolve) => {
  const s = createServer().listen(0, "127.0.0.1", () => { const { port } = s.address(); s.close(() => resolve(port)); });
});

async function startServer(dir, api, ws, log) {
  const child = spawn(bin, [
    "--data-dir", join(dir, "data"), "--api-addr", `127.0.0.1:${api}`,
    "--ws-addr", `127.0.0.1:${ws}`, "--no-tcp", "--no-site",
  ], { stdio: ["ignore", "ignore", openSync(join(dir, log), "w")] });
  for (let i = 0; i < 200; i++) {
    try {
      if ((await fetch(`http://127.0.0.1:${api}/`)).ok) return child;
    } catch { /* not up yet */ }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error("gochat did not start");
}

test("an open page recovers from kill -9 and a restart, showing everything once", { timeout: 120_000 }, async () => {
  assert.ok(bin, "set GOCHAT_BIN to the gochat binary");
  const dir = mkdtempSync(join(tmpdir(), "gochat-e2e-"));
  const [api, ws] = [await freePort(), await freePort()];
  let server = await startServer(dir, api, ws, "first.log");
  const url = `http://127.0.0.1:${api}/`;
  const browser = await launch();
  try {
    const aliceCtx = await browser.newContext(), bobCtx = await browser.newContext();
    const alice = await aliceCtx.newPage(), bob = await bobCtx.newPage();
    const a = unique("alice"), b = unique("bob");
    await signIn(alice, url, a, "alice-pass", "register");
    await signIn(bob, url, b, "bob-pass", "register");
    const before = unique("before the crash ");
    await say(alice, before);
    await bob.waitForSelector(`.msg.room:has-text("${before}")`);
    await bob.evaluate(() => { window.notReloaded = true; });

    // Crash. Both pages notice; bob types while the server is gone, and stays offline.
    server.kill("SIGKILL");
    await new Promise((r) => server.once("exit", r));
    for (const page of [alice, bob]) {
      await page.waitForFunction(() => document.querySelector("#status").textContent.startsWith("reconnecting"));
    }
    await bobCtx.setOffline(true);
    const typed = unique("typed during the outage ");
    await say(bob, typed);
    await bob.waitForSelector(`.msg.pending:has-text("${typed}")`);

    // Back on the same ports, same data. Alice reconnects by herself and sends more.
    server = await startServer(dir, api, ws, "second.log");
    await connected(alice);
    const during = [1, 2, 3, 4, 5].map((i) => unique(`while bob was away ${i} `));
    for (const t of during) {
      await say(alice, t);
      await alice.waitForSelector(`.msg.room:not(.pending):has-text("${t}")`);
    }

    // Bob's page comes back by itself and recovers the gap; his post goes out once.
    await bobCtx.setOffline(false);
    await connected(bob);
    await bob.waitForSelector(`.msg.room:has-text("${during[4]}")`);
    await bob.waitForSelector(`.msg.room:not(.pending):has-text("${typed}")`);
    await alice.waitForSelector(`.msg.room:has-text("${typed}")`);
    await new Promise((r) => setTimeout(r, 500)); // room for a late copy to show up
    const expected = [before, ...during];
    for (const [who, page] of [["alice", alice], ["bob", bob]]) {
      const lines = await shown(page);
      assert.deepEqual(lines.filter((t) => expected.includes(t)), expected, `${who}: every message once, in order`);
      assert.equal(lines.filter((t) => t === typed).length, 1, `${who}: the outage post once`);
    }
    assert.equal(await bob.evaluate(() => window.notReloaded), true, "bob's page was not reloaded");
  } finally {
    await browser.close();
    server.kill("SIGKILL");
    rmSync(dir, { recursive: true, force: true });
  }
});
