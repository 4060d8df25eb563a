/*
 * Support chat widget. Embed with one tag:
 *
 *   <script src="https://support.example.net/widget.js" data-locale="ru" async></script>
 *
 * On a page that knows the customer (the personal account), add the signed identity:
 *   data-identity-contract="750012345678"
 *   data-identity-hash="<hex HMAC-SHA256(BOT_IDENTITY_SECRET, contract number)>"
 *
 * Plain JavaScript, no framework, no build step, nothing loaded from other hosts. The gateway
 * fills in the BUILD argument (texts from locales/<lang>/widget.yml, styles) when it serves it.
 * Everything customers or operators wrote is shown with textContent, never parsed as HTML.
 */
(function (BUILD) {
  "use strict";

  var LOADED = "__ispSupportWidget";
  if (window[LOADED]) return; // the tag was included twice
  window[LOADED] = true;

  var script =
    document.currentScript || document.querySelector('script[src*="widget.js"]');
  if (!script) return;

  var base = new URL(script.src, window.location.href);
  var httpOrigin = base.origin;
  var wsOrigin = (base.protocol === "https:" ? "wss://" : "ws://") + base.host;
  var data = script.dataset;
  var locale = pickLocale(data.locale || document.documentElement.lang || BUILD.defaultLocale);
  var T = BUILD.strings[locale] || BUILD.strings[BUILD.defaultLocale];
  var identity =
    data.identityContract && data.identityHash
      ? { contract_number: data.identityContract, hash: data.identityHash }
      : null;
  // A signed-in customer gets a session of their own, so the next person at the same browser
  // never sees their conversation.
  var storageKey = "isp-widget:session" + (identity ? ":" + identity.hash.slice(0, 16) : "");

  var TYPING_TIMEOUT_MS = 30000;
  var MAX_BACKOFF_MS = 30000;

  var state = {
    session: loadSession(),
    ws: null,
    ready: false, // history received on the current socket
    attempt: 0,
    reconnectTimer: null,
    stopped: false,
    open: false,
    pending: [], // {id, frame, el}: sent (or queued) but not acknowledged yet
    byClientId: {}, // client id -> message element
    seen: {}, // server entry id -> true
    typingTimer: null,
  };

  // --- DOM -------------------------------------------------------------------------------------
  var host = document.createElement("div");
  host.id = "isp-support-widget";
  var root = host.attachShadow({ mode: "open" });
  applyStyles(root, BUILD.css);

  var launcher = el("button", "launcher");
  launcher.type = "button";
  launcher.setAttribute("aria-haspopup", "dialog");
  var launcherLabel = el("span", "label", T.launcher);
  var badge = el("span", "badge");
  badge.hidden = true;
  badge.setAttribute("aria-label", T.unread);
  launcher.append(launcherLabel, badge);

  var panel = el("section", "panel");
  panel.hidden = true;
  panel.setAttribute("role", "dialog");
  panel.setAttribute("aria-label", T.title);

  var header = el("div", "header");
  var titles = el("div", "titles");
  titles.append(el("div", "title", T.title), el("div", "subtitle", T.subtitle));
  var closeButton = el("button", "close", "\u00d7");
  closeButton.type = "button";
  closeButton.setAttribute("aria-label", T.close);
  closeButton.title = T.close;
  header.append(titles, closeButton);

  var notice = el("div", "notice");
  notice.hidden = true;
  notice.setAttribute("role", "status");

  var log = el("div", "log");
  log.setAttribute("role", "log");
  log.setAttribute("aria-live", "polite");

  var typing = el("div", "typing", T.typing);
  typing.hidden = true;

  var form = el("form", "composer");
  var attach = el("button", "attach");
  attach.appendChild(clipIcon());
  attach.type = "button";
  attach.title = T.attach;
  attach.setAttribute("aria-label", T.attach);
  var fileInput = el("input");
  fileInput.type = "file";
  fileInput.accept = "image/jpeg,image/png,image/gif,image/webp,application/pdf";
  fileInput.hidden = true;
  var input = el("textarea");
  input.rows = 1;
  input.placeholder = T.placeholder;
  input.setAttribute("aria-label", T.placeholder);
  input.maxLength = 4000;
  var send = el("button", "send", T.send);
  send.type = "submit";
  form.append(attach, fileInput, input, send);

  panel.append(header, notice, log, typing, form);
  root.append(launcher, panel);

  // --- behaviour -------------------------------------------------------------------------------
  launcher.addEventListener("click", openPanel);
  closeButton.addEventListener("click", closePanel);
  panel.addEventListener("keydown", function (event) {
    if (event.key === "Escape") closePanel();
  });
  form.addEventListener("submit", function (event) {
    event.preventDefault();
    sendText();
  });
  input.addEventListener("input", fitInput);
  input.addEventListener("keydown", function (event) {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      sendText();
    }
  });
  attach.addEventListener("click", function () {
    fileInput.click();
  });
  fileInput.addEventListener("change", function () {
    var file = fileInput.files && fileInput.files[0];
    fileInput.value = "";
    if (file) upload(file);
  });
  window.addEventListener("online", function () {
    if (!state.stopped && state.session && (!state.ws || state.ws.readyState > 1)) {
      connectNow();
    }
  });

  function mount() {
    document.body.appendChild(host);
    // A returning visitor reconnects at once, so a reply that came meanwhile shows as unread.
    if (state.session) connect();
  }
  if (document.body) mount();
  else document.addEventListener("DOMContentLoaded", mount);

  function openPanel() {
    state.open = true;
    panel.hidden = false;
    launcher.hidden = true;
    badge.hidden = true;
    if (!state.session) {
      state.session = newSession();
    }
    if (!state.ws) connect();
    scrollDown();
    input.focus();
  }

  function closePanel() {
    state.open = false;
    panel.hidden = true;
    launcher.hidden = false;
    launcher.focus();
  }

  // --- the connection --------------------------------------------------------------------------
  function connect() {
    if (state.stopped) return;
    var url = wsOrigin + "/ws/widget?session=" + encodeURIComponent(state.session);
    var ws;
    try {
      ws = new WebSocket(url);
    } catch (error) {
      scheduleReconnect();
      return;
    }
    state.ws = ws;
    state.ready = false;
    ws.addEventListener("open", function () {
      ws.send(JSON.stringify({ type: "hello", locale: locale, identity: identity }));
    });
    ws.addEventListener("message", function (event) {
      if (ws !== state.ws) return;
      var frame;
      try {
        frame = JSON.parse(event.data);
      } catch (error) {
        return;
      }
      onFrame(frame);
    });
    ws.addEventListener("close", function (event) {
      if (ws !== state.ws) return;
      state.ws = null;
      state.ready = false;
      if (event.code === 1008) return; // refused: the error frame said why
      scheduleReconnect();
      // Too many open tabs of this chat: try again later, saying why rather than "no connection".
      if (event.code === 1013) showNotice(T.too_many_tabs);
    });
  }

  function connectNow() {
    clearTimeout(state.reconnectTimer);
    state.reconnectTimer = null;
    state.attempt = 0;
    connect();
  }

  function scheduleReconnect() {
    if (state.stopped || state.reconnectTimer) return;
    showNotice(T.reconnecting);
    var delay = Math.min(MAX_BACKOFF_MS, 500 * Math.pow(2, state.attempt));
    delay = delay / 2 + Math.random() * (delay / 2); // spread reconnects after a restart
    state.attempt += 1;
    state.reconnectTimer = setTimeout(function () {
      state.reconnectTimer = null;
      connect();
    }, delay);
  }

  function onFrame(frame) {
    switch (frame.type) {
      case "history":
        state.ready = true;
        state.attempt = 0;
        hideNotice();
        renderHistory(frame.messages || []);
        flushPending();
        break;
      case "reply":
        addEntry(frame.message);
        break;
      case "ack":
        acknowledge(frame.id);
        break;
      case "typing":
        showTyping();
        break;
      case "error":
        onError(frame);
        break;
    }
  }

  function onError(frame) {
    if (frame.code === "session_conflict") {
      // This browser's session belongs to another customer: start a fresh one.
      state.session = newSession();
      clearLog();
      connectNow();
    } else if (frame.code === "identity_invalid") {
      state.stopped = true;
      showNotice(T.identity_failed);
    } else if (frame.code === "too_many_connections") {
      showNotice(T.too_many_tabs);
    } else {
      if (frame.code === "rate_limited") flashNotice(T.slow_down);
      if (frame.id) markFailed(frame.id);
    }
  }

  // --- messages --------------------------------------------------------------------------------
  function sendText() {
    var text = input.value.trim();
    if (!text) return;
    input.value = "";
    fitInput();
    var id = newId();
    var entry = { from: "customer", text: text };
    queue(id, { type: "message", id: id, text: text }, entry);
  }

  function pressButton(button) {
    var id = newId();
    var frame = { type: "payload", id: id, payload: button.payload, title: button.title };
    queue(id, frame, { from: "customer", text: button.title });
  }

  function queue(id, frame, entry) {
    var node = renderEntry(entry, true);
    node.classList.add("pending");
    state.byClientId[id] = node;
    state.pending.push({ id: id, frame: frame, el: node });
    if (!state.ws && !state.reconnectTimer) connect();
    if (state.ready) transmit(frame);
  }

  function transmit(frame) {
    if (state.ws && state.ws.readyState === WebSocket.OPEN) {
      state.ws.send(JSON.stringify(frame));
    }
  }

  function flushPending() {
    // After a reconnect the server may already have some of these: it acknowledges those as
    // duplicates and records nothing twice.
    state.pending.forEach(function (item) {
      if (item.frame) {
        log.appendChild(item.el);
        transmit(item.frame);
      }
    });
    scrollDown();
  }

  function acknowledge(id) {
    state.pending = state.pending.filter(function (item) {
      return item.id !== id;
    });
    var node = state.byClientId[id];
    if (!node) return;
    node.classList.remove("pending");
    var meta = node.querySelector(".meta");
    if (meta && !meta.textContent) meta.textContent = timeOf(new Date().toISOString());
  }

  function markFailed(id) {
    state.pending = state.pending.filter(function (item) {
      return item.id !== id;
    });
    var node = state.byClientId[id];
    if (!node) return;
    node.classList.remove("pending");
    node.classList.add("failed");
    var meta = node.querySelector(".meta");
    if (meta) meta.textContent = T.not_sent;
  }

  function renderHistory(messages) {
    clearLog();
    messages.forEach(function (entry) {
      addEntry(entry, true);
    });
    scrollDown();
  }

  function clearLog() {
    log.textContent = "";
    state.seen = {};
    state.byClientId = {};
    state.pending.forEach(function (item) {
      state.byClientId[item.id] = item.el;
    });
  }

  function addEntry(entry, quiet) {
    if (!entry || state.seen[entry.id]) return;
    state.seen[entry.id] = true;
    if (entry.from === "customer" && entry.client_id) {
      var mine = state.byClientId[entry.client_id];
      if (mine && mine.parentNode === log) {
        acknowledge(entry.client_id);
        return; // already shown: the one this tab sent
      }
      // Ours but not on screen (the log was just redrawn): the server's copy replaces it.
      state.pending = state.pending.filter(function (item) {
        return item.id !== entry.client_id;
      });
    }
    var node = renderEntry(entry, false);
    if (entry.client_id) state.byClientId[entry.client_id] = node;
    if (entry.from !== "customer") {
      hideTyping();
      if (!state.open && !quiet) badge.hidden = false;
    }
  }

  function renderEntry(entry, local) {
    dropOldButtons();
    var node = el("div", "msg from-" + (entry.from || "bot"));
    var text = entry.text;
    if (!text && entry.kind === "attachment") text = "\ud83d\udcce " + T.attachment;
    node.appendChild(el("div", "text", text || ""));
    if (entry.attachments && entry.attachments.length) {
      var files = el("div", "files");
      entry.attachments.forEach(function (file) {
        files.appendChild(fileLink(file));
      });
      node.appendChild(files);
    }
    if (entry.buttons && entry.buttons.length) {
      var row = el("div", "buttons");
      entry.buttons.forEach(function (button) {
        var b = el("button", null, button.title);
        b.type = "button";
        b.addEventListener("click", function () {
          pressButton(button);
        });
        row.appendChild(b);
      });
      node.appendChild(row);
    }
    node.appendChild(el("div", "meta", local ? "" : timeOf(entry.at)));
    log.appendChild(node);
    scrollDown();
    return node;
  }

  function dropOldButtons() {
    // Only the latest answer offers buttons; older ones are history.
    var rows = log.querySelectorAll(".buttons");
    for (var i = 0; i < rows.length; i++) rows[i].remove();
  }

  // --- files -----------------------------------------------------------------------------------
  function fileLink(file) {
    // A real link (it reads and behaves as one), but the click fetches the file with the
    // session in a header: a plain navigation could not prove whose file it is.
    var link = el("a", "file");
    link.appendChild(clipIcon()); // drawn: no emoji font is needed
    link.appendChild(document.createTextNode(" " + file.name));
    link.href = new URL(file.url, httpOrigin).href;
    link.setAttribute("download", file.name);
    link.addEventListener("click", function (event) {
      event.preventDefault();
      download(file);
    });
    return link;
  }

  function download(file) {
    fetch(new URL(file.url, httpOrigin).href, { headers: { "X-Widget-Session": state.session } })
      .then(function (response) {
        if (!response.ok) throw new Error("HTTP " + response.status);
        return response.blob();
      })
      .then(function (blob) {
        var url = URL.createObjectURL(blob);
        var save = document.createElement("a");
        save.href = url;
        save.download = file.name;
        save.hidden = true;
        root.appendChild(save);
        save.click();
        save.remove();
        setTimeout(function () {
          URL.revokeObjectURL(url);
        }, 60000);
      })
      .catch(function () {
        flashNotice(T.download_failed);
      });
  }

  function upload(file) {
    if (file.size > BUILD.maxUpload) {
      flashNotice(T.file_too_large.replace("{limit_mb}", String(BUILD.maxUpload / 1048576)));
      return;
    }
    if (!state.session) state.session = newSession();
    var id = newId();
    var node = renderEntry({ from: "customer", text: "\ud83d\udcce " + file.name }, true);
    node.classList.add("pending");
    state.byClientId[id] = node;
    var body = new FormData();
    body.append("session", state.session);
    body.append("id", id);
    body.append("locale", locale);
    body.append("file", file, file.name);
    fetch(httpOrigin + "/api/v1/widget/upload", { method: "POST", body: body })
      .then(function (response) {
        if (response.ok) {
          node.classList.remove("pending");
          return;
        }
        markFailed(id);
        if (response.status === 429) {
          // Too many files for now: the body says in how long (Retry-After is not readable here).
          return response.json().then(function (body) {
            var minutes = Math.max(1, Math.ceil(((body && body.retry_after) || 60) / 60));
            flashNotice(T.upload_quota.replace("{minutes}", String(minutes)));
          });
        } else if (response.status === 413) {
          flashNotice(T.file_too_large.replace("{limit_mb}", String(BUILD.maxUpload / 1048576)));
        } else if (response.status === 415) {
          flashNotice(T.file_type);
        } else {
          flashNotice(T.upload_failed);
        }
      })
      .catch(function () {
        markFailed(id);
        flashNotice(T.upload_failed);
      });
  }

  // --- little helpers --------------------------------------------------------------------------
  function showTyping() {
    typing.hidden = false;
    scrollDown();
    clearTimeout(state.typingTimer);
    // The bot stays silent while a person owns the conversation: do not promise forever.
    state.typingTimer = setTimeout(hideTyping, TYPING_TIMEOUT_MS);
  }

  function hideTyping() {
    typing.hidden = true;
    clearTimeout(state.typingTimer);
  }

  function showNotice(text) {
    notice.textContent = text;
    notice.hidden = false;
  }

  function hideNotice() {
    notice.hidden = true;
  }

  function flashNotice(text) {
    showNotice(text);
    setTimeout(function () {
      if (notice.textContent === text) hideNotice();
    }, 6000);
  }

  function fitInput() {
    // One line until the customer writes more, then grow up to the CSS max-height.
    input.style.height = "auto";
    input.style.height = input.scrollHeight + 2 + "px";
  }

  function clipIcon() {
    // Drawn, not an emoji: a machine without an emoji font would show an empty box.
    var ns = "http://www.w3.org/2000/svg";
    var svg = document.createElementNS(ns, "svg");
    svg.setAttribute("viewBox", "0 0 24 24");
    svg.setAttribute("width", "18");
    svg.setAttribute("height", "18");
    svg.setAttribute("aria-hidden", "true");
    var path = document.createElementNS(ns, "path");
    path.setAttribute(
      "d",
      "M21.4 11.1l-9.2 9.2a6 6 0 0 1-8.5-8.5l9.2-9.2a4 4 0 0 1 5.7 5.7l-9.2 9.2a2 2 0 0 1-2.8-2.8l8.5-8.5"
    );
    path.setAttribute("fill", "none");
    path.setAttribute("stroke", "currentColor");
    path.setAttribute("stroke-width", "2");
    path.setAttribute("stroke-linecap", "round");
    path.setAttribute("stroke-linejoin", "round");
    svg.appendChild(path);
    return svg;
  }

  function scrollDown() {
    log.scrollTop = log.scrollHeight;
  }

  function timeOf(at) {
    if (!at) return "";
    var date = new Date(at);
    if (isNaN(date.getTime())) return "";
    return date.toLocaleTimeString(locale, { hour: "2-digit", minute: "2-digit" });
  }

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined) node.textContent = text;
    return node;
  }

  function applyStyles(shadow, css) {
    // A constructed stylesheet works under a strict Content-Security-Policy; <style> otherwise.
    try {
      var sheet = new CSSStyleSheet();
      sheet.replaceSync(css);
      shadow.adoptedStyleSheets = [sheet];
    } catch (error) {
      var style = document.createElement("style");
      style.textContent = css;
      shadow.appendChild(style);
    }
  }

  function pickLocale(wanted) {
    var short = String(wanted || "").toLowerCase().replace("_", "-").split("-")[0];
    return BUILD.strings[short] ? short : BUILD.defaultLocale;
  }

  function randomToken(bytes) {
    var buffer = new Uint8Array(bytes);
    window.crypto.getRandomValues(buffer);
    var text = "";
    for (var i = 0; i < buffer.length; i++) text += String.fromCharCode(buffer[i]);
    return btoa(text).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  function newId() {
    return randomToken(12);
  }

  function loadSession() {
    try {
      var saved = window.localStorage.getItem(storageKey);
      if (saved && /^[A-Za-z0-9_-]{16,64}$/.test(saved)) return saved;
    } catch (error) {
      // storage disabled: the session lives as long as the page
    }
    return null;
  }

  function newSession() {
    var session = randomToken(18);
    try {
      window.localStorage.setItem(storageKey, session);
    } catch (error) {
      // storage disabled: the session lives as long as the page
    }
    return session;
  }
})(__ISPW_BUILD__);
