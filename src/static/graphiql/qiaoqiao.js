/* qiaoqiao's GraphiQL: everything from this origin. Queries and mutations go over HTTP with the
   headers of the Headers tab (kept between reloads); subscriptions go over the websocket
   (graphql-transport-ws) with the same Authorization in connection_init. In development, the
   "Dev login" panel logs in as dev:<name> (and registers a new user) in one click. */
(function () {
  "use strict";
  var config = JSON.parse(document.getElementById("qq-graphiql-config").textContent);
  var e = React.createElement;
  var endpoint = new URL(config.endpoint, window.location.href);
  var wsEndpoint = new URL(endpoint.href);
  wsEndpoint.protocol = endpoint.protocol === "https:" ? "wss:" : "ws:";

  var httpFetcher = GraphiQL.createFetcher({ url: endpoint.href });

  // One websocket per Authorization value: a new login reconnects with the new token.
  var socket = null;
  var socketAuth = null;
  function websocket(auth) {
    if (socket && socketAuth === auth) return socket;
    if (socket) socket.dispose();
    socketAuth = auth;
    socket = graphqlWs.createClient({
      url: wsEndpoint.href,
      lazy: true,
      connectionParams: auth ? { authorization: auth } : {},
    });
    return socket;
  }

  function authorization(headers) {
    if (!headers) return null;
    for (var key in headers) {
      if (key.toLowerCase() === "authorization") return headers[key];
    }
    return null;
  }

  function operationType(params, opts) {
    var document = opts && opts.documentAST;
    if (!document) return null;
    var operations = document.definitions.filter(function (d) {
      return d.kind === "OperationDefinition";
    });
    var chosen = params.operationName
      ? operations.find(function (d) { return d.name && d.name.value === params.operationName; })
      : operations.length === 1 ? operations[0] : null;
    return chosen ? chosen.operation : null;
  }

  function fetcher(params, opts) {
    if (operationType(params, opts) === "subscription") {
      return websocket(authorization(opts && opts.headers)).iterate(params);
    }
    return httpFetcher(params, opts);
  }

  var LOGIN =
    "mutation DevLogin($code: String!) { wechatLogin(code: $code) { accessToken isNewUser " +
    "me { id registered } errors { code message } } }";
  var REGISTER =
    "mutation DevRegister($input: RegisterInput!) { register(input: $input) { me { id } " +
    "errors { code message } } }";
  var POLICY = "query DevPolicy { appConfig { privacyPolicyVersion } }";

  function post(query, variables, token) {
    var headers = { "content-type": "application/json" };
    if (token) headers.authorization = "Bearer " + token;
    return fetch(endpoint.href, {
      method: "POST",
      headers: headers,
      body: JSON.stringify({ query: query, variables: variables }),
    }).then(function (response) { return response.json(); });
  }

  function payloadOf(answer, field) {
    if (answer.errors && answer.errors.length) throw new Error(answer.errors[0].message);
    var payload = answer.data[field];
    if (payload.errors && payload.errors.length) throw new Error(payload.errors[0].message);
    return payload;
  }

  function DevLogin() {
    var editors = GraphiQL.React.useEditorContext({ nonNull: true });
    var nameState = React.useState(window.localStorage.getItem("qq:dev-login") || "alice");
    var statusState = React.useState({ text: "", error: false });
    var name = nameState[0];
    var status = statusState[0];

    function logIn(event) {
      event.preventDefault();
      var who = name.trim();
      if (!who) return;
      window.localStorage.setItem("qq:dev-login", who);
      statusState[1]({ text: "Logging in…", error: false });
      var login;
      post(LOGIN, { code: "dev:" + who })
        .then(function (answer) {
          login = payloadOf(answer, "wechatLogin");
          if (login.me.registered) return null;
          return post(POLICY, {}).then(function (policy) {
            var version = policy.data.appConfig.privacyPolicyVersion;
            return post(
              REGISTER,
              { input: { acceptedPolicyVersion: version, nickname: who } },
              login.accessToken
            );
          }).then(function (answer) { payloadOf(answer, "register"); });
        })
        .then(function () {
          var headers = {};
          try {
            headers = JSON.parse(editors.headerEditor.getValue() || "{}") || {};
          } catch (ignored) {
            headers = {};
          }
          for (var key in headers) {
            if (key.toLowerCase() === "authorization") delete headers[key];
          }
          headers.Authorization = "Bearer " + login.accessToken;
          editors.headerEditor.setValue(JSON.stringify(headers, null, 2));
          statusState[1]({
            text: "Logged in as " + who + " (user " + login.me.id + "). The token is in the " +
              "Headers tab; it lasts 15 minutes.",
            error: false,
          });
        })
        .catch(function (error) {
          statusState[1]({ text: String(error.message || error), error: true });
        });
    }

    return e(
      "form",
      { className: "qq-dev-login", onSubmit: logIn },
      e("div", { className: "graphiql-doc-explorer-title" }, "Development login"),
      e(
        "p",
        null,
        "Log in as a development user (wechatLogin with the code dev:<name>); a new user " +
          "is registered with the current privacy guide."
      ),
      e("label", { htmlFor: "qq-dev-name" }, "Name"),
      e("input", {
        id: "qq-dev-name",
        type: "text",
        value: name,
        onChange: function (event) { nameState[1](event.target.value); },
      }),
      e(
        "div",
        { className: "qq-row" },
        e("button", { type: "submit", id: "qq-dev-login", className: "graphiql-button" }, "Log in")
      ),
      e("p", { id: "qq-dev-status", className: status.error ? "qq-error" : "" }, status.text)
    );
  }

  function KeyIcon() {
    return e(
      "svg",
      { viewBox: "0 0 24 24", width: "1em", height: "1em", fill: "none",
        stroke: "currentColor", strokeWidth: 1.5 },
      e("circle", { cx: 8, cy: 15, r: 4 }),
      e("path", { d: "M11 12l9-9M16 7l3 3M14 9l2 2" })
    );
  }

  var plugins = [GraphiQLPluginExplorer.explorerPlugin()];
  var devLogin = null;
  if (config.devLogin) {
    devLogin = { title: "Dev login", icon: KeyIcon, content: DevLogin };
    plugins.unshift(devLogin);
  }

  var root = ReactDOM.createRoot(document.getElementById("graphiql"));
  root.render(
    e(GraphiQL, {
      fetcher: fetcher,
      plugins: plugins,
      visiblePlugin: devLogin || undefined,
      defaultQuery: config.defaultQuery,
      isHeadersEditorEnabled: true,
      shouldPersistHeaders: true,
      defaultEditorToolsVisibility: "headers",
      inputValueDeprecation: true,
    })
  );
})();
