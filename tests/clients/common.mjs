// What every client session shares: the server's address, the operations, a proof image.
import assert from "node:assert/strict";

export const URL_ = process.env.QQ_URL;
if (!URL_) throw new Error("QQ_URL (the server's http://host:port) is required");
export const HTTP = `${URL_}/graphql`;
export const WS = HTTP.replace(/^http/, "ws");

export const APP_CONFIG = `query AppConfig { appConfig { privacyPolicyVersion minAge canPurchase
  plans { plan dailyLimits { kind limit } } } }`;
export const LOGIN = `mutation Login($code: String!) {
  wechatLogin(code: $code) { accessToken refreshToken isNewUser me { id registered } errors { code message } }
}`;
export const REGISTER = `mutation Register($input: RegisterInput!) {
  register(input: $input) { me { id registered } errors { code message field } }
}`;
export const FEED = `query Feed($first: Int, $after: String) {
  users(first: $first, after: $after) {
    edges { cursor node { id profile { nickname city } } }
    pageInfo { hasNextPage endCursor }
  }
}`;
export const SEND = `mutation Send($input: SendWhisperInput!) {
  sendWhisper(input: $input) { whisper { id content isAnonymous isMine } errors { code message } }
}`;
export const RECEIVED = `query Received($first: Int) {
  whispersReceived(first: $first) { edges { node { id content isAnonymous readAt } } }
}`;
export const MARK_READ = `mutation MarkRead($id: ID!) {
  markWhisperRead(id: $id) { whisper { id readAt } errors { code } }
}`;
export const ON_WHISPER = `subscription OnWhisper { whisperReceived { id content isAnonymous sender { id } } }`;
export const REPORT = `mutation Report($input: ReportInput!, $proofs: [Upload!]) {
  reportUser(input: $input, proofs: $proofs) { report { id reason status } errors { code message } }
}`;

// An 8x8 PNG: the server recognises images by content and re-encodes them.
export const PNG = Buffer.from(
  "iVBORw0KGgoAAAANSUhEUgAAAAgAAAAICAIAAABLbSncAAAAFElEQVR4nGM8IWfDgA0wYRUdtBIA5+ABMmcf2iwAAAAASUVORK5CYII=",
  "base64",
);

export function unique(prefix) {
  return `${prefix}-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
}

// A GraphQL payload without errors; its result.
export function ok(payload) {
  assert.deepEqual(payload.errors, [], JSON.stringify(payload.errors));
  return payload;
}

// Waits for the first value an async iterator yields, with a deadline.
export async function first(promise, ms = 10_000, what = "event") {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no ${what} within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}
