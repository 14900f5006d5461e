// The one script every page loads (one request): tells Moodle the page height (lti.frameResize) so the
// frame grows instead of scrolling inside itself, and the small behaviours pages opt into with data-*.
(function () {
  "use strict";
  var last = 0;
  function height() { return Math.ceil(document.documentElement.getBoundingClientRect().height); }
  function resize() {
    var h = height();
    if (h === last || window.parent === window) return;
    last = h;
    window.parent.postMessage({subject: "lti.frameResize", height: h}, "*");
  }
  // Show the page again with its launch token: the address bar no longer has it, and where the browser keeps
  // no cookie for the tool inside the LMS frame (third-party cookies blocked, or plain http) a bare reload
  // would lose the launch.
  function reloadWith(token) {
    var u = new URL(location.href);
    if (token) u.searchParams.set("lt", token);
    location.replace(u.toString());
  }
  function ready(fn) { if (document.readyState !== "loading") fn(); else document.addEventListener("DOMContentLoaded", fn); }
  ready(function () {
    resize();
    if (window.ResizeObserver) new ResizeObserver(resize).observe(document.documentElement);
    else window.addEventListener("resize", resize);

    // Error summary: focus it; its links focus the field they name.
    var summary = document.getElementById("error-summary");
    if (summary) {
      summary.focus();
      summary.addEventListener("click", function (ev) {
        var a = ev.target.closest("a[href^='#']");
        var field = a && document.getElementById(a.getAttribute("href").slice(1));
        if (field) { ev.preventDefault(); field.focus(); field.scrollIntoView({block: "center"}); }
      });
    }

    // Upload size checked before sending.
    Array.prototype.forEach.call(document.querySelectorAll("input[type=file][data-max-bytes]"), function (input) {
      input.addEventListener("change", function () {
        var max = +input.getAttribute("data-max-bytes"), f = input.files && input.files[0];
        var msg = f && f.size > max ? f.name + ": " + input.getAttribute("data-too-big") : "";
        input.setCustomValidity(msg);
        var out = document.getElementById(input.id + "_check");
        if (out) out.textContent = msg;
        if (msg) input.reportValidity();
      });
    });

    // A form with an oversized file is not sent (forms here are novalidate: the check is ours).
    Array.prototype.forEach.call(document.querySelectorAll("form"), function (form) {
      form.addEventListener("submit", function (ev) {
        var bad = form.querySelector("input[type=file][data-max-bytes]:invalid");
        if (bad) { ev.preventDefault(); bad.reportValidity(); bad.focus(); }
      });
    });

    // Confirm before a submit button with data-confirm, in a <dialog> (without JS the server asks).
    Array.prototype.forEach.call(document.querySelectorAll("button[data-confirm]"), function (button) {
      var dialog = document.getElementById(button.getAttribute("data-confirm"));
      var form = button.form;
      if (!dialog || !dialog.showModal || !form) return;
      button.addEventListener("click", function (ev) {
        if (!form.reportValidity()) return;
        ev.preventDefault();
        dialog.showModal();
      });
      dialog.querySelector("[data-confirm-yes]").addEventListener("click", function () {
        [["action", button.value], ["confirm", "1"]].forEach(function (kv) {
          var h = document.createElement("input");
          h.type = "hidden"; h.name = kv[0]; h.value = kv[1]; form.appendChild(h);
        });
        dialog.close();
        HTMLFormElement.prototype.submit.call(form);  // form.submit may be shadowed by a control named "submit"
      });
      dialog.querySelector("[data-confirm-no]").addEventListener("click", function () { dialog.close(); });
    });

    // Rubric: a running total while marking.
    var rubric = document.querySelector("[data-rubric-total]");
    if (rubric) {
      var out = document.getElementById(rubric.getAttribute("data-rubric-total"));
      var sum = function () {
        var total = 0;
        Array.prototype.forEach.call(rubric.querySelectorAll("input[type=radio]:checked"), function (r) {
          total += +r.getAttribute("data-points");
        });
        out.textContent = String(Math.round(total * 100) / 100);
      };
      rubric.addEventListener("change", sum);
    }

    // A long <select data-filter> gets a search box that narrows its options (the select works alone too).
    Array.prototype.forEach.call(document.querySelectorAll("select[data-filter]"), function (select) {
      var box = document.createElement("input");
      box.type = "search"; box.id = select.id + "-search"; box.setAttribute("aria-label", select.getAttribute("data-filter"));
      box.setAttribute("aria-controls", select.id); box.placeholder = select.getAttribute("data-filter");
      select.parentNode.insertBefore(box, select);
      box.addEventListener("input", function () {
        var words = box.value.toLowerCase().replace(/ /g, "_"), first = null;
        Array.prototype.forEach.call(select.options, function (o) {
          o.hidden = words !== "" && o.value.toLowerCase().indexOf(words) < 0;
          if (!o.hidden && !first) first = o;
        });
        if (first && select.selectedOptions[0] && select.selectedOptions[0].hidden) first.selected = true;
      });
    });

    // The browser's zone, sent once when the LMS did not say.
    var tz = document.querySelector("[data-tz-detect]");
    if (tz && window.Intl && window.fetch) {
      var zone = Intl.DateTimeFormat().resolvedOptions().timeZone;
      if (zone && zone !== tz.getAttribute("data-tz-current")) {
        var body = new FormData();
        body.set("lt", tz.getAttribute("data-lt")); body.set("tz", zone); body.set("next", location.pathname);
        fetch(tz.getAttribute("data-tz-detect"), {method: "POST", body: body})
          .then(function (r) { if (r.ok) reloadWith(tz.getAttribute("data-lt")); });
      }
    }

    // The booking pages' zone form (form.zone): the browser's zone, sent once per session when the LMS did not say.
    var zoneForm = document.querySelector("form.zone[data-tz-known='no']");
    var zoneSent = function () { try { return sessionStorage.getItem("lmsb-tz-sent"); } catch (e) { return null; } };
    if (zoneForm && !zoneSent() && window.Intl && window.fetch) {
      var browserZone = Intl.DateTimeFormat().resolvedOptions().timeZone;
      if (browserZone) {
        var zoneData = new FormData(zoneForm);
        zoneData.set("tz", browserZone);
        try { sessionStorage.setItem("lmsb-tz-sent", "1"); } catch (e) { /* storage blocked in the frame */ }
        fetch(zoneForm.action, {method: "POST", body: zoneData, headers: {"Accept": "application/json"}})
          .then(function (r) { if (r.ok) reloadWith(zoneData.get("lt")); });
      }
    }

    // Keep typed text in the browser (nothing lost when a launch expires), tied to the saved version:
    // a copy typed over an older version, or one already saved, is discarded.
    var keep = document.querySelector("[data-keep]");
    if (!keep || !window.localStorage) return;
    var key = "lms_bridge:draft:" + keep.getAttribute("data-keep");
    // Drafts were once keyed by platform, course and stage only: drop those, they may be someone else's.
    try {
      for (var i = localStorage.length - 1; i >= 0; i--) {
        var k = localStorage.key(i);
        if (k && /^lms_bridge:draft:\d{1,9}:[^:]*:[^:]+$/.test(k)) localStorage.removeItem(k);
      }
    } catch (e) { /* storage blocked */ }
    var version = keep.getAttribute("data-keep-version") || "";
    var stored = null;
    try { stored = JSON.parse(localStorage.getItem(key) || "null"); } catch (e) { stored = null; }
    if (keep.tagName !== "FORM" || document.getElementById("saved") || (stored && stored.v !== version)) {
      localStorage.removeItem(key);
      stored = null;
    }
    if (keep.tagName !== "FORM") return;
    if (stored && stored.data) {
      Array.prototype.forEach.call(keep.elements, function (el) {
        if (!el.name || !(el.name in stored.data) || el.type === "file" || el.type === "hidden") return;
        if (el.type === "checkbox") el.checked = stored.data[el.name].indexOf(el.value) >= 0;
        else el.value = stored.data[el.name];
      });
    }
    function save() {
      var data = {};
      Array.prototype.forEach.call(keep.elements, function (el) {
        if (!el.name || el.type === "hidden" || el.type === "file" || el.type === "submit") return;
        if (el.type === "checkbox") { data[el.name] = data[el.name] || []; if (el.checked) data[el.name].push(el.value); }
        else data[el.name] = el.value;
      });
      try { localStorage.setItem(key, JSON.stringify({v: version, data: data})); } catch (e) { /* storage full or blocked */ }
    }
    keep.addEventListener("input", save);
    keep.addEventListener("change", save);
  });
})();
