/* The chatbot pages: the widget preview follows the form as it is typed,
 * and files dropped on the drop zone go into its file input and are sent.
 * Everything works without this script; it only makes it quicker. */
(function () {
  "use strict";
  var hex = /^#[0-9A-Fa-f]{6}$/;

  var frame = document.getElementById("widget-preview");
  var form = document.getElementById("chatbot-form");
  if (frame && form) {
    var val = function (key) {
      var v = "";
      form.querySelectorAll('[data-preview="' + key + '"]').forEach(function (el) { if (el.value.trim()) v = el.value.trim(); });
      return v;
    };
    var paint = function () {
      var d = frame.contentDocument;
      var root = d && d.querySelector(".wagate-chat");
      if (!root) return;
      [["primaryColor", "--wagate-primary"], ["secondaryColor", "--wagate-secondary"]].forEach(function (p) {
        var v = val(p[0]);
        if (hex.test(v)) root.style.setProperty(p[1], v);
        else if (!v) root.style.removeProperty(p[1]);
      });
      // As the widget: the header, else the name shown, else the chatbot's name.
      var name = form.querySelector('[name="name"]');
      d.querySelector(".wagate-title").textContent = val("header") || val("name") || (name && name.value) || "";
      d.querySelector(".wagate-slogan").textContent = val("slogan");
      var greeting = d.querySelector("[data-greeting]");
      greeting.querySelector("p").textContent = val("greeting");
      greeting.hidden = !val("greeting");
      var logo = d.querySelector(".wagate-logo");
      var pic = val("logo") || frame.getAttribute("data-avatar") || "";
      if (/^https?:\/\//.test(pic) || pic.indexOf("/") === 0) { logo.src = pic; logo.hidden = false; }
      else if (!pic) { logo.hidden = !logo.getAttribute("src"); }
    };
    form.addEventListener("input", paint);
    frame.addEventListener("load", paint);
    if (frame.contentDocument && frame.contentDocument.readyState === "complete") paint();
  }

  document.querySelectorAll("[data-dropzone]").forEach(function (zone) {
    var input = zone.querySelector('input[type="file"]');
    var target = input && input.form;
    if (!target) return;
    zone.classList.add("dropzone--active");
    var on = function (e) { e.preventDefault(); zone.classList.add("dropzone--over"); };
    var off = function () { zone.classList.remove("dropzone--over"); };
    zone.addEventListener("dragenter", on);
    zone.addEventListener("dragover", on);
    zone.addEventListener("dragleave", off);
    zone.addEventListener("drop", function (e) {
      e.preventDefault(); off();
      if (!e.dataTransfer || !e.dataTransfer.files.length) return;
      input.files = e.dataTransfer.files;
      target.requestSubmit ? target.requestSubmit() : target.submit();
    });
  });
})();
