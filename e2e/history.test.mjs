// History on the web page (protocol v2): a room's recent messages shown on entering it; a
// second room joined, used and left, with its unread count and join/leave notices; a private
// conversation whose history shows both directions after a reload.
//
//   GOCHAT_URL=http://127.0.0.1:7070/ node --test e2e/history.test.mjs
import { test } from "node:test";
import assert from "node:assert/strict";
import { launch, signIn, say, shown, unique } from "./lib.mjs";

const url = process.env.GOCHAT_URL;

test("history, rooms and private conversations survive entering late and reloading", { timeout: 120_000 }, async () => {
  assert.ok(url, "set GOCHAT_URL to the page address");
  const browser = await launch();
  try {
    const carol = await (await browser.newContext()).newPage();
    const dave = await (await browser.newContext()).newPage();
    const c = unique("carol"), d = unique("dave");
    await signIn(carol, url, c, "carol-pass", "register");

    // Carol talks alone; dave arrives later and is shown what was said.
    const early = [unique("before dave came 1 "), unique("before dave came 2 ")];
    for (const t of early) {
      await say(carol, t);
      await carol.waitForSelector(`.msg.room:not(.pending):has-text("${t}")`);
    }
    await signIn(dave, url, d, "dave-pass", "register");
    for (const t of early) await dave.waitForSelector(`.msg.room:has-text("${t}")`);
    assert.deepEqual((await shown(dave)).filter((t) => early.includes(t)), early, "history once, in order");

    // A second room: both join it; carol posts there while dave looks at room 1.
    const room = 1000 + Math.floor(Math.random() * 100000);
    for (const page of [carol, dave]) {
      await page.fill("#join-input", String(room));
      await page.click("#join-btn");
      await page.waitForSelector(`#rooms li[data-room="${room}"]`);
    }
    await carol.waitForSelector(`#messages .msg.system:has-text("${d} joined")`);
    await dave.click('#rooms li[data-room="1"] .name');
    const there = unique("in the second room ");
    await carol.click(`#rooms li[data-room="${room}"] .name`);
    await say(carol, there);
    await dave.waitForSelector(`#rooms li[data-room="${room}"] .unread:text-is("1")`);
    assert.equal(await dave.$(`.msg:has-text("${there}")`), null, "not shown in room 1");
    await dave.click(`#rooms li[data-room="${room}"] .name`);
    await dave.waitForSelector(`.msg.room:has-text("${there}")`);
    assert.equal(await dave.$(`#rooms li[data-room="${room}"] .unread`), null, "read once shown");

    // Dave leaves it: carol sees him go; his rooms list is back to room 1.
    await dave.click(`#rooms li[data-room="${room}"] .leave`);
    await carol.waitForSelector(`#messages .msg.system:has-text("${d} left")`);
    assert.equal(await dave.$(`#rooms li[data-room="${room}"]`), null);

    // A private conversation both ways, then a reload of dave's page: both directions shown.
    await carol.click('#rooms li[data-room="1"] .name');
    await carol.click(`#roster li:text-is("${d}")`);
    const ask = unique("private question "), answer = unique("private answer ");
    await say(carol, ask);
    await dave.click(`#conversations li:has-text("${c}")`);
    await dave.waitForSelector(`.msg.private:has-text("${ask}")`);
    await say(dave, answer);
    await carol.waitForSelector(`.msg.private:has-text("${answer}")`);
    await dave.waitForSelector(`.msg.private:not(.pending):has-text("${answer}")`);
    await dave.reload();
    await dave.waitForSelector(`#conversations li:has-text("${c}")`);
    await dave.click(`#conversations li:has-text("${c}")`);
    await dave.waitForSelector(`.msg.private:has-text("${answer}")`);
    assert.deepEqual(await shown(dave, "private"), [ask, answer], "both directions, once, in order");
  } finally {
    await browser.close();
  }
});
