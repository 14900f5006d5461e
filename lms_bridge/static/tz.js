// The LMS sent no time zone (Moodle's "99" = the site default): send the browser's once, remembered with
// this launch, and show the page again in it. Without JavaScript the page stays in a named UTC with a chooser.
(function () {
  var form = document.querySelector("form[data-tz-detect]");
  if (!form) { return; }
  var zone;
  try { zone = Intl.DateTimeFormat().resolvedOptions().timeZone; } catch (e) { return; }
  if (!zone || zone === "UTC" || zone === "Etc/UTC") { return; }
  try {
    var key = "lmsb-tz-" + form.elements.lt.value.slice(0, 24);
    if (sessionStorage.getItem(key) === zone) { return; }  // tried once already: never loop
    sessionStorage.setItem(key, zone);
  } catch (e) { /* storage blocked in the frame: the launch keeps the zone after one post anyway */ }
  form.elements.tz.value = zone;
  form.submit();
})();
