// The GraphQL-over-HTTP audit suite of graphql-http against the live server: no MUST or
// SHOULD may fail (0 errors, 0 warnings).
import assert from "node:assert/strict";
import { test } from "node:test";
import { auditServer } from "graphql-http";
import { HTTP } from "./common.mjs";

test("graphql-http audit: 0 errors, 0 warnings", async () => {
  const results = await auditServer({ url: HTTP });
  const count = (status) => results.filter((r) => r.status === status);
  for (const r of results.filter((r) => r.status !== "ok")) {
    console.log(`${r.status} ${r.id} ${r.name}: ${r.reason}`);
  }
  console.log(
    `audits: ${results.length}, ok ${count("ok").length}, notices ${count("notice").length}`,
  );
  assert.ok(results.length >= 60, `only ${results.length} audits ran`);
  assert.deepEqual(count("error").map((r) => `${r.id} ${r.name}: ${r.reason}`), []);
  assert.deepEqual(count("warn").map((r) => `${r.id} ${r.name}: ${r.reason}`), []);
});
