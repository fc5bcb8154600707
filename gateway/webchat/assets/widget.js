/* wagate web chat widget: plain JavaScript, no dependencies.
 * <script src="https://<gateway>/widget.js" data-chatbot="<chatbotId>" async></script>
 * Model output is rendered as Markdown by building DOM nodes with
 * textContent: no text from the model or the visitor is ever parsed as HTML. */
(function () {
  "use strict";
  var script = document.currentScript;
  if (!script || script.getAttribute("data-wagate-started")) return;
  script.setAttribute("data-wagate-started", "1");
  var base = new URL(script.src, location.href).origin;
  var chatbotId = script.getAttribute("data-chatbot") || "";
  var pageMode = script.getAttribute("data-mode") === "page";
  var api = base + "/api/public/chatbots/" + encodeURIComponent(chatbotId);
  var storeKey = "wagate-webchat:" + chatbotId;

  var LABELS = {
    en: { open: "Open chat", close: "Close chat", input: "Your message", send: "Send", typing: "Typing…",
      error: "Sorry, something went wrong. Please try again.", unavailable: "This chat is not available.",
      human: "A person will answer you here.", partial: "(answer cut short)", you: "You", bot: "Assistant",
      operator: "Support", busy: "Too many messages. Please wait a minute." },
    pt: { open: "Abrir chat", close: "Fechar chat", input: "Sua mensagem", send: "Enviar", typing: "Digitando…",
      error: "Desculpe, algo deu errado. Tente de novo.", unavailable: "Este chat não está disponível.",
      human: "Uma pessoa vai responder aqui.", partial: "(resposta interrompida)", you: "Você", bot: "Assistente",
      operator: "Atendimento", busy: "Muitas mensagens. Aguarde um minuto." },
    es: { open: "Abrir chat", close: "Cerrar chat", input: "Tu mensaje", send: "Enviar", typing: "Escribiendo…",
      error: "Lo sentimos, algo salió mal. Inténtalo de nuevo.", unavailable: "Este chat no está disponible.",
      human: "Una persona te responderá aquí.", partial: "(respuesta interrumpida)", you: "Tú", bot: "Asistente",
      operator: "Soporte", busy: "Demasiados mensajes. Espera un minuto." },
    fr: { open: "Ouvrir le chat", close: "Fermer le chat", input: "Votre message", send: "Envoyer",
      typing: "En train d'écrire…", error: "Désolé, une erreur est survenue. Réessayez.",
      unavailable: "Ce chat n'est pas disponible.", human: "Une personne va vous répondre ici.",
      partial: "(réponse interrompue)", you: "Vous", bot: "Assistant", operator: "Support",
      busy: "Trop de messages. Patientez une minute." },
    de: { open: "Chat öffnen", close: "Chat schließen", input: "Ihre Nachricht", send: "Senden", typing: "Schreibt…",
      error: "Entschuldigung, etwas ist schiefgelaufen. Bitte erneut versuchen.",
      unavailable: "Dieser Chat ist nicht verfügbar.", human: "Eine Person antwortet Ihnen hier.",
      partial: "(Antwort abgebrochen)", you: "Sie", bot: "Assistent", operator: "Support",
      busy: "Zu viele Nachrichten. Bitte eine Minute warten." }
  };
  function labelsFor(lang) {
    if (!lang || lang === "auto") lang = (navigator.language || "en");
    lang = String(lang).toLowerCase().split("-")[0];
    return LABELS[lang] || LABELS.en;
  }
  var L = labelsFor("auto");

  function el(tag, attrs, text) {
    var n = document.createElement(tag);
    if (attrs) for (var k in attrs) if (Object.prototype.hasOwnProperty.call(attrs, k)) n.setAttribute(k, attrs[k]);
    if (text != null) n.textContent = text;
    return n;
  }

  // ---- Markdown, safely: a small subset, built as DOM nodes.
  var INLINE = /(\*\*[^*\n]+\*\*|__[^_\n]+__|`[^`\n]+`|\[[^\]\n]+\]\((https?:\/\/[^\s)]+)\)|\*[^*\s][^*\n]*\*|_[^_\s][^_\n]*_|https?:\/\/[^\s<>()]+)/g;
  function inline(parent, text) {
    var last = 0, m;
    INLINE.lastIndex = 0;
    while ((m = INLINE.exec(text)) !== null) {
      if (m.index > last) parent.appendChild(document.createTextNode(text.slice(last, m.index)));
      var t = m[0];
      if (t.slice(0, 2) === "**" || t.slice(0, 2) === "__") parent.appendChild(el("strong", null, t.slice(2, -2)));
      else if (t[0] === "`") parent.appendChild(el("code", null, t.slice(1, -1)));
      else if (t[0] === "[") {
        var a = el("a", { href: m[2], target: "_blank", rel: "noopener noreferrer nofollow" }, t.slice(1, t.indexOf("](")));
        parent.appendChild(a);
      } else if (t[0] === "*" || t[0] === "_") parent.appendChild(el("em", null, t.slice(1, -1)));
      else parent.appendChild(el("a", { href: t, target: "_blank", rel: "noopener noreferrer nofollow" }, t));
      last = m.index + t.length;
    }
    if (last < text.length) parent.appendChild(document.createTextNode(text.slice(last)));
  }
  function markdown(text) {
    var frag = document.createDocumentFragment();
    var parts = String(text).split(/```[^\n]*\n?/);
    parts.forEach(function (part, i) {
      if (i % 2 === 1) { // inside a code fence
        var pre = el("pre"); pre.appendChild(el("code", null, part.replace(/\n$/, ""))); frag.appendChild(pre);
        return;
      }
      part.split(/\n{2,}/).forEach(function (block) {
        if (!block.trim()) return;
        var lines = block.split("\n");
        var bullet = /^\s*[-*•]\s+/, numbered = /^\s*\d+[.)]\s+/;
        if (lines.every(function (l) { return bullet.test(l); }) || lines.every(function (l) { return numbered.test(l); })) {
          var list = el(bullet.test(lines[0]) ? "ul" : "ol");
          lines.forEach(function (l) { var li = el("li"); inline(li, l.replace(bullet, "").replace(numbered, "")); list.appendChild(li); });
          frag.appendChild(list);
          return;
        }
        var p = el("p");
        var h = /^#{1,6}\s+/.exec(lines[0]);
        if (h) { var s = el("strong"); inline(s, lines.shift().slice(h[0].length)); p.appendChild(s); if (lines.length) p.appendChild(el("br")); }
        lines.forEach(function (l, j) { if (j) p.appendChild(el("br")); inline(p, l); });
        frag.appendChild(p);
      });
    });
    return frag;
  }

  // ---- the visitor
  function token() { try { return localStorage.getItem(storeKey) || ""; } catch (e) { return ""; } }
  function setToken(t) { try { if (t) localStorage.setItem(storeKey, t); else localStorage.removeItem(storeKey); } catch (e) { /* private mode */ } }
  function mint() {
    return fetch(api + "/sessions", { method: "POST" }).then(function (r) {
      if (!r.ok) throw r;
      return r.json();
    }).then(function (b) { setToken(b.visitorToken); return b.visitorToken; });
  }
  function ensureToken() { var t = token(); return t ? Promise.resolve(t) : mint(); }
  function headers(t) { var h = { "Content-Type": "application/json" }; h["X-Wagate-Visitor"] = t; return h; }

  // ---- the page
  if (!document.querySelector('link[data-wagate-css]')) {
    var css = el("link", { rel: "stylesheet", href: base + "/widget.css", "data-wagate-css": "1" });
    document.head.appendChild(css);
  }
  var root = el("div", { "class": "wagate-chat" + (pageMode ? " wagate-chat--page" : "") });
  var launcher = el("button", { type: "button", "class": "wagate-launcher", "aria-expanded": "false", "aria-controls": "wagate-panel-" + chatbotId });
  // A speech bubble, drawn: emoji fonts are not everywhere.
  var svgNS = "http://www.w3.org/2000/svg";
  var icon = document.createElementNS(svgNS, "svg");
  icon.setAttribute("viewBox", "0 0 24 24"); icon.setAttribute("width", "26"); icon.setAttribute("height", "26");
  icon.setAttribute("aria-hidden", "true"); icon.setAttribute("focusable", "false");
  var path = document.createElementNS(svgNS, "path");
  path.setAttribute("fill", "currentColor");
  path.setAttribute("d", "M4 3h16a2 2 0 0 1 2 2v11a2 2 0 0 1-2 2H9l-5 4v-4H4a2 2 0 0 1-2-2V5a2 2 0 0 1 2-2z");
  icon.appendChild(path);
  launcher.appendChild(icon);
  var launcherLabel = el("span", { "class": "wagate-sr" }, L.open);
  launcher.appendChild(launcherLabel);
  var panel = el("section", { "class": "wagate-panel", id: "wagate-panel-" + chatbotId, role: pageMode ? "region" : "dialog" });
  var header = el("header", { "class": "wagate-header" });
  var logo = el("img", { "class": "wagate-logo", alt: "" });
  var titles = el("div", { "class": "wagate-titles" });
  var title = el("h2", { "class": "wagate-title" });
  var slogan = el("p", { "class": "wagate-slogan" });
  titles.appendChild(title); titles.appendChild(slogan);
  var closeBtn = el("button", { type: "button", "class": "wagate-close" }, "×");
  header.appendChild(logo); header.appendChild(titles);
  if (!pageMode) header.appendChild(closeBtn);
  var log = el("div", { "class": "wagate-log", role: "log", "aria-live": "polite", "aria-relevant": "additions text" });
  var status = el("p", { "class": "wagate-status", role: "status", "aria-live": "assertive" });
  var form = el("form", { "class": "wagate-form" });
  var inputId = "wagate-input-" + chatbotId;
  var inputLabel = el("label", { "for": inputId, "class": "wagate-sr" }, L.input);
  var input = el("textarea", { id: inputId, rows: "1", "class": "wagate-input", autocomplete: "off" });
  var send = el("button", { type: "submit", "class": "wagate-send" }, L.send);
  form.appendChild(inputLabel); form.appendChild(input); form.appendChild(send);
  panel.appendChild(header); panel.appendChild(log); panel.appendChild(status); panel.appendChild(form);
  if (!pageMode) root.appendChild(launcher);
  root.appendChild(panel);
  var target = pageMode && document.getElementById(script.getAttribute("data-target") || "");
  (target || document.body).appendChild(root);
  if (!pageMode) panel.hidden = true;

  function setOpen(open) {
    panel.hidden = !open;
    launcher.setAttribute("aria-expanded", String(open));
    launcherLabel.textContent = open ? L.close : L.open;
    if (open) { input.focus(); log.scrollTop = log.scrollHeight; } else launcher.focus();
  }
  launcher.addEventListener("click", function () { setOpen(panel.hidden); });
  closeBtn.addEventListener("click", function () { setOpen(false); });
  panel.addEventListener("keydown", function (e) { if (e.key === "Escape" && !pageMode) setOpen(false); });

  function bubble(role, text, partial) {
    var who = role === "user" ? L.you : role === "human" ? L.operator : L.bot;
    var b = el("div", { "class": "wagate-msg wagate-msg--" + role });
    b.appendChild(el("span", { "class": "wagate-sr" }, who + ": "));
    var body = el("div", { "class": "wagate-body" });
    if (role === "user") body.textContent = text; else body.appendChild(markdown(text));
    b.appendChild(body);
    if (partial) b.appendChild(el("small", { "class": "wagate-partial" }, L.partial));
    log.appendChild(b);
    log.scrollTop = log.scrollHeight;
    return body;
  }
  function setBody(body, text) {
    while (body.firstChild) body.removeChild(body.firstChild);
    body.appendChild(markdown(text));
    log.scrollTop = log.scrollHeight;
  }

  var config = null, cursor = "0", events = null, busy = false;
  function openEvents() {
    if (events || !window.EventSource || !token()) return;
    events = new EventSource(api + "/events?visitor=" + encodeURIComponent(token()));
    events.addEventListener("message", function (e) {
      var m = JSON.parse(e.data);
      if (m.role === "human") bubble("human", m.content);
    });
  }

  function loadHistory() {
    var t = token();
    if (!t) return Promise.resolve(false);
    return fetch(api + "/messages", { headers: headers(t) }).then(function (r) {
      if (r.status === 401) { setToken(""); return false; }
      if (!r.ok) return false;
      return r.json().then(function (h) {
        h.messages.forEach(function (m) { bubble(m.role, m.content, m.partial); });
        cursor = h.cursor;
        if (h.humanMode) openEvents();
        return h.messages.length > 0;
      });
    });
  }

  function fail(body, msg) {
    if (body) setBody(body, msg);
    status.textContent = msg;
  }

  function readStream(resp, body) {
    var reader = resp.body.getReader(), dec = new TextDecoder(), buf = "", text = "", pending = false;
    function paint() { pending = false; setBody(body, text || L.typing); }
    function handle(name, data) {
      if (name === "delta") { text += data.content; if (!pending) { pending = true; requestAnimationFrame(paint); } }
      else if (name === "reset") { text = ""; }
      else if (name === "human") { text = L.human; openEvents(); }
      else if (name === "done") { if (data.message) text = data.message.content; else if (!text) text = L.human; paint(); }
      else if (name === "error") { fail(body, L.error); text = null; }
    }
    function pump() {
      return reader.read().then(function (r) {
        if (r.done) return;
        buf += dec.decode(r.value, { stream: true });
        var i;
        while ((i = buf.indexOf("\n\n")) >= 0) {
          var block = buf.slice(0, i); buf = buf.slice(i + 2);
          var name = "", data = "";
          block.split("\n").forEach(function (line) {
            if (line.indexOf("event: ") === 0) name = line.slice(7);
            else if (line.indexOf("data: ") === 0) data += line.slice(6);
          });
          if (name && data) handle(name, JSON.parse(data));
        }
        return pump();
      });
    }
    return pump();
  }

  function submit(text, retried) {
    return ensureToken().then(function (t) {
      return fetch(api + "/chat?stream=true", { method: "POST", headers: headers(t), body: JSON.stringify({ content: text }) });
    }).then(function (resp) {
      if (resp.status === 401 && !retried) { setToken(""); return submit(text, true); }
      var body = bubble("assistant", L.typing);
      body.parentNode.setAttribute("aria-busy", "true");
      if (!resp.ok) {
        return resp.json().catch(function () { return {}; }).then(function () {
          fail(body, resp.status === 429 ? L.busy : resp.status === 404 || resp.status === 403 ? L.unavailable : L.error);
        });
      }
      return readStream(resp, body).then(function () { body.parentNode.removeAttribute("aria-busy"); });
    });
  }

  form.addEventListener("submit", function (e) {
    e.preventDefault();
    var text = input.value.trim();
    if (!text || busy || !config) return;
    busy = true; send.disabled = true; status.textContent = "";
    input.value = "";
    bubble("user", text);
    submit(text).catch(function () { fail(null, L.error); }).then(function () {
      busy = false; send.disabled = false; input.focus();
    });
  });
  input.addEventListener("keydown", function (e) {
    if (e.key === "Enter" && !e.shiftKey) { e.preventDefault(); form.requestSubmit ? form.requestSubmit() : send.click(); }
  });

  fetch(api).then(function (r) {
    if (!r.ok) throw r;
    return r.json();
  }).then(function (c) {
    config = c;
    L = labelsFor(c.language);
    root.style.setProperty("--wagate-primary", c.primaryColor);
    root.style.setProperty("--wagate-secondary", c.secondaryColor);
    title.textContent = c.header || c.name;
    slogan.textContent = c.slogan || "";
    var pic = c.logo || c.avatar;
    if (pic) logo.src = pic; else logo.hidden = true;
    panel.setAttribute("aria-label", c.name);
    launcherLabel.textContent = panel.hidden ? L.open : L.close;
    closeBtn.setAttribute("aria-label", L.close);
    inputLabel.textContent = L.input;
    send.textContent = L.send;
    input.maxLength = c.maxText;
    return loadHistory().then(function (had) {
      if (!had) {
        if (c.greeting) bubble("assistant", c.greeting);
        if (c.requestEmail && c.leadPrompt) bubble("assistant", c.leadPrompt);
      }
    });
  }).catch(function () {
    title.textContent = L.unavailable;
    input.disabled = true; send.disabled = true;
    status.textContent = L.unavailable;
  });
})();
