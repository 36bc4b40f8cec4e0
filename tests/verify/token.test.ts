import { test } from "node:test";
import assert from "node:assert/strict";
import { parseToken, redact } from "../../components/verify";

const HASH = "a".repeat(56) + "0123abcd";
const PW = "0123456789abcdef0123456789abcdef";

test("full server token parses into hash, user and password (108 characters)", () => {
  const t = `K10${HASH}::server:${PW}`;
  assert.equal(t.length, 108);
  assert.deepEqual(parseToken(t + "\n"), { kind: "secure", caHash: HASH, username: "server", password: PW });
});

test("bootstrap token is recognised", () => {
  const p = parseToken(`K10${HASH}::abcdef.0123456789abcdef`);
  assert.equal(p.kind, "bootstrap");
  assert.equal(p.password, "abcdef.0123456789abcdef");
});

test("k3s's parse messages", () => {
  assert.throws(() => parseToken("  \n"), /^Error: token must not be empty$/);
  assert.throws(() => parseToken(`K10${HASH.slice(1)}::server:${PW}`), /invalid token CA hash length/);
  assert.throws(() => parseToken(`K10${HASH.toUpperCase()}::server:${PW}`), /invalid token format/);
  assert.throws(() => parseToken(`K10${HASH}server:${PW}`), /invalid token format/);
  assert.throws(() => parseToken(`K10${HASH}::nocolon`), /invalid token format/);
});

test("a bare password is a short token without a CA hash", () => {
  const p = parseToken("K1234567890abcdefghijklmnopqrstuvwxyz1234567");
  assert.equal(p.kind, "short");
  assert.equal(p.caHash, undefined);
});

test("redact hides given secrets and anything shaped like a full token", () => {
  const t = `K10${HASH}::server:${PW}`;
  const out = redact(`got ${t} and ${PW} and K10${HASH}::node:zzzzzzzz`, [t, PW]);
  assert.ok(!out.includes(PW));
  assert.ok(!out.includes("zzzzzzzz"));
  assert.match(out, /<redacted>/);
  assert.equal(redact("nothing secret", [PW]), "nothing secret");
});
