// Apollo Client 4 with its default links: HttpLink for queries and mutations (it asks for
// application/graphql-response+json), GraphQLWsLink (graphql-ws) for subscriptions, and
// apollo-upload-client's UploadHttpLink, the usual terminating link for file uploads.
import assert from "node:assert/strict";
import { after, test } from "node:test";
import { ApolloClient, ApolloLink, HttpLink, InMemoryCache, gql } from "@apollo/client";
import { GraphQLWsLink } from "@apollo/client/link/subscriptions";
import { getMainDefinition } from "@apollo/client/utilities";
import UploadHttpLink from "apollo-upload-client/UploadHttpLink.mjs";
import { createClient } from "graphql-ws";
import WebSocket from "ws";
import * as op from "./common.mjs";

const sockets = [];
after(() => Promise.all(sockets.map((s) => s.dispose())));

function apollo(token) {
  const headers = token ? { authorization: `Bearer ${token}` } : {};
  const http = new HttpLink({ uri: op.HTTP, headers });
  if (!token) return new ApolloClient({ link: http, cache: new InMemoryCache() });
  const socket = createClient({
    url: op.WS,
    webSocketImpl: WebSocket,
    connectionParams: { authorization: `Bearer ${token}` },
  });
  sockets.push(socket);
  const link = ApolloLink.split(
    ({ query }) => {
      const definition = getMainDefinition(query);
      return definition.kind === "OperationDefinition" && definition.operation === "subscription";
    },
    new GraphQLWsLink(socket),
    http,
  );
  return new ApolloClient({ link, cache: new InMemoryCache() });
}

async function login(anonymous, name) {
  const { data } = await anonymous.mutate({
    mutation: gql(op.LOGIN),
    variables: { code: `dev:${name}` },
  });
  return op.ok(data.wechatLogin);
}

test("Apollo Client 4 session", async (t) => {
  const anonymous = apollo(null);
  const config = (await anonymous.query({ query: gql(op.APP_CONFIG) })).data.appConfig;
  assert.equal(typeof config.privacyPolicyVersion, "string");
  assert.deepEqual(config.plans.map((p) => p.plan), ["BASIC", "PRO"]);

  const names = [op.unique("apollo-a"), op.unique("apollo-b")];
  const [a, b] = await Promise.all(names.map((n) => login(anonymous, n)));
  assert.equal(a.isNewUser, true);
  const alice = apollo(a.accessToken);
  const bob = apollo(b.accessToken);

  await t.test("register", async () => {
    for (const [client, name] of [[alice, names[0]], [bob, names[1]]]) {
      const { data } = await client.mutate({
        mutation: gql(op.REGISTER),
        variables: { input: { acceptedPolicyVersion: config.privacyPolicyVersion, nickname: name } },
      });
      assert.equal(op.ok(data.register).me.registered, true);
    }
  });

  await t.test("feed with pagination", async () => {
    const page1 = (await alice.query({ query: gql(op.FEED), variables: { first: 2 } })).data.users;
    assert.equal(page1.edges.length, 2);
    assert.equal(page1.pageInfo.hasNextPage, true);
    const page2 = (
      await alice.query({
        query: gql(op.FEED),
        variables: { first: 2, after: page1.pageInfo.endCursor },
      })
    ).data.users;
    assert.ok(page2.edges.length >= 1);
    const seen = new Set(page1.edges.map((e) => e.node.id));
    assert.ok(page2.edges.every((e) => !seen.has(e.node.id)), "pages overlap");
  });

  await t.test("whispers, live over graphql-ws", async () => {
    const events = bob.subscribe({ query: gql(op.ON_WHISPER) });
    const arrived = new Promise((resolve, reject) => {
      const subscription = events.subscribe({
        next: (result) => {
          subscription.unsubscribe();
          result.error ? reject(result.error) : resolve(result.data.whisperReceived);
        },
        error: reject,
      });
    });
    // Give the subscription a moment to reach the server before sending.
    await new Promise((resolve) => setTimeout(resolve, 500));
    const { data } = await alice.mutate({
      mutation: gql(op.SEND),
      variables: { input: { recipientId: b.me.id, content: "你好, from Apollo" } },
    });
    const sent = op.ok(data.sendWhisper).whisper;
    assert.equal(sent.isAnonymous, true);
    const event = await op.first(arrived, 10_000, "whisper event");
    assert.equal(event.id, sent.id);
    assert.equal(event.content, "你好, from Apollo");
    assert.equal(event.sender, null, "an anonymous whisper names no sender");

    const inbox = (await bob.query({ query: gql(op.RECEIVED), variables: { first: 5 } })).data;
    assert.deepEqual(inbox.whispersReceived.edges.map((e) => e.node.id), [sent.id]);
    const read = await bob.mutate({ mutation: gql(op.MARK_READ), variables: { id: sent.id } });
    assert.ok(op.ok(read.data.markWhisperRead).whisper.readAt);
  });

  await t.test("upload (multipart)", async () => {
    const uploads = new ApolloClient({
      link: new UploadHttpLink({
        uri: op.HTTP,
        headers: { authorization: `Bearer ${a.accessToken}`, "apollo-require-preflight": "true" },
      }),
      cache: new InMemoryCache(),
    });
    const { data } = await uploads.mutate({
      mutation: gql(op.REPORT),
      variables: {
        input: { reportedUserId: b.me.id, reason: "SPAM", details: "from Apollo" },
        proofs: [new File([op.PNG], "proof.png", { type: "image/png" })],
      },
    });
    const report = op.ok(data.reportUser).report;
    assert.equal(report.reason, "SPAM");
    assert.equal(report.status, "PENDING");
  });

  await t.test("a subscription without a websocket link is told to use one", async () => {
    // HttpLink sends it as a POST (multipart subscriptions); the server refuses it clearly.
    const result = await op.first(
      new Promise((resolve, reject) => {
        const subscription = anonymous.subscribe({ query: gql(op.ON_WHISPER) }).subscribe({
          next: (value) => {
            subscription.unsubscribe();
            resolve(value);
          },
          error: reject,
        });
      }),
      10_000,
      "an answer",
    );
    assert.equal(result.error?.errors?.[0]?.extensions?.code, "WEBSOCKET_REQUIRED", String(result.error));
  });
});
