// Helpers shared by the browser tests: a headless Chromium, signing in, typing, reading.
import { chromium } from "playwright-core";

export const chromiumPath = process.env.CHROMIUM || "/usr/bin/chromium";
export const shots = process.env.GOCHAT_SCREENSHOTS || "target/e2e";

export async function launch() {
  return chromium.launch({
    executablePath: chromiumPath,
    args: [
      "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync",
      // The TLS run (scripts/e2e.sh) uses a certificate made for the test, trusted by nobody.
      ...(process.env.GOCHAT_TLS === "1" ? ["--ignore-certificate-errors"] : []),
    ], // playwright gives every launch a fresh, empty profile directory of its own
  });
}

export async function signIn(page, url, name, pass, how) {
  await page.goto(url);
  await page.fill("#login-name", name);
  await page.fill("#login-pass", pass);
  await page.click(how === "register" ? "#register-btn" : "#login-btn");
  await page.waitForSelector("#chat:not([hidden])");
  await connected(page);
}

export const connected = (page, timeout = 30_000) =>
  page.waitForFunction(() => document.querySelector("#status").textContent === "connected", null, { timeout });

export async function say(page, text) {
  await page.fill("#msg-input", text);
  await page.click("#send-btn");
}

// The texts of the messages shown (not system notices), in the order shown.
export const shown = (page, kind = "room") =>
  page.$$eval(`#messages .msg.${kind}:not(.pending) .text`, (els) => els.map((e) => e.textContent));

export const rosterNames = (page) =>
  page.$$eval("#roster li", (lis) => lis.map((li) => li.textContent).sort());

export const unique = (prefix) => `${prefix}${Date.now() % 1_000_000}${Math.floor(Math.random() * 100)}`;
