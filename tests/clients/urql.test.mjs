// urql (@urql/core) with its default exchanges (cacheExchange, fetchExchange: queries go as GET
// when the URL is short enough, files as multipart) plus subscriptionExchange over graphql-ws.
import assert from "node:assert/strict";
import { after, test } from "node:test";
import { Client, cacheExchange, fetchExchange, subscriptionExchange } from "@urql/core";
import { createClient } from "graphql-ws";
import WebSocket from "ws";
import * as op from "./common.mjs";

const sockets = [];
after(() => Promise.all(sockets.map((s) => s.dispose())));
const methods = []; // what urql sent, to show the GET path is taken

function recordingFetch(url, init) {
  methods.push(init?.method ?? "GET");
  return fetch(url, init);
}

function urql(token) {
  const headers = { "apollo-require-preflight": "true" };
  if (token) headers.authorization = `Bearer ${token}`;
  const exchanges = [cacheExchange, fetchExchange];
  if (token) {
    const socket = createClient({
      url: op.WS,
      webSocketImpl: WebSocket,
      connectionParams: { authorization: `Bearer ${token}` },
    });
    sockets.push(socket);
    exchanges.push(
      subscriptionExchange({
        forwardSubscription(request) {
          const input = { ...request, query: request.query || "" };
          return {
            subscribe(sink) {
              return { unsubscribe: socket.subscribe(input, sink) };
            },
          };
        },
      }),
    );
  }
  return new Client({ url: op.HTTP, exchanges, fetch: recordingFetch, fetchOptions: { headers } });
}

async function result(promise) {
  const answer = await promise;
  assert.equal(answer.error, undefined, String(answer.error));
  return answer.data;
}

test("urql session", async (t) => {
  const anonymous = urql(null);
  const config = (await result(anonymous.query(op.APP_CONFIG, {}).toPromise())).appConfig;
  assert.equal(methods.at(-1), "GET", "urql sends queries as GET by default");

  const names = [op.unique("urql-a"), op.unique("urql-b")];
  const logins = [];
  for (const name of names) {
    const data = await result(anonymous.mutation(op.LOGIN, { code: `dev:${name}` }).toPromise());
    logins.push(op.ok(data.wechatLogin));
    assert.equal(methods.at(-1), "POST", "mutations go as POST");
  }
  const alice = urql(logins[0].accessToken);
  const bob = urql(logins[1].accessToken);

  await t.test("register", async () => {
    for (const [client, name] of [[alice, names[0]], [bob, names[1]]]) {
      const input = { acceptedPolicyVersion: config.privacyPolicyVersion, nickname: name };
      const data = await result(client.mutation(op.REGISTER, { input }).toPromise());
      assert.equal(op.ok(data.register).me.registered, true);
    }
  });

  await t.test("feed with pagination", async () => {
    const page1 = (await result(alice.query(op.FEED, { first: 2 }).toPromise())).users;
    assert.equal(methods.at(-1), "GET");
    assert.equal(page1.edges.length, 2);
    assert.equal(page1.pageInfo.hasNextPage, true);
    const page2 = (
      await result(alice.query(op.FEED, { first: 2, after: page1.pageInfo.endCursor }).toPromise())
    ).users;
    const seen = new Set(page1.edges.map((e) => e.node.id));
    assert.ok(page2.edges.length >= 1);
    assert.ok(page2.edges.every((e) => !seen.has(e.node.id)), "pages overlap");
  });

  await t.test("whispers, live over graphql-ws", async () => {
    const arrived = new Promise((resolve, reject) => {
      const { unsubscribe } = bob.subscription(op.ON_WHISPER, {}).subscribe((answer) => {
        unsubscribe();
        answer.error ? reject(answer.error) : resolve(answer.data.whisperReceived);
      });
    });
    await new Promise((resolve) => setTimeout(resolve, 500));
    const input = { recipientId: logins[1].me.id, content: "悄悄话 from urql", anonymous: false };
    const sent = op.ok((await result(alice.mutation(op.SEND, { input }).toPromise())).sendWhisper);
    const event = await op.first(arrived, 10_000, "whisper event");
    assert.equal(event.id, sent.whisper.id);
    assert.equal(event.content, "悄悄话 from urql");
    assert.deepEqual(event.sender, { id: logins[0].me.id }, "a signed whisper names its sender");

    const inbox = await result(
      bob.query(op.RECEIVED, { first: 5 }, { requestPolicy: "network-only" }).toPromise(),
    );
    assert.deepEqual(inbox.whispersReceived.edges.map((e) => e.node.id), [sent.whisper.id]);
    const read = await result(bob.mutation(op.MARK_READ, { id: sent.whisper.id }).toPromise());
    assert.ok(op.ok(read.markWhisperRead).whisper.readAt);
  });

  await t.test("upload (multipart, built into fetchExchange)", async () => {
    const variables = {
      input: { reportedUserId: logins[1].me.id, reason: "SPAM", details: "from urql" },
      proofs: [new File([op.PNG], "proof.png", { type: "image/png" })],
    };
    const data = await result(alice.mutation(op.REPORT, variables).toPromise());
    const report = op.ok(data.reportUser).report;
    assert.equal(report.reason, "SPAM");
  });

  await t.test("a request error (400, graphql-response+json) arrives as a GraphQL error", async () => {
    const answer = await alice.query("query Nope { nope }", {}).toPromise();
    assert.equal(methods.at(-1), "GET");
    assert.equal(answer.error?.graphQLErrors?.[0]?.extensions?.code, "GRAPHQL_VALIDATION_FAILED");
    assert.equal(answer.data, undefined);
  });
});
