/* Turnstile widget loader: inserts the calculator or chat iframe, sizes it to its content, and
 * forwards the widget's public events to the host page as DOM CustomEvents
 * (turnstile:ready, turnstile:queued, turnstile:done). No dependencies.
 *
 * <script src="https://HOST/widget.js" data-tool="chat" async></script>
 * Optional: data-theme="light|dark|auto", data-accent="#2f5bd3", data-height="600" (fixed
 * height; otherwise it follows the content), data-target="#css-selector" (where to insert).
 */
(function () {
  "use strict";
  var script = document.currentScript;
  if (!script || !script.src) return;
  var origin = new URL(script.src, document.baseURI).origin;
  var data = script.dataset || {};
  var tool = data.tool === "chat" ? "chat" : "calculator";
  var params = ["theme=" + encodeURIComponent(data.theme || "auto")];
  if (data.accent) params.push("accent=" + encodeURIComponent(data.accent));
  // Browsers that block third-party cookies and storage leave the frame no way to keep its
  // session: the frame hands its token to this loader, which keeps it in the host page's storage
  // (per Turnstile server) and gives it back in the frame's URL.
  var key = "turnstile_session@" + origin;
  var token = null;
  try { token = window.localStorage.getItem(key); } catch (e) { token = null; }
  if (token && /^[0-9a-f]{32}$/.test(token)) params.push("session=" + token);
  var iframe = document.createElement("iframe");
  iframe.src = origin + "/embed/" + tool + "?" + params.join("&");
  iframe.title = "Turnstile " + tool;
  iframe.setAttribute("data-turnstile-tool", tool);
  iframe.allow = "clipboard-write";
  iframe.style.cssText = "display:block;width:100%;min-width:280px;border:0;color-scheme:normal";
  var fixed = parseInt(data.height, 10);
  iframe.style.height = (fixed > 0 ? fixed : 420) + "px";
  var target = data.target ? document.querySelector(data.target) : null;
  if (target) {
    target.appendChild(iframe);
  } else if (script.parentNode) {
    script.parentNode.insertBefore(iframe, script.nextSibling);
  }
  window.addEventListener("message", function (event) {
    // Only our own frame, from our own origin, may resize it or speak for it.
    if (event.origin !== origin || event.source !== iframe.contentWindow) return;
    var msg = event.data;
    if (!msg || msg.source !== "turnstile" || typeof msg.type !== "string") return;
    if (msg.type === "height") {
      var h = Number(msg.height);
      if (!(fixed > 0) && h > 0 && h < 100000) iframe.style.height = Math.ceil(h) + "px";
      return;
    }
    if (msg.type === "session") {
      if (typeof msg.token === "string" && /^[0-9a-f]{32}$/.test(msg.token)) {
        try { window.localStorage.setItem(key, msg.token); } catch (e) { /* storage blocked here too */ }
      }
      return;
    }
    if (msg.type === "ready" || msg.type === "queued" || msg.type === "done") {
      iframe.dispatchEvent(
        new CustomEvent("turnstile:" + msg.type, { bubbles: true, detail: msg.detail || {} })
      );
    }
  });
})();
