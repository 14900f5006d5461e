// Keeps typed form data in localStorage (nothing lost on an expired launch) and reports the browser's time zone.
(function () {
  "use strict";
  var tzForm = document.querySelector("[data-tz-form]");
  if (tzForm && !tzForm.getAttribute("data-tz-known")) {
    var tz = Intl.DateTimeFormat().resolvedOptions().timeZone;
    if (tz && tz !== tzForm.elements.tz.value) { tzForm.elements.tz.value = tz; tzForm.submit(); }
  }
  var form = document.querySelector("form[data-keep]");
  if (!form || !window.localStorage) return;
  var key = "lms_bridge:draft:" + form.getAttribute("data-keep");
  // Drafts were once keyed by platform, course and stage only: drop those, they may be someone else's.
  try {
    for (var i = localStorage.length - 1; i >= 0; i--) {
      var k = localStorage.key(i);
      if (k && /^lms_bridge:draft:\d{1,9}:[^:]*:[^:]+$/.test(k)) localStorage.removeItem(k);
    }
  } catch (e) { /* storage blocked */ }
  function collect() {
    var data = {};
    Array.prototype.forEach.call(form.elements, function (el) {
      if (!el.name || el.name === "lt" || el.type === "file" || el.type === "submit") return;
      if (el.type === "checkbox") { (data[el.name] = data[el.name] || []); if (el.checked) data[el.name].push(el.value); }
      else data[el.name] = el.value;
    });
    return data;
  }
  var saved = null;
  try { saved = JSON.parse(localStorage.getItem(key) || "null"); } catch (e) { saved = null; }
  var justSaved = document.getElementById("saved");
  if (justSaved) { localStorage.removeItem(key); saved = null; }
  if (saved) {
    Array.prototype.forEach.call(form.elements, function (el) {
      if (!el.name || !(el.name in saved) || el.type === "file" || el.name === "lt") return;
      if (el.type === "checkbox") el.checked = saved[el.name].indexOf(el.value) >= 0;
      else if (!el.value || el.value !== saved[el.name]) el.value = saved[el.name];
    });
  }
  form.addEventListener("input", function () { localStorage.setItem(key, JSON.stringify(collect())); });
  form.addEventListener("change", function () { localStorage.setItem(key, JSON.stringify(collect())); });
})();
